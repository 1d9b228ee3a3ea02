"""One chat's verdict as of a time: training windows, expiry, and the reasons, by the rules of
POLICIES.md part 1 as given in the provider's policy data (auditor/policy.py).

`evaluate` takes a chat's sorted event tuples (see auditor/engine.py) and a view of its
account's consent and plan timelines, and returns a `Verdict`: the report row of CONTRACT
section 4 plus the span of `as_of` values for which that row holds, so the engine can cache it.
Every reason names its rule and the events it used; whatever the rule book assumes is said.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from auditor.policy import COMMERCIAL, ProviderPolicy
from auditor.times import format_time

# Chat event tuples: (at, type, id, title, ...), sorted; the type orders events at one instant.
ACTIVITY, FEEDBACK, SEEN, DELETED = 0, 1, 2, 3
CODE_FLAG, INCOGNITO_FLAG = 1, 2
KINDS = ("chat", "code")
# activity: (at, ACTIVITY, id, title, flags) or (..., flags, plan) when it carries its own
#           plan; flags: 1 = kind code (else chat), 2 = incognito
# feedback: (at, FEEDBACK, id, None, rating)
# seen:     (at, SEEN, id, title, incognito)
# deleted:  (at, DELETED, id)

# How one activity was judged (R3).
COMMERCIAL_PLAN, INCOGNITO, BEFORE, OFF, UNKNOWN, ON, ASSUMED_ON = range(7)



_DAYS: dict[int, str] = {}
_TIMES_OF_DAY: dict[int, str] = {}  # at most 86,400 short strings


def fmt(dt: datetime) -> str:
    """auditor.times.format_time, with a fast path for whole-second UTC times (a report
    formats several times per chat; the day and the time of day are each formatted once)."""
    if dt.microsecond or dt.tzinfo is not UTC:
        return format_time(dt)
    ordinal = dt.toordinal()
    day = _DAYS.get(ordinal)
    if day is None:
        day = _DAYS[ordinal] = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
    second = dt.hour * 3600 + dt.minute * 60 + dt.second
    clock = _TIMES_OF_DAY.get(second)
    if clock is None:
        clock = _TIMES_OF_DAY[second] = f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"
    return day + clock


@lru_cache(maxsize=1024)
def _n(count: int, word: str) -> str:
    """"1 activity", "3 activities"."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


class AccountView:
    """An account's consent and plan timelines, compressed to one state per instant (R2)."""

    __slots__ = ("bounds", "consent_states", "consent_times", "event_times", "notes",
                 "plan_states",
                 "plan_times", "switch_off_times", "switch_offs", "texts")

    def __init__(self, consent: list[tuple[Any, ...]], plans: list[tuple[Any, ...]],
                 boundaries: tuple[datetime, ...] = ()) -> None:
        # Lists are sorted by (at, rank, id): at one instant the first is the winner (R2: true
        # before false, consumer before commercial, then the smaller id).
        self.consent_times: list[datetime] = []
        self.consent_states: list[tuple[Any, ...]] = []
        self.switch_off_times: list[datetime] = []
        self.switch_offs: list[tuple[Any, ...]] = []
        previous = None
        for item in consent:
            if self.consent_times and self.consent_times[-1] == item[0]:
                continue
            self.consent_times.append(item[0])
            self.consent_states.append(item)
            # A switch-off: false after true, or after nothing (where the default is on).
            if not item[3] and (previous is None or previous[3]):
                self.switch_off_times.append(item[0])
                self.switch_offs.append(item)
            previous = item
        self.plan_times: list[datetime] = []
        self.plan_states: list[tuple[Any, ...]] = []
        for item in plans:
            if not self.plan_times or self.plan_times[-1] != item[0]:
                self.plan_times.append(item[0])
                self.plan_states.append(item)
        self.event_times = sorted({*self.consent_times, *self.plan_times})
        self.notes: dict[tuple[str, str], str] = {}
        self.texts: dict[datetime, str] = {at: fmt(at) for at in self.event_times}
        # Instants where the plan, the setting or the provider's training era may change.
        self.bounds = sorted({*self.event_times, *boundaries})

    def plan_note(self, policy: ProviderPolicy, plan_ev: tuple[Any, ...]) -> str:
        """The reason naming a plan event; one string shared by the account's chats."""
        note = self.notes.get(("plan", plan_ev[2]))
        if note is None:
            note = self.notes[("plan", plan_ev[2])] = (
                f"{policy.plan_rule}: plan {plan_ev[3]} ({policy.plan_class[plan_ev[3]]}) in "
                f"force from {fmt(plan_ev[0])} (plan.set, event id {plan_ev[2]})")
        return note

    def setting_note(self, rule: str, setting: tuple[Any, ...], policy: ProviderPolicy) -> str:
        """The reason naming the setting event an activity was judged by (shared)."""
        key = (rule, setting[2])
        note = self.notes.get(key)
        if note is None:
            note = self.notes[key] = (
                f"{rule}: {policy.setting_name} seen {'on' if setting[3] else 'off'} at "
                f"{self.texts[setting[0]]} via {setting[4]} (event id {setting[2]})")
        return note

    def switch_off_note(self, era: Any, off: tuple[Any, ...], policy: ProviderPolicy) -> str:
        """The reason naming a switch-off, and what it does to open windows (shared)."""
        key = (era.switch_off_rule, off[2])
        note = self.notes.get(key)
        if note is None:
            when = self.texts[off[0]]
            if era.switch_off == "closes_windows":
                what = (f"windows open then closed at {when}; the chat may remain in training "
                        "runs started or models trained before then")
            else:
                what = "windows already open stay open (not retroactive)"
            note = self.notes[key] = (
                f"{era.switch_off_rule}: {policy.setting_name} switched off at {when} via "
                f"{off[4]} (event id {off[2]}): {what}")
        return note

    def setting_at(self, at: datetime) -> tuple[Any, ...] | None:
        """The consent event in force at `at` (one at the same instant counts), or None."""
        i = bisect_right(self.consent_times, at) - 1
        return self.consent_states[i] if i >= 0 else None

    def plan_at(self, at: datetime) -> tuple[Any, ...] | None:
        i = bisect_right(self.plan_times, at) - 1
        return self.plan_states[i] if i >= 0 else None

    def next_switch_off(self, after: datetime, as_of: datetime) -> tuple[Any, ...] | None:
        """The first switch-off strictly after `after`, at or before `as_of`."""
        i = bisect_right(self.switch_off_times, after)
        if i < len(self.switch_offs) and self.switch_offs[i][0] <= as_of:
            return self.switch_offs[i]
        return None

    def switch_offs_between(self, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
        i = bisect_right(self.switch_off_times, start)
        j = bisect_right(self.switch_off_times, end)
        return self.switch_offs[i:j]


class Verdict:
    """A chat's row as of a time, and the span [valid_from, valid_until) of `as_of` it holds."""

    __slots__ = ("data", "first_activity", "valid_from", "valid_until")

    def __init__(self, data: dict[str, Any], first_activity: datetime | None,
                 valid_from: datetime, valid_until: datetime | None) -> None:
        self.data = data
        self.first_activity = first_activity
        self.valid_from = valid_from
        self.valid_until = valid_until

    @property
    def training(self) -> str:
        return self.data["training"]

    def row(self) -> dict[str, Any]:
        """A fresh copy of the row, so callers may add to it (e.g. a badge)."""
        row = dict(self.data)
        row["training_windows"] = [dict(w) for w in self.data["training_windows"]]
        row["reasons"] = list(self.data["reasons"])
        row["policies"] = list(self.data["policies"])
        return row


_R5_HISTORY = ("R5: not deleted: the chat stays in your own history until you delete it, "
               "whatever expires_at says")
_R7_SEEN = "R7: only opened, never written in (chat.seen): not eligible"
_NO_PLAN: dict[str, str] = {}


_ASSUMED: dict[tuple[str, str], str] = {}


def _assumed_note(rule: str, what: str) -> str:
    """"A2: ASSUMED: ..." (one string shared by every row that says it)."""
    note = _ASSUMED.get((rule, what))
    if note is None:
        note = _ASSUMED[(rule, what)] = f"{rule}: ASSUMED: {what}"
    return note


@lru_cache(maxsize=256)
def _no_end_basis(rule: str, deleted: bool) -> str:
    """The basis when no copy has an end date (one shared string per rule)."""
    if deleted:
        return f"{rule}: no end date is published for this chat's copies"
    return f"{rule}: no end date; kept until you delete it"


def _no_plan_note(policy: ProviderPolicy) -> str:
    note = _NO_PLAN.get(policy.provider)
    if note is None:
        note = _NO_PLAN[policy.provider] = (
            f"{policy.plan_rule}: no plan recorded for this account before its activity; "
            f"ASSUMED a consumer plan ({', '.join(policy.consumer_plans)})")
    return note


def evaluate(policy: ProviderPolicy, key: tuple[str, str, str], events: list[tuple[Any, ...]],
             account: AccountView, as_of: datetime) -> Verdict | None:
    """The chat's verdict as of `as_of` (R2: later events are ignored), or None if none."""
    n = bisect_left(events, (as_of, 9)) if events[-1][0] > as_of else len(events)
    if n == 0:
        return None
    formatted: dict[datetime, str] = {}
    account_texts = account.texts  # the account's event times, formatted once

    def f(dt: datetime) -> str:
        text = formatted.get(dt)
        if text is None:
            text = formatted[dt] = account_texts.get(dt) or fmt(dt)
        return text

    reasons: list[str] = []
    rules: set[str] = {"R5"}

    # --- the chat's own events, up to the first deletion (R4) ------------------------------
    deleted: tuple[Any, ...] | None = None
    ignored: list[tuple[Any, ...]] = []
    activities: list[tuple[Any, ...]] = []
    feedback: list[tuple[Any, ...]] = []
    title_ev: tuple[Any, ...] | None = None
    kind_ev: tuple[Any, ...] | None = None
    seen_flags: list[bool] = []
    for i in range(n):
        e = events[i]
        typ = e[1]
        if deleted is not None:
            if typ != DELETED:
                ignored.append(e)
            continue
        if typ == DELETED:
            deleted = e
            continue
        # R6: the latest title, at one instant the smaller id (R2); sorted input, so a later
        # event is at the same instant or after.
        if e[3] is not None and typ != FEEDBACK and (
                title_ev is None or e[0] > title_ev[0] or e[2] < title_ev[2]):
            title_ev = e
        if typ == ACTIVITY:
            activities.append(e)
            if kind_ev is None or e[0] > kind_ev[0] or e[2] < kind_ev[2]:
                kind_ev = e
        elif typ == FEEDBACK:
            feedback.append(e)
        elif e[4] is not None:
            seen_flags.append(e[4])
    deleted_at = deleted[0] if deleted is not None else None

    # --- judge each activity (R3) ----------------------------------------------------------
    plan_class = policy.plan_class
    judged: list[tuple[tuple[Any, ...], int, Any, str | None, tuple[Any, ...] | None]] = []
    counts = [0] * 7
    lasts: list[Any] = [None] * 7
    plan_notes: dict[Any, str] = {}
    incognito_last = incognito_plan = last_plan = None
    bounds = account.bounds
    segment = -1
    acct_plan: str | None = None
    acct_era: Any = None
    acct_setting: tuple[Any, ...] | None = None
    acct_verdict = BEFORE
    for a in activities:
        at = a[0]
        # Between two account events (or era boundaries) the plan, era and setting are one.
        seg = bisect_right(bounds, at)
        if seg != segment:
            segment = seg
            plan_ev = account.plan_at(at)
            if plan_ev is None:
                acct_plan = None
                if None not in plan_notes:
                    plan_notes[None] = _no_plan_note(policy)
            else:
                acct_plan = policy.canonical_plan(plan_ev[3])
                if plan_ev[2] not in plan_notes:
                    plan_notes[plan_ev[2]] = account.plan_note(policy, plan_ev)
            acct_era = policy.era_at(at)
            acct_setting = None
            if acct_era is None or acct_era.eligible == "never":
                acct_verdict = BEFORE
            else:
                acct_setting = account.setting_at(at)
                if acct_setting is None:
                    acct_verdict = UNKNOWN if acct_era.missing == "unknown" else ASSUMED_ON
                else:
                    acct_verdict = ON if acct_setting[3] else OFF
        own = a[5] if len(a) > 5 else None
        if own is None:
            plan: str | None = acct_plan
        else:
            plan = policy.canonical_plan(own)
            if own not in plan_notes:
                plan_notes[own] = (f"{policy.plan_rule}: activity at {f(at)} carried its own "
                                   f"plan {own} ({plan_class[own]}; event id {a[2]})")
        last_plan = plan
        setting = era = None
        if plan is not None and plan_class[plan] == COMMERCIAL:
            verdict = COMMERCIAL_PLAN
        elif a[4] & INCOGNITO_FLAG:
            verdict = INCOGNITO
        else:
            verdict, era, setting = acct_verdict, acct_era, acct_setting
        if a[4] & INCOGNITO_FLAG:
            incognito_last, incognito_plan = at, plan
        item = (a, verdict, era, plan, setting)
        judged.append(item)
        counts[verdict] += 1
        lasts[verdict] = item
    if activities:
        rules.add("R8")
        rules.add(policy.plan_rule)
        reasons.extend(plan_notes.values())

    # --- windows opened by activity (A2, O1, G1), closed by a switch-off where the rule says
    windows: list[list[Any]] = []  # [from, until]
    current: list[Any] | None = None
    assumed_said = False
    if counts[ON] or counts[ASSUMED_ON]:
        for a, verdict, era, _plan, setting in judged:
            if verdict != ON and verdict != ASSUMED_ON:
                continue
            at = a[0]
            if current is not None and (current[1] is None or at < current[1]):
                continue  # already inside an open window
            assert era is not None
            rules.add(era.rule)
            if setting is not None:
                reasons.append(f"{era.rule}: eligible from {f(at)}: activity (event id "
                               f"{a[2]}) while the setting was on")
                reasons.append(account.setting_note(era.rule, setting, policy))
            else:
                rules.add(era.missing_rule or era.rule)
                reasons.append(
                    f"{era.missing_rule}: eligible from {f(at)}: activity (event id {a[2]}) "
                    "with no setting recorded at or before it; ASSUMED on, the default")
            if era.assumed and not assumed_said:
                assumed_said = True
                reasons.append(_assumed_note(era.rule, era.assumed))
            until = None
            if era.switch_off == "closes_windows":
                off = account.next_switch_off(at, as_of)
                if off is not None:
                    until = off[0]
                    rules.add(era.switch_off_rule or era.rule)
                    reasons.append(account.switch_off_note(era, off, policy))
            else:
                offs = account.switch_offs_between(at, deleted_at or as_of)
                if offs:
                    rules.add(era.switch_off_rule or era.rule)
                    reasons.append(account.switch_off_note(era, offs[0], policy))
            current = [at, until]
            windows.append(current)
    has_activity_window = bool(windows)

    # --- activities that opened nothing, grouped by why ------------------------------------
    for verdict in (COMMERCIAL_PLAN, INCOGNITO, BEFORE, OFF, UNKNOWN):
        count = counts[verdict]
        if not count:
            continue
        last = lasts[verdict]
        what = _n(count, "activity")
        when = f(last[0][0])
        if verdict == COMMERCIAL_PLAN:
            rules.add(policy.commercial_rule)
            plans = sorted({str(i[3]) for i in judged if i[1] == COMMERCIAL_PLAN})
            reasons.append(f"{policy.commercial_rule}: {what} on commercial plan "
                           f"{', '.join(plans)} (last {when}): not eligible, feedback aside")
        elif verdict == INCOGNITO:
            rules.add(policy.incognito_rule)
            reasons.append(f"{policy.incognito_rule}: {what} incognito or temporary (last "
                           f"{when}): never eligible by the training rule")
        elif verdict == BEFORE:
            era = policy.era_at(last[0][0])
            rule = era.rule if era else "R3"
            rules.add(rule)
            before = f" before {f(era.end)}" if era and era.end else ""
            reasons.append(f"{rule}: {what}{before} (last {when}): not eligible, feedback "
                           "aside")
        elif verdict == OFF:
            era, setting = last[2], last[4]
            rules.add(era.off_rule)
            reasons.append(f"{era.off_rule}: {what} while the setting was off (last {when}): "
                           "not eligible by that activity")
            reasons.append(account.setting_note(era.off_rule, setting, policy))
        else:
            era = last[2]
            rules.add(era.missing_rule)
            reasons.append(
                f"{era.missing_rule}: {policy.setting_name} not recorded at or before {what} "
                f"(last {when}, event id {last[0][2]}): whether it may be trained on cannot be "
                "told; expiry reckoned as if the setting was on (ASSUMED)")

    # --- feedback (A7, O7, G6): eligible from F whatever the plan, setting or flag ----------
    for fb in feedback:
        rules.add(policy.feedback_rule)
        reasons.append(f"{policy.feedback_rule}: feedback ({fb[4]}) at {f(fb[0])} (event id "
                       f"{fb[2]}): eligible from then whatever the plan, setting or incognito "
                       "flag")
        if policy.feedback_assumed and fb is feedback[0]:
            reasons.append(_assumed_note(policy.feedback_rule, policy.feedback_assumed))
        windows.append([fb[0], None])

    # --- deletion (R4) ---------------------------------------------------------------------
    if deleted_at is not None:
        rules.add("R4")
        closed = False
        for w in windows:
            if w[1] is None or w[1] > deleted_at:
                w[1] = deleted_at
                closed = True
        reasons.append(f"R4: deleted at {f(deleted_at)} (event id {deleted[2]})"  # type: ignore[index]
                       + (f"; open windows closed at {f(deleted_at)}" if closed else ""))
        if ignored:
            reasons.append(f"R4: {_n(len(ignored), 'later event')} after the deletion ignored "
                           f"(first at {f(ignored[0][0])}, event id {ignored[0][2]})")

    # --- merge (R6) --------------------------------------------------------------------------
    if len(windows) > 1:
        windows.sort(key=lambda w: w[0])
        merged: list[list[Any]] = []
        for w in windows:
            if merged and (merged[-1][1] is None or w[0] <= merged[-1][1]):
                last_w = merged[-1]
                if last_w[1] is not None and (w[1] is None or w[1] > last_w[1]):
                    last_w[1] = w[1]
            else:
                merged.append(w)
        if len(merged) < len(windows):
            rules.add("R6")
            reasons.append(f"R6: {len(windows)} overlapping windows merged into {len(merged)}")
    else:
        merged = windows

    # --- copies and expiry (R5) ------------------------------------------------------------
    candidates: list[tuple[datetime, Any, datetime]] = []  # (end, copy, anchor)
    for copy in policy.copies:
        of = copy.of
        anchor: datetime | None = None
        if of == "deleted":
            anchor = deleted_at
        elif of == "incognito":
            anchor = incognito_last
        elif of == "setting_off":
            anchor = lasts[OFF][0][0] if counts[OFF] else None
        elif of == "training":
            if copy.ends_on_delete and deleted_at is not None:
                continue
            if copy.anchor == "last_eligible_activity":
                on, assumed_on = lasts[ON], lasts[ASSUMED_ON]
                if on is None or (assumed_on is not None and assumed_on[0][0] > on[0][0]):
                    on = assumed_on
                anchor = on[0][0] if on is not None else None
            else:  # last_activity_in_window; unknown activities reckoned as if on (A10)
                anchor = lasts[UNKNOWN][0][0] if counts[UNKNOWN] else None
                if has_activity_window:
                    for a in reversed(activities):
                        if anchor is not None and a[0] <= anchor:
                            break
                        t = a[0]
                        for w in merged:
                            if w[0] <= t and (w[1] is None or t < w[1]):
                                anchor = t
                                break
                        if anchor == t:
                            break
        else:  # feedback: each one
            for fb in feedback:
                if (copy.start is None or fb[0] >= copy.start) and (
                        copy.end is None or fb[0] < copy.end):
                    candidates.append((copy.duration.after(fb[0]), copy, fb[0]))
            continue
        if anchor is not None and (copy.start is None or anchor >= copy.start) and (
                copy.end is None or anchor < copy.end):
            candidates.append((copy.duration.after(anchor), copy, anchor))

    expires_at: datetime | None = None
    basis = None
    for hold in policy.holds:
        if deleted_at is None and incognito_last is None:
            continue
        hold_reason = _hold(policy, hold, judged, account, deleted_at, incognito_last,
                            incognito_plan, f)
        if hold_reason is not None:
            rules.add(hold.rule)
            reasons.append(hold_reason)
            basis = f"{hold.rule}: legal hold"
            break
    if basis is None:
        if candidates:
            if len(candidates) > 1:
                # Latest first; among equal dates the data file's order (a stable sort).
                candidates.sort(key=lambda c: c[0], reverse=True)
            expires_at = candidates[0][0]
            basis = candidates[0][1].basis
            done: list[Any] = []
            for end, copy, anchor in candidates:
                if copy in done:
                    continue  # one reason per copy: its latest date
                done.append(copy)
                rules.add(copy.rule)
                reasons.append(f"{copy.rule}: kept until {f(end)}: {copy.basis_text} (from "
                               f"{f(anchor)}){'; ASSUMED' if copy.assumed else ''}")
                if copy.also is not None:
                    reasons.append(f"{copy.rule}: {copy.also_text}: {copy.also} after "
                                   f"{f(anchor)} = {f(copy.also.after(anchor))}")
        else:
            if not judged:
                rule = policy.kept_consumer_rule if feedback else "R5"
            elif last_plan is not None and plan_class[last_plan] == COMMERCIAL:
                rule = policy.kept_commercial_rule
            else:
                rule = policy.kept_consumer_rule
            rules.add(rule)
            basis = _no_end_basis(rule, deleted_at is not None)
            reasons.append(basis)

    expired = expires_at is not None and expires_at <= as_of
    if expired:
        assert expires_at is not None
        rules.add("R9")
        closing = False
        for w in merged:
            if w[1] is None or w[1] > expires_at:
                w[1] = max(expires_at, w[0])
                closing = True
        reasons.append(f"R9: expired at {f(expires_at)}: the provider's copies are gone"
                       + ("; open windows closed then" if closing else ""))

    # --- the chat as a whole -----------------------------------------------------------------
    if any(w[1] is None for w in merged):
        training = "yes"
    elif merged:
        training = "was"
    elif counts[UNKNOWN]:
        training = "unknown"
    else:
        training = "no"
    if not activities:
        incognito = bool(seen_flags) and all(seen_flags)
        if not feedback and deleted is None:
            rules.add("R7")
            reasons.append(_R7_SEEN)
    else:
        incognito = all(a[4] & INCOGNITO_FLAG for a in activities)
    if deleted is None and not incognito:
        reasons.append(_R5_HISTORY)

    first_activity = activities[0][0] if activities else None
    data = {
        "provider": key[0],
        "account": key[1],
        "chat_id": key[2],
        "title": title_ev[3] if title_ev is not None else None,
        "kind": KINDS[kind_ev[4] & CODE_FLAG] if kind_ev is not None else None,
        "incognito": incognito,
        "first_activity": f(first_activity) if first_activity else None,
        "last_activity": f(activities[-1][0]) if activities else None,
        "deleted_at": f(deleted_at) if deleted_at else None,
        "training": training,
        "training_windows": [{"from": f(w[0]), "until": f(w[1]) if w[1] else None}
                             for w in merged],
        "expires_at": f(expires_at) if expires_at else None,
        "expiry_basis": basis,
        "expired": expired,
        "reasons": reasons,
        "policies": sorted(rules),
    }

    # --- the span of as_of values for which this row holds ---------------------------------
    valid_from = events[n - 1][0]
    times = account.event_times
    i = bisect_right(times, as_of) if times else 0
    if i and times[i - 1] > valid_from:
        valid_from = times[i - 1]
    valid_until = events[n][0] if n < len(events) else None
    if i < len(times) and (valid_until is None or times[i] < valid_until):
        valid_until = times[i]
    if expires_at is not None:
        if expired:
            valid_from = max(valid_from, expires_at)
        elif valid_until is None or expires_at < valid_until:
            valid_until = expires_at
    return Verdict(data, first_activity, valid_from, valid_until)


def _hold(policy: ProviderPolicy, hold: Any, judged: list[Any], account: AccountView,
          deleted_at: datetime | None, incognito_last: datetime | None,
          incognito_plan: str | None, f: Any) -> str | None:
    """The reason a legal hold (O4) keeps this chat, or None."""
    def held(plan: str | None) -> bool:
        if plan is None:  # none seen: a consumer plan (R8), any of which the hold may name
            return any(p in hold.plans for p in policy.consumer_plans)
        return plan in hold.plans

    span = f"[{fmt(hold.start)}, {fmt(hold.end)})"

    def said(plan: str | None) -> str:
        name = f"plan {plan}" if plan else "a consumer plan (none recorded, ASSUMED)"
        if hold.assumed and (not hold.assumed_plans or plan in hold.assumed_plans):
            return f"{name}: kept with no end date (ASSUMED: {hold.assumed})"
        return f"{name}: kept with no end date"
    if "deleted_inside" in hold.covers and deleted_at is not None and (
            hold.start <= deleted_at < hold.end):
        plan = _plan_at_deletion(policy, judged, account, deleted_at)
        if held(plan):
            return (f"{hold.rule}: legal hold: deleted at {f(deleted_at)}, inside {span}, on "
                    f"{said(plan)}")
    if "incognito_copy_overlaps" in hold.covers and incognito_last is not None and held(
            incognito_plan):
        ends = [c.duration.after(incognito_last) for c in policy.copies_of("incognito")]
        copy_end = max(ends) if ends else incognito_last
        if incognito_last < hold.end and copy_end > hold.start:
            return (f"{hold.rule}: legal hold: the temporary copy of {f(incognito_last)} (kept "
                    f"until {f(copy_end)}) overlaps {span}, on {said(incognito_plan)}")
    return None


def _plan_at_deletion(policy: ProviderPolicy, judged: list[Any], account: AccountView,
                      deleted_at: datetime) -> str | None:
    """The plan in force at D: the last activity's own plan, else the account's at D."""
    if judged and len(judged[-1][0]) > 5:
        return policy.canonical_plan(judged[-1][0][5])
    plan_ev = account.plan_at(deleted_at)
    return None if plan_ev is None else policy.canonical_plan(plan_ev[3])
