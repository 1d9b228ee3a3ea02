"""One audit of a ledger: replay its events into a fresh engine and build the signed report.

The server keeps an engine up to date incrementally instead; a test checks both agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from auditor.engine import Engine
from auditor.ledger import Ledger
from auditor.report import build_report


def replay(ledger: Ledger, engine: Engine | None = None) -> Engine:
    """Feed every stored event to an engine, streaming (flat memory whatever the size)."""
    engine = engine or Engine()
    engine.apply_many(ledger.events())
    return engine


def audit_ledger(ledger: Ledger, *, as_of: datetime,
                 generated_at: datetime | None = None) -> dict[str, Any]:
    engine = replay(ledger)
    return build_report(engine, keys=ledger.keys, events=ledger.seq,
                        checkpoint=ledger.checkpoint_now(), as_of=as_of,
                        generated_at=generated_at)
