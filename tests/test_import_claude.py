"""Claude.ai exports, every generation, and Claude Code transcripts.

Expectations are computed here from the raw JSON, independently of the importer: which
conversations have human messages, and their first and last message times.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.events import account_label
from auditor.importers import ImportFormatError, ImportOptionError, read_export
from auditor.times import parse_rfc3339
from tests.import_helpers import REAL, SALT, need_real, read, spans, strings_under

DATA = Path(__file__).parent / "data" / "exports"
ACCT = "11111111-2222-4333-8444-555555555555"





def expected_claude(conversations: list[Any]) -> dict[str, tuple[datetime, datetime, int]]:
    out = {}
    for conv in conversations:
        msgs = conv.get("chat_messages") if isinstance(conv, dict) else None
        if not isinstance(msgs, list):
            continue
        times = []
        for m in msgs:
            if m.get("sender") != "human":
                continue
            try:
                times.append(parse_rfc3339(m["created_at"]))
            except (KeyError, ValueError):
                continue
        if times:
            out[conv["uuid"]] = (min(times), max(times), len(times))
    return out


def message_texts(obj: Any) -> set[str]:
    """Every text a Claude export holds for messages (text, content blocks, attachments)."""
    return strings_under(obj, ("text", "thinking", "extracted_content", "content", "summary",
                               "input"))


def assert_no_text(events: list[dict], texts: set[str]) -> None:
    dumped = json.dumps(events, ensure_ascii=False)
    titles = {e.get("title", "") for e in events}
    for text in texts:
        if any(text in t for t in titles):
            continue
        assert text not in dumped, f"message text leaked into events: {text[:40]!r}"


# --- the shared real exports -----------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "idanmashaal__Now2ai-Claude-Export-Processor__conversations.json",
    "cl0ver012__chatlore__claude__conversations.json",
    "modelcaddy__panchat__claude_conversations.json",
])
def test_real_claude_conversations(name: str) -> None:
    path = need_real(name)
    raw = json.loads(path.read_text(encoding="utf-8"))
    conversations = raw["conversations"] if isinstance(raw, dict) else raw
    events, summary = read(path)
    expected = expected_claude(conversations)
    assert spans(events) == expected
    assert summary.chats == len(expected)
    assert summary.messages == sum(n for *_, n in expected.values())
    assert all(e["provider"] == "claude" and e["kind"] == "chat" for e in events)
    assert_no_text(events, message_texts(conversations))
    # ids are stable across reads, and distinct
    again, _ = read(path)
    assert again == events
    assert len({e["id"] for e in events}) == len(events)


def test_real_genuine_export_account_and_order() -> None:
    path = need_real("idanmashaal__Now2ai-Claude-Export-Processor__conversations.json")
    raw = json.loads(path.read_text(encoding="utf-8"))["conversations"]
    events, summary = read(path)
    owner = {c["account"]["uuid"] for c in raw}
    assert len(owner) == 1
    assert {e["account"] for e in events} == {account_label(SALT, "claude", owner.pop())}
    # chat_messages are not in time order in the genuine export; events are
    for chat in {e["chat_id"] for e in events}:
        times = [parse_rfc3339(e["at"]) for e in events if e["chat_id"] == chat]
        assert times == sorted(times)
    # the 2023 chat: an untitled chat whose one human message is empty still counts
    untitled = [e for e in events if e["chat_id"] == "0df82faa-95a9-4c5a-91e5-bb1b690dcbaf"]
    assert len(untitled) == 1 and "title" not in untitled[0]
    assert summary.format.startswith("Claude export")


def test_real_broken_record_is_skipped_and_named(caplog: pytest.LogCaptureFixture) -> None:
    path = need_real("cl0ver012__chatlore__claude__conversations.json")
    with caplog.at_level("WARNING", logger="auditor.importers"):
        events, summary = read(path)
    broken = "aaaaaaaa-1111-4222-8333-000000000003"
    assert broken not in {e["chat_id"] for e in events}
    assert any(broken in s.where and "chat_messages" in s.reason for s in summary.skipped)
    assert broken in caplog.text
    # the old-style row names no account: it takes the one account the export names
    assert {e["account"] for e in events} == {account_label(SALT, "claude", "acct-1")}


def test_real_design_chat_is_a_chat() -> None:
    path = need_real("modelcaddy__panchat__claude_design_chat.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    events, _ = read(path)
    users = [m for m in raw["messages"] if m["role"] == "user"]
    assert [e["chat_id"] for e in events] == [raw["uuid"]] * len(users)
    assert [parse_rfc3339(e["at"]) for e in events] == sorted(
        parse_rfc3339(m["created_at"]) for m in users)
    assert_no_text(events, message_texts(raw))


@pytest.mark.parametrize("name", [
    "modelcaddy__panchat__claude_projects.json",
    "modelcaddy__panchat__claude_project_dir.json",
    "modelcaddy__panchat__claude_memories.json",
    "modelcaddy__panchat__claude_memories_v2.json",
    "idanmashaal__Now2ai-Claude-Export-Processor__projects.json",
])
def test_real_side_files_alone_are_not_an_export(name: str) -> None:
    with pytest.raises(ImportFormatError, match="hold no chats"):
        read_export(need_real(name), salt=SALT)


def test_real_v2_layout_assembled_from_shared_files(tmp_path: Path) -> None:
    """A 2026 export folder built from the shared fixtures: side files give no events."""
    need_real("modelcaddy__panchat__claude_conversations.json")
    folder = tmp_path / "data-2026-batch-0000"
    (folder / "projects").mkdir(parents=True)
    (folder / "design_chats").mkdir()
    shutil.copy(REAL / "cl0ver012__chatlore__claude__conversations.json",
                folder / "conversations.json")
    shutil.copy(REAL / "modelcaddy__panchat__claude_project_dir.json",
                folder / "projects" / "proj-9.json")
    shutil.copy(REAL / "modelcaddy__panchat__claude_design_chat.json",
                folder / "design_chats" / "design-1.json")
    shutil.copy(REAL / "modelcaddy__panchat__claude_memories_v2.json", folder / "memories.json")
    events, summary = read(folder)
    raw = json.loads((folder / "conversations.json").read_text())
    design = json.loads((folder / "design_chats" / "design-1.json").read_text())
    expected = expected_claude(raw)
    assert set(spans(events)) == set(expected) | {design["uuid"]}
    assert summary.ignored == {"projects, memories and users files (no events)": 2}
    # rows without an account (old style, the design chat) take the export's single account
    assert {e["account"] for e in events} == {account_label(SALT, "claude", "acct-1")}


# --- the synthetic exports -------------------------------------------------------------------

def _claude_v2_raw() -> tuple[list[Any], dict]:
    raw = json.loads((DATA / "claude_v2" / "conversations.json").read_text(encoding="utf-8"))
    design = json.loads((DATA / "claude_v2" / "design_chats" / "design-0001.json").read_text(
        encoding="utf-8"))
    return raw, design


def test_synthetic_v2_folder() -> None:
    events, summary = read(DATA / "claude_v2")
    raw, design = _claude_v2_raw()
    expected = expected_claude(raw)
    user_msgs = [m for m in design["messages"] if m["role"] == "user"]
    times = [parse_rfc3339(m["created_at"]) for m in user_msgs]
    expected[design["uuid"]] = (min(times), max(times), len(times))
    assert spans(events) == expected
    assert "SECRET" not in json.dumps(events, ensure_ascii=False)
    # an empty human message was still sent; the untitled chat has no title
    c1 = [e for e in events if e["chat_id"] == "019b0c1e-7a00-7000-8000-00000000c001"]
    assert len(c1) == 3 and {e["title"] for e in c1} == {"Branching chat"}
    assert all("title" not in e for e in events if e["chat_id"].endswith("c002"))
    assert summary.empty_chats == 2
    reasons = {s.where: s.reason for s in summary.skipped}
    assert any("c003" in w and "chat_messages" in r for w, r in reasons.items())
    assert any("c1-bad" in w and "yesterday" in r for w, r in reasons.items())
    assert {e["account"] for e in events} == {account_label(SALT, "claude", ACCT)}


def test_zip_batch_archive_matches_folder(tmp_path: Path) -> None:
    folder_events, _ = read(DATA / "claude_v2")
    archive = tmp_path / "data-0b9c0c9e-1c55-4cc1-9d4e-0d1b2f3a4b5c-1761000000-ab12-batch-0000.zip"
    _zip(DATA / "claude_v2", archive)
    zip_events, summary = read(archive)
    assert zip_events == folder_events
    assert summary.missing_shards == []
    assert summary.notes == []
    _zip(DATA / "claude_team", archive.with_name(archive.name.replace("batch-0000", "batch-0001")))
    _events, summary = read(archive)
    assert any("batch-0001.zip" in n and "not read" in n for n in summary.notes)


def test_folder_of_batches_names_a_missing_batch(tmp_path: Path) -> None:
    _zip(DATA / "claude_v2", tmp_path / "data-x-batch-0000.zip")
    _zip(DATA / "claude_team", tmp_path / "data-x-batch-0002.zip")
    events, summary = read(tmp_path)
    assert "batch-0001" in summary.missing_shards
    assert {"team-c1", "019b0c1e-7a00-7000-8000-00000000c001"} <= {e["chat_id"] for e in events}


def test_team_shards_accounts_and_missing_shard() -> None:
    events, summary = read(DATA / "claude_team")
    by_chat = {e["chat_id"]: e["account"] for e in events}
    assert by_chat["team-c1"] == account_label(SALT, "claude", ACCT)
    other = "22222222-3333-4444-8555-666666666666"
    assert by_chat["team-c2"] == account_label(SALT, "claude", other)
    # two accounts in the export: a row naming none is not given either of them
    assert by_chat["team-c3"] == "default"
    assert summary.missing_shards == ["conversations-0001.json"]
    assert "shards" in summary.format


def test_account_override_and_label() -> None:
    events, _ = read(DATA / "claude_team", account="acct-override")
    assert {e["account"] for e in events} == {account_label(SALT, "claude", "acct-override")}
    label = "0123456789abcdef0123456789abcdef"
    events, _ = read(DATA / "claude_team", account=f"label:{label}")
    assert {e["account"] for e in events} == {label}
    with pytest.raises(ValueError, match="label"):
        read_export(DATA / "claude_team", salt=SALT, account="label:nothex")


def test_plan_on_every_activity() -> None:
    events, _ = read(DATA / "claude_v2", plan="max")
    assert events and all(e["plan"] == "max" for e in events)
    with pytest.raises(ImportOptionError, match="not a claude plan"):
        read_export(DATA / "claude_v2", salt=SALT, plan="plus")


def test_ids_change_with_the_account_only() -> None:
    a, _ = read(DATA / "claude_v2")
    b, _ = read(DATA / "claude_v2")
    c, _ = read(DATA / "claude_v2", account="someone-else")
    assert [e["id"] for e in a] == [e["id"] for e in b]
    assert not {e["id"] for e in a} & {e["id"] for e in c}
    assert all(e["id"].startswith("imp-") and len(e["id"]) == 44 for e in a)


def test_truncated_file_keeps_good_records(tmp_path: Path) -> None:
    text = (DATA / "claude_v2" / "conversations.json").read_text(encoding="utf-8")
    cut = text.index('"bbbbbbbb-0000-4000-8000-00000000c003"')
    path = tmp_path / "conversations.json"
    path.write_text(text[:cut], encoding="utf-8")
    events, summary = read(path)
    assert {e["chat_id"] for e in events} == {"019b0c1e-7a00-7000-8000-00000000c001",
                                              "bbbbbbbb-0000-4000-8000-00000000c002"}
    assert any("rest of the file not read" in s.reason for s in summary.skipped)


def _zip(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())


# --- Claude Code -----------------------------------------------------------------------------

CODE = DATA / "claude_code" / ".claude"
S1 = "5e55a0e1-0000-4000-8000-000000000001"
S2 = "5e55a0e1-0000-4000-8000-000000000002"
S3 = "5e55a0e1-0000-4000-8000-000000000003"


def expected_code(root: Path) -> dict[str, tuple[datetime, datetime, int]]:
    """The user's own prompts, read independently: user lines, not sidechain/meta/compact,
    whose content is text that is not a tool result, a local command or a marker."""
    seen: dict[str, dict[str, datetime]] = {}
    for path in sorted(root.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict) or obj.get("type") != "user" or "sessionId" not in obj:
                continue
            if obj.get("isSidechain") or obj.get("isMeta") or obj.get("isCompactSummary"):
                continue
            content = obj["message"]["content"]
            if isinstance(content, list):
                if any(b.get("type") == "tool_result" for b in content):
                    continue
                content = " ".join(b.get("text", "") for b in content if b.get("type") == "text")
            if content.startswith(("<local-command", "[Request interrupted")) or \
                    "<command-name>/clear</command-name>" in content:
                continue
            try:
                t = parse_rfc3339(obj["timestamp"])
            except ValueError:
                continue
            seen.setdefault(obj["sessionId"], {})[obj["uuid"]] = t
    return {s: (min(v.values()), max(v.values()), len(v)) for s, v in seen.items()}


def test_claude_code_home_folder() -> None:
    events, summary = read(CODE)
    assert spans(events) == expected_code(CODE)
    assert set(spans(events)) == {S1, S2, S3}
    assert all(e["kind"] == "code" and e["provider"] == "claude" for e in events)
    assert "SECRET" not in json.dumps(events, ensure_ascii=False)
    # the resumed session's copied line is counted once, in its own session
    assert spans(events)[S1][2] == 4 and spans(events)[S2][2] == 1
    assert {e.get("title") for e in events if e["chat_id"] == S1} == {"Fix the login bug"}
    assert [n for what, n in summary.ignored.items() if what.startswith("subagent")] == [2]
    assert any("not-a-time" in s.reason for s in summary.skipped)
    assert any("line 2" in s.where and S3 in s.where for s in summary.skipped)


def test_claude_code_one_project_folder_and_one_file() -> None:
    project = CODE / "projects" / "-home-alice-app"
    events, _ = read(project)
    assert set(spans(events)) == {S1, S2}
    events, _ = read(project / f"{S2}.jsonl")
    # the file holds one line copied from S1 and one prompt of its own
    assert {c: n for c, (_f, _l, n) in spans(events).items()} == {S1: 1, S2: 1}


def test_claude_code_plan_api_and_account() -> None:
    events, summary = read(CODE, plan="api", account="acct-uuid-from-claude-ai")
    assert all(e["plan"] == "api" for e in events)
    assert {e["account"] for e in events} == {
        account_label(SALT, "claude", "acct-uuid-from-claude-ai")}
    events, summary = read(CODE)
    assert all("plan" not in e for e in events)
    assert {e["account"] for e in events} == {"default"}
    assert any("--account" in n for n in summary.notes)


def test_claude_code_ids_stable_and_distinct_from_other_sessions() -> None:
    a, _ = read(CODE)
    b, _ = read(CODE / "projects")
    assert a == b
    assert len({e["id"] for e in a}) == len(a)
