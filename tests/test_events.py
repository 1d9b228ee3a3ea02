"""The event schema (CONTRACT.md section 1): every field checked, unknown fields refused,
real dates only, and the hand-written checks agree with schemas/event.schema.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.events import EventError, account_label, validate_batch, validate_event
from tests.conftest import make_event

SCHEMA = json.loads((Path(__file__).parents[1] / "auditor/schemas/event.schema.json")
                    .read_text())
SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _with(type_: str = "chat.activity", drop: str | None = None, **fields: Any
          ) -> dict[str, Any]:
    ev = make_event(type_, **fields)
    if drop:
        del ev[drop]
    return ev


BAD = [
    # label, event, the field the error must name, a phrase in the message
    ("v missing", _with(drop="v"), "v", "missing"),
    ("v is 2", _with(v=2), "v", "must be 1"),
    ("v is true", _with(v=True), "v", "must be 1"),
    ("id too short", _with(id="abc"), "id", "8-64"),
    ("id with a space", _with(id="abc defgh"), "id", "8-64"),
    ("id too long", _with(id="a" * 65), "id", "8-64"),
    ("unknown type", _with(type="chat.renamed"), "type", "one of"),
    ("at missing", _with(drop="at"), "at", "missing"),
    ("at without zone", _with(at="2025-10-02T09:30:00"), "at", "zone"),
    ("at 30 February", _with(at="2025-02-30T09:30:00Z"), "at", "real date"),
    ("at hour 25", _with(at="2025-10-02T25:00:00Z"), "at", "real date"),
    ("at leap second", _with(at="2025-12-31T23:59:60Z"), "at", "real date"),
    ("at a number", _with(at=1759397400), "at", "string"),
    ("at pushed past 9999 by its offset", _with(at="9999-12-31T23:59:59-01:00"), "at",
     "out of range"),
    ("at before 1970", _with(at="1969-12-31T23:59:59Z"), "at", "out of range"),
    ("at in year 9000", _with(at="9000-01-01T00:00:00Z"), "at", "out of range"),
    ("at with full-width digits", _with(at="２０２５-10-02T09:30:00Z"), "at", "RFC 3339"),
    ("unknown provider", _with(provider="copilot"), "provider", "one of"),
    ("empty account", _with(account=""), "account", "1 to 128"),
    ("huge account", _with(account="x" * 129), "account", "1 to 128"),
    ("message text smuggled", _with(text="my secret prompt"), "text", "unknown fields"),
    ("chat_id missing", _with(drop="chat_id"), "chat_id", "missing"),
    ("chat_id empty", _with(chat_id=""), "chat_id", "1 to 200"),
    ("chat_id huge", _with(chat_id="c" * 201), "chat_id", "1 to 200"),
    ("kind wrong", _with(kind="voice"), "kind", "one of"),
    ("incognito a string", _with(incognito="false"), "incognito", "true or false"),
    ("incognito missing", _with(drop="incognito"), "incognito", "missing"),
    ("title huge", _with(title="t" * 1001), "title", "0 to 1000"),
    ("url huge", _with(url="u" * 2001), "url", "0 to 2000"),
    ("messages zero", _with(messages=0), "messages", "at least 1"),
    ("messages a float", _with(messages=1.5), "messages", "whole number"),
    ("messages a bool", _with(messages=True), "messages", "whole number"),
    ("plan of another provider", _with(plan="plus"), "plan", "not a claude plan"),
    ("digest not hex", _with(message_digest="zz"), "message_digest", "hex"),
    ("setting other", _with("consent.set", setting="memory"), "setting", "model_training"),
    ("value a string", _with("consent.set", value="true"), "value", "true or false"),
    ("source unknown", _with("consent.set", source="guess"), "source", "one of"),
    ("plan.set without plan", _with("plan.set", drop="plan"), "plan", "missing"),
    ("gemini plan invalid", _with("plan.set", provider="gemini", plan="max"), "plan",
     "not a gemini plan"),
    ("rating sideways", _with("chat.feedback", rating="meh"), "rating", "one of"),
    ("deleted with title", _with("chat.deleted", title="x"), "title", "unknown fields"),
    ("seen with kind", _with("chat.seen", kind="chat"), "kind", "unknown fields"),
]


@pytest.mark.parametrize(("label", "ev", "field", "phrase"), BAD, ids=[b[0] for b in BAD])
def test_bad_events_name_the_field(label: str, ev: dict[str, Any], field: str,
                                   phrase: str) -> None:
    with pytest.raises(EventError, match=phrase) as info:
        validate_event(ev, index=4)
    assert info.value.field == field
    assert info.value.index == 4
    assert info.value.to_json()["field"] == field


REAL_DATE_ONLY = {"at 30 February", "at hour 25", "at leap second",
                  "at pushed past 9999 by its offset", "at before 1970", "at in year 9000",
                  "at with full-width digits"}


@pytest.mark.parametrize(("label", "ev", "field", "phrase"),
                         [b for b in BAD if b[0] not in
                          REAL_DATE_ONLY],
                         ids=[b[0] for b in BAD if b[0] not in REAL_DATE_ONLY])
def test_the_published_schema_refuses_the_same(label: str, ev: dict[str, Any], field: str,
                                               phrase: str) -> None:
    # Real-date checks are beyond JSON Schema's pattern; everything else must agree.
    assert not SCHEMA_VALIDATOR.is_valid(ev)


GOOD = [
    make_event("chat.activity", title="Trip", url="https://claude.ai/chat/x", messages=3,
               plan="api", account="acc", message_digest="a" * 64),
    make_event("chat.activity", kind="code", incognito=True),
    make_event("chat.deleted"),
    make_event("chat.feedback", rating="down"),
    make_event("chat.seen", title="", url="https://chatgpt.com/c/1", incognito=True,
               provider="chatgpt"),
    make_event("consent.set", value=False, source="user_declared", provider="gemini"),
    make_event("plan.set", provider="chatgpt", plan="business"),
    make_event("chat.activity", at="2025-10-02t09:30:00.123456789+02:00"),
]


@pytest.mark.parametrize("ev", GOOD, ids=[g["type"] for g in GOOD])
def test_good_events_pass_both(ev: dict[str, Any]) -> None:
    assert validate_event(ev)["account"] == ev.get("account", "default")
    assert SCHEMA_VALIDATOR.is_valid(ev)


def test_not_an_object() -> None:
    with pytest.raises(EventError, match="JSON object") as info:
        validate_event(["v", 1], index=0, line=7)
    assert info.value.line == 7
    assert info.value.to_json() == {"error": str(info.value), "field": None, "index": 0,
                                    "line": 7}


def test_a_batch_names_the_index_of_the_first_bad_event() -> None:
    batch = [make_event(), make_event(), make_event(kind="nope")]
    with pytest.raises(EventError) as info:
        validate_batch(batch)
    assert (info.value.index, info.value.field) == (2, "kind")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(GOOD), key=st.sampled_from(
    ["v", "id", "type", "at", "provider", "account", "chat_id", "kind", "incognito",
     "title", "value", "plan", "rating", "extra"]), value=_json)
def test_validator_never_accepts_what_the_schema_refuses(base: dict[str, Any], key: str,
                                                         value: Any) -> None:
    ev = {**base, key: value}
    try:
        validate_event(ev)
    except EventError:
        return
    assert SCHEMA_VALIDATOR.is_valid(ev), ev


def test_account_label_is_the_contract_hmac() -> None:
    import hashlib
    import hmac
    salt = bytes(range(32))
    expected = hmac.new(salt, b"claude:1b2c-uuid", hashlib.sha256).hexdigest()[:32]
    assert account_label(salt, "claude", "1b2c-uuid") == expected
    assert account_label(salt, "gemini", "someone") == "default"
    assert account_label(salt, "chatgpt", None) == "default"
    assert account_label(salt, "chatgpt", "label:" + "ab" * 16) == "ab" * 16
    with pytest.raises(ValueError, match="32 lowercase hex"):
        account_label(salt, "chatgpt", "label:xyz")
