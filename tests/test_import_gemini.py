"""Google Takeout My Activity (Gemini Apps): localised names, links, feedback, lone prompts.

Expectations are computed here from the rows: prompt rows by their localised prefix, the
chat from the `/app/<id>` or `/app/c/<id>` link, else `row-` + 16 hex of SHA-256(time+title).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from auditor.importers import ImportFormatError, read_export
from auditor.times import parse_rfc3339
from tests.import_helpers import SALT, need_real, read, spans

DATA = Path(__file__).parent / "data" / "exports"
TAKEOUT = DATA / "gemini_takeout"
ACTIVITY = TAKEOUT / "Takeout" / "Meine Aktivitäten" / "Gemini-Apps" / "MeineAktivitäten.json"
PROMPTS = ("Prompted ", "Asked ", "Eingegebener Prompt: ", "送信したメッセージ: ")
LINK = re.compile(r"https://(?:gemini\.google\.com/app(?:/c)?|bard\.google\.com/chat)/([\w-]+)")




def link_of(row: dict) -> str | None:
    urls = [row.get("titleUrl")] + [d.get("url") for d in row.get("details", [])]
    for url in urls:
        m = LINK.match(url or "")
        if m:
            return m.group(1)
    return None


def expected(rows: list[dict]) -> dict[str, tuple[datetime, datetime, int]]:
    out: dict[str, tuple[datetime, datetime, int]] = {}
    for row in rows:
        gemini = any(w in json.dumps([row.get("header"), row.get("products")]).lower()
                     for w in ("gemini", "bard"))
        if not gemini or not row["title"].startswith(PROMPTS):
            continue
        try:
            t = parse_rfc3339(row["time"])
        except ValueError:
            continue
        chat = link_of(row) or "row-" + hashlib.sha256(
            (row["time"] + row["title"]).encode()).hexdigest()[:16]
        first, last, n = out.get(chat, (t, t, 0))
        out[chat] = (min(first, t), max(last, t), n + 1)
    return out



def prompt_texts(rows: list[dict]) -> set[str]:
    out = set()
    for row in rows:
        title = row.get("title", "")
        for p in (*PROMPTS, "Gave feedback: ", "Created ", "Searched for "):
            if title.startswith(p) and len(title) - len(p) >= 6:
                out.add(title[len(p):])
        for item in row.get("safeHtmlItem", []):
            out.add(item["html"])
    return out


@pytest.mark.parametrize("name", [
    "modelcaddy__panchat__gemini_myactivity.json",
    "cl0ver012__chatlore__gemini__MyActivity.json",
])
def test_real_my_activity(name: str) -> None:
    path = need_real(name)
    rows = json.loads(path.read_text(encoding="utf-8"))
    events, summary = read(path)
    assert spans(events) == expected(rows)
    assert summary.chats == len(expected(rows))
    dumped = json.dumps(events, ensure_ascii=False)
    for text in prompt_texts(rows):
        assert text not in dumped
    assert all("title" not in e for e in events)
    again, _ = read(path)
    assert again == events


def test_real_panchat_link_forms_give_one_chat() -> None:
    path = need_real("modelcaddy__panchat__gemini_myactivity.json")
    events, _ = read(path)
    thread = [e for e in events if e["chat_id"] == "invented-thread-1"]
    assert len(thread) == 2  # `/app/c/<id>?hl=en` and `/app/c/<id>`: the same chat


def test_real_chatlore_rows_are_not_grouped_and_broken_rows_named() -> None:
    path = need_real("cl0ver012__chatlore__gemini__MyActivity.json")
    events, summary = read(path)
    # no links: every prompt is its own chat, never grouped by time
    assert len({e["chat_id"] for e in events}) == len(events) == 5
    assert all(e["chat_id"].startswith("row-") for e in events)
    reasons = " | ".join(str(s) for s in summary.skipped)
    assert "not a time" in reasons
    assert "links no conversation" in reasons  # the feedback row: its chat is unknown
    assert summary.ignored == {"rows of other Google products": 1}


def test_localised_takeout_folder() -> None:
    rows = json.loads(ACTIVITY.read_text(encoding="utf-8"))
    events, summary = read(TAKEOUT)
    assert spans(events) == expected(rows)
    assert "SECRET" not in json.dumps(events, ensure_ascii=False)
    assert set(spans(events)) == {"7f3a9c0e1b2d4f60", "aa11bb22cc33dd44", "0123456789abcdef",
                                  *(c for c in spans(events) if c.startswith("row-"))}
    assert sum(c.startswith("row-") for c in spans(events)) == 2
    feedback = sorted((e["chat_id"], e["rating"]) for e in events if e["type"] == "chat.feedback")
    assert feedback == [("7f3a9c0e1b2d4f60", "up"), ("aa11bb22cc33dd44", "down")]
    assert summary.feedback == 2
    assert {e["account"] for e in events} == {"default"}
    assert summary.ignored["My Activity files of other Google products"] == 1
    assert any("31/08/2026" in s.reason for s in summary.skipped)


def test_takeout_zip_with_localised_names(tmp_path: Path) -> None:
    archive = tmp_path / "takeout-20260910T000000Z-001.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(TAKEOUT.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(TAKEOUT).as_posix())
    folder_events, _ = read(TAKEOUT)
    zip_events, _ = read(archive)
    assert zip_events == folder_events


def test_any_file_name_is_fine(tmp_path: Path) -> None:
    renamed = tmp_path / "Η δραστηριότητά μου.json"
    renamed.write_bytes(ACTIVITY.read_bytes())
    events, _ = read(renamed)
    assert spans(events) == expected(json.loads(ACTIVITY.read_text(encoding="utf-8")))


def test_html_takeout_asks_for_json(tmp_path: Path) -> None:
    html = tmp_path / "MyActivity.html"
    html.write_text('<html><body><div class="outer-cell mdl-cell">Gemini Apps<br>Prompted x'
                    '</div></body></html>', encoding="utf-8")
    with pytest.raises(ImportFormatError, match="JSON"):
        read_export(html, salt=SALT)


def test_other_products_only(tmp_path: Path) -> None:
    other = tmp_path / "MyActivity.json"
    other.write_text(json.dumps([{"header": "YouTube", "title": "Watched x",
                                  "time": "2026-01-01T00:00:00Z", "products": ["YouTube"]}]))
    with pytest.raises(ImportFormatError, match="not of Gemini"):
        read_export(other, salt=SALT)


def test_plan_and_account_for_gemini() -> None:
    events, _ = read(TAKEOUT, plan="pro", account="someone@example.invalid")
    activity = [e for e in events if e["type"] == "chat.activity"]
    assert {e["plan"] for e in activity} == {"pro"}
    assert {e["account"] for e in events} == {"default"}  # gemini is always "default"
