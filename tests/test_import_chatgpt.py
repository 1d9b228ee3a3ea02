"""ChatGPT exports: single conversations.json, the sharded layout, one conversation object.

Expected activity is computed here from the raw JSON: every user node of the `mapping` tree
(any branch) that is not hidden, at its `create_time` cut to the microsecond.
"""

from __future__ import annotations

import json
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.events import account_label
from auditor.importers import format_summary
from auditor.importers.common import epoch_at
from auditor.times import parse_rfc3339
from tests.import_helpers import REAL, SALT, need_real, read, spans, strings_under

DATA = Path(__file__).parent / "data" / "exports"
USER = "user-SyntheticUser0001"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)




def load(path: Path) -> list[dict]:
    raw = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    return raw if isinstance(raw, list) else [raw]


def when(value: Any) -> datetime:
    d = Decimal(str(value))
    micros = int((d * 1_000_000).to_integral_value(rounding=ROUND_FLOOR))
    return EPOCH + timedelta(microseconds=micros)


def expected(conversations: list[dict]) -> dict[str, tuple[datetime, datetime, int]]:
    out = {}
    for conv in conversations:
        cid = conv.get("id") or conv.get("conversation_id")
        if not cid or not isinstance(conv.get("mapping"), dict):
            continue
        times = []
        for node in conv["mapping"].values():
            msg = node.get("message")
            if not msg or msg["author"]["role"] != "user":
                continue
            meta = msg.get("metadata") or {}
            if meta.get("is_visually_hidden_from_conversation") or \
                    meta.get("is_user_system_message"):
                continue
            if msg["content"].get("content_type") == "user_editable_context":
                continue
            if msg.get("weight") == 0 or msg.get("create_time") is None:
                continue
            times.append(when(msg["create_time"]))
        if times and cid not in out:
            out[cid] = (min(times), max(times), len(times))
    return out



def texts(conversations: list[dict]) -> set[str]:
    """Message text: string parts, code and tool output, transcriptions, custom instructions."""
    return strings_under([conv.get("mapping") for conv in conversations],
                         ("parts", "text", "user_profile", "user_instructions", "result"))


def assert_no_text(events: list[dict], snippets: set[str]) -> None:
    dumped = json.dumps(events, ensure_ascii=False)
    titles = {e.get("title", "") for e in events}
    for s in snippets:
        if not any(s in t for t in titles):
            assert s not in dumped, f"message text leaked: {s[:40]!r}"


@pytest.mark.parametrize("name", [
    "realazthat__chatgpt2graph__conversations.json",
    "aucontraire__echomine__golden_master_001_simple_text__raw.json",
    "aucontraire__echomine__golden_master_002_with_images__raw.json",
    "aucontraire__echomine__golden_master_003_with_code__raw.json",
    "modelcaddy__panchat__chatgpt_branched.json",
    "modelcaddy__panchat__chatgpt_sharded_000.json",
])
def test_real_conversations(name: str) -> None:
    path = need_real(name)
    raw = load(path)
    events, summary = read(path)
    want = expected(raw)
    assert spans(events) == want
    assert summary.chats == len(want)
    assert summary.messages == sum(n for *_, n in want.values())
    assert {e.get("title") for e in events} <= {c.get("title") for c in raw}
    assert_no_text(events, texts(raw))
    again, _ = read(path)
    assert again == events


def test_real_custom_instructions_are_not_activity() -> None:
    path = need_real("aucontraire__echomine__golden_master_001_simple_text__raw.json")
    raw = load(path)[0]
    hidden = [n["message"]["id"] for n in raw["mapping"].values() if n.get("message")
              and n["message"]["content"].get("content_type") == "user_editable_context"]
    assert hidden
    events, _ = read(path)
    assert len(events) == 1
    assert "SECRET" not in json.dumps(events)


def test_real_branches_count_every_user_message() -> None:
    path = need_real("modelcaddy__panchat__chatgpt_branched.json")
    events, _ = read(path)
    assert [e["at"] for e in events] == [epoch_at(Decimal("1750000100.0")),
                                         epoch_at(Decimal("1750000400.0"))]
    assert {e["chat_id"] for e in events} == {"conv-1"}


def test_real_manifest_with_a_shard_that_is_not_there(tmp_path: Path) -> None:
    need_real("modelcaddy__panchat__chatgpt_export_manifest.json")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "export_manifest.json").write_bytes(
        (REAL / "modelcaddy__panchat__chatgpt_export_manifest.json").read_bytes())
    (folder / "conversations-000.json").write_bytes(
        (REAL / "modelcaddy__panchat__chatgpt_sharded_000.json").read_bytes())
    events, summary = read(folder)
    assert summary.missing_shards == ["conversations-001.json", "conversations-404.json"]
    assert spans(events) == expected(load(folder / "conversations-000.json"))
    text = format_summary(summary)
    assert "conversations-404.json" in text and "MISSING" in text


# --- synthetic -------------------------------------------------------------------------------

def test_single_file_export_folder() -> None:
    folder = DATA / "chatgpt_v1"
    raw = load(folder / "conversations.json")
    events, summary = read(folder)
    activity = [e for e in events if e["type"] == "chat.activity"]
    assert spans(activity) == expected(raw)
    assert "SECRET" not in json.dumps(events, ensure_ascii=False)
    # the edited-away prompt on the old branch counts; the weight-0 one does not
    main = spans(activity)["685a0000-aaaa-8000-9000-000000000001"]
    assert main[2] == 4
    assert main[0] == parse_rfc3339("2025-06-15T15:08:20.999591Z")
    assert {e["account"] for e in events} == {account_label(SALT, "chatgpt", USER)}
    assert summary.format == "ChatGPT export (single conversations.json)"


def test_feedback_from_message_feedback_json() -> None:
    events, summary = read(DATA / "chatgpt_v1")
    feedback = [(e["chat_id"], e["rating"], e["at"]) for e in events
                if e["type"] == "chat.feedback"]
    assert feedback == [
        ("685a0000-aaaa-8000-9000-000000000001", "up", "2025-06-15T15:15:00.5Z"),
        ("65000000-0000-0000-0000-000000000002", "down", "2023-11-14T22:15:00Z"),
    ]
    assert summary.feedback == 2
    assert any("meh" in s.reason for s in summary.skipped)


def test_broken_records_are_skipped_and_named() -> None:
    _events, summary = read(DATA / "chatgpt_v1")
    named = [str(s) for s in summary.skipped]
    assert any("65000000-0000-0000-0000-000000000003" in s and "mapping" in s for s in named)
    assert any("record 3" in s and "no id" in s for s in named)
    assert any("message x" in s and "no time" in s for s in named)
    assert summary.empty_chats == 1


def test_sharded_export_reads_every_shard_and_names_the_missing_one(tmp_path: Path) -> None:
    folder = DATA / "chatgpt_v2"
    raw = load(folder / "conversations-000.json") + load(folder / "conversations-001.json")
    events, summary = read(folder)
    assert spans(events) == expected(raw)
    assert summary.missing_shards == ["conversations-002.json"]
    assert summary.chats == 3
    assert any("again" in s.reason for s in summary.skipped)
    assert [e["rating"] for e in events if e["type"] == "chat.feedback"] == ["down"]
    # as a zip: the same events
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, p.name)
    zipped, zsummary = read(archive)
    assert zipped == events
    assert zsummary.missing_shards == ["conversations-002.json"]


def test_a_single_file_has_no_account_and_says_so() -> None:
    events, summary = read(DATA / "chatgpt_v1" / "conversations.json")
    assert {e["account"] for e in events} == {"default"}
    assert any("user.json" in n for n in summary.notes)
    events, _ = read(DATA / "chatgpt_v1" / "conversations.json", account=USER, plan="plus")
    assert {e["account"] for e in events} == {account_label(SALT, "chatgpt", USER)}
    assert {e["plan"] for e in events} == {"plus"}


def test_generated_export_every_conversation_once(tmp_path: Path) -> None:
    """The bench's generator, small: every conversation, every prompt, once."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import import_bench  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    folder = tmp_path / "export"
    _bytes, count = import_bench.generate(folder, 3, "sharded")
    raw = []
    for p in sorted(folder.glob("conversations-*.json")):
        raw += load(p)
    events, summary = read(folder)
    assert summary.chats == count == len(raw)
    assert spans([e for e in events if e["type"] == "chat.activity"]) == expected(raw)
    assert len({e["id"] for e in events}) == len(events)


@given(st.decimals(min_value=0, max_value=4_000_000_000, places=7, allow_nan=False))
def test_epoch_times_are_cut_to_the_microsecond(value: Decimal) -> None:
    assert parse_rfc3339(epoch_at(value)) == when(value)
