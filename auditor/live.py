"""A ledger kept open with its engine up to date: what the local server serves from.

The ledger is replayed once at start; after that each stored event is applied to the
engine in memory, so a chat's status never rereads the ledger. Appends run concurrently
(group commit in the ledger); the engine, which is not thread-safe, is updated under a lock,
and since its answers never depend on the order events arrive (POLICIES.md R2), the order
in which concurrent batches reach it does not matter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.badge import badge
from auditor.engine import Engine
from auditor.events import validate_batch
from auditor.ledger import AppendResult, Ledger
from auditor.report import build_report
from auditor.times import utcnow


class LiveLedger:
    def __init__(self, ledger: Ledger, engine: Engine | None = None) -> None:
        self.ledger = ledger
        self.engine = engine or Engine()
        self._lock = threading.Lock()
        # (provider, chat_id) -> accounts: a badge lookup knows the chat, maybe not the label
        self._by_chat: dict[tuple[str, str], list[str]] = {}
        self._index(self.engine.apply_many(ledger.events()))

    @classmethod
    def open(cls, data_dir: Path, config_dir: Path, *, passphrase: str | None = None
             ) -> LiveLedger:
        return cls(Ledger.open(data_dir, config_dir, passphrase=passphrase))

    def _index(self, keys: Iterable[tuple[str, str, str]]) -> None:
        for provider, account, chat_id in keys:
            accounts = self._by_chat.setdefault((provider, chat_id), [])
            if account not in accounts:
                accounts.append(account)
                accounts.sort()

    def append(self, events: list[Any], *, validated: bool = False) -> AppendResult:
        """Validate (all or nothing), store durably, then update the engine."""
        if not validated:
            events = validate_batch(events)
        result = self.ledger.append(events, validated=True, keep=True)
        if result.events:
            with self._lock:
                self._index(self.engine.apply_many(result.events))
        return result

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

    def accounts(self) -> list[dict[str, Any]]:
        with self._lock:
            return self.engine.account_labels()

    def health(self) -> dict[str, Any]:
        cp = self.ledger.checkpoint_now()
        return {"ok": True, "events": cp.seq, "head": cp.head, "checkpoint": cp.to_json()}

    def close(self) -> None:
        self.ledger.close()
