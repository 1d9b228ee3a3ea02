"""Providers' rules as data: load and check `auditor/policies/*.toml` into a `PolicyBook`.

POLICIES.md part 1 is the rule book; each provider's file holds its plans, dates,
durations, and which rule decides what, each rule with the part 2 sources it rests on. A
changed term or a new provider is an edit of a data file, not an `if` in the engine: the
engine (auditor/engine.py) only knows the small vocabulary checked here.

The vocabulary of a provider file (`kind = "provider"`):

- `provider`, `name`, `setting_name`.
- `[plans]`: `consumer`, `commercial` (lists), `aliases` (plan -> plan), `rule` (the rule that
  says the plan in force decides), `commercial_rule` (commercial activity is not eligible).
- `[incognito] rule`, `[feedback] rule`: the rules for incognito activity (never eligible by
  the training rule) and for feedback (eligible from F whatever the plan, setting or flag);
  `[feedback] assumed`: what the rule book assumes there, said in the reasons.
- `[kept_until_deleted] consumer_rule, commercial_rule`: the rule named when no copy has a
  date and the chat is kept until the user deletes it.
- `[[training]]`: eras by activity time (`from`, `until`), each `eligible = "never"` or
  `"while_setting_on"` with `off_rule`, `missing` (`"unknown"` or `"assume_on"`, what a
  missing setting means), `missing_rule`, `switch_off` (`"closes_windows"` or
  `"keeps_windows"`), `switch_off_rule` and optional `assumed` (said when a window opens).
- `[[copy]]`: a copy the provider keeps, `of` one of `deleted` (anchor: the deletion),
  `incognito` (the last incognito activity), `setting_off` (the last activity with the
  setting off), `training` (`anchor` `last_activity_in_window` or `last_eligible_activity`;
  `ends_on_delete`), `feedback` (each feedback); a duration (`years`, `months`, `days`,
  `hours`); optional `from`/`until` on the anchor's time; `assumed`; `basis` (the
  `expiry_basis` text, starting with the rule id); optional `also` (a duration and text
  reported in reasons only, e.g. G3's 18-month account copy).
- `[[hold]]`: a legal hold, `from`/`until`, `plans`, `covers` (`deleted_inside`: deleted
  inside the window; `incognito_copy_overlaps`: an incognito copy's life overlaps it),
  `assumed` and `assumed_plans` (what is assumed, for which plans).
- `[[rule]]`: `id`, `text`, optional `from`/`until`, `sources` = [{url, tag, read}].

`general.toml` (`kind = "general"`) holds only `[[rule]]` entries (R1-R9).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from auditor.times import add_duration

POLICY_DIR = Path(__file__).with_name("policies")
SOURCE_TAGS = ("A", "S", "UNCONFIRMED", "INFERENCE")
CONSUMER, COMMERCIAL = "consumer", "commercial"
COPY_KINDS = ("deleted", "incognito", "setting_off", "training", "feedback")
TRAINING_ANCHORS = ("last_activity_in_window", "last_eligible_activity")
HOLD_COVERS = ("deleted_inside", "incognito_copy_overlaps")


class PolicyError(ValueError):
    """A policy data file that does not follow the vocabulary; names the file and the spot."""


@dataclass(frozen=True, slots=True)
class Source:
    url: str
    tag: str
    read: date


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    text: str
    sources: tuple[Source, ...]
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Duration:
    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    def after(self, dt: datetime) -> datetime:
        """R1: years and months by the calendar, days and hours exactly."""
        if not self.months and (dt.day < 29 or dt.month != 2):
            # Whole years from a day every year has: no clamping (the common case, fast).
            if self.years:
                dt = dt.replace(year=dt.year + self.years)
            if self.days or self.hours:
                dt += timedelta(days=self.days, hours=self.hours)
            return dt
        return add_duration(dt, years=self.years, months=self.months, days=self.days,
                            hours=self.hours)

    def __str__(self) -> str:
        return _duration_label(self)


@lru_cache(maxsize=64)
def _duration_label(d: Duration) -> str:
    """"5 years", "18 months", "72 hours"."""
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in (
        (d.years, "year"), (d.months, "month"), (d.days, "day"), (d.hours, "hour")) if n]
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class TrainingEra:
    """The provider's training rule for activities at times in [start, end)."""

    rule: str
    eligible: str                  # "never" | "while_setting_on"
    start: datetime | None = None
    end: datetime | None = None
    off_rule: str | None = None
    missing: str | None = None     # "unknown" | "assume_on"
    missing_rule: str | None = None
    switch_off: str | None = None  # "closes_windows" | "keeps_windows"
    switch_off_rule: str | None = None
    assumed: str | None = None     # what the rule book assumes about an opened window

    def covers(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


@dataclass(frozen=True, slots=True)
class Copy:
    """A copy the provider keeps, and how long (R5)."""

    rule: str
    of: str
    duration: Duration
    basis: str
    anchor: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    assumed: bool = False
    ends_on_delete: bool = False
    also: Duration | None = None
    also_text: str | None = None

    @property
    def basis_text(self) -> str:
        """The basis without its rule id: "last activity in a window + 5 years"."""
        return self.basis[len(self.rule) + 2:]

    def applies_to(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold: copies it caught have no end date."""

    rule: str
    start: datetime
    end: datetime
    plans: frozenset[str]
    covers: tuple[str, ...]
    assumed: str | None = None
    assumed_plans: frozenset[str] = frozenset()   # where `assumed` applies (all if empty)


@dataclass(frozen=True, slots=True)
class ProviderPolicy:
    provider: str
    name: str
    setting_name: str
    plan_rule: str
    plan_class: Mapping[str, str]          # every plan name (aliases too) -> consumer|commercial
    aliases: Mapping[str, str]
    consumer_plans: tuple[str, ...]
    commercial_rule: str
    incognito_rule: str
    feedback_rule: str
    feedback_assumed: str | None
    kept_consumer_rule: str
    kept_commercial_rule: str
    training: tuple[TrainingEra, ...]
    copies: tuple[Copy, ...]
    holds: tuple[Hold, ...]
    rules: Mapping[str, Rule]

    def era_at(self, at: datetime) -> TrainingEra | None:
        for era in self.training:
            if (era.end is None or at < era.end) and (era.start is None or at >= era.start):
                return era
        return None

    def canonical_plan(self, plan: str) -> str:
        return self.aliases.get(plan, plan)

    def copies_of(self, of: str) -> tuple[Copy, ...]:
        return tuple(c for c in self.copies if c.of == of)


@dataclass(frozen=True)
class PolicyBook:
    """All providers' policies plus the general rules, checked on load."""

    providers: Mapping[str, ProviderPolicy]
    general: Mapping[str, Rule]
    rules: Mapping[str, Rule] = field(init=False)

    def __post_init__(self) -> None:
        merged: dict[str, Rule] = dict(self.general)
        for policy in self.providers.values():
            merged.update(policy.rules)
        object.__setattr__(self, "rules", merged)

    @classmethod
    def load(cls, directory: Path | str | None = None) -> PolicyBook:
        """Read every `*.toml` in `directory` (default: the package's policies)."""
        folder = Path(directory) if directory is not None else POLICY_DIR
        files = sorted(folder.glob("*.toml"))
        if not files:
            raise PolicyError(f"{folder}: no policy files (*.toml) found")
        docs = []
        for path in files:
            try:
                with path.open("rb") as fh:
                    docs.append((path.name, tomllib.load(fh)))
            except tomllib.TOMLDecodeError as exc:
                raise PolicyError(f"{path.name}: not valid TOML: {exc}") from None
        return cls.from_documents(docs)

    @classmethod
    def from_documents(cls, docs: Iterable[tuple[str, Mapping[str, Any]]]) -> PolicyBook:
        """Build from parsed TOML documents, named for error messages."""
        general: dict[str, Rule] = {}
        providers: dict[str, ProviderPolicy] = {}
        seen_ids: dict[str, str] = {}
        for name, doc in docs:
            kind = doc.get("kind")
            rules = _rules(name, doc.get("rule"))
            for rule_id in rules:
                if rule_id in seen_ids:
                    raise PolicyError(f"{name}: rule {rule_id} is already defined in "
                                      f"{seen_ids[rule_id]}")
                seen_ids[rule_id] = name
            if kind == "general":
                _only(name, "", doc, {"kind", "rule"})
                general.update(rules)
            elif kind == "provider":
                policy = _provider(name, doc, rules)
                if policy.provider in providers:
                    raise PolicyError(f"{name}: provider {policy.provider} is defined twice")
                providers[policy.provider] = policy
            else:
                raise PolicyError(f"{name}: 'kind' must be \"general\" or \"provider\", "
                                  f"not {kind!r}")
        if not general:
            raise PolicyError("no general rules (a file with kind = \"general\") were found")
        for policy in providers.values():
            for rule_id in _referenced(policy):
                if rule_id not in policy.rules and rule_id not in general:
                    raise PolicyError(f"{policy.provider}: rule {rule_id} is referenced but "
                                      "not defined in a [[rule]] entry")
        return cls(providers=providers, general=general)

    def policy(self, provider: str) -> ProviderPolicy:
        try:
            return self.providers[provider]
        except KeyError:
            raise PolicyError(f"no policy for provider {provider!r}") from None

    def plan_class(self, provider: str, plan: str) -> str:
        """R8: consumer or commercial; an unknown plan is invalid input."""
        cls_ = self.policy(provider).plan_class.get(plan)
        if cls_ is None:
            raise PolicyError(f"{plan!r} is not a {provider} plan (R8)")
        return cls_


_DEFAULT_BOOK: PolicyBook | None = None


def default_book() -> PolicyBook:
    """The package's own policies, loaded once."""
    global _DEFAULT_BOOK
    if _DEFAULT_BOOK is None:
        _DEFAULT_BOOK = PolicyBook.load()
    return _DEFAULT_BOOK


# --- checking helpers ---------------------------------------------------------------------


def _only(name: str, where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise PolicyError(f"{name}: {where or 'top level'}: unknown key(s) {', '.join(extra)} "
                          f"(allowed: {', '.join(sorted(allowed))})")


def _need(name: str, where: str, table: Mapping[str, Any], key: str, typ: type) -> Any:
    if key not in table:
        raise PolicyError(f"{name}: {where}: '{key}' is missing")
    return _opt(name, where, table, key, typ)


def _opt(name: str, where: str, table: Mapping[str, Any], key: str, typ: type,
         default: Any = None) -> Any:
    value = table.get(key, default)
    if value is default:
        return value
    wrong = type(value) is not bool if typ is bool else not isinstance(value, typ)
    if wrong:
        raise PolicyError(f"{name}: {where}: '{key}' must be {typ.__name__}, not {value!r}")
    if typ is str and not value:
        raise PolicyError(f"{name}: {where}: '{key}' must not be empty")
    return value


def _time(name: str, where: str, table: Mapping[str, Any], key: str) -> datetime | None:
    """R1: a date means 00:00:00Z; a date-time must carry a zone."""
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PolicyError(f"{name}: {where}: '{key}' = {value} needs a zone (write Z)")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise PolicyError(f"{name}: {where}: '{key}' must be a TOML date or date-time, not {value!r}")


def _span(name: str, where: str, table: Mapping[str, Any]) -> tuple[datetime | None,
                                                                      datetime | None]:
    start, end = _time(name, where, table, "from"), _time(name, where, table, "until")
    if start is not None and end is not None and start >= end:
        raise PolicyError(f"{name}: {where}: 'from' must be before 'until'")
    return start, end


def _duration(name: str, where: str, table: Mapping[str, Any]) -> Duration:
    values = {}
    for unit in ("years", "months", "days", "hours"):
        n = table.get(unit, 0)
        if type(n) is not int or n < 0:
            raise PolicyError(f"{name}: {where}: '{unit}' must be a whole number >= 0")
        values[unit] = n
    duration = Duration(**values)
    if not any(values.values()):
        raise PolicyError(f"{name}: {where}: needs a duration (years, months, days or hours)")
    return duration


def _rules(name: str, entries: Any) -> dict[str, Rule]:
    if not isinstance(entries, list) or not entries:
        raise PolicyError(f"{name}: needs [[rule]] entries")
    rules: dict[str, Rule] = {}
    for i, entry in enumerate(entries):
        where = f"[[rule]] #{i + 1}"
        _only(name, where, entry, {"id", "text", "from", "until", "sources"})
        rule_id = _need(name, where, entry, "id", str)
        where = f"rule {rule_id}"
        if rule_id in rules:
            raise PolicyError(f"{name}: {where} is defined twice")
        start, end = _span(name, where, entry)
        sources = entry.get("sources")
        if not isinstance(sources, list) or not sources:
            raise PolicyError(f"{name}: {where}: needs at least one source {{url, tag, read}}")
        parsed = []
        for j, src in enumerate(sources):
            at = f"{where} source #{j + 1}"
            if not isinstance(src, dict):
                raise PolicyError(f"{name}: {at}: must be a table {{url, tag, read}}")
            _only(name, at, src, {"url", "tag", "read"})
            tag = _need(name, at, src, "tag", str)
            if tag not in SOURCE_TAGS:
                raise PolicyError(f"{name}: {at}: tag must be one of {', '.join(SOURCE_TAGS)}, "
                                  f"not {tag!r}")
            read = src.get("read")
            if not isinstance(read, date) or isinstance(read, datetime):
                raise PolicyError(f"{name}: {at}: 'read' must be a date (2026-11-28)")
            parsed.append(Source(url=_need(name, at, src, "url", str), tag=tag, read=read))
        rules[rule_id] = Rule(id=rule_id, text=_need(name, where, entry, "text", str),
                              sources=tuple(parsed), start=start, end=end)
    return rules


def _provider(name: str, doc: Mapping[str, Any], rules: dict[str, Rule]) -> ProviderPolicy:
    _only(name, "", doc, {"kind", "provider", "name", "setting_name", "plans", "incognito",
                          "feedback", "kept_until_deleted", "training", "copy", "hold", "rule"})
    provider = _need(name, "top level", doc, "provider", str)

    plans = _need(name, "top level", doc, "plans", dict)
    _only(name, "[plans]", plans, {"rule", "consumer", "commercial", "aliases",
                                   "commercial_rule"})
    plan_class: dict[str, str] = {}
    for cls_ in (CONSUMER, COMMERCIAL):
        names = _need(name, "[plans]", plans, cls_, list)
        for plan in names:
            if not isinstance(plan, str) or not plan:
                raise PolicyError(f"{name}: [plans]: {cls_} plans must be names")
            if plan in plan_class:
                raise PolicyError(f"{name}: [plans]: {plan!r} is listed twice")
            plan_class[plan] = cls_
    aliases = dict(_opt(name, "[plans]", plans, "aliases", dict, {}) or {})
    for alias, target in aliases.items():
        if target not in plan_class:
            raise PolicyError(f"{name}: [plans]: alias {alias!r} names unknown plan {target!r}")
        if alias in plan_class:
            raise PolicyError(f"{name}: [plans]: alias {alias!r} is also a plan")
        plan_class[alias] = plan_class[target]

    def section_rule(key: str) -> str:
        table = _need(name, "top level", doc, key, dict)
        _only(name, f"[{key}]", table, {"rule", "assumed"})
        return _need(name, f"[{key}]", table, "rule", str)

    def section_assumed(key: str) -> str | None:
        return _opt(name, f"[{key}]", doc[key], "assumed", str)

    kept = _need(name, "top level", doc, "kept_until_deleted", dict)
    _only(name, "[kept_until_deleted]", kept, {"consumer_rule", "commercial_rule"})

    training = []
    for i, entry in enumerate(_need(name, "top level", doc, "training", list)):
        where = f"[[training]] #{i + 1}"
        _only(name, where, entry, {"rule", "from", "until", "eligible", "off_rule", "missing",
                                   "missing_rule", "switch_off", "switch_off_rule", "assumed"})
        start, end = _span(name, where, entry)
        eligible = _need(name, where, entry, "eligible", str)
        era = TrainingEra(rule=_need(name, where, entry, "rule", str), eligible=eligible,
                          start=start, end=end)
        if eligible == "while_setting_on":
            missing = _need(name, where, entry, "missing", str)
            switch_off = _need(name, where, entry, "switch_off", str)
            if missing not in ("unknown", "assume_on"):
                raise PolicyError(f"{name}: {where}: 'missing' must be unknown or assume_on")
            if switch_off not in ("closes_windows", "keeps_windows"):
                raise PolicyError(f"{name}: {where}: 'switch_off' must be closes_windows or "
                                  "keeps_windows")
            era = TrainingEra(rule=era.rule, eligible=eligible, start=start, end=end,
                              off_rule=_need(name, where, entry, "off_rule", str),
                              missing=missing,
                              missing_rule=_need(name, where, entry, "missing_rule", str),
                              switch_off=switch_off,
                              switch_off_rule=_need(name, where, entry, "switch_off_rule", str),
                              assumed=_opt(name, where, entry, "assumed", str))
        elif eligible != "never":
            raise PolicyError(f"{name}: {where}: 'eligible' must be never or while_setting_on")
        training.append(era)
    training.sort(key=lambda e: e.start or datetime.min.replace(tzinfo=UTC))
    for a, b in pairwise(training):
        if a.end is None or b.start is None or a.end > b.start:
            raise PolicyError(f"{name}: [[training]] eras {a.rule} and {b.rule} overlap")

    copies = []
    for i, entry in enumerate(doc.get("copy", [])):
        where = f"[[copy]] #{i + 1}"
        _only(name, where, entry, {"rule", "of", "anchor", "from", "until", "years", "months",
                                   "days", "hours", "assumed", "ends_on_delete", "basis",
                                   "also"})
        rule_id = _need(name, where, entry, "rule", str)
        of = _need(name, where, entry, "of", str)
        if of not in COPY_KINDS:
            raise PolicyError(f"{name}: {where}: 'of' must be one of {', '.join(COPY_KINDS)}")
        anchor = _opt(name, where, entry, "anchor", str)
        if (of == "training") != (anchor is not None) or (
                anchor is not None and anchor not in TRAINING_ANCHORS):
            raise PolicyError(f"{name}: {where}: a training copy needs 'anchor' (one of "
                              f"{', '.join(TRAINING_ANCHORS)}); other copies take none")
        basis = _need(name, where, entry, "basis", str)
        if not basis.startswith(f"{rule_id}: "):
            raise PolicyError(f"{name}: {where}: 'basis' must start with \"{rule_id}: \"")
        start, end = _span(name, where, entry)
        also = _opt(name, where, entry, "also", dict)
        also_duration = also_text = None
        if also is not None:
            _only(name, f"{where} also", also, {"years", "months", "days", "hours", "text"})
            also_duration = _duration(name, f"{where} also", also)
            also_text = _need(name, f"{where} also", also, "text", str)
        copies.append(Copy(
            rule=rule_id, of=of, duration=_duration(name, where, entry), basis=basis,
            anchor=anchor, start=start, end=end,
            assumed=_opt(name, where, entry, "assumed", bool, False),
            ends_on_delete=_opt(name, where, entry, "ends_on_delete", bool, False),
            also=also_duration, also_text=also_text))

    holds = []
    for i, entry in enumerate(doc.get("hold", [])):
        where = f"[[hold]] #{i + 1}"
        _only(name, where, entry, {"rule", "from", "until", "plans", "covers", "assumed",
                                   "assumed_plans"})
        start, end = _span(name, where, entry)
        if start is None or end is None:
            raise PolicyError(f"{name}: {where}: needs 'from' and 'until'")
        held = _need(name, where, entry, "plans", list)
        for plan in held:
            if plan not in plan_class:
                raise PolicyError(f"{name}: {where}: {plan!r} is not a {provider} plan")
        covers = _need(name, where, entry, "covers", list)
        if not covers or any(c not in HOLD_COVERS for c in covers):
            raise PolicyError(f"{name}: {where}: 'covers' must list some of "
                              f"{', '.join(HOLD_COVERS)}")
        holds.append(Hold(rule=_need(name, where, entry, "rule", str), start=start, end=end,
                          plans=frozenset(aliases.get(p, p) for p in held),
                          covers=tuple(covers),
                          assumed=_opt(name, where, entry, "assumed", str),
                          assumed_plans=frozenset(aliases.get(p, p) for p in _opt(
                              name, where, entry, "assumed_plans", list, []) or [])))

    return ProviderPolicy(
        provider=provider,
        name=_need(name, "top level", doc, "name", str),
        setting_name=_need(name, "top level", doc, "setting_name", str),
        plan_rule=_need(name, "[plans]", plans, "rule", str),
        plan_class=plan_class,
        aliases=aliases,
        consumer_plans=tuple(p for p, c in plan_class.items()
                             if c == CONSUMER and p not in aliases),
        commercial_rule=_need(name, "[plans]", plans, "commercial_rule", str),
        incognito_rule=section_rule("incognito"),
        feedback_rule=section_rule("feedback"),
        feedback_assumed=section_assumed("feedback"),
        kept_consumer_rule=_need(name, "[kept_until_deleted]", kept, "consumer_rule", str),
        kept_commercial_rule=_need(name, "[kept_until_deleted]", kept, "commercial_rule", str),
        training=tuple(training),
        copies=tuple(copies),
        holds=tuple(holds),
        rules=rules,
    )


def _referenced(policy: ProviderPolicy) -> set[str]:
    ids = {policy.plan_rule, policy.commercial_rule, policy.incognito_rule,
           policy.feedback_rule, policy.kept_consumer_rule, policy.kept_commercial_rule}
    for era in policy.training:
        ids.update(r for r in (era.rule, era.off_rule, era.missing_rule, era.switch_off_rule)
                   if r)
    ids.update(c.rule for c in policy.copies)
    ids.update(h.rule for h in policy.holds)
    return ids
