"""The server's live ledger as it starts: the file read once, the same state as an audit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import auditor.ledger
from auditor.audit import audit_ledger
from auditor.demo import demo_events
from auditor.ledger import Ledger, LedgerCorruptError
from auditor.live import LiveLedger
from tests.conftest import make_event

AS_OF = datetime(2026, 11, 28, tzinfo=UTC)


def test_start_up_reads_the_ledger_once_and_agrees_with_an_audit(
        data_dir: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append(demo_events())
        ledger.append([make_event(chat_id=f"more-{i}") for i in range(40)])
    passes: list[bool] = []
    real = auditor.ledger.iter_ledger

    def counted(*args: Any, **kwargs: Any) -> Any:
        passes.append(kwargs.get("keys") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(auditor.ledger, "iter_ledger", counted)
    live = LiveLedger.open(data_dir, config_dir)
    try:
        assert passes == [True]            # one pass over the file, decrypting as it checks
        served = live.report(as_of=AS_OF)
        # The badge index knows every chat, as it would after a second read.
        assert live.chat_status("claude", "more-7") is not None
    finally:
        live.close()
    monkeypatch.setattr(auditor.ledger, "iter_ledger", real)
    with Ledger.open(data_dir, config_dir, writable=False) as reader:
        audited = audit_ledger(reader, as_of=AS_OF)
    assert served["chats"] == audited["chats"]
    assert served["summary"] == audited["summary"]
    assert served["accounts"] == audited["accounts"]


def test_start_up_refuses_an_edited_ledger_and_lets_go_of_it(data_dir: Path,
                                                           config_dir: Path) -> None:
    import fcntl
    import os
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([make_event(chat_id=f"c{i}") for i in range(5)])
    path = data_dir / "ledger.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"end":false', b'"end":true')    # one record edited
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(LedgerCorruptError, match="3"):
        LiveLedger.open(data_dir, config_dir)
    fd = os.open(data_dir / "ledger.lock", os.O_RDWR)   # the writer's lock was let go
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
