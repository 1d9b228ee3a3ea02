"""Reading a large ledger on two cores (auditor.split_read) gives every event once and
names a damaged line exactly as the one-process reader does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import auditor.split_read as split_read
from auditor.audit import replay
from auditor.ledger import LEDGER_FILE, Ledger, LedgerCorruptError
from auditor.report import canonical
from tests.conftest import make_event

RECORDS = 60


@pytest.fixture
def lines(data_dir: Path, config_dir: Path) -> list[bytes]:
    with Ledger.open(data_dir, config_dir) as ledger:
        for i in range(0, RECORDS, 3):   # batches of three
            ledger.append([make_event(chat_id=f"c{i % 7}", at=f"2025-10-02T09:{j:02d}:00Z")
                           for j in range(i, i + 3)])
    return (data_dir / LEDGER_FILE).read_bytes().splitlines(keepends=True)


def _read(data_dir: Path, config_dir: Path, *, split: bool, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[list[str], int, str] | str:
    """(every event id, sorted; records; head), or the error the reader raised."""
    monkeypatch.setattr(split_read, "SPLIT_MIN_BYTES", 0 if split else 1 << 62)
    forks: list[int] = []
    start = split_read._Child.start

    def counted(*args: object) -> split_read._Child:
        child = start(*args)  # type: ignore[arg-type]
        forks.append(child.pid)
        return child
    monkeypatch.setattr(split_read._Child, "start", counted)
    try:
        reader = Ledger.open(data_dir, config_dir, writable=False)
    except LedgerCorruptError as exc:  # found by the framing, before any reading
        return str(exc)
    try:
        ids = sorted(e["id"] for e in reader.events())
    except LedgerCorruptError as exc:
        return str(exc)
    finally:
        assert bool(forks) == split     # the two-core path was taken, or not
    return ids, reader.seq, reader.head


@pytest.mark.parametrize("poll_every", [1, 64])
def test_both_readers_give_every_event_once(lines: list[bytes], data_dir: Path,
                                            config_dir: Path, poll_every: int,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split_read, "_POLL_EVERY", poll_every)  # 1: look between every line
    one = _read(data_dir, config_dir, split=False, monkeypatch=monkeypatch)
    two = _read(data_dir, config_dir, split=True, monkeypatch=monkeypatch)
    assert not isinstance(one, str) and len(one[0]) == RECORDS and one[1] == RECORDS
    assert two == one


def test_the_audit_is_the_same_either_way(lines: list[bytes], data_dir: Path,
                                          config_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime
    as_of = datetime(2026, 1, 1, tzinfo=UTC)
    reports = []
    for split in (False, True):
        monkeypatch.setattr(split_read, "SPLIT_MIN_BYTES", 0 if split else 1 << 62)
        engine = replay(Ledger.open(data_dir, config_dir, writable=False))
        reports.append(canonical({"rows": engine.rows(as_of), "accounts":
                                  engine.accounts(as_of)}))
    assert reports[0] == reports[1]


def _damage(line: bytes, how: str) -> bytes:
    if how == "ct":    # a byte of the ciphertext
        i = line.index(b'"ct":"') + 10
        return line[:i] + (b"A" if line[i:i + 1] != b"A" else b"B") + line[i + 1:]
    if how == "seq":
        return line.replace(b'{"seq":', b'{"seq":9', 1)
    return b"not json\n"


@pytest.mark.parametrize("how", ["ct", "seq", "garbage"])
def test_a_damaged_line_anywhere_is_named_as_the_plain_reader_names_it(
        lines: list[bytes], data_dir: Path, config_dir: Path, how: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = data_dir / LEDGER_FILE
    for target in range(RECORDS):   # both parts, and the lines around the cut
        path.write_bytes(b"".join([*lines[:target], _damage(lines[target], how),
                                   *lines[target + 1:]]))
        one = _read(data_dir, config_dir, split=False, monkeypatch=monkeypatch)
        two = _read(data_dir, config_dir, split=True, monkeypatch=monkeypatch)
        assert isinstance(one, str), target
        if not (how == "garbage" and target == RECORDS - 1):  # else: "58 ... missing"
            assert f"line {target + 1}" in one, (target, one)
        assert two == one, target


@pytest.mark.parametrize("cut", [5, 20, 21, 22, 40])
def test_lines_moved_across_the_cut_are_caught(lines: list[bytes], data_dir: Path,
                                               config_dir: Path, cut: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = data_dir / LEDGER_FILE
    moved = [*lines[:cut], lines[cut + 1], lines[cut], *lines[cut + 2:]]
    path.write_bytes(b"".join(moved))
    one = _read(data_dir, config_dir, split=False, monkeypatch=monkeypatch)
    assert isinstance(one, str)
    assert _read(data_dir, config_dir, split=True, monkeypatch=monkeypatch) == one


@pytest.mark.parametrize("sent", [0, 7, 1000])
def test_a_child_that_dies_costs_nothing(lines: list[bytes], data_dir: Path, config_dir: Path,
                                         sent: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child dies after sending `sent` events: this process reads its part itself and
    still gives each event once."""
    real = split_read._read_range

    def dying(*args: object, **kwargs: object) -> Iterator[tuple[int, object]]:
        for n, item in enumerate(real(*args, **kwargs), 1):  # type: ignore[arg-type]
            yield item
            if kwargs.get("plain") and n >= sent:
                os._exit(3)
    monkeypatch.setattr(split_read, "_read_range", dying)
    monkeypatch.setattr(split_read, "_CHILD_BUFFER", 0)  # each write reaches the pipe
    one = _read(data_dir, config_dir, split=False, monkeypatch=monkeypatch)
    two = _read(data_dir, config_dir, split=True, monkeypatch=monkeypatch)
    assert two == one
