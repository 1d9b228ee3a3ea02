"""A ledger kept open with its engine up to date: what the local server serves from.

The ledger is replayed once at start; after that each stored event is applied to the
engine in memory, so a chat's status never rereads the ledger. Appends run concurrently
(group commit in the ledger); the engine, which is not thread-safe, is updated under a lock,
and since its answers never depend on the order events arrive (POLICIES.md R2), the order
in which concurrent batches reach it does not matter.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.badge import badge
from auditor.engine import Engine
from auditor.events import validate_batch
from auditor.ledger import AppendResult, Ledger, Staged
from auditor.report import build_report
from auditor.times import utcnow


@dataclass(frozen=True)
class RowsSnapshot:
    """Every chat's report row (in report order) as of `as_of`, and the span of time it holds.

    Read-only: the rows are the engine's cached verdict data, shared, never copied.
    """

    as_of: datetime
    rows: list[dict[str, Any]]
    events: int
    generation: int
    valid_until: datetime | None

    def holds(self, as_of: datetime, generation: int) -> bool:
        return (generation == self.generation and self.as_of <= as_of
                and (self.valid_until is None or as_of < self.valid_until))


class LiveLedger:
    def __init__(self, ledger: Ledger, engine: Engine | None = None, *,
                 replayed: Iterable[tuple[str, str, str]] | None = None) -> None:
        """Serve `ledger`; `engine` and the chat keys `replayed` into it, when the ledger's
        events were already folded in as it opened (`open`); else they are read now."""
        self.ledger = ledger
        self.engine = engine or Engine()
        self._lock = threading.Lock()
        self._generation = 0          # bumped whenever events reach the engine
        self._snapshot: RowsSnapshot | None = None
        # (provider, chat_id) -> accounts: a badge lookup knows the chat, maybe not the label
        self._by_chat: dict[tuple[str, str], list[str]] = {}
        self._index(self.engine.apply_many(ledger.events()) if replayed is None else replayed)
        # The replayed state lives as long as the server: keep the collector from walking
        # it again and again (single lookups otherwise pause for hundreds of ms).
        gc.freeze()

    @classmethod
    def open(cls, data_dir: Path, config_dir: Path, *, passphrase: str | None = None
             ) -> LiveLedger:
        engine = Engine()
        replayed: set[tuple[str, str, str]] = set()
        # The events are folded in by the pass that checks the file as it opens: one read.
        ledger = Ledger.open(data_dir, config_dir, passphrase=passphrase,
                             replay=lambda events: replayed.update(engine.apply_many(events)))
        return cls(ledger, engine, replayed=replayed)

    def _index(self, keys: Iterable[tuple[str, str, str]]) -> None:
        for provider, account, chat_id in keys:
            accounts = self._by_chat.setdefault((provider, chat_id), [])
            if account not in accounts:
                accounts.append(account)
                accounts.sort()

    def append(self, events: list[Any], *, validated: bool = False) -> AppendResult:
        """Validate (all or nothing), store durably, then update the engine."""
        return self.commit(self.stage(events, validated=validated))

    def stage(self, events: list[Any], *, validated: bool = False) -> Staged:
        """`append`'s first half: validated and staged in the ledger (`Ledger.stage`)."""
        if not validated:
            events = validate_batch(events)
        return self.ledger.stage(events, validated=True, keep=True)

    def commit(self, staged: Staged) -> AppendResult:
        """`append`'s second half: durable (`Ledger.commit`), then in the engine."""
        result = self.ledger.commit(staged)
        if result.events:
            with self._lock:
                self._index(self.engine.apply_many(result.events))
                self._generation += 1
        return result

    def snapshot(self, *, as_of: datetime | None = None) -> RowsSnapshot:
        """Every chat's row as of now (or `as_of`), unsigned, for the dashboard.

        Kept until an event arrives or the first instant at which some chat's verdict
        changes by itself (an expiry date passing, an event dated in the future), so a page
        view with nothing new costs no evaluation. The verdicts themselves are cached per chat
        in the engine, so after an event only the chats it touched are evaluated again.
        """
        as_of = as_of or utcnow()
        for _attempt in range(3):
            with self._lock:
                snap = self._snapshot
                if snap is not None and snap.holds(as_of, self._generation):
                    return snap
                generation = self._generation
                keys = self.engine.chat_keys()
            found: list[tuple[Any, ...]] = []
            for start in range(0, len(keys), self._CHUNK):
                with self._lock:
                    if self._generation != generation:
                        break
                    self._evaluate(keys[start:start + self._CHUNK], as_of, found)
            else:
                with self._lock:
                    if self._generation == generation:
                        return self._keep(found, generation, as_of)
        with self._lock:   # events keep arriving: build it in one go
            found = []
            self._evaluate(self.engine.chat_keys(), as_of, found)
            return self._keep(found, self._generation, as_of)

    # Chats evaluated per hold of the lock while building a snapshot, so a badge lookup
    # waits for at most one chunk, not for a whole cold evaluation of every chat.
    _CHUNK = 500

    def _evaluate(self, keys: list[tuple[str, str, str]], as_of: datetime,
                  found: list[tuple[Any, ...]]) -> None:
        verdict_of = self.engine.verdict   # the per-chat verdict and its span of validity
        for key in keys:
            verdict = verdict_of(key, as_of)
            if verdict is not None:
                first = verdict.first_activity
                found.append(((key[0], key[1], first is None, first or as_of, key[2]),
                              verdict))

    def _keep(self, found: list[tuple[Any, ...]], generation: int, as_of: datetime
              ) -> RowsSnapshot:
        found.sort(key=lambda pair: pair[0])
        ends = [v.valid_until for _, v in found if v.valid_until is not None]
        snap = RowsSnapshot(as_of=as_of, rows=[v.data for _, v in found],
                            events=self.ledger.seq, generation=generation,
                            valid_until=min(ends, default=None))
        if self._snapshot is None or self._snapshot.as_of <= as_of:
            self._snapshot = snap
        return snap

    def chat_status(self, provider: str, chat_id: str, *, account: str | None = None,
                    as_of: datetime | None = None) -> dict[str, Any] | None:
        """The chat's report row plus its `badge`, or None for a chat never seen."""
        as_of = as_of or utcnow()
        with self._lock:
            accounts = self._by_chat.get((provider, chat_id), [])
            if account is not None:
                accounts = [a for a in accounts if a == account]
            for acct in accounts:
                row = self.engine.chat_row((provider, acct, chat_id), as_of)
                if row is not None:
                    row["badge"] = badge(row)
                    return row
        return None

    def report(self, *, as_of: datetime | None = None) -> dict[str, Any]:
        with self._lock:
            return build_report(self.engine, keys=self.ledger.keys, events=self.ledger.seq,
                                checkpoint=self.ledger.checkpoint_now(),
                                as_of=as_of or utcnow())

    def account_history(self, *, as_of: datetime | None = None) -> list[dict[str, Any]]:
        """CONTRACT section 4's `accounts` (each account's consent and plan events), unsigned."""
        with self._lock:
            return self.engine.accounts(as_of or utcnow())

    def accounts(self) -> list[dict[str, Any]]:
        with self._lock:
            return self.engine.account_labels()

    def health(self) -> dict[str, Any]:
        cp = self.ledger.checkpoint_now()
        return {"ok": True, "events": cp.seq, "head": cp.head, "checkpoint": cp.to_json()}

    def close(self) -> None:
        self.ledger.close()
