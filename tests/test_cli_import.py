"""`consent-ledger import` as a user runs it: real exports in, nothing twice, nothing
readable."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
EXPORTS = Path(__file__).parent / "data" / "exports"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def _head(data_dir: Path) -> str:
    return json.loads((data_dir / "head.json").read_text())["checkpoint"]["head"]


@pytest.mark.parametrize("export", ["claude_v2", "chatgpt_v1", "chatgpt_v2", "gemini_takeout"])
def test_import_twice_adds_nothing_the_second_time(export: str, data_dir: Path) -> None:
    first = run("import", str(EXPORTS / export))
    assert first.returncode == 0, first.stderr
    assert "stored 0 events" not in first.stdout
    head = _head(data_dir)
    second = run("import", str(EXPORTS / export))
    assert second.returncode == 0, second.stderr
    assert "stored 0 events" in second.stdout
    assert _head(data_dir) == head
    assert run("verify").returncode == 0


def test_a_zipped_export_imports_like_the_folder(tmp_path: Path, data_dir: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (EXPORTS / "chatgpt_v1").rglob("*"):
            if f.is_file():
                zf.write(f, f.relative_to(EXPORTS / "chatgpt_v1"))
    assert run("import", str(archive)).returncode == 0
    again = run("import", str(EXPORTS / "chatgpt_v1"))
    assert "stored 0 events" in again.stdout


def test_no_title_or_text_is_readable_in_the_data_dir(data_dir: Path) -> None:
    export = EXPORTS / "chatgpt_v1"
    assert run("import", str(export)).returncode == 0
    conversations = json.loads((export / "conversations.json").read_text())
    titles = [c["title"] for c in conversations if c.get("title")]
    assert titles
    blob = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file())
    for title in titles:
        assert title.encode() not in blob
    user = json.loads((export / "user.json").read_text())
    for value in (user.get("email"), user.get("id")):
        if value:
            assert value.encode() not in blob


def test_imported_chats_appear_in_the_audit(data_dir: Path, tmp_path: Path) -> None:
    assert run("import", str(EXPORTS / "claude_v2")).returncode == 0
    out = tmp_path / "r.json"
    assert run("audit", "-o", str(out)).returncode == 0
    report = json.loads(out.read_text())
    conversations = json.loads((EXPORTS / "claude_v2" / "conversations.json").read_text())
    ids = {c["uuid"] for c in conversations
           if any(isinstance(m, dict) and m.get("sender") == "human"
                  for m in c.get("chat_messages") or [])}
    assert ids <= {c["chat_id"] for c in report["chats"]}


def test_not_an_export_is_exit_2(tmp_path: Path, data_dir: Path) -> None:
    f = tmp_path / "notes.json"
    f.write_text('{"hello": "world"}')
    r = run("import", str(f))
    assert r.returncode == 2 and "not a" in r.stderr
    assert run("import", str(tmp_path / "missing")).returncode == 2


def test_a_bad_plan_is_exit_2(data_dir: Path) -> None:
    r = run("import", str(EXPORTS / "claude_v2"), "--plan", "plus")
    assert r.returncode == 2
