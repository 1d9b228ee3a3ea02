"""One audit of a ledger: replay its events into a fresh engine and build the signed report.

The server keeps an engine up to date incrementally instead; a test checks both agree.
"""

from __future__ import annotations

import gc
from datetime import datetime
from typing import Any, BinaryIO

from auditor.engine import Engine
from auditor.ledger import Ledger
from auditor.report import (
    build_report,
    sign_report_json,
    write_report_csv,
    write_report_json,
)


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


def audit_to_file(ledger: Ledger, fh: BinaryIO, *, as_of: datetime,
                  generated_at: datetime | None = None, spool_dir: str | None = None) -> None:
    """The signed JSON report written into `fh` (readable and seekable) as it is worked
    out: the bytes `report_json(audit_ledger(...))` gives, in the memory of the engine's
    state alone, then of the report's text alone while it is signed. A large report's
    second half is worked out by a second process into an unnamed file in `spool_dir`
    (default: the system's temporary folder) before it is copied in."""
    start = fh.tell()
    engine = replay(ledger)
    write_report_json(fh, engine, events=ledger.seq, checkpoint=ledger.checkpoint_now(),
                      as_of=as_of, generated_at=generated_at, spool_dir=spool_dir)
    del engine  # every row is written: its memory goes back before the text is read to sign
    gc.collect()
    sign_report_json(fh, start, ledger.keys)


def audit_csv_to_file(ledger: Ledger, fh: BinaryIO, *, as_of: datetime) -> None:
    """The CSV report written into `fh` a row at a time: the bytes
    `report_csv(audit_ledger(...))` gives, in the memory of the engine's state alone."""
    write_report_csv(fh, replay(ledger).iter_rows(as_of))
