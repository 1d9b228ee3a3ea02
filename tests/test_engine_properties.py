"""Properties of the engine over generated ledgers (hypothesis).

- Arrival order never matters (R2): any permutation gives identical rows and accounts.
- Incremental equals fresh: applying events one at a time, querying in between (which fills
  the per-chat cache), ends in the same rows as a fresh engine fed everything.
- Every row validates against the report schema's chat item; a duplicate event changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.badge import badge
from auditor.engine import Engine
from auditor.events import PLANS, validate_event
from auditor.times import format_time, parse_user_time
from auditor.verdict import fmt

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "auditor" / "schemas"
                     / "report.schema.json").read_text())
CHAT_SCHEMA = jsonschema.Draft202012Validator(SCHEMA["properties"]["chats"]["items"])
ACCOUNT_SCHEMA = jsonschema.Draft202012Validator(SCHEMA["properties"]["accounts"]["items"])

# Few instants, so ties are common; the rule book's edges among them.
INSTANTS = [
    "2024-02-29T10:00:00Z", "2025-04-13T00:00:00Z", "2025-05-13T00:00:00Z",
    "2025-06-01T12:00:00.5Z", "2025-08-27T23:59:59Z", "2025-08-28T00:00:00Z",
    "2025-09-26T23:59:59Z", "2025-09-27T00:00:00Z", "2025-10-02T09:30:00Z",
    "2025-10-02T11:30:00+02:00", "2025-11-01T00:00:00Z", "2026-03-01T00:00:00Z",
    "2030-10-02T09:30:00Z",
]
AS_OFS = [parse_user_time(s) for s in ("2025-05-01", "2025-09-01", "2025-10-02T09:30:00Z",
                                       "2025-12-01", "2026-11-28", "2031-01-01", "2040-01-01")]
CHATS = ["c1", "c2", "c3"]


@st.composite
def event_bodies(draw):
    provider = draw(st.sampled_from(sorted(PLANS)))
    body = {"v": 1, "type": draw(st.sampled_from([
        "chat.activity", "chat.activity", "chat.activity", "consent.set", "plan.set",
        "chat.deleted", "chat.feedback", "chat.seen"])),
        "at": draw(st.sampled_from(INSTANTS)), "provider": provider,
        "account": draw(st.sampled_from(["default", "work"]))}
    kind = body["type"]
    if kind.startswith("chat."):
        body["chat_id"] = draw(st.sampled_from(CHATS))
    if kind == "chat.activity":
        body["kind"] = draw(st.sampled_from(["chat", "code"]))
        body["incognito"] = draw(st.booleans())
        if draw(st.booleans()):
            body["title"] = draw(st.sampled_from(["a", "b", "Ünïcode"]))
        if draw(st.integers(0, 4)) == 0:
            body["plan"] = draw(st.sampled_from(PLANS[provider]))
    elif kind == "consent.set":
        body.update(setting="model_training", value=draw(st.booleans()),
                    source=draw(st.sampled_from(["settings_page", "import"])))
    elif kind == "plan.set":
        body["plan"] = draw(st.sampled_from(PLANS[provider]))
    elif kind == "chat.feedback":
        body["rating"] = draw(st.sampled_from(["up", "down"]))
    elif kind == "chat.seen" and draw(st.booleans()):
        body["title"] = draw(st.sampled_from(["a", "seen"]))
        body["incognito"] = draw(st.booleans())
    return body


@st.composite
def ledgers(draw, max_size=25):
    bodies = draw(st.lists(event_bodies(), min_size=1, max_size=max_size))
    # Ids unique, but not in time order, so ties are broken by something other than arrival.
    salts = draw(st.permutations(range(len(bodies))))
    return [validate_event({**b, "id": f"ev-{salts[i]:06d}"}) for i, b in enumerate(bodies)]


def snapshot(engine: Engine) -> list:
    return [(engine.rows(as_of), engine.accounts(as_of)) for as_of in AS_OFS]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_permutation_gives_identical_rows(data):
    events = data.draw(ledgers())
    shuffled = data.draw(st.permutations(events))
    a, b = Engine(), Engine()
    a.apply_many(events)
    b.apply_many(shuffled)
    assert snapshot(a) == snapshot(b)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_incremental_state_equals_a_fresh_engine(data):
    events = data.draw(ledgers())
    live = Engine()
    keys = set()
    for event in events:
        touched = live.apply(event)
        if "chat_id" in event:
            key = (event["provider"], event["account"], event["chat_id"])
            assert key in touched
            keys.add(key)
        else:
            assert {k for k in keys if k[:2] == (event["provider"], event["account"])} <= touched
        # Query in between, so the cache is filled at various as_of values.
        for as_of in data.draw(st.lists(st.sampled_from(AS_OFS), max_size=3)):
            for key in keys:
                live.chat_row(key, as_of)
    fresh = Engine()
    fresh.apply_many(events)
    assert snapshot(live) == snapshot(fresh)
    for key in keys:
        for as_of in AS_OFS:
            assert live.chat_row(key, as_of) == fresh.chat_row(key, as_of)
            assert live.chat_row(key, as_of) == fresh.chat_row(key, as_of)  # from the cache


@settings(max_examples=150, deadline=None)
@given(events=ledgers())
def test_rows_follow_the_report_schema_and_duplicates_change_nothing(events):
    engine = Engine()
    engine.apply_many(events)
    before = snapshot(engine)
    engine.apply_many(events)  # the same ids again: stored once
    assert snapshot(engine) == before
    for as_of in AS_OFS:
        rows = engine.rows(as_of)
        for row in rows:
            CHAT_SCHEMA.validate(row)
            assert row["reasons"] and all(r[:1].isupper() for r in row["reasons"])
            assert row["expiry_basis"] is None or row["expiry_basis"].split(":")[0] in (
                row["policies"])
            assert row["policies"] == sorted(set(row["policies"]))
            assert set(badge(row)) == {"text", "color", "title"}
            if row["expires_at"] is not None:
                assert row["expired"] == (parse_user_time(row["expires_at"]) <= as_of)
            assert (row["training"] == "yes") == any(
                w["until"] is None for w in row["training_windows"])
        for account in engine.accounts(as_of):
            ACCOUNT_SCHEMA.validate(account)
        summary = engine.summary(rows)
        assert summary["chats"] == len(rows) == sum(
            summary[f"training_{k}"] for k in ("yes", "was", "no", "unknown"))
        order = [(r["provider"], r["account"], r["first_activity"] is None,
                  r["first_activity"] and parse_user_time(r["first_activity"]), r["chat_id"])
                 for r in rows]
        assert order == sorted(order, key=lambda o: (o[0], o[1], o[2], o[3] or as_of, o[4]))


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                           timezones=st.just(UTC)))
def test_fast_time_format_matches_format_time(moment):
    assert fmt(moment) == format_time(moment)
