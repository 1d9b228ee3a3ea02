"""The ledger on disk: append, idempotency, all-or-nothing batches, durability state,
keys kept apart and private, nothing of an event readable."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditor.events import EventError
from auditor.keys import WrongPassphraseError
from auditor.ledger import (
    LEDGER_FILE,
    Ledger,
    LedgerError,
    LedgerLockedError,
    checkpoint_message,
    verify_checkpoint,
)
from tests.conftest import make_event


def test_append_then_read_back_in_order(open_ledger: Callable[..., Ledger]) -> None:
    ledger = open_ledger()
    batch = [make_event(chat_id=f"c{i}") for i in range(5)]
    result = ledger.append(batch)
    assert (result.stored, result.duplicates, result.seq) == (5, 0, 5)
    assert [e["chat_id"] for e in ledger.events()] == [f"c{i}" for i in range(5)]
    assert result.head == ledger.head


def test_same_id_twice_is_stored_once(open_ledger: Callable[..., Ledger]) -> None:
    ledger = open_ledger()
    ev = make_event()
    assert ledger.append([ev]).stored == 1
    again = ledger.append([ev, dict(ev), make_event()])
    assert (again.stored, again.duplicates) == (1, 2)
    assert ledger.seq == 2


def test_duplicates_are_found_after_reopening(data_dir: Path, config_dir: Path) -> None:
    ev = make_event()
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([ev])
    with Ledger.open(data_dir, config_dir) as ledger:
        assert ledger.append([ev]).duplicates == 1
        assert ledger.seq == 1


def test_a_bad_batch_stores_nothing(open_ledger: Callable[..., Ledger]) -> None:
    ledger = open_ledger()
    ledger.append([make_event()])
    before = (ledger.path.read_bytes(), ledger.head, ledger.seq)
    with pytest.raises(EventError) as info:
        ledger.append([make_event(), make_event(at="2025-13-01T00:00:00Z")])
    assert info.value.index == 1
    assert (ledger.path.read_bytes(), ledger.head, ledger.seq) == before


def test_a_streamed_batch_that_fails_part_way_is_rolled_back(
        open_ledger: Callable[..., Ledger]) -> None:
    ledger = open_ledger()
    ledger.append([make_event()])
    before = (ledger.path.read_bytes(), ledger.head, ledger.seq)
    good = [make_event(chat_id=f"c{i}") for i in range(1500)]   # several written chunks

    def stream() -> Any:
        yield from good
        yield {**make_event(), "text": "secret"}

    with pytest.raises(EventError, match="unknown fields"):
        ledger.append(stream())
    assert (ledger.path.read_bytes(), ledger.head, ledger.seq) == before
    # The rolled-back ids are not taken: the same good events go in afterwards.
    assert ledger.append(iter(good)).stored == 1500


def test_concurrent_appends_share_fsyncs_and_lose_nothing(
        open_ledger: Callable[..., Ledger], monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = open_ledger()
    calls = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    threads = [threading.Thread(target=lambda k=k: [ledger.append([make_event(chat_id=f"t{k}")])
                                                    for _ in range(25)]) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.seq == 200
    assert len({e["id"] for e in ledger.events()}) == 200
    assert calls <= 200   # never more than one per append; usually far fewer


def _held_back(ledger: Ledger, batches: list[list[dict[str, Any]]]
               ) -> tuple[list[threading.Thread], list[BaseException | None]]:
    """Appends started while a commit is (said to be) under way: their records wait in
    memory for the next one. Returns the threads and, once joined, what each raised."""
    with ledger._sync_cond:
        ledger._syncing = True
    errors: list[BaseException | None] = [None] * len(batches)

    def append(i: int) -> None:
        try:
            ledger.append(batches[i])
        except BaseException as exc:   # handed to the test
            errors[i] = exc

    threads = [threading.Thread(target=append, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(ledger._pending) < sum(map(len, batches)):
        assert time.monotonic() < deadline, "the appends did not buffer their records"
        time.sleep(0.001)
    return threads, errors


def _let_go(ledger: Ledger, threads: list[threading.Thread]) -> None:
    with ledger._sync_cond:
        ledger._syncing = False
        ledger._sync_cond.notify_all()
    for t in threads:
        t.join(10)


def test_waiting_records_go_out_in_one_write(open_ledger: Callable[..., Ledger],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = open_ledger()
    batches = [[make_event(chat_id=f"w{i}")] for i in range(6)]
    threads, errors = _held_back(ledger, batches)
    writes: list[int] = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(len(data))
                        or real_write(fd, data))
    _let_go(ledger, threads)
    assert errors == [None] * 6
    assert len(writes) == 1 and ledger.seq == 6
    assert sorted(e["chat_id"] for e in ledger.events()) == [f"w{i}" for i in range(6)]


def test_a_failed_write_loses_only_what_waited_and_says_so(
        data_dir: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk while waiting records are written: every append that waited gets the
    error, the file keeps exactly what it held, and the same events can be sent again."""
    import errno
    ledger = Ledger.open(data_dir, config_dir)
    ledger.append([make_event(chat_id="before")])
    before = (ledger.path.read_bytes(), ledger.head, ledger.seq)
    batches = [[make_event(chat_id=f"lost{i}")] for i in range(3)]
    threads, errors = _held_back(ledger, batches)
    real_write = os.write
    calls = [0]

    def full_disk(fd: int, data: bytes) -> int:
        calls[0] += 1
        if calls[0] == 1:   # half of it lands, then the disk is full
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    _let_go(ledger, threads)
    monkeypatch.setattr(os, "write", real_write)
    assert all(isinstance(e, OSError) and e.errno == errno.ENOSPC
               and e.filename == str(ledger.path) for e in errors)
    assert (ledger.path.read_bytes(), ledger.head, ledger.seq) == before
    # Nothing was taken: the same events go in now, and everything reads back.
    assert [ledger.append(b).stored for b in batches] == [1, 1, 1]
    ledger.close()
    with Ledger.open(data_dir, config_dir, writable=False) as reader:
        assert sorted(e["chat_id"] for e in reader.events()) == [
            "before", "lost0", "lost1", "lost2"]


def test_a_big_batch_failing_keeps_the_records_that_waited_before_it(
        open_ledger: Callable[..., Ledger]) -> None:
    """A streamed batch writes the records waiting ahead of it, then its own, and fails:
    it is cut away, and theirs stay and are acknowledged."""
    ledger = open_ledger()
    waiting = [[make_event(chat_id=f"small{i}")] for i in range(2)]
    threads, errors = _held_back(ledger, waiting)

    def stream() -> Any:
        yield from (make_event(chat_id=f"big{i}") for i in range(700))
        yield {**make_event(), "text": "secret"}

    with pytest.raises(EventError, match="unknown fields"):
        ledger.append(stream())
    _let_go(ledger, threads)
    assert errors == [None, None]
    assert ledger.seq == 2
    assert sorted(e["chat_id"] for e in ledger.events()) == ["small0", "small1"]


def test_the_checkpoint_is_signed_by_the_ledger_key(open_ledger: Callable[..., Ledger]
                                                    ) -> None:
    ledger = open_ledger()
    result = ledger.append([make_event() for _ in range(3)])
    cp = result.checkpoint
    assert (cp.seq, cp.head) == (3, ledger.head)
    assert verify_checkpoint(ledger.keys.public_key, cp)
    assert checkpoint_message(3, cp.head).startswith(b"consent-ledger/checkpoint/v1:3:")
    forged = type(cp)(2, cp.head, cp.signature)
    assert not verify_checkpoint(ledger.keys.public_key, forged)


def test_close_persists_the_checkpoint(data_dir: Path, config_dir: Path) -> None:
    import json
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([make_event() for _ in range(4)])
        head = ledger.head
    saved = json.loads((data_dir / "head.json").read_text())["checkpoint"]
    assert (saved["seq"], saved["head"]) == (4, head)


def test_the_checkpointer_persists_within_a_second(open_ledger: Callable[..., Ledger],
                                                   data_dir: Path) -> None:
    import json
    import time
    ledger = open_ledger()
    ledger.start_checkpointer(interval=0.2)
    ledger.append([make_event()])
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if json.loads((data_dir / "head.json").read_text())["checkpoint"]["seq"] == 1:
            break
        time.sleep(0.05)
    assert json.loads((data_dir / "head.json").read_text())["checkpoint"]["seq"] == 1


def test_one_writer_at_a_time(open_ledger: Callable[..., Ledger], data_dir: Path,
                              config_dir: Path) -> None:
    open_ledger()
    with pytest.raises(LedgerLockedError, match="another process"):
        Ledger.open(data_dir, config_dir)
    reader = Ledger.open(data_dir, config_dir, writable=False)
    with pytest.raises(LedgerError, match="read-only"):
        reader.append([make_event()])


def test_nothing_of_an_event_is_readable_in_the_data_dir(data_dir: Path, config_dir: Path
                                                         ) -> None:
    secret_title = "Divorce lawyer questions zq7x"
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([make_event(chat_id="chat-uuid-4242-zz", title=secret_title,
                                  url="https://claude.ai/chat/chat-uuid-4242-zz",
                                  account="acct-label-77")])
    blob = b"".join(p.read_bytes() for p in data_dir.iterdir() if p.is_file())
    for needle in (secret_title, "chat-uuid-4242-zz", "acct-label-77", "chat.activity",
                   "claude.ai", "2025-10-02"):
        assert needle.encode() not in blob, needle


def test_keys_live_outside_the_data_dir_and_are_private(data_dir: Path, config_dir: Path
                                                        ) -> None:
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger_id = ledger.ledger_id
    key_file = config_dir / f"keys-{ledger_id}.json"
    assert key_file.exists()
    assert not any("keys" in p.name for p in data_dir.iterdir())
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for p in data_dir.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_keys_inside_the_data_dir_are_refused(data_dir: Path) -> None:
    with pytest.raises(LedgerError, match="inside the data dir"):
        Ledger.open(data_dir, data_dir / "keys")


def test_passphrase_wraps_the_keys(data_dir: Path, config_dir: Path) -> None:
    with Ledger.open(data_dir, config_dir, passphrase="correct horse") as ledger:
        ledger.append([make_event()])
        ledger_id = ledger.ledger_id
    key_text = (config_dir / f"keys-{ledger_id}.json").read_text()
    assert "scrypt" in key_text and '"data"' not in key_text
    before = {p.name: p.read_bytes() for p in data_dir.iterdir()}
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        Ledger.open(data_dir, config_dir, passphrase="wrong horse")
    with pytest.raises(WrongPassphraseError, match="CONSENT_LEDGER_PASSPHRASE"):
        Ledger.open(data_dir, config_dir)
    assert {p.name: p.read_bytes() for p in data_dir.iterdir()} == before
    with Ledger.open(data_dir, config_dir, passphrase="correct horse") as ledger:
        assert [e["id"] for e in ledger.events()] != []


def test_a_missing_head_file_with_records_is_refused(data_dir: Path, config_dir: Path
                                                     ) -> None:
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([make_event()])
    (data_dir / "head.json").unlink()
    with pytest.raises(LedgerError, match="head file"):
        Ledger.open(data_dir, config_dir)


def test_record_lines_are_one_json_object_each(data_dir: Path, config_dir: Path) -> None:
    import json
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([make_event(), make_event()])
    lines = (data_dir / LEDGER_FILE).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [1, 2]
    assert [r["end"] for r in records] == [False, True]
    assert records[1]["prev"] != records[0]["prev"]


def test_every_record_has_its_own_nonce_even_after_a_fork(data_dir: Path, config_dir: Path
                                                           ) -> None:
    """Nonces are drawn from the OS in batches: none may repeat, in one ledger (over more
    than a batch) or in a forked child that writes (it must not reuse the parent's pool)."""
    import json
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([make_event() for _ in range(300)])   # into the second batch of 256
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:   # the child takes the next nonces its way and reports them
            os.close(reader)
            nonces = [ledger._nonce() for _ in range(5)]
            os.write(writer, b"".join(nonces))
            os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            child = pipe.read()
        os.waitpid(pid, 0)
        ledger.append([make_event() for _ in range(5)])
    lines = (data_dir / LEDGER_FILE).read_text().splitlines()
    nonces = [json.loads(line)["nonce"] for line in lines]
    assert len(nonces) == 305 and len(set(nonces)) == 305
    import base64
    theirs = {base64.b64encode(child[i:i + 12]).decode() for i in range(0, 60, 12)}
    assert len(theirs) == 5 and not theirs & set(nonces)


def test_a_reader_reads_the_snapshot_it_opened(open_ledger: Callable[..., Ledger],
                                               data_dir: Path, config_dir: Path) -> None:
    writer = open_ledger()
    writer.append([make_event(chat_id="before") for _ in range(3)])
    reader = Ledger.open(data_dir, config_dir, writable=False)
    writer.append([make_event(chat_id="after") for _ in range(2)])   # a server appends on
    assert [e["chat_id"] for e in reader.events()] == ["before"] * 3
    assert reader.seq == 3
    assert [e["chat_id"] for e in Ledger.open(data_dir, config_dir, writable=False).events()
            ].count("after") == 2
