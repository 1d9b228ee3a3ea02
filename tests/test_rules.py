"""One table per rule of POLICIES.md part 1, named after the rule, with the rule book's dates.

Each case: the events (built with tests/engine_helpers.py), the `as_of`, and the fields of the
chat's row that the rule decides (`windows` as (from, until) pairs, `says`: reason texts).
"""

from __future__ import annotations

import pytest

from auditor.engine import Engine
from auditor.events import EventError
from auditor.policy import PolicyError
from tests.engine_helpers import (
    act,
    audit,
    check,
    delete,
    ev,
    feedback,
    off,
    on,
    plan,
    seen,
    t,
)

T = "2025-10-02T09:30:00Z"  # the rule book's example activity


def gpt(fn, *args, **kw):
    return fn(*args, provider="chatgpt", **kw)


def gem(fn, *args, **kw):
    return fn(*args, provider="gemini", **kw)


def run(events, as_of, expected):
    check(audit(events, as_of), expected)


# --- general ----------------------------------------------------------------------------------

@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2028-01-01"), act("2028-02-29T10:00:00Z")], "2029-01-01",
                 {"expires_at": "2033-02-28T10:00:00Z"}, id="5y-from-29-feb-clamps"),
    pytest.param([feedback("2024-02-29T10:00:00Z")], "2025-01-01",
                 {"expires_at": "2034-02-28T10:00:00Z"}, id="10y-from-29-feb-clamps"),
    pytest.param([gem(act, "2025-12-30T12:00:00Z", incognito=True)], "2025-12-31",
                 {"expires_at": "2026-01-02T12:00:00Z"}, id="72-hours-exact"),
    pytest.param([gpt(act, "2025-01-31T10:00:00Z", incognito=True)], "2025-02-01",
                 {"expires_at": "2025-03-02T10:00:00Z"}, id="30-days-exact"),
    pytest.param([gem(act, "2025-08-31T08:00:00Z")], "2025-09-01",
                 {"says": "18 months after 2025-08-31T08:00:00Z = 2027-02-28T08:00:00Z"},
                 id="18-months-clamps"),
    pytest.param([act("2025-10-02T11:30:00+02:00")], "2025-11-01",
                 {"first_activity": T}, id="zones-become-utc"),
    pytest.param([act("2025-10-02T09:30:00.250Z")], "2025-11-01",
                 {"first_activity": "2025-10-02T09:30:00.25Z"}, id="sub-second-kept"),
])
def test_R1_utc_and_calendar_arithmetic(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), act(T), delete("2025-12-01")], "2025-11-01",
                 {"deleted_at": None, "training": "yes"}, id="later-events-ignored"),
    pytest.param([on(T), act(T)], "2025-11-01",
                 {"training": "yes", "windows": [(T, None)]}, id="setting-at-same-instant"),
    pytest.param([off(T), on(T), act(T)], "2025-11-01",
                 {"training": "yes"}, id="tied-true-wins"),
    pytest.param([on("2025-09-01"), act(T), off("2025-11-01"), on("2025-11-01")], "2025-12-01",
                 {"training": "yes", "windows": [(T, None)]}, id="tied-false-is-no-switch-off"),
    pytest.param([on("2025-09-01"), plan("2025-09-01", "team"), plan("2025-09-01", "pro"),
                  act(T)], "2025-11-01", {"training": "yes"}, id="tied-plans-consumer-wins"),
    pytest.param([act(T, title="second", id="tie-b-0000"),
                  act(T, title="first", id="tie-a-0000")], "2025-11-01",
                 {"title": "first"}, id="other-ties-smaller-id"),
    pytest.param([act(T), on("2025-10-05")], "2025-10-04", {"training": "unknown"},
                 id="as-of-before-the-setting"),
])
def test_R2_as_of_and_ties(events, as_of, expected):
    run(events, as_of, expected)


def test_R2_arrival_order_never_matters():
    events = [on("2025-09-01"), act(T), off("2025-11-01"), on("2025-11-01"), act("2025-11-02"),
              feedback("2025-11-03"), delete("2025-12-01"), act("2025-12-02"), plan(T, "max")]
    assert audit(events, "2026-01-01") == audit(events[::-1], "2026-01-01")


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([plan("2025-09-01", "team"), act(T, incognito=True), feedback("2025-10-03")],
                 "2025-11-01", {"training": "yes", "windows": [("2025-10-03T00:00:00Z", None)]},
                 id="feedback-first-whatever-plan-or-flag"),
    pytest.param([plan("2025-09-01", "team"), on("2025-09-01"), act(T, incognito=True)],
                 "2025-11-01", {"training": "no", "rules": ["A11"], "says": "A11: 1 activity"},
                 id="plan-gate-before-incognito"),
    pytest.param([act(T)], "2025-11-01", {"training": "unknown"}, id="undecided-is-unknown"),
    pytest.param([act(T), feedback("2025-10-03")], "2025-11-01", {"training": "yes"},
                 id="unknown-only-without-a-window"),
])
def test_R3_order_of_judgement(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), act(T), delete("2025-11-01"), act("2025-11-05")],
                 "2025-11-10",
                 {"deleted_at": "2025-11-01T00:00:00Z", "last_activity": T, "training": "was",
                  "windows": [(T, "2025-11-01T00:00:00Z")], "says": "after the deletion ignored"},
                 id="closes-and-ignores-later-activity"),
    pytest.param([act(T), delete("2025-11-10"), delete("2025-11-01")], "2025-12-01",
                 {"deleted_at": "2025-11-01T00:00:00Z"}, id="first-deletion-counts"),
    pytest.param([off("2025-09-01"), act(T), delete("2025-11-01")], "2025-11-10",
                 {"training": "no", "windows": []}, id="no-window-stays-no"),
])
def test_R4_deletion(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([off("2025-09-01"), act(T)], "2025-11-01",
                 {"expires_at": None, "says": "stays in your own history until you delete it"},
                 id="history-until-deleted"),
    pytest.param([gpt(act, T, incognito=True)], "2025-11-01T09:30:00Z",
                 {"expired": True}, id="expired-at-equal"),
    pytest.param([gpt(act, T, incognito=True)], "2025-11-01T09:29:59Z",
                 {"expired": False}, id="not-yet-expired"),
    pytest.param([off("2025-09-01"), act(T), feedback("2025-10-03"), delete("2025-10-10")],
                 "2025-11-01", {"expires_at": "2030-10-03T00:00:00Z",
                                "expiry_basis": "A7: feedback + 5 years"},
                 id="feedback-copy-outlives-deletion"),
    pytest.param([on("2025-09-01"), act(T), feedback("2025-10-03")], "2025-11-01",
                 {"expires_at": "2030-10-03T00:00:00Z"}, id="latest-copy-wins"),
])
def test_R5_expiry(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), act(T), feedback("2025-10-05"), act("2025-10-06")],
                 "2025-11-01", {"windows": [(T, None)], "says": "R6:"}, id="windows-merge"),
    pytest.param([act(T, incognito=True), act("2025-10-03")], "2025-11-01",
                 {"incognito": False}, id="incognito-only-if-every-activity"),
    pytest.param([act(T, incognito=True), act("2025-10-03", incognito=True)], "2025-11-01",
                 {"incognito": True}, id="all-incognito"),
    pytest.param([act(T, title="a"), seen("2025-10-05", title="b"), act("2025-10-06")],
                 "2025-11-01", {"title": "b"}, id="title-latest-seen"),
    pytest.param([act(T, kind="chat"), act("2025-10-03", kind="code")], "2025-11-01",
                 {"kind": "code"}, id="kind-of-latest-activity"),
    pytest.param([on("2025-09-01"), act(T, incognito=True), act("2025-10-03")], "2025-11-01",
                 {"windows": [("2025-10-03T00:00:00Z", None)]}, id="each-activity-own-flag"),
])
def test_R6_chat_fields(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("provider", ["claude", "chatgpt", "gemini"])
def test_R7_seen_only_chat(provider):
    row = audit([seen(T, provider=provider, title="old")], "2025-11-01")
    check(row, {"training": "no", "first_activity": None, "last_activity": None,
                "kind": None, "title": "old", "windows": [], "rules": ["R7"]})


def test_R7_unseen_or_future_chat_has_no_row():
    assert audit([seen(T)], "2025-10-01") is None
    assert audit([seen(T)], "2025-11-01", chat="other") is None


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), plan("2025-09-01", "pro"), act(T, plan="api")],
                 "2025-11-01", {"training": "no", "says": "carried its own plan api"},
                 id="activity-own-plan"),
    pytest.param([on("2025-09-01"), act(T)], "2025-11-01",
                 {"training": "yes", "says": "ASSUMED a consumer plan"}, id="none-seen"),
    pytest.param([gpt(plan, "2025-09-01", "team"), gpt(act, T)], "2025-11-01",
                 {"training": "no", "rules": ["O5"]}, id="chatgpt-team-is-business"),
    pytest.param([gem(plan, "2025-09-01", "ultra"), gem(act, T)], "2025-11-01",
                 {"training": "yes"}, id="gemini-personal"),
])
def test_R8_plans(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("provider, plan_name", [("claude", "plus"), ("chatgpt", "max"),
                                                 ("gemini", "team")])
def test_R8_invalid_plans_are_refused(provider, plan_name):
    with pytest.raises(EventError, match="plan"):
        ev("plan.set", T, provider=provider, plan=plan_name)
    with pytest.raises(EventError, match="plan"):
        act(T, provider=provider, plan=plan_name)
    engine = Engine()
    bad = {"v": 1, "id": "bad-plan-1", "type": "plan.set", "at": T, "provider": provider,
           "account": "default", "plan": plan_name}
    with pytest.raises(PolicyError, match="is not a"):
        engine.apply(bad)
    with pytest.raises(PolicyError, match="is not a"):
        engine.apply({**bad, "type": "chat.activity", "chat_id": "c1", "kind": "chat",
                      "incognito": False})
    assert engine.rows(t("2026-01-01")) == []  # nothing half-stored


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), act(T)], "2031-01-01",
                 {"expired": True, "training": "was", "expires_at": "2030-10-02T09:30:00Z",
                  "windows": [(T, "2030-10-02T09:30:00Z")], "rules": ["R9"]}, id="claude-A8"),
    pytest.param([on("2025-09-01"), act(T)], "2030-10-02T09:29:59Z",
                 {"expired": False, "training": "yes"}, id="claude-just-before"),
    pytest.param([gem(act, T)], "2029-01-01",
                 {"training": "was", "windows": [(T, "2028-10-02T09:30:00Z")]}, id="gemini-G3"),
    pytest.param([gem(act, T), gem(feedback, "2025-10-05")], "2029-01-01",
                 {"training": "was", "windows": [(T, "2028-10-05T00:00:00Z")]},
                 id="gemini-feedback"),
])
def test_R9_expiry_closes_windows(events, as_of, expected):
    run(events, as_of, expected)


# --- Anthropic ------------------------------------------------------------------------------

@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-08-01"), act("2025-08-27T23:59:59Z")], "2025-10-01",
                 {"training": "no", "rules": ["A1"], "expires_at": None}, id="before"),
    pytest.param([on("2025-08-01"), act("2025-08-28T00:00:00Z")], "2025-10-01",
                 {"training": "yes", "windows": [("2025-08-28T00:00:00Z", None)]},
                 id="from-the-start-date"),
    pytest.param([act("2025-06-01"), feedback("2025-06-02")], "2025-10-01",
                 {"training": "yes", "windows": [("2025-06-02T00:00:00Z", None)]},
                 id="feedback-before"),
    pytest.param([act("2025-06-01")], "2025-10-01", {"training": "no"}, id="never-unknown"),
])
def test_A1_before_2025_08_28(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01", id="set-on-0001"), act(T, id="chat-act-01")], "2025-11-01",
                 {"training": "yes", "windows": [(T, None)],
                  "says": ["A2: eligible from 2025-10-02T09:30:00Z: activity (event id "
                           "chat-act-01) while the setting was on",
                           "A2: the model-training setting (Help improve Claude) seen on at "
                           "2025-09-01T00:00:00Z via settings_page (event id set-on-0001)"]},
                 id="activity-while-on"),
    pytest.param([act("2025-06-01"), on("2025-09-01"), act(T)], "2025-11-01",
                 {"training": "yes", "windows": [(T, None)],
                  "first_activity": "2025-06-01T00:00:00Z",
                  "says": "ASSUMED: the whole chat counts, earlier turns included"},
                 id="resumed-old-chat"),
    pytest.param([on("2025-09-01"), act(T), act("2025-10-05")], "2025-11-01",
                 {"windows": [(T, None)]}, id="first-activity-opens"),
])
def test_A2_activity_while_on(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([off("2025-09-01"), act(T), on("2025-10-05")], "2025-11-01",
                 {"training": "no", "rules": ["A3"]}, id="later-on-does-not-reach-back"),
    pytest.param([off("2025-09-01"), act(T), on("2025-10-05"), act("2025-10-06")],
                 "2025-11-01", {"training": "yes", "windows": [("2025-10-06T00:00:00Z", None)]},
                 id="new-activity-after-on"),
])
def test_A3_no_activity_while_on(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), act(T), off("2025-11-01", id="switch-off-1")],
                 "2025-12-01", {"training": "was", "windows": [(T, "2025-11-01T00:00:00Z")],
                                "says": "switched off at 2025-11-01T00:00:00Z via settings_page "
                                        "(event id switch-off-1): windows open then closed"},
                 id="switch-off-closes"),
    pytest.param([on("2025-09-01"), act(T), off("2025-11-01"), on("2025-12-01")],
                 "2025-12-10", {"training": "was"}, id="later-on-does-not-reopen"),
    pytest.param([on("2025-09-01"), act(T), off("2025-11-01"), on("2025-12-01"),
                  act("2025-12-05")], "2025-12-10",
                 {"training": "yes", "windows": [(T, "2025-11-01T00:00:00Z"),
                                                 ("2025-12-05T00:00:00Z", None)]},
                 id="new-activity-new-window"),
    pytest.param([on("2025-09-01"), off("2025-09-15"), act(T)], "2025-12-10",
                 {"training": "no", "rules": ["A3"]}, id="off-before-the-activity"),
    pytest.param([on("2025-09-01"), act(T), off("2025-11-01")], "2025-10-30",
                 {"training": "yes"}, id="off-after-as-of-ignored"),
])
def test_A4_switch_off(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), act(T), delete("2025-11-01T08:00:00Z")], "2025-11-10",
                 {"training": "was", "windows": [(T, "2025-11-01T08:00:00Z")],
                  "expires_at": "2025-12-01T08:00:00Z",
                  "expiry_basis": "A5: deleted + 30 days (back-end copy, training copy "
                                  "included)"}, id="deleted"),
    pytest.param([on("2025-09-01"), act(T), delete("2025-11-01")], "2025-12-02",
                 {"expired": True}, id="gone-after-30-days"),
])
def test_A5_deletion(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), act(T, incognito=True)], "2025-10-05",
                 {"training": "no", "incognito": True, "expires_at": "2025-11-01T09:30:00Z",
                  "expiry_basis": "A6: last incognito activity + 30 days", "says": "ASSUMED"},
                 id="incognito-with-setting-on"),
    pytest.param([act(T, incognito=True)], "2025-10-05", {"training": "no"},
                 id="incognito-is-decided-without-a-setting"),
])
def test_A6_incognito(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([off("2025-09-01"), act(T), feedback("2025-10-03")], "2025-11-01",
                 {"training": "yes", "windows": [("2025-10-03T00:00:00Z", None)],
                  "expires_at": "2030-10-03T00:00:00Z"}, id="whatever-the-setting"),
    pytest.param([on("2025-09-01"), act(T), feedback("2025-10-03"), off("2025-10-05")],
                 "2025-11-01", {"training": "yes", "windows": [(T, None)]},
                 id="switch-off-does-not-close-it"),
    pytest.param([feedback("2025-08-27T23:59:59Z")], "2025-11-01",
                 {"expires_at": "2035-08-27T23:59:59Z"}, id="10y-before"),
    pytest.param([feedback("2025-08-28")], "2025-11-01",
                 {"expires_at": "2030-08-28T00:00:00Z"}, id="5y-from"),
    pytest.param([plan("2025-01-01", "enterprise"), act(T), feedback("2025-10-03")],
                 "2025-11-01", {"training": "yes", "expires_at": "2030-10-03T00:00:00Z"},
                 id="every-plan"),
    pytest.param([act(T, incognito=True), feedback("2025-10-03"), delete("2025-10-04")],
                 "2025-11-01", {"training": "was", "expires_at": "2030-10-03T00:00:00Z",
                                "windows": [("2025-10-03T00:00:00Z", "2025-10-04T00:00:00Z")]},
                 id="deletion-closes-not-shortens"),
])
def test_A7_feedback(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), act(T), act("2025-10-20"), off("2025-11-01"),
                  act("2025-11-15")], "2025-12-01",
                 {"expires_at": "2030-10-20T00:00:00Z",
                  "expiry_basis": "A8: last activity in a window + 5 years"},
                 id="last-activity-inside-a-window"),
    pytest.param([off("2025-09-01"), act(T), feedback("2025-10-05"), act("2025-10-20")],
                 "2025-12-01", {"expires_at": "2030-10-05T00:00:00Z",
                                "expiry_basis": "A7: feedback + 5 years"},
                 id="feedback-only-window-takes-A7"),
])
def test_A8_training_copy(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([off("2025-09-01"), act(T)], "2025-11-01",
                 {"training": "no", "expires_at": None, "expiry_basis": "A9: no end date; "
                  "kept until you delete it"}, id="never-eligible"),
])
def test_A9_kept_in_history(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([act(T)], "2025-11-01",
                 {"training": "unknown", "expires_at": "2030-10-02T09:30:00Z",
                  "expiry_basis": "A8: last activity in a window + 5 years",
                  "says": ["not recorded", "ASSUMED"], "rules": ["A10", "A8"]}, id="no-setting"),
    pytest.param([act(T), on("2025-10-05")], "2025-11-01", {"training": "unknown"},
                 id="setting-seen-only-later"),
    pytest.param([act(T), delete("2025-10-10")], "2025-11-01",
                 {"training": "unknown", "expires_at": "2025-11-09T00:00:00Z"},
                 id="deleted-unknown"),
])
def test_A10_setting_not_recorded(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("plan_name", ["team", "enterprise", "education", "gov", "api"])
def test_A11_commercial_plans(plan_name):
    events = [on("2025-09-01"), plan("2025-09-01", plan_name), act(T)]
    check(audit(events, "2025-11-01"), {"training": "no", "expires_at": None,
                                        "expiry_basis": "A11: no end date; kept until you "
                                                        "delete it"})
    check(audit([*events, delete("2025-11-01")], "2025-11-05"),
          {"expires_at": "2025-12-01T00:00:00Z"})


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([on("2025-09-01"), plan("2025-09-01", "pro"), plan("2025-10-05", "team"),
                  act("2025-10-06")], "2025-11-01", {"training": "no"}, id="plan-in-force"),
    pytest.param([on("2025-09-01"), plan("2025-09-01", "team"), plan("2025-10-05", "max"),
                  act("2025-10-06")], "2025-11-01", {"training": "yes"}, id="back-to-consumer"),
    pytest.param([on("2025-09-01"), act(T), plan(T, "team")], "2025-11-01",
                 {"training": "no"}, id="plan-at-same-instant-in-force"),
])
def test_A12_plan_at_each_activity(events, as_of, expected):
    run(events, as_of, expected)


# --- OpenAI ----------------------------------------------------------------------------------

@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gpt(act, T)], "2025-11-01",
                 {"training": "yes", "windows": [(T, None)], "says": "ASSUMED on"},
                 id="on-by-default"),
    pytest.param([gpt(off, "2025-09-01"), gpt(act, T)], "2025-11-01", {"training": "no"},
                 id="off"),
    pytest.param([gpt(on, "2025-09-01"), gpt(act, T)], "2025-11-01", {"training": "yes"},
                 id="on"),
])
def test_O1_eligible_unless_off(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gpt(act, T), gpt(off, "2025-11-01")], "2025-12-01",
                 {"training": "yes", "windows": [(T, None)], "says": "not retroactive"},
                 id="not-retroactive"),
    pytest.param([gpt(act, T), gpt(off, "2025-11-01"), gpt(act, "2025-11-05")], "2025-12-01",
                 {"training": "yes", "windows": [(T, None)]}, id="new-activity-while-off"),
])
def test_O2_switch_off_not_retroactive(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gpt(act, T, incognito=True)], "2025-10-05",
                 {"training": "no", "expires_at": "2025-11-01T09:30:00Z",
                  "expiry_basis": "O3: last temporary activity + 30 days"}, id="temporary"),
    pytest.param([gpt(act, T, incognito=True), gpt(feedback, "2025-10-03")], "2025-10-05",
                 {"training": "yes"}, id="feedback-aside"),
])
def test_O3_temporary_chats(events, as_of, expected):
    run(events, as_of, expected)


HOLD = {"expires_at": None, "expiry_basis": "O4: legal hold", "expired": False}


@pytest.mark.parametrize("events, expected", [
    pytest.param([gpt(act, "2025-05-01", plan="plus"), gpt(delete, "2025-05-13T00:00:00Z")],
                 HOLD, id="deleted-at-start"),
    pytest.param([gpt(act, "2025-05-01", plan="plus"), gpt(delete, "2025-05-12T23:59:59Z")],
                 {"expires_at": "2025-06-11T23:59:59Z", "expiry_basis": "O4: deleted + 30 days"},
                 id="deleted-just-before"),
    pytest.param([gpt(act, "2025-05-01"), gpt(delete, "2025-09-26T23:59:59Z")],
                 {**HOLD, "says": "on a consumer plan (none recorded, ASSUMED): kept with no "
                                  "end date"}, id="deleted-just-inside-end"),
    pytest.param([gpt(act, "2025-05-01"), gpt(delete, "2025-09-27T00:00:00Z")],
                 {"expires_at": "2025-10-27T00:00:00Z"}, id="deleted-at-end"),
    pytest.param([gpt(plan, "2025-01-01", "enterprise"), gpt(act, "2025-05-01"),
                  gpt(delete, "2025-06-01")], {"expires_at": "2025-07-01T00:00:00Z"},
                 id="enterprise-not-held"),
    pytest.param([gpt(plan, "2025-01-01", "education"), gpt(act, "2025-05-01"),
                  gpt(delete, "2025-06-01")], {"expires_at": "2025-07-01T00:00:00Z"},
                 id="education-not-held"),
    pytest.param([gpt(plan, "2025-01-01", "team"), gpt(act, "2025-05-01"),
                  gpt(delete, "2025-06-01")], HOLD, id="team-held"),
    pytest.param([gpt(act, "2025-05-01", plan="api"), gpt(delete, "2025-06-01")],
                 {**HOLD, "says": "zero data retention"}, id="api-held-zdr-assumed-absent"),
    pytest.param([gpt(act, "2025-04-13T00:00:00Z", incognito=True)],
                 {"expires_at": "2025-05-13T00:00:00Z", "expired": True},
                 id="temporary-copy-ends-at-start"),
    pytest.param([gpt(act, "2025-04-13T00:00:01Z", incognito=True)], HOLD,
                 id="temporary-copy-overlaps-start"),
    pytest.param([gpt(act, "2025-09-26T23:59:59Z", incognito=True)], HOLD,
                 id="temporary-inside-end"),
    pytest.param([gpt(act, "2025-09-27T00:00:00Z", incognito=True)],
                 {"expires_at": "2025-10-27T00:00:00Z"}, id="temporary-after"),
    pytest.param([gpt(act, "2025-06-01", incognito=True, plan="enterprise")],
                 {"expires_at": "2025-07-01T00:00:00Z"}, id="temporary-enterprise"),
    pytest.param([gpt(act, "2025-06-01")], {"expires_at": None, "expiry_basis": "O6: no end "
                                            "date; kept until you delete it"},
                 id="not-deleted-not-held"),
])
def test_O4_legal_hold_window_edges(events, expected):
    run(events, "2026-11-28", expected)


@pytest.mark.parametrize("plan_name", ["business", "team", "enterprise", "education", "api"])
def test_O5_commercial_plans(plan_name):
    events = [gpt(plan, "2025-09-01", plan_name), gpt(act, T)]
    check(audit(events, "2025-11-01"), {"training": "no", "rules": ["O5"]})
    check(audit([*events, gpt(feedback, "2025-10-05")], "2025-11-01"), {"training": "yes"})


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gpt(act, T)], "2025-11-01", {"expires_at": None}, id="kept-until-deleted"),
    pytest.param([gpt(act, T), gpt(delete, "2025-11-01")], "2025-11-05",
                 {"training": "was", "windows": [(T, "2025-11-01T00:00:00Z")],
                  "expires_at": "2025-12-01T00:00:00Z"}, id="deleted"),
])
def test_O6_not_deleted_not_temporary(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gpt(off, "2025-09-01"), gpt(act, T), gpt(feedback, "2025-10-03")],
                 "2025-11-01", {"training": "yes", "expires_at": None,
                                "windows": [("2025-10-03T00:00:00Z", None)],
                                "says": "ASSUMED: OpenAI does not say feedback is excluded"},
                 id="whatever-the-setting"),
    pytest.param([gpt(feedback, "2025-10-03")], "2025-11-01",
                 {"training": "yes", "expires_at": None,
                  "expiry_basis": "O6: no end date; kept until you delete it"},
                 id="feedback-only-chat"),
])
def test_O7_feedback(events, as_of, expected):
    run(events, as_of, expected)


# --- Google ----------------------------------------------------------------------------------

@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gem(act, T)], "2025-11-01", {"training": "yes", "says": "ASSUMED on"},
                 id="on-by-default"),
    pytest.param([gem(on, "2025-09-01"), gem(act, T)], "2025-11-01", {"training": "yes"},
                 id="keep-activity-on"),
])
def test_G1_keep_activity(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gem(off, "2025-09-01"), gem(act, T)], "2025-10-03",
                 {"training": "no", "expires_at": "2025-10-05T09:30:00Z",
                  "expiry_basis": "G2: activity with Keep Activity off + 72 hours"}, id="off"),
])
def test_G2_setting_off(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gem(on, "2025-09-01"), gem(act, T)], "2025-11-01",
                 {"expires_at": "2028-10-02T09:30:00Z", "expiry_basis": "G3: last activity with "
                  "Keep Activity on + 3 years (a possible human-reviewed copy)",
                  "says": "18 months after 2025-10-02T09:30:00Z = 2027-04-02T09:30:00Z"},
                 id="reviewed-copy"),
    pytest.param([gem(act, T), gem(delete, "2025-11-01")], "2025-11-05",
                 {"training": "was", "windows": [(T, "2025-11-01T00:00:00Z")],
                  "expires_at": "2028-10-02T09:30:00Z"}, id="reviewed-copy-after-deletion"),
    pytest.param([gem(on, "2025-09-01"), gem(act, T), gem(off, "2025-11-01")], "2025-12-01",
                 {"training": "yes", "windows": [(T, None)]}, id="switch-off-keeps-window"),
    pytest.param([gem(on, "2025-09-01"), gem(act, T), gem(off, "2025-11-01"),
                  gem(act, "2025-11-05")], "2025-12-01",
                 {"expires_at": "2028-10-02T09:30:00Z"}, id="last-activity-while-on"),
])
def test_G3_reviewed_copy(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gem(act, T, incognito=True)], "2025-10-03",
                 {"training": "no", "expires_at": "2025-10-05T09:30:00Z"}, id="temporary"),
])
def test_G4_temporary_chats(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gem(plan, "2025-09-01", "workspace"), gem(act, T)], "2025-11-01",
                 {"training": "no", "expires_at": None, "rules": ["G5"]}, id="workspace"),
    pytest.param([gem(plan, "2025-09-01", "workspace"), gem(act, T), gem(feedback, "2025-10-03")],
                 "2025-11-01", {"training": "yes", "expires_at": "2028-10-03T00:00:00Z"},
                 id="feedback-aside"),
])
def test_G5_workspace(events, as_of, expected):
    run(events, as_of, expected)


@pytest.mark.parametrize("events, as_of, expected", [
    pytest.param([gem(off, "2025-09-01"), gem(act, T), gem(feedback, "2025-10-03")],
                 "2025-11-01", {"training": "yes", "expires_at": "2028-10-03T00:00:00Z",
                                "expiry_basis": "G6: feedback + 3 years"}, id="feedback"),
])
def test_G6_feedback(events, as_of, expected):
    run(events, as_of, expected)
