"""A served ledger's appends have their checkpoint signed on a thread of its own while fsync
runs (auditor/ledger.py `_Signer`, started with the checkpointer), and it is still the signed
checkpoint of what is on disk, batch included. Other ledgers start no thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from auditor.keys import LedgerKeys
from auditor.ledger import Ledger, verify_checkpoint
from tests.conftest import make_event

SERVED = 3600.0   # start_checkpointer's interval: the signer runs, the head file waits


def _signing_threads(monkeypatch: pytest.MonkeyPatch, *, fail_on: str | None = None
                     ) -> list[str]:
    """Record the name of each thread that signs; make the one named `fail_on` fail."""
    names: list[str] = []
    real = LedgerKeys.sign

    def sign(self: LedgerKeys, message: bytes) -> str:
        name = threading.current_thread().name
        names.append(name)
        if name == fail_on:
            raise RuntimeError("no signature today")
        return real(self, message)

    monkeypatch.setattr(LedgerKeys, "sign", sign)
    return names


def test_the_answer_is_signed_while_the_disk_works(open_ledger: Callable[..., Ledger],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = open_ledger()
    ledger.start_checkpointer(SERVED)
    names = _signing_threads(monkeypatch)
    for n in range(1, 4):
        result = ledger.append([make_event()])
        cp = result.checkpoint
        assert (cp.seq, cp.head) == (result.seq, result.head) == (n, ledger.head)
        assert verify_checkpoint(ledger.keys.public_key, cp)
    assert names == ["checkpoint-signer"] * 3     # none on the appending thread
    assert ledger.checkpoint_now() is cp          # kept, not signed again


def test_a_failed_signature_is_made_by_the_one_who_waits(
        open_ledger: Callable[..., Ledger], monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = open_ledger()
    ledger.start_checkpointer(SERVED)
    names = _signing_threads(monkeypatch, fail_on="checkpoint-signer")
    result = ledger.append([make_event(), make_event()])
    assert verify_checkpoint(ledger.keys.public_key, result.checkpoint)
    assert (result.checkpoint.seq, result.checkpoint.head) == (2, ledger.head)
    assert names == ["checkpoint-signer", threading.current_thread().name]
    assert ledger.append([make_event()]).checkpoint.seq == 3   # the signer goes on


def test_concurrent_appends_each_get_a_checkpoint_covering_their_batch(
        open_ledger: Callable[..., Ledger]) -> None:
    ledger = open_ledger()
    ledger.start_checkpointer(SERVED)
    results = []
    lock = threading.Lock()

    def post(k: int) -> None:
        for _ in range(20):
            result = ledger.append([make_event(chat_id=f"t{k}")])
            with lock:
                results.append(result)

    threads = [threading.Thread(target=post, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160 and ledger.seq == 160
    for result in results:
        assert result.checkpoint.seq >= result.seq
        assert verify_checkpoint(ledger.keys.public_key, result.checkpoint)


def test_close_stops_the_signer(open_ledger: Callable[..., Ledger]) -> None:
    ledger = open_ledger()
    ledger.start_checkpointer(SERVED)
    ledger.append([make_event()])
    signer = ledger._signer
    assert signer is not None and signer._thread.is_alive()
    ledger.close()
    assert ledger._signer is None and not signer._thread.is_alive()


def test_a_ledger_not_served_signs_on_the_appending_thread(
        open_ledger: Callable[..., Ledger], monkeypatch: pytest.MonkeyPatch) -> None:
    """No thread is left behind by a command's ledger (a reader forks only when alone)."""
    before = threading.active_count()
    ledger = open_ledger()
    names = _signing_threads(monkeypatch)
    result = ledger.append([make_event()])
    assert verify_checkpoint(ledger.keys.public_key, result.checkpoint)
    assert names == [threading.current_thread().name]
    assert ledger._signer is None and threading.active_count() == before
