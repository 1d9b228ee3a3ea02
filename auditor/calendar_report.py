"""The audit report as an iCalendar file (CONTRACT.md section 4, `--format ics`).

One event per chat that has an `expires_at`, past dates included, at the exact instant the
provider's copies must be gone (a timed UTC event with no duration, RFC 5545 section 3.6.1,
so every reader shows it at the right local time; `all_day=True` gives date events instead).
UIDs are derived from (provider, account, chat_id) alone, so importing a newer report updates
the events instead of adding copies; DTSTAMP is the report's `generated_at` (RFC 5545 asks for
the time the object was made), so the same report always gives the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import icalendar

from auditor import __version__
from auditor.html_report import PROVIDER_NAMES, VERDICTS
from auditor.times import parse_rfc3339

PRODID = f"-//Consent Ledger//consent-ledger {__version__}//EN"
UID_DOMAIN = "consent-ledger.local"
TITLE_LIMIT = 80


def event_uid(provider: str, account: str, chat_id: str) -> str:
    """Stable across reports: a chat's key (CONTRACT section 1), hashed, at our own domain."""
    key = "\x1f".join((provider, account, chat_id)).encode("utf-8", "surrogatepass")
    return f"{hashlib.sha256(key).hexdigest()}@{UID_DOMAIN}"


def event_summary(chat: Mapping[str, Any]) -> str:
    """`Claude chat 'Title': the provider's copies must be gone`, on one line."""
    provider = PROVIDER_NAMES.get(chat["provider"], chat["provider"])
    what = f"{provider} code session" if chat.get("kind") == "code" else f"{provider} chat"
    title = " ".join(str(chat.get("title") or "").split())
    if len(title) > TITLE_LIMIT:
        title = title[: TITLE_LIMIT - 1].rstrip() + "…"
    name = f"'{title}'" if title else f"(untitled, id {str(chat.get('chat_id', ''))[:12]})"
    return f"{what} {name}: the provider's copies must be gone"


def _when(text: str) -> str:
    return f"{parse_rfc3339(text):%Y-%m-%d %H:%M} UTC"


def event_description(chat: Mapping[str, Any], as_of: str) -> str:
    """Verdict, expiry basis and reasons, one per line, for a person reading the event."""
    verdict = VERDICTS.get(chat.get("training", ""), VERDICTS["unknown"])
    title = " ".join(str(chat.get("title") or "").split())
    lines = [
        f"Chat: {title}" if title else "Chat: untitled",
        f"Training: {verdict.label} ({verdict.text})",
        f"Copies must be gone by: {_when(chat['expires_at'])}"
        + (f" (already past on {as_of[:10]})" if chat.get("expired") else ""),
    ]
    if chat.get("expiry_basis"):
        lines.append(f"Rule: {chat['expiry_basis']}")
    for w in chat.get("training_windows") or ():
        until = _when(w["until"]) if w["until"] else "now"
        lines.append(f"Usable for training: {_when(w['from'])} to {until}")
    if chat.get("deleted_at"):
        lines.append(f"You deleted it: {_when(chat['deleted_at'])}")
    reasons = chat.get("reasons") or ()
    if reasons:
        lines.append("Why:")
        lines += [f"- {r}" for r in reasons]
    lines.append(f"Account: {chat['account']}; chat id: {chat['chat_id']}")
    lines.append("The chat stays in your own history until you delete it.")
    return "\n".join(lines)


def render_ics(report: Mapping[str, Any], *, all_day: bool = False) -> bytes:
    """The report's expiry dates as an iCalendar (RFC 5545) file, UTF-8 bytes."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", "Consent Ledger: when chat copies must be gone")
    stamp = parse_rfc3339(report["generated_at"])
    for chat in report.get("chats", ()):
        if not chat.get("expires_at"):
            continue
        expires = parse_rfc3339(chat["expires_at"])
        event = icalendar.Event()
        event.add("uid", event_uid(chat["provider"], chat["account"], chat["chat_id"]))
        event.add("dtstamp", stamp)
        if all_day:
            event.add("dtstart", expires.date())
            event.add("dtend", expires.date() + timedelta(days=1))
        else:
            event.add("dtstart", expires)
        event.add("summary", event_summary(chat))
        event.add("description", event_description(chat, report["as_of"]))
        event.add("categories", ["Consent Ledger", PROVIDER_NAMES.get(chat["provider"],
                                                                      chat["provider"])])
        event.add("transp", "TRANSPARENT")
        event.add("status", "CONFIRMED")
        cal.add_component(event)
    return cal.to_ical()
