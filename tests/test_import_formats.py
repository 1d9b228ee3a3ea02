"""Recognising an export by its contents, refusing what is not one, and the summary."""

from __future__ import annotations

import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from auditor.importers import (
    ImportFormatError,
    ImportResult,
    format_summary,
    read_export,
)

SALT = bytes(range(32))
DATA = Path(__file__).parent / "data" / "exports"


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


BAD_FILES = [
    ("empty file", "conversations.json", "", "not a Claude, ChatGPT or Gemini export"),
    ("plain text", "conversations.json", "hello, world\n", "not valid JSON"),
    ("a JSON number", "conversations.json", "42", "not a Claude"),
    ("an unrelated object", "conversations.json", '{"hello": "world"}', "not a Claude"),
    ("an array of numbers", "conversations.json", "[1, 2, 3]", "not a Claude"),
    ("an empty array", "conversations.json", "[]", "not a Claude"),
    ("cut before its first record", "conversations.json", '[{"uuid": "x", "chat_mes',
     "not a Claude"),
    ("a ChatGPT manifest alone", "export_manifest.json",
     '{"version": 1, "export_files": [], "logical_files": {}}', "manifest"),
    ("users.json alone", "users.json",
     '[{"uuid": "u", "full_name": "A", "email_address": "a@example.invalid"}]', "no chats"),
    ("a JSON-lines file of something else", "notes.jsonl", '{"a": 1}\n{"b": 2}\n',
     "not a Claude"),
    ("Gemini in HTML", "MyActivity.html",
     '<html><div class="outer-cell">Gemini Apps</div></html>', "JSON"),
]


@pytest.mark.parametrize(("label", "name", "content", "message"), BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_bad_single_files(tmp_path: Path, label: str, name: str, content: str,
                          message: str) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(ImportFormatError, match=message):
        read_export(path, salt=SALT)


def test_not_a_path(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="no such file"):
        read_export(tmp_path / "missing.zip", salt=SALT)


def test_empty_folder_and_unrelated_zip(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportFormatError, match="no Claude, ChatGPT or Gemini export"):
        read_export(tmp_path / "empty", salt=SALT)
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.jpg", b"\xff\xd8")
        z.writestr("notes.json", '{"shopping": ["milk"]}')
    with pytest.raises(ImportFormatError, match="no Claude, ChatGPT or Gemini export"):
        read_export(archive, salt=SALT)


def test_file_named_like_an_export_is_not_enough(tmp_path: Path) -> None:
    """A name proves nothing: conversations.json full of something else is refused."""
    path = _write(tmp_path, "export/conversations.json", json.dumps([{"id": 1, "name": "x"}]))
    _write(tmp_path, "export/user.json", json.dumps({"id": "user-abc"}))
    with pytest.raises(ImportFormatError):
        read_export(path, salt=SALT)


def test_bad_zip(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.zip", b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ImportFormatError):
        read_export(path, salt=SALT)


def test_two_providers_in_one_folder(tmp_path: Path) -> None:
    shutil.copytree(DATA / "claude_team", tmp_path / "claude")
    shutil.copytree(DATA / "chatgpt_v1", tmp_path / "chatgpt")
    with pytest.raises(ImportFormatError, match="several kinds"):
        read_export(tmp_path, salt=SALT)


def test_import_format_error_is_a_value_error() -> None:
    assert issubclass(ImportFormatError, ValueError)


@pytest.mark.parametrize(("folder", "provider", "fmt"), [
    ("claude_v2", "claude", "Claude export"),
    ("claude_team", "claude", "Claude export, Team/organisation shards"),
    ("chatgpt_v1", "chatgpt", "ChatGPT export (single"),
    ("chatgpt_v2", "chatgpt", "ChatGPT export, sharded"),
    ("gemini_takeout", "gemini", "Google Takeout My Activity"),
    ("claude_code", "claude", "Claude Code transcripts"),
])
def test_recognised_by_contents(tmp_path: Path, folder: str, provider: str, fmt: str) -> None:
    # Renamed files and folders: recognition does not depend on names.
    target = tmp_path / "renamed"
    shutil.copytree(DATA / folder, target)
    if folder == "claude_v2":
        (target / "conversations.json").rename(target / "chats.json")
    if folder == "chatgpt_v1":
        (target / "conversations.json").rename(target / "export-data.json")
    result = read_export(target, salt=SALT)
    assert result.summary.provider == provider
    assert result.summary.format.startswith(fmt)
    assert len(list(result.events)) > 0


def test_events_are_lazy_and_summary_fills_as_they_are_read() -> None:
    result = read_export(DATA / "chatgpt_v2", salt=SALT)
    assert isinstance(result, ImportResult)
    assert result.summary.chats == 0 and not result.summary.complete
    first = next(iter(result))
    assert first["type"] == "chat.activity"
    rest = list(result.events)
    assert result.summary.complete
    assert result.summary.messages + result.summary.feedback == 1 + len(rest)
    assert "(incomplete" not in format_summary(result.summary)


def test_format_summary_for_people() -> None:
    result = read_export(DATA / "claude_team", salt=SALT)
    list(result.events)
    text = format_summary(result.summary)
    assert "chats: 3, user messages: 3, feedback: 0" in text
    assert "conversations-0001.json" in text
    assert "recognised as: Claude export" in text
    result = read_export(DATA / "chatgpt_v1", salt=SALT)
    list(result.events)
    text = format_summary(result.summary)
    assert "skipped records: 4" in text and "65000000-0000-0000-0000-000000000003" in text


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    list(read_export(DATA / "chatgpt_v1", salt=SALT, progress=True).events)
    assert quiet.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    list(read_export(DATA / "chatgpt_v1", salt=SALT, progress=True).events)
    assert "100%" in tty.getvalue() and tty.getvalue().endswith("\n")
    tty2 = Tty()
    monkeypatch.setattr(sys, "stderr", tty2)
    list(read_export(DATA / "chatgpt_v1", salt=SALT, progress=False).events)
    assert tty2.getvalue() == ""


def test_skips_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="auditor.importers"):
        list(read_export(DATA / "chatgpt_v1", salt=SALT).events)
    assert "65000000-0000-0000-0000-000000000003" in caplog.text
    assert "SECRET" not in caplog.text


def test_no_message_text_anywhere_in_events_of_any_synthetic_export() -> None:
    for folder in ("claude_v2", "claude_team", "chatgpt_v1", "chatgpt_v2", "gemini_takeout",
                   "claude_code"):
        events = list(read_export(DATA / folder, salt=SALT).events)
        assert events
        assert "SECRET" not in json.dumps(events, ensure_ascii=False), folder
        assert {e["type"] for e in events} <= {"chat.activity", "chat.feedback"}
        assert all(e["incognito"] is False for e in events if e["type"] == "chat.activity")
