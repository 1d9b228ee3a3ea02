"""Google Takeout's My Activity for Gemini Apps (EXPORTS.md section 3).

The file is found by its rows (header/products naming Gemini or Bard, or a gemini.google.com
link), so localised folder and file names do not matter. One row is one prompt and answer;
the row's title starts with a localised verb ("Prompted ", "Eingegebener Prompt: ",
"送信したメッセージ: " ...) followed by the prompt itself, which never reaches an event.

A row linking a conversation (`/app/<id>` or `/app/c/<id>` in `titleUrl` or `details[].url`)
belongs to that chat. A prompt row with no link is a chat of its own, `row-` + 16 hex of
SHA-256 over its time and title: rows are never grouped by time gaps or other guesswork.
Feedback rows ("Gave feedback: Good response") become `chat.feedback` when they link a
conversation; one that does not is skipped and named, since which chat it rated is unknown.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

from auditor.events import Event, account_label
from auditor.importers.common import (
    CHAT_ID_MAX,
    Emitter,
    ImportSummary,
    RecordError,
    iso_at,
)
from auditor.importers.detect import is_gemini_row, urls_of
from auditor.importers.source import Entry, Tree, safe_records

# The verbs Takeout puts before a prompt, per language (EXPORTS.md 3.3). Case-sensitive
# prefixes, longest first so "Submitted query " wins over shorter ones.
PROMPT_PREFIXES = (
    "Prompted ", "Asked ", "Said ", "Submitted query ",
    "Eingegebener Prompt: ", "送信したメッセージ: ", "Υποβλήθηκε το ερώτημα ", "Has dicho: ",
)
FEEDBACK_PREFIXES = ("Gave feedback: ",)
FEEDBACK_RATINGS = {"good response": "up", "bad response": "down"}
# Rows that record something else done in Gemini (not a message sent).
OTHER_PREFIXES = (
    "Created ", "Used ", "Selected ", "Branched ", "Answered ", "Cleared ", "Added ",
    "Deleted ", "Shared ", "Renamed ", "Pinned ", "Edited ", "Viewed ",
)
_LINK = re.compile(
    r"^https?://(?:gemini\.google\.com(?:/u/\d+)?/(?:app(?:/c)?|gem/[^/?#]+)"
    r"|bard\.google\.com(?:/u/\d+)?/(?:chat|c))/([A-Za-z0-9_-]+)")


def conversation_id(row: dict[str, Any]) -> str | None:
    """The conversation a row links to (`/app/<id>` and `/app/c/<id>` both give `<id>`)."""
    for url in urls_of(row):
        m = _LINK.match(url.strip())
        if m and m.group(1) not in ("app", "c"):
            return m.group(1)[:CHAT_ID_MAX]
    return None


def row_chat_id(time: str, title: str) -> str:
    """A prompt row without a link is its own chat: `row-` + 16 hex of SHA-256(time + title)."""
    return "row-" + hashlib.sha256((time + title).encode("utf-8")).hexdigest()[:16]


def kind_of(title: str, row: dict[str, Any]) -> str:
    if title.startswith(PROMPT_PREFIXES):
        return "prompt"
    if title.startswith(FEEDBACK_PREFIXES):
        return "feedback"
    if title.startswith(OTHER_PREFIXES):
        return "other"
    # A verb in a language not listed above: a row with a stored answer was a prompt.
    if row.get("safeHtmlItem"):
        return "prompt?"
    return "unknown"


def describe(roles: dict[str, list[Entry]]) -> str:
    files = roles.get("gemini.activity", [])
    return f"Google Takeout My Activity, Gemini Apps (JSON, {len(files)} file(s))"


def read(tree: Tree, roles: dict[str, list[Entry]], summary: ImportSummary, *, salt: bytes,
         account: str | None, plan: str | None) -> Iterator[Event]:
    emit = Emitter("gemini", summary, plan)
    label = account_label(salt, "gemini", account)
    chats: set[str] = set()
    seen_keys: dict[str, int] = {}
    if roles.get("activity.other"):
        summary.ignore("My Activity files of other Google products", len(roles["activity.other"]))
    for entry in roles.get("gemini.activity", []):
        summary.files.append(entry.path)
        for index, row in safe_records(tree, entry, summary):
            where = f"{entry.path} row {index}"
            if not isinstance(row, dict) or not is_gemini_row(row):
                summary.ignore("rows of other Google products")
                continue
            try:
                event = _row(row, emit, label, summary, where, seen_keys)
            except RecordError as exc:
                summary.skip(where, str(exc))
                continue
            if event is None:
                continue
            for valid in emit.validated(where, [event]):
                if valid["type"] == "chat.feedback":
                    summary.feedback += 1
                else:
                    summary.messages += 1
                    if valid["chat_id"] not in chats:
                        chats.add(valid["chat_id"])
                        summary.chats += 1
                        summary.account(label)
                yield valid


def _row(row: dict[str, Any], emit: Emitter, label: str, summary: ImportSummary, where: str,
         seen_keys: dict[str, int]) -> Event | None:
    title = row.get("title")
    if not isinstance(title, str):
        raise RecordError("has no title, so what it records is unknown")
    raw_time = row.get("time")
    at = iso_at(raw_time)
    where = f"{where} at {raw_time}"
    kind = kind_of(title, row)
    link = conversation_id(row)
    # The id key: time and a digest of the title (never the text), counted for exact repeats.
    digest = hashlib.sha256(title.encode("utf-8")).hexdigest()[:16]
    base = f"{raw_time}|{digest}"
    n = seen_keys.get(base, 0)
    seen_keys[base] = n + 1
    key = f"{base}|{n}"
    if kind == "feedback":
        verdict = title[len(FEEDBACK_PREFIXES[0]):].strip().lower()
        rating = FEEDBACK_RATINGS.get(verdict)
        if rating is None:
            raise RecordError("a feedback row whose rating is not recognised")
        if link is None:
            raise RecordError("a feedback row that links no conversation; which chat it rated "
                              "is unknown, so it is not guessed")
        return emit.feedback(account=label, chat_id=link, at=at, key=key, rating=rating)
    if kind in ("other", "unknown"):
        summary.ignore("Gemini rows that are neither prompts nor feedback")
        return None
    if kind == "prompt?":
        summary.note("some rows start with a verb not known to be a prompt; rows with a stored "
                     "answer were taken as prompts")
    if link is not None:
        summary.feature("conversation links")
    chat_id = link if link is not None else row_chat_id(raw_time, title)  # type: ignore[operator]
    return emit.activity(account=label, chat_id=chat_id, at=at, key=key)
