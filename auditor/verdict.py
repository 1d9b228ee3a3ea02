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
from operator import itemgetter
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



_first = itemgetter(0)
_DAYS: dict[int, str] = {}
_HOURS_MINUTES = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_SECONDS = [f"{s:02d}Z" for s in range(60)]


def fmt(dt: datetime) -> str:
    """auditor.times.format_time, with a fast path for whole-second UTC times (a report
    formats several times per chat): each day formatted once, hours and minutes, and
    seconds, from small tables."""
    if dt.microsecond or dt.tzinfo is not UTC:
        return format_time(dt)
    day = _DAYS.get(dt.toordinal())
    if day is None:
        day = _DAYS[dt.toordinal()] = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T"
    return f"{day}{_HOURS_MINUTES[dt.hour * 60 + dt.minute]}{_SECONDS[dt.second]}"


@lru_cache(maxsize=1024)
def _n(count: int, word: str) -> str:
    """"1 activity", "3 activities"."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


class AccountView:
    """An account's consent and plan timelines, compressed to one state per instant (R2)."""

    __slots__ = ("bounds", "consent_states", "consent_times", "event_times", "notes",
                 "plan_states", "plan_times", "segment_policy", "segments", "switch_off_times",
                 "switch_offs", "texts")

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
        # Between two bounds all is one: per segment (bisect_right(bounds, at)), the account's
        # state as `segment` works it out, filled as activities reach it.
        self.segments: list[Segment | None] = []
        self.segment_policy: ProviderPolicy | None = None

    def segment_table(self, policy: ProviderPolicy) -> list[Segment | None]:
        """The per-segment states for `policy` (a fresh table if the policy is another)."""
        if self.segment_policy is not policy:
            self.segment_policy = policy
            self.segments = [None] * (len(self.bounds) + 1)
        return self.segments

    def segment(self, policy: ProviderPolicy, seg: int, at: datetime) -> Segment:
        """The account's state for an activity at `at`, in segment `seg` (see `Segment`).

        Every instant of a segment gives the same state: the plan, setting and switch-off
        times and the era edges are all among the bounds."""
        state = Segment()
        plan_ev = self.plan_at(at)
        if plan_ev is None:
            state.note_key, state.note, plan = None, _no_plan_note(policy), None
        else:
            state.note_key, state.note = plan_ev[2], self.plan_note(policy, plan_ev)
            plan = policy.canonical_plan(plan_ev[3])
        state.plan = plan
        state.commercial = plan is not None and policy.plan_class[plan] == COMMERCIAL
        state.era = era = policy.era_at(at)
        setting = None
        if era is None or era.eligible == "never":
            verdict = BEFORE
        else:
            setting = self.setting_at(at)
            if setting is None:
                verdict = UNKNOWN if era.missing == "unknown" else ASSUMED_ON
            else:
                verdict = ON if setting[3] else OFF
        state.setting, state.verdict = setting, verdict
        state.setting_note = None
        if verdict == OFF:
            assert era is not None and setting is not None
            state.setting_note = self.setting_note(era.off_rule, setting, policy)
        # How an activity with no plan of its own and no incognito flag is judged.
        state.judged = COMMERCIAL_PLAN if state.commercial else verdict
        state.eligible = not state.commercial and verdict in (ON, ASSUMED_ON)
        state.opens = state.opens_end = state.off = state.off_note = None
        if verdict in (ON, ASSUMED_ON):
            assert era is not None
            if setting is not None:
                state.opens = f"{era.rule}: eligible from "
                state.opens_end = ") while the setting was on"
                state.opens_rules = (era.rule,)
                state.setting_note = self.setting_note(era.rule, setting, policy)
            else:
                state.opens = f"{era.missing_rule}: eligible from "
                state.opens_end = (") with no setting recorded at or before it; ASSUMED on, "
                                   "the default")
                state.opens_rules = (era.rule, era.missing_rule or era.rule)
            state.closes = era.switch_off == "closes_windows"
            i = bisect_right(self.switch_off_times, at)
            if i < len(self.switch_offs):
                state.off = self.switch_offs[i]
                state.off_note = self.switch_off_note(era, state.off, policy)
        self.segment_table(policy)[seg] = state
        return state

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


class _Texts(dict[datetime, str]):
    """A chat's formatted times, each formatted once: `texts[dt]`; the account's event
    times come formatted already."""

    __slots__ = ("account",)

    def __init__(self, account: dict[datetime, str]) -> None:
        self.account = account

    def __missing__(self, dt: datetime) -> str:
        text = self[dt] = self.account.get(dt) or fmt(dt)
        return text


class Segment:
    """An account's state between two of its bounds, as an activity there is judged (R3,
    R8): the key and text of the plan's reason, the canonical plan and whether it is
    commercial, the training era, the setting event in force and the verdict it gives (and
    the verdict of an activity with neither its own plan nor the incognito flag, and whether
    that opens a window); the reason naming the setting where it is on or off (None if none
    is recorded). Where that verdict opens a window: the fixed parts of the reason that says
    so and the rules it names, whether a switch-off closes windows, and the first switch-off
    after the segment's start (or None) with the reason naming it."""

    __slots__ = ("closes", "commercial", "eligible", "era", "judged", "note", "note_key", "off",
                 "off_note", "opens", "opens_end", "opens_rules", "plan", "setting",
                 "setting_note", "verdict")

    note_key: Any
    note: str
    plan: str | None
    commercial: bool
    era: Any
    setting: tuple[Any, ...] | None
    verdict: int
    judged: int
    eligible: bool
    opens: str | None
    opens_end: str | None
    opens_rules: tuple[str, ...]
    setting_note: str | None
    closes: bool
    off: tuple[Any, ...] | None
    off_note: str | None


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
    data, first_activity, expires_at, expired = _judge(policy, key, events, n, account, as_of)

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


def evaluate_row(policy: ProviderPolicy, key: tuple[str, str, str],
                 events: list[tuple[Any, ...]], account: AccountView,
                 as_of: datetime) -> dict[str, Any] | None:
    """`evaluate(...).data` alone (a fresh row), for a one-shot audit that caches nothing."""
    n = bisect_left(events, (as_of, 9)) if events[-1][0] > as_of else len(events)
    if n == 0:
        return None
    return _judge(policy, key, events, n, account, as_of)[0]


def _judge(policy: ProviderPolicy, key: tuple[str, str, str], events: list[tuple[Any, ...]],
           n: int, account: AccountView, as_of: datetime
           ) -> tuple[dict[str, Any], datetime | None, datetime | None, bool]:
    """The row of a chat's first `n` events (those at or before `as_of`), its first activity,
    its expiry and whether that has passed."""
    f = _Texts(account.texts)  # f[dt]: the time as the report writes it

    reasons: list[str] = []
    rules: set[str] = {"R5"}

    # --- the chat's own events, up to the first deletion (R4); each activity judged (R3) ---
    plan_class = policy.plan_class
    segments = account.segment_table(policy)
    bounds = account.bounds
    segment = -1
    state: Segment | None = None  # the account's state at the activity
    deleted: tuple[Any, ...] | None = None
    end = n  # the events before the deletion: events[:end]
    ignored = 0  # events after the deletion
    first_ignored: tuple[Any, ...] | None = None
    activities: list[tuple[Any, ...]] = []
    feedback: list[tuple[Any, ...]] = []
    seen_flags: list[bool] = []
    counts = [0] * 7
    lasts: list[Any] = [None] * 7    # per verdict: the last activity judged so
    # (activity, state): the first activity judged on in each segment; a later one there is
    # inside the window it opened or was in (the window ends at a bound, if at all).
    eligible: list[tuple[tuple[Any, ...], Segment]] = []
    opened_seg = -1
    commercial_plans: set[str] = set()
    plan_notes: dict[Any, str] = {}
    incognito_last = incognito_plan = None
    flagged = 0  # activities flagged incognito
    for e in events if n == len(events) else events[:n]:
        if e[1] == ACTIVITY:
            activities.append(e)
            # Between two account events (or era boundaries) the plan, era and setting are one.
            seg = bisect_right(bounds, e[0])
            if seg != segment:
                segment = seg
                state = segments[seg] or account.segment(policy, seg, e[0])
                if state.note_key not in plan_notes:
                    plan_notes[state.note_key] = state.note
            if len(e) == 5 and not e[4] & INCOGNITO_FLAG:
                # The common case: no plan of its own, not incognito: judged as its segment.
                verdict = state.judged
                if state.eligible:
                    if seg != opened_seg:
                        eligible.append((e, state))
                        opened_seg = seg
                elif state.commercial:
                    commercial_plans.add(state.plan)
            else:
                if len(e) > 5:  # the activity's own plan
                    own = e[5]
                    plan = policy.canonical_plan(own)
                    commercial = plan_class[plan] == COMMERCIAL
                    if own not in plan_notes:
                        plan_notes[own] = (f"{policy.plan_rule}: activity at {f[e[0]]} carried "
                                           f"its own plan {own} ({plan_class[own]}; event id "
                                           f"{e[2]})")
                else:
                    plan, commercial = state.plan, state.commercial
                if e[4] & INCOGNITO_FLAG:
                    incognito_last, incognito_plan = e[0], plan
                    flagged += 1
                    verdict = COMMERCIAL_PLAN if commercial else INCOGNITO
                elif commercial:
                    verdict = COMMERCIAL_PLAN
                else:
                    verdict = state.verdict
                    if state.opens is not None and seg != opened_seg:
                        eligible.append((e, state))
                        opened_seg = seg
                if commercial:
                    commercial_plans.add(plan)
            counts[verdict] += 1
            lasts[verdict] = e
        elif e[1] == DELETED:
            deleted = e
            break
        elif e[1] == FEEDBACK:
            feedback.append(e)
        elif e[4] is not None:
            seen_flags.append(e[4])
    deleted_at = None
    if deleted is not None:
        deleted_at = deleted[0]
        end = bisect_left(events, deleted)  # events are unique: its index
        for e in events[end + 1:n]:
            if e[1] != DELETED:
                ignored += 1
                if first_ignored is None:
                    first_ignored = e
    # The plan of the last activity (its own, else its account's).
    last_plan = None
    if activities:
        last = activities[-1]
        last_plan = policy.canonical_plan(last[5]) if len(last) > 5 else state.plan
    # R6: the latest title and kind, at one instant the smaller id (R2): among the last
    # instant's candidates (sorted by type, then id), the first with the smallest id.
    title_ev = _latest(events, end, True)
    kind_ev = _latest(activities, len(activities), False)
    if activities:
        rules.add("R8")
        rules.add(policy.plan_rule)
        reasons.extend(plan_notes.values())

    # --- windows opened by activity (A2, O1, G1), closed by a switch-off where the rule says
    windows: list[list[Any]] = []  # [from, until]
    current: list[Any] | None = None
    assumed_said = False
    for a, opened in eligible:
        at = a[0]
        if current is not None and (current[1] is None or at < current[1]):
            continue  # already inside an open window
        era = opened.era
        rules.update(opened.opens_rules)
        reasons.append(f"{opened.opens}{f[at]}: activity (event id {a[2]}{opened.opens_end}")
        if opened.setting_note is not None:
            reasons.append(opened.setting_note)
        if era.assumed and not assumed_said:
            assumed_said = True
            reasons.append(_assumed_note(era.rule, era.assumed))
        until = None
        off = opened.off  # the first switch-off after the activity
        if off is not None and off[0] <= (as_of if opened.closes else deleted_at or as_of):
            if opened.closes:
                until = off[0]
            rules.add(era.switch_off_rule or era.rule)
            reasons.append(opened.off_note)
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
        when = f[last[0]]
        if verdict == COMMERCIAL_PLAN:
            rules.add(policy.commercial_rule)
            reasons.append(f"{policy.commercial_rule}: {what} on commercial plan "
                           f"{', '.join(sorted(commercial_plans))} (last {when}): not "
                           "eligible, feedback aside")
        elif verdict == INCOGNITO:
            rules.add(policy.incognito_rule)
            reasons.append(f"{policy.incognito_rule}: {what} incognito or temporary (last "
                           f"{when}): never eligible by the training rule")
        elif verdict == BEFORE:
            era = policy.era_at(last[0])
            rule = era.rule if era else "R3"
            rules.add(rule)
            before = f" before {f[era.end]}" if era and era.end else ""
            reasons.append(f"{rule}: {what}{before} (last {when}): not eligible, feedback "
                           "aside")
        elif verdict == OFF:
            state = segments[bisect_right(bounds, last[0])]  # the state it was judged by
            era = state.era
            rules.add(era.off_rule)
            reasons.append(f"{era.off_rule}: {what} while the setting was off (last {when}): "
                           "not eligible by that activity")
            reasons.append(state.setting_note)
        else:
            era = segments[bisect_right(bounds, last[0])].era
            rules.add(era.missing_rule)
            reasons.append(
                f"{era.missing_rule}: {policy.setting_name} not recorded at or before {what} "
                f"(last {when}, event id {last[2]}): whether it may be trained on cannot be "
                "told; expiry reckoned as if the setting was on (ASSUMED)")

    # --- feedback (A7, O7, G6): eligible from F whatever the plan, setting or flag ----------
    for fb in feedback:
        rules.add(policy.feedback_rule)
        reasons.append(f"{policy.feedback_rule}: feedback ({fb[4]}) at {f[fb[0]]} (event id "
                       f"{fb[2]}): eligible from then whatever the plan, setting or incognito "
                       "flag")
        if policy.feedback_assumed and fb is feedback[0]:
            reasons.append(_assumed_note(policy.feedback_rule, policy.feedback_assumed))
        windows.append([fb[0], None])

    # --- deletion (R4) ---------------------------------------------------------------------
    if deleted is not None:
        rules.add("R4")
        closed = False
        for w in windows:
            if w[1] is None or w[1] > deleted_at:
                w[1] = deleted_at
                closed = True
        reasons.append(f"R4: deleted at {f[deleted[0]]} (event id {deleted[2]})"
                       + (f"; open windows closed at {f[deleted[0]]}" if closed else ""))
        if first_ignored is not None:
            reasons.append(f"R4: {_n(ignored, 'later event')} after the deletion ignored "
                           f"(first at {f[first_ignored[0]]}, event id {first_ignored[2]})")

    # --- merge (R6) --------------------------------------------------------------------------
    if len(windows) > 1:
        windows.sort(key=_first)
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
            anchor = lasts[OFF][0] if counts[OFF] else None
        elif of == "training":
            if copy.ends_on_delete and deleted_at is not None:
                continue
            if copy.anchor == "last_eligible_activity":
                on, assumed_on = lasts[ON], lasts[ASSUMED_ON]
                if on is None or (assumed_on is not None and assumed_on[0] > on[0]):
                    on = assumed_on
                anchor = on[0] if on is not None else None
            else:  # last_activity_in_window; unknown activities reckoned as if on (A10)
                anchor = lasts[UNKNOWN][0] if counts[UNKNOWN] else None
                if has_activity_window:
                    # The latest activity inside a window, walking both back in time: the
                    # merged windows are sorted and apart, so only the last one to start
                    # at or before an activity can hold it.
                    j = len(merged) - 1
                    for a in reversed(activities):
                        t = a[0]
                        if anchor is not None and t <= anchor:
                            break
                        while j >= 0 and merged[j][0] > t:
                            j -= 1
                        if j < 0:
                            break
                        if merged[j][1] is None or t < merged[j][1]:
                            anchor = t
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
    if deleted_at is not None or incognito_last is not None:
        for hold in policy.holds:
            hold_reason = _hold(policy, hold, activities, account, deleted_at, incognito_last,
                                incognito_plan, f.__getitem__)
            if hold_reason is not None:
                rules.add(hold.rule)
                reasons.append(hold_reason)
                basis = f"{hold.rule}: legal hold"
                break
    if basis is None:
        if candidates:
            if len(candidates) > 1:
                # Latest first; among equal dates the data file's order (a stable sort).
                candidates.sort(key=_first, reverse=True)
            expires_at = candidates[0][0]
            basis = candidates[0][1].basis
            texts = _copy_texts(policy)
            done: list[int] = []
            for end, copy, anchor in candidates:
                slot, kept, source, also = texts[id(copy)]
                if slot in done:
                    continue  # one reason per copy (equal copies are one): its latest date
                done.append(slot)
                rules.add(copy.rule)
                reasons.append(f"{kept}{f[end]}{source}{f[anchor]}"
                               f"{'); ASSUMED' if copy.assumed else ')'}")
                if also is not None:
                    reasons.append(f"{also}{f[anchor]} = {f[copy.also.after(anchor)]}")
        else:
            if not activities:
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
        reasons.append(f"R9: expired at {f[expires_at]}: the provider's copies are gone"
                       + ("; open windows closed then" if closing else ""))

    # --- the chat as a whole -----------------------------------------------------------------
    for w in merged:
        if w[1] is None:
            training = "yes"
            break
    else:
        training = "was" if merged else "unknown" if counts[UNKNOWN] else "no"
    if not activities:
        incognito = bool(seen_flags) and all(seen_flags)
        if not feedback and deleted is None:
            rules.add("R7")
            reasons.append(_R7_SEEN)
    else:
        incognito = flagged == len(activities)
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
        "first_activity": f[first_activity] if first_activity else None,
        "last_activity": f[activities[-1][0]] if activities else None,
        "deleted_at": f[deleted_at] if deleted_at else None,
        "training": training,
        "training_windows": [{"from": f[w[0]], "until": f[w[1]] if w[1] else None}
                             for w in merged],
        "expires_at": f[expires_at] if expires_at else None,
        "expiry_basis": basis,
        "expired": expired,
        "reasons": reasons,
        "policies": sorted(rules),
    }
    return data, first_activity, expires_at, expired


_COPY_TEXTS: dict[int, tuple[ProviderPolicy, dict[int, tuple[int, str, str, str | None]]]] = {}


def _copy_texts(policy: ProviderPolicy) -> dict[int, tuple[int, str, str, str | None]]:
    """Per copy of the policy (by id): the index of the first copy equal to it, and the
    fixed parts of its reasons (kept until ...: basis (from ..., and the `also` line)."""
    known = _COPY_TEXTS.get(id(policy))
    if known is None or known[0] is not policy:
        if len(_COPY_TEXTS) > 64:  # books come and go in tests
            _COPY_TEXTS.clear()
        texts = {}
        for copy in policy.copies:
            also = (None if copy.also is None
                    else f"{copy.rule}: {copy.also_text}: {copy.also} after ")
            texts[id(copy)] = (policy.copies.index(copy), f"{copy.rule}: kept until ",
                               f": {copy.basis_text} (from ", also)
        known = _COPY_TEXTS[id(policy)] = (policy, texts)
    return known[1]


def _latest(events: list[tuple[Any, ...]], end: int,
            titled: bool) -> tuple[Any, ...] | None:
    """Of `events[:end]` (sorted), the latest, at one instant the one with the smallest id
    (the first of equals); with `titled`, only events with a title that are not feedback."""
    i = end - 1
    if titled:
        while i >= 0 and (events[i][3] is None or events[i][1] == FEEDBACK):
            i -= 1
    if i < 0:
        return None
    best = events[i]
    at = best[0]
    i -= 1
    while i >= 0 and events[i][0] == at:
        e = events[i]
        if e[2] <= best[2] and (not titled or (e[3] is not None and e[1] != FEEDBACK)):
            best = e
        i -= 1
    return best


def _hold(policy: ProviderPolicy, hold: Any, activities: list[Any], account: AccountView,
          deleted_at: datetime | None, incognito_last: datetime | None,
          incognito_plan: str | None, f: Any) -> str | None:
    """The reason a legal hold (O4) keeps this chat, or None."""
    def held(plan: str | None) -> bool:
        if plan is None:  # none seen: a consumer plan (R8), any of which the hold may name
            return any(p in hold.plans for p in policy.consumer_plans)
        return plan in hold.plans

    def said(plan: str | None) -> str:
        name = f"plan {plan}" if plan else "a consumer plan (none recorded, ASSUMED)"
        if hold.assumed and (not hold.assumed_plans or plan in hold.assumed_plans):
            return f"{name}: kept with no end date (ASSUMED: {hold.assumed})"
        return f"{name}: kept with no end date"
    if "deleted_inside" in hold.covers and deleted_at is not None and (
            hold.start <= deleted_at < hold.end):
        plan = _plan_at_deletion(policy, activities, account, deleted_at)
        if held(plan):
            return (f"{hold.rule}: legal hold: deleted at {f(deleted_at)}, inside "
                    f"{_span(hold)}, on {said(plan)}")
    if "incognito_copy_overlaps" in hold.covers and incognito_last is not None and (
            incognito_last < hold.end) and held(incognito_plan):
        ends = [c.duration.after(incognito_last) for c in policy.copies_of("incognito")]
        copy_end = max(ends) if ends else incognito_last
        if copy_end > hold.start:
            return (f"{hold.rule}: legal hold: the temporary copy of {f(incognito_last)} (kept "
                    f"until {f(copy_end)}) overlaps {_span(hold)}, on {said(incognito_plan)}")
    return None


def _span(hold: Any) -> str:
    """"[start, end)" of a hold."""
    return f"[{fmt(hold.start)}, {fmt(hold.end)})"


def _plan_at_deletion(policy: ProviderPolicy, activities: list[Any], account: AccountView,
                      deleted_at: datetime) -> str | None:
    """The plan in force at D: the last activity's own plan, else the account's at D."""
    if activities and len(activities[-1]) > 5:
        return policy.canonical_plan(activities[-1][5])
    plan_ev = account.plan_at(deleted_at)
    return None if plan_ev is None else policy.canonical_plan(plan_ev[3])
