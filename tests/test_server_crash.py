"""The real server killed while batches arrive: nothing acknowledged is lost.

Eight threads post batches of 1-50 events (stable ids, one chat per event, so the audit
report shows which events are in) while the whole `serve` process group is SIGKILLed. After
a restart on the same folders every batch that got a 200 is in the audit, every batch is
all or nothing, `consent-ledger verify` passes and the extension's token still works. A
SIGTERM in the same situation is a clean stop: exit 0 within seconds, the hand-over file
gone, every acknowledged batch kept.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any

import pytest

from tests.conftest import make_event
from tests.server_harness import EXT_ORIGIN, ServeFactory, ServeProcess, bearer, raw_request

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.conftest_server"]

THREADS = 8
ACKED_BATCHES_BEFORE_THE_SIGNAL = 60


@dataclass
class Traffic:
    """What the posting threads sent and what the server acknowledged."""

    sent: list[list[str]] = field(default_factory=list)
    acked: list[list[str]] = field(default_factory=list)
    unexpected: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def acked_ids(self) -> set[str]:
        with self.lock:
            return {i for batch in self.acked for i in batch}


def _post_until_stopped(port: int, token: str, tag: str, traffic: Traffic) -> None:
    rng = random.Random(tag)
    batch_no = 0
    while not traffic.stop.is_set():
        ids = [f"{tag}-b{batch_no:05d}-e{i:02d}" for i in range(rng.randint(1, 50))]
        batch_no += 1
        events = [make_event(id=i, chat_id=i, at=f"2025-10-02T09:{rng.randrange(60):02d}:00Z")
                  for i in ids]
        with traffic.lock:
            traffic.sent.append(ids)
        try:
            response = raw_request(port, "POST", "/api/v1/events", body=json.dumps(
                {"events": events}).encode(), headers={
                **bearer(token), "Origin": EXT_ORIGIN, "Content-Type": "application/json"},
                timeout=20)
        except (OSError, HTTPException):   # the server is gone mid-answer: no ack
            return
        with traffic.lock:
            if response.status == 200 and response.json()["stored"] == len(ids):
                traffic.acked.append(ids)
            else:
                traffic.unexpected.append((response.status, response.body[:200]))


def _run_traffic_then(server: ServeProcess, token: str, round_tag: str,
                      signal_it: Any) -> tuple[Traffic, float]:
    """Start the posters, wait for enough acks, call `signal_it()`, let the posters end."""
    traffic = Traffic()
    threads = [threading.Thread(target=_post_until_stopped,
                                args=(server.port, token, f"{round_tag}t{n}", traffic))
               for n in range(THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(traffic.acked) < ACKED_BATCHES_BEFORE_THE_SIGNAL:
        assert time.monotonic() < deadline, f"too few acks: {traffic.unexpected[:3]}"
        assert not traffic.unexpected, traffic.unexpected[:3]
        time.sleep(0.01)
    signalled = time.monotonic()
    signal_it()
    traffic.stop.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    return traffic, signalled


def _check_ledger_after_restart(server: ServeProcess, token: str,
                                traffics: list[Traffic]) -> None:
    """Restarted server: every acked batch is in, every batch all or nothing, token works."""
    response = server.request("GET", "/api/v1/report?format=json", token=token,
                              origin=EXT_ORIGIN, timeout=120)
    assert response.status == 200, response.body[:300]
    chats = {c["chat_id"] for c in response.json()["chats"]}
    acked = set().union(*(t.acked_ids() for t in traffics))
    assert acked, "nothing was acknowledged: the test proved nothing"
    missing = acked - chats
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    for traffic in traffics:
        for batch in traffic.sent:
            present = sum(i in chats for i in batch)
            assert present in (0, len(batch)), f"batch {batch[0]} is torn: {present}/{len(batch)}"
    assert server.event_count() == len(chats)


def _check_offline(server: ServeProcess, traffics: list[Traffic]) -> None:
    """With the server stopped: `verify` passes and `audit` holds every acked event."""
    verify = server.cli("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    audit = server.cli("audit", "--format", "json", timeout=120)
    assert audit.returncode == 0, audit.stderr
    chats = {c["chat_id"] for c in json.loads(audit.stdout)["chats"]}
    acked = set().union(*(t.acked_ids() for t in traffics))
    assert acked <= chats


def test_sigkill_during_concurrent_posts_loses_nothing_acknowledged(
        serve_factory: ServeFactory) -> None:
    server = serve_factory()
    token = server.pair(EXT_ORIGIN)
    traffics = []
    for round_no in range(2):           # kill, restart, and kill again on the same ledger
        traffic, _ = _run_traffic_then(server, token, f"k{round_no}", server.kill)
        assert server.proc is not None and server.proc.returncode < 0   # it did not exit
        traffics.append(traffic)
        server.start()
        _check_ledger_after_restart(server, token, traffics)
    assert server.stop() == 0
    _check_offline(server, traffics)


def test_sigterm_during_posts_is_a_clean_stop(serve_factory: ServeFactory) -> None:
    server = serve_factory()
    token = server.pair(EXT_ORIGIN)
    exit_code: list[int] = []

    def terminate() -> None:
        exit_code.append(server.stop(timeout=10))

    traffic, signalled = _run_traffic_then(server, token, "term", terminate)
    assert exit_code == [0], server.stderr()
    assert time.monotonic() - signalled < 10
    assert not server.handover_path.exists()
    assert "checkpoint written" in server.stderr()
    _check_offline(server, [traffic])
    server.start()
    _check_ledger_after_restart(server, token, [traffic])


def test_sigterm_answers_the_batch_in_flight(serve_factory: ServeFactory) -> None:
    server = serve_factory()
    events = [make_event(chat_id=f"in-flight-{i}") for i in range(20_000)]   # ~1 s of work
    body = json.dumps({"events": events}).encode()
    answer: dict[str, Any] = {}

    def post() -> None:
        try:
            answer["response"] = raw_request(server.port, "POST", "/api/v1/events", body=body,
                                             headers={**bearer(server.cli_token),
                                                      "Content-Type": "application/json"},
                                             timeout=60)
        except Exception as exc:  # the test reports it below
            answer["error"] = exc

    poster = threading.Thread(target=post)
    poster.start()
    time.sleep(0.3)            # the batch is being read or stored now
    assert server.stop() == 0
    poster.join(60)
    assert "error" not in answer, answer.get("error")
    assert answer["response"].status == 200
    assert answer["response"].json()["stored"] == len(events)
    server.start()
    assert server.event_count() == len(events)
