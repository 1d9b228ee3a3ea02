"""A large report's chats worked out on two cores (auditor.split_rows) are the bytes one
process writes, whether the second process succeeds or fails."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import auditor.split_rows as split_rows
from auditor.audit import audit_ledger, audit_to_file
from auditor.demo import demo_events
from auditor.ledger import Ledger
from auditor.report import report_json, verify_report

AS_OF = datetime(2026, 11, 28, tzinfo=UTC)
WHEN = datetime(2026, 11, 28, 10, tzinfo=UTC)


@pytest.fixture
def reader(data_dir: Path, config_dir: Path) -> Ledger:
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append(demo_events())
    return Ledger.open(data_dir, config_dir, writable=False)


def _streamed(reader: Ledger, spool_dir: Path) -> bytes:
    with tempfile.TemporaryFile() as fh:
        audit_to_file(reader, fh, as_of=AS_OF, generated_at=WHEN, spool_dir=str(spool_dir))
        fh.seek(0)
        return fh.read()


def _count_forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    forks: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            forks.append(pid)
        return pid
    monkeypatch.setattr(split_rows.os, "fork", fork)
    return forks


def test_two_processes_write_the_bytes_one_writes(reader: Ledger, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    want = report_json(audit_ledger(reader, as_of=AS_OF, generated_at=WHEN))
    monkeypatch.setattr(split_rows, "SPLIT_MIN_CHATS", 0)
    forks = _count_forks(monkeypatch)
    spool = tmp_path / "spool"
    spool.mkdir()
    got = _streamed(reader, spool)
    assert forks, "the rows were not split"
    assert got == want
    assert list(spool.iterdir()) == []   # the spool file had no name and is gone


@pytest.mark.parametrize("after", [0, 3])
def test_a_failing_second_process_costs_nothing(reader: Ledger, tmp_path: Path, after: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    want = report_json(audit_ledger(reader, as_of=AS_OF, generated_at=WHEN))
    monkeypatch.setattr(split_rows, "SPLIT_MIN_CHATS", 0)
    forks = _count_forks(monkeypatch)
    real = split_rows.write_chat_lines
    parent = os.getpid()

    def failing(write: Any, rows: Any, *, first: bool = True) -> dict[str, int]:
        if os.getpid() == parent:
            return real(write, rows, first=first)

        def dying() -> Iterator[Any]:   # the child's half: dies after `after` rows
            for n, row in enumerate(rows):
                if n == after:
                    os._exit(5)
                yield row
        return real(write, dying(), first=first)
    monkeypatch.setattr(split_rows, "write_chat_lines", failing)
    got = _streamed(reader, tmp_path)
    assert forks
    assert got == want
    assert verify_report(json.loads(got)).ok


def test_above_the_bound_one_process_does_it(reader: Ledger, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Many chats: the child could come to copy the whole engine, so none is forked."""
    want = report_json(audit_ledger(reader, as_of=AS_OF, generated_at=WHEN))
    monkeypatch.setattr(split_rows, "SPLIT_MIN_CHATS", 0)
    monkeypatch.setattr(split_rows, "SPLIT_MAX_CHATS", 5)
    forks = _count_forks(monkeypatch)
    assert _streamed(reader, tmp_path) == want
    assert forks == []
