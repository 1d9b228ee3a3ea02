"""Small builders for engine tests: `ev("chat.activity", "2025-10-02", chat="c1")`."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from auditor.engine import Engine
from auditor.events import validate_event
from auditor.times import parse_user_time

_ids = itertools.count(1)
DEFAULTS: dict[str, dict[str, Any]] = {
    "chat.activity": {"kind": "chat", "incognito": False},
    "consent.set": {"setting": "model_training", "source": "settings_page"},
    "chat.feedback": {"rating": "up"},
}


def t(text: str) -> datetime:
    """A plain date (00:00Z) or an RFC 3339 time."""
    return parse_user_time(text)


def ev(type_: str, at: str, *, chat: str | None = "c1", provider: str = "claude",
       account: str = "default", id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A validated event; `at` may be a plain date, meaning 00:00Z (R1)."""
    if len(at) == 10:
        at += "T00:00:00Z"
    body: dict[str, Any] = {"v": 1, "id": id or f"ev-{next(_ids):06d}", "type": type_,
                            "at": at, "provider": provider, "account": account}
    if type_.startswith("chat."):
        body["chat_id"] = chat
    body.update(DEFAULTS.get(type_, {}))
    body.update(fields)
    return validate_event(body)


def act(at: str, **kw: Any) -> dict[str, Any]:
    return ev("chat.activity", at, **kw)


def on(at: str, **kw: Any) -> dict[str, Any]:
    return ev("consent.set", at, value=True, **kw)


def off(at: str, **kw: Any) -> dict[str, Any]:
    return ev("consent.set", at, value=False, **kw)


def plan(at: str, name: str, **kw: Any) -> dict[str, Any]:
    return ev("plan.set", at, plan=name, **kw)


def delete(at: str, **kw: Any) -> dict[str, Any]:
    return ev("chat.deleted", at, **kw)


def feedback(at: str, **kw: Any) -> dict[str, Any]:
    return ev("chat.feedback", at, **kw)


def seen(at: str, **kw: Any) -> dict[str, Any]:
    return ev("chat.seen", at, **kw)


def audit(events: list[dict[str, Any]], as_of: str = "2026-11-28", *, chat: str = "c1",
          provider: str | None = None, account: str = "default") -> dict[str, Any] | None:
    """The row of one chat after feeding `events` to a fresh engine."""
    engine = Engine()
    engine.apply_many(events)
    if provider is None:
        provider = next((e["provider"] for e in events if e.get("chat_id") == chat), "claude")
    return engine.chat_row((provider, account, chat), t(as_of))


def check(row: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    """Compare the fields given; `windows` as [(from, until)], `says` as substrings."""
    assert row is not None
    for name, want in expected.items():
        if name == "windows":
            got = [(w["from"], w["until"]) for w in row["training_windows"]]
            assert got == want, (got, row["reasons"])
        elif name == "says":
            for text in [want] if isinstance(want, str) else want:
                assert any(text in r for r in row["reasons"]), (text, row["reasons"])
        elif name == "rules":
            assert set(want) <= set(row["policies"]), (want, row["policies"])
        else:
            assert row[name] == want, (name, row[name], want, row["reasons"])
