"""The engine: folds events into per-account timelines and per-chat event lists, and answers
each chat's audit row (CONTRACT section 4) as of a time.

Design, for speed and memory (ARCHITECTURE.md: incremental, replayed once, then one event
at a time):

- An event is parsed once into a small tuple and kept in a sorted list: per chat
  `(at, type, id, ...)`, per account the consent and plan events. Sorting by content
  (time, then type, then the value rank, then id) makes the result independent of the order
  in which events arrived (R2); an event id seen twice is kept once.
- Each chat's row is cached with the span of `as_of` values for which it holds: from the
  last event it used (or its expiry, once passed) to the next event of the chat or its
  account (or its expiry). An event drops the chat's entry; a consent or plan event bumps the
  account's generation, which voids the cached rows of all its chats at once.
- The evaluation itself lives in `auditor/verdict.py`; the rules as data in
  `auditor/policies/`, loaded by `auditor/policy.py`.
"""

from __future__ import annotations

import gc
import sys
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from auditor.events import DEFAULT_ACCOUNT
from auditor.policy import COMMERCIAL, PolicyBook, default_book
from auditor.times import format_time, parse_rfc3339
from auditor.verdict import (
    ACTIVITY,
    CODE_FLAG,
    DELETED,
    FEEDBACK,
    INCOGNITO_FLAG,
    SEEN,
    AccountView,
    Verdict,
    evaluate,
    evaluate_row,
)

ChatKey = tuple[str, str, str]
AccountKey = tuple[str, str]

# One string object for each word events repeat (a provider, a rating), not one per event.
_WORDS = {word: word for word in ("up", "down", "claude", "chatgpt", "gemini")}
_TYPES = {"chat.activity": ACTIVITY, "chat.feedback": FEEDBACK, "chat.seen": SEEN,
          "chat.deleted": DELETED}


def parse_time(text: str) -> datetime:
    """An event's `at` as an aware UTC datetime (fast path for the common forms)."""
    try:
        dt = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return parse_rfc3339(text)
    if dt.tzinfo is UTC:
        return dt
    if dt.tzinfo is None:
        return parse_rfc3339(text)  # raises: a time without a zone
    return dt.astimezone(UTC)


class _Account:
    """One (provider, account): its consent and plan events and its chats. Its first and last
    event times and its event count are worked out when asked (`Engine._stats`)."""

    __slots__ = ("chats", "consent", "gen", "plans", "view")

    def __init__(self) -> None:
        self.consent: list[tuple[Any, ...]] = []  # (at, 0 if true else 1, id, value, source)
        self.plans: list[tuple[Any, ...]] = []    # (at, 0 if consumer else 1, id, plan)
        self.chats: list[ChatKey] = []  # each chat once: added when first seen
        self.gen = 0
        self.view: AccountView | None = None


def _insert(items: list[tuple[Any, ...]], item: tuple[Any, ...]) -> bool:
    """Insert into a sorted list unless an event with the same (at, type, id) is there."""
    prefix = item[:3]
    if not items or items[-1][:3] < prefix:
        items.append(item)
        return True
    i = bisect_left(items, prefix)
    if i < len(items) and items[i][:3] == prefix:
        return False
    items.insert(i, item)
    return True


class Engine:
    """Per-chat state and verdicts. Feed it validated events (auditor.events), in any order."""

    def __init__(self, book: PolicyBook | None = None) -> None:
        self.book = book if book is not None else default_book()
        self._chats: dict[ChatKey, list[tuple[Any, ...]]] = {}
        self._accounts: dict[AccountKey, _Account] = {}
        # The instants where a provider's training rule changes (its eras' edges).
        self._boundaries = {
            name: tuple(sorted({t for era in policy.training for t in (era.start, era.end)
                                if t is not None}))
            for name, policy in self.book.providers.items()}
        # key -> (account generation, valid from, valid until or None, verdict)
        self._cache: dict[ChatKey, tuple[int, datetime, datetime | None, Verdict]] = {}

    # --- folding events ---------------------------------------------------------------------

    def apply(self, event: Mapping[str, Any]) -> set[ChatKey]:
        """Fold one validated event; return the chat keys whose verdict may have changed
        (for a consent or plan event: every chat of the account)."""
        touched: set[ChatKey] = set()
        accounts: set[AccountKey] = set()
        self._fold((event,), touched, accounts)
        for acct_key in accounts:
            return set(self._accounts[acct_key].chats)
        return touched

    def apply_many(self, events: Iterable[Mapping[str, Any]]) -> set[ChatKey]:
        """Fold many events; return every chat key touched."""
        touched: set[ChatKey] = set()
        accounts: set[AccountKey] = set()
        with _no_gc():
            self._fold(events, touched, accounts)
        for acct_key in accounts:
            touched.update(self._accounts[acct_key].chats)
        return touched

    def _fold(self, events: Iterable[Mapping[str, Any]], touched: set[ChatKey],
              touched_accounts: set[AccountKey]) -> None:
        """Fold events, adding each one's chat key to `touched` (an account event's account
        key to `touched_accounts`)."""
        if self._chats:
            self._fold_events(events, touched, touched_accounts)
        else:  # an empty engine (a replay): every chat there at the end was touched
            self._fold_events(events, None, touched_accounts)
            touched.update(self._chats)

    def _fold_events(self, events: Iterable[Mapping[str, Any]], touched: set[ChatKey] | None,
                     touched_accounts: set[AccountKey]) -> None:
        """`_fold`, adding chat keys to `touched` unless it is None. One loop with its lookups
        in locals: a replay runs it for every stored event."""
        chats = self._chats
        accounts = self._accounts
        cache = self._cache
        plan_class = self.book.plan_class
        words = _WORDS
        types = _TYPES
        intern = sys.intern
        fromisoformat = datetime.fromisoformat
        utc = UTC
        # raw provider -> raw account -> (account, provider, account label, account key):
        # the interned names and the account looked up once per call, not once per event.
        seen: dict[str, dict[str, tuple[_Account, str, str, AccountKey]]] = {}
        for event in events:
            provider = event["provider"]
            by_label = seen.get(provider)
            if by_label is None:
                by_label = seen[provider] = {}
            label = event.get("account", DEFAULT_ACCOUNT)
            known = by_label.get(label)
            if known is None:
                name = words.get(provider) or intern(provider)
                acct_key = (name, intern(label))
                acct = accounts.get(acct_key)
                if acct is None:
                    acct = accounts[acct_key] = _Account()
                known = by_label[label] = (acct, name, acct_key[1], acct_key)
            acct, provider, account, acct_key = known
            text = event["at"]
            try:
                at = fromisoformat(text)
            except (TypeError, ValueError):
                at = parse_rfc3339(text)
            else:
                if at.tzinfo is not utc:
                    at = parse_time(text)
            kind = event["type"]
            if kind == "chat.activity":  # most events
                plan = event.get("plan")
                if plan is not None:
                    plan_class(provider, plan)  # R8: refuse an unknown plan, first
                    plan = intern(plan)
                key = (provider, account, event["chat_id"])
                items = chats.get(key)
                if items is None:
                    items = chats[key] = []
                    acct.chats.append(key)
                    last = None
                else:
                    last = items[-1]
                title = event.get("title")
                if title is not None and last is not None and len(last) > 3 and (
                        last[3] == title):
                    title = last[3]  # share one string between a chat's events
                flags = (CODE_FLAG if event["kind"] == "code" else 0) | (
                    INCOGNITO_FLAG if event["incognito"] else 0)
                item: tuple[Any, ...] = (
                    (at, ACTIVITY, event["id"], title, flags) if plan is None
                    else (at, ACTIVITY, event["id"], title, flags, plan))
            else:
                typ = types.get(kind)
                if typ is None:
                    self._fold_account(acct, provider, kind, at, event)
                    touched_accounts.add(acct_key)
                    continue
                key = (provider, account, event["chat_id"])
                items = chats.get(key)
                if items is None:
                    items = chats[key] = []
                    acct.chats.append(key)
                last = items[-1] if items else None
                if typ == FEEDBACK:
                    rating = event["rating"]
                    item = (at, FEEDBACK, event["id"], None, words.get(rating, rating))
                elif typ == SEEN:
                    item = (at, SEEN, event["id"], event.get("title"), event.get("incognito"))
                else:
                    item = (at, DELETED, event["id"])
            # Sorted by content; the common case, a later event, appends.
            if last is None or last[0] < at:
                items.append(item)
                if cache:
                    cache.pop(key, None)
            elif _insert(items, item) and cache:
                cache.pop(key, None)
            if touched is not None:
                touched.add(key)

    def _fold_account(self, acct: _Account, provider: str, kind: str, at: datetime,
                      event: Mapping[str, Any]) -> None:
        """Fold a consent or plan event into its account."""
        if kind == "consent.set":
            value = event["value"]
            item = (at, 0 if value else 1, event["id"], value, sys.intern(event["source"]))
            target = acct.consent
        elif kind == "plan.set":
            plan = event["plan"]
            rank = 1 if self.book.plan_class(provider, plan) == COMMERCIAL else 0
            item = (at, rank, event["id"], sys.intern(plan))
            target = acct.plans
        else:
            raise ValueError(f"unknown event type {kind!r}")
        if _insert(target, item):
            acct.gen += 1
            acct.view = None

    def _stats(self, acct: _Account) -> tuple[datetime | None, datetime | None, int]:
        """An account's first and last event times and its event count (each kept event
        once), from its sorted lists."""
        chats = self._chats
        lists = [items for key in acct.chats if (items := chats[key])]
        lists += [items for items in (acct.consent, acct.plans) if items]
        if not lists:
            return None, None, 0
        return (min(items[0][0] for items in lists), max(items[-1][0] for items in lists),
                sum(map(len, lists)))

    # --- verdicts ---------------------------------------------------------------------------

    def _view(self, acct: _Account, provider: str) -> AccountView:
        if acct.view is None:
            acct.view = AccountView(acct.consent, acct.plans, self._boundaries.get(provider, ()))
        return acct.view

    def _verdict(self, key: ChatKey, as_of: datetime, *, store: bool) -> Verdict | None:
        items = self._chats.get(key)
        if items is None:
            return None
        acct = self._accounts[key[:2]]
        cached = self._cache.get(key)
        if cached is not None:
            gen, lo, hi, verdict = cached
            if gen == acct.gen and lo <= as_of and (hi is None or as_of < hi):
                return verdict
        policy = self.book.policy(key[0])
        verdict = evaluate(policy, key, items, self._view(acct, key[0]), as_of)
        if verdict is not None and store:
            self._cache[key] = (acct.gen, verdict.valid_from, verdict.valid_until, verdict)
        return verdict

    def verdict(self, key: ChatKey, as_of: datetime) -> Verdict | None:
        """The chat's cached verdict: `.data` (the row, shared: read-only), `.first_activity`,
        and `.valid_from`/`.valid_until`, the span of `as_of` for which it holds."""
        return self._verdict(tuple(key), _utc(as_of), store=True)  # type: ignore[arg-type]

    def chat_row(self, key: ChatKey, as_of: datetime) -> dict[str, Any] | None:
        """The chat's report row as of `as_of` (a fresh dict), or None if it has no events."""
        verdict = self._verdict(tuple(key), _utc(as_of), store=True)  # type: ignore[arg-type]
        return None if verdict is None else verdict.row()

    def rows(self, as_of: datetime) -> list[dict[str, Any]]:
        """Every chat's row, sorted by provider, account, first_activity (nulls last), chat_id.

        Uses cached verdicts where they hold but does not fill the cache, so a one-shot audit
        does not keep a second copy of every row.
        """
        return list(self.iter_rows(as_of))

    def iter_rows(self, as_of: datetime, keys: Iterable[ChatKey] | None = None
                  ) -> Iterator[dict[str, Any]]:
        """`rows`, one at a time (a report written as it goes holds one row, not all); with
        `keys` (a slice of `row_order`), the rows of those chats."""
        as_of = _utc(as_of)
        with _no_gc():
            yield from self._rows(as_of, self.row_order(as_of) if keys is None else keys)

    def row_order(self, as_of: datetime) -> list[ChatKey]:
        """The chats with a row as of `as_of`, in the report's order."""
        chats = self._chats
        as_of = _utc(as_of)
        return sorted((key for key, items in chats.items() if items[0][0] <= as_of),
                      key=lambda key: _order(key, chats[key], as_of))

    def _rows(self, as_of: datetime, order: Iterable[ChatKey]) -> Iterator[dict[str, Any]]:
        chats = self._chats
        cache = self._cache
        accounts = self._accounts
        book = self.book
        # The chats come grouped by account: its state and policy are looked up once.
        acct_key: AccountKey | None = None
        acct = view = policy = None
        for key in order:
            if key[:2] != acct_key:
                acct_key = key[:2]
                acct = accounts[acct_key]
                view = self._view(acct, key[0])
                policy = book.policy(key[0])
            cached = cache.get(key) if cache else None
            if cached is not None and cached[0] == acct.gen and cached[1] <= as_of and (
                    cached[2] is None or as_of < cached[2]):
                yield cached[3].row()
            else:
                row = evaluate_row(policy, key, chats[key], view, as_of)
                if row is not None:
                    yield row  # fresh: nobody else holds it

    def accounts(self, as_of: datetime) -> list[dict[str, Any]]:
        """CONTRACT section 4's `accounts`: each account's consent and plan events."""
        as_of = _utc(as_of)
        out = []
        for (provider, account), acct in sorted(self._accounts.items()):
            first = self._stats(acct)[0]
            if first is None or first > as_of:
                continue
            consent = [{"at": format_time(at), "value": value, "source": source}
                       for at, _rank, _id, value, source in acct.consent if at <= as_of]
            plans = [{"at": format_time(at), "plan": plan}
                     for at, _rank, _id, plan in acct.plans if at <= as_of]
            if not consent and not plans and not any(
                    self._chats[k][0][0] <= as_of for k in acct.chats):
                continue
            out.append({"provider": provider, "account": account, "consent": consent,
                        "plans": plans})
        return out

    @staticmethod
    def summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        counts = {"chats": 0, "training_yes": 0, "training_was": 0, "training_no": 0,
                  "training_unknown": 0}
        for row in rows:
            counts["chats"] += 1
            counts["training_" + row["training"]] += 1
        return counts

    def account_labels(self) -> list[dict[str, Any]]:
        """Each (provider, account) the engine knows, with its first and last event times."""
        out = []
        for (provider, account), acct in sorted(self._accounts.items()):
            first, last, count = self._stats(acct)
            if first is not None and last is not None:
                out.append({"provider": provider, "account": account,
                            "first_event": format_time(first), "last_event": format_time(last),
                            "events": count})
        return out

    def chat_keys(self) -> list[ChatKey]:
        return list(self._chats)

    def __len__(self) -> int:
        return len(self._chats)


def _order(key: ChatKey, items: list[tuple[Any, ...]], as_of: datetime) -> tuple[Any, ...]:
    """A chat's place in the report: provider, account, first activity (none last), chat id.

    The first activity is the first one at or before `as_of` and before any deletion (R4),
    as in the chat's row.
    """
    first = None
    for item in items:
        if item[0] > as_of or item[1] == DELETED:
            break
        if item[1] == ACTIVITY:
            first = item[0]
            break
    return (key[0], key[1], first is None, first or as_of, key[2])


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects.

    Each collection walks every live container, the engine's whole state included, so a
    replay or a full audit would otherwise spend much of its time in the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("as_of must be an aware datetime (UTC)")
    return dt if dt.tzinfo is UTC else dt.astimezone(UTC)


__all__ = ["AccountKey", "ChatKey", "Engine", "parse_time"]
