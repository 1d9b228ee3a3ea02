"""server/channel.py's LoopIngest: small ingest requests answered on waitress's loop thread
in groups (one write, one fsync, one signature for the requests read together), big ones
and everything else on a worker, every answer only once its batch is on disk."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

import auditor.ledger
from auditor.ledger import Ledger
from auditor.live import LiveLedger
from server.app import ServerState, create_app
from server.auth import TokenStore
from server.channel import LOOP_MAX_BODY
from tests.conftest import make_event
from tests.server_harness import served

PORT = 8765
CLI_TOKEN = "cli-token-for-the-loop-ingest-test-0123456789"
HEADERS = {"Authorization": f"Bearer {CLI_TOKEN}", "Content-Type": "application/json",
           "Host": f"127.0.0.1:{PORT}"}


class _CountingOs:
    """`os` for auditor.ledger, counting fsyncs of the ledger file."""

    def __init__(self) -> None:
        self.fsyncs = 0

    def fsync(self, fd: int) -> None:
        self.fsyncs += 1
        os.fsync(fd)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


@contextmanager
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Any, Any]]:
    """A served app over a fresh ledger: (port, its LiveLedger, the fsync counter), with
    each staged batch's thread name noted in `live.staged_on`."""
    counting = _CountingOs()
    monkeypatch.setattr(auditor.ledger, "os", counting)
    live = LiveLedger.open(tmp_path / "data", tmp_path / "config")
    live.ledger.start_checkpointer()
    live.staged_on = []
    stage = live.stage

    def noting_stage(events: Any, **kwargs: Any) -> Any:
        live.staged_on.append(threading.current_thread().name)
        return stage(events, **kwargs)

    monkeypatch.setattr(live, "stage", noting_stage)
    state = ServerState(live=live, tokens=TokenStore(tmp_path / "config" / "tokens.json"),
                        cli_token=CLI_TOKEN)
    try:
        with served(create_app(state, port=PORT), threads=4) as port:
            yield port, live, counting
    finally:
        live.close()


def post(conn: HTTPConnection, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    conn.request("POST", "/api/v1/events", body=json.dumps({"events": events}),
                 headers=HEADERS)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_concurrent_requests_share_writes_fsyncs_and_lose_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with server(tmp_path, monkeypatch) as (port, live, counting):
        answers: list[tuple[int, dict[str, Any]]] = []

        def client(k: int) -> None:
            conn = HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(40):
                answers.append(post(conn, [make_event(chat_id=f"k{k}-{i}")]))
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 320
        assert all(status == 200 and body["stored"] == 1 for status, body in answers)
        # Every answer's checkpoint is signed and covers its own batch.
        public = live.ledger.keys.public_key
        for _status, body in answers:
            cp = auditor.ledger.Checkpoint(**body["checkpoint"])
            assert auditor.ledger.verify_checkpoint(public, cp)
            assert cp.seq >= 1
        assert set(live.staged_on) == {"loop"}      # all on the loop's thread
        assert counting.fsyncs <= 160               # grouped: 72 to 80 here, for 320
        assert live.ledger.seq == 320
    with Ledger.open(tmp_path / "data", tmp_path / "config", writable=False) as reader:
        assert len({e["chat_id"] for e in reader.events()}) == 320


def test_every_answer_waits_for_its_own_fsync(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer leaves only once the records it acknowledges are fsynced."""
    with server(tmp_path, monkeypatch) as (port, live, counting):
        seen: list[tuple[int, int]] = []   # (fsyncs so far, records written) at each fsync
        real = counting.fsync

        def noting(fd: int) -> None:
            real(fd)
            seen.append((counting.fsyncs, live.ledger._written[0]))

        counting.fsync = noting
        conn = HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(5):
            status, body = post(conn, [make_event(chat_id=f"c{i}")])
            assert status == 200
            # Some fsync had covered this batch before its answer was sent.
            assert any(upto >= body["checkpoint"]["seq"] for _n, upto in seen)
            assert body["checkpoint"]["seq"] >= i + 1
        conn.close()


def test_a_big_batch_is_staged_on_a_worker(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    events = [make_event(chat_id=f"big{i}", title="t" * 900) for i in range(300)]
    body = json.dumps({"events": events})
    assert len(body) > LOOP_MAX_BODY
    with server(tmp_path, monkeypatch) as (port, live, _counting):
        conn = HTTPConnection("127.0.0.1", port, timeout=30)
        status, answer = post(conn, events)
        assert (status, answer["stored"]) == (200, 300)
        status, answer = post(conn, [make_event(chat_id="small")])
        assert (status, answer["stored"]) == (200, 1)
        conn.close()
        assert live.staged_on[0].startswith("waitress-") and live.staged_on[1] == "loop"


_HEAD = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items()).encode()


def raw_post(events: list[dict[str, Any]]) -> bytes:
    """One `POST /api/v1/events` as bytes on the wire, to pipeline behind others."""
    body = json.dumps({"events": events}).encode()
    return (b"POST /api/v1/events HTTP/1.1\r\n" + _HEAD
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def pipelined(port: int, requests: bytes, count: int) -> list[dict[str, Any]]:
    """Send the requests at once on one connection; the JSON bodies of the `count` answers
    (all 200), in the order they came."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(requests)
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < count or not received.endswith(b"}\n"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    return [json.loads(part.split(b"\r\n\r\n", 1)[1])
            for part in received.split(b"HTTP/1.1 ")[1:]]


def test_pipelined_requests_are_answered_in_order(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with server(tmp_path, monkeypatch) as (port, live, _counting):
        requests = b"".join(raw_post([make_event(chat_id=f"p{i}")]) for i in range(3))
        heads = [answer["head"] for answer in pipelined(port, requests, 3)]
        # In the order sent: each answer's head is the hash of its own record's line.
        lines = live.ledger.path.read_bytes().splitlines()
        assert heads == [hashlib.sha256(line).hexdigest() for line in lines]


def test_an_ingest_request_pipelined_behind_another_kind_is_answered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A GET (served by a worker) then a POST on one connection, sent at once: the worker
    hands the POST to the loop as it finishes, and the loop answers it."""
    with server(tmp_path, monkeypatch) as (port, live, _counting):
        requests = (b"GET /api/v1/health HTTP/1.1\r\n" + _HEAD + b"\r\n"
                    + raw_post([make_event(chat_id="after-get")]))
        answers = pipelined(port, requests, 2)
        assert answers[0]["ok"] is True and answers[1]["stored"] == 1
        assert live.staged_on == ["loop"]


def test_a_request_the_loop_cannot_read_goes_to_a_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should building a request's environ fail on the loop, a worker still answers it and
    the loop keeps serving."""
    from server.channel import OneSendTask
    real = OneSendTask.get_environment

    def failing_on_the_loop(self: Any) -> Any:
        if threading.current_thread().name == "loop":
            raise RuntimeError("environ")
        return real(self)

    with server(tmp_path, monkeypatch) as (port, live, _counting):
        monkeypatch.setattr(OneSendTask, "get_environment", failing_on_the_loop)
        conn = HTTPConnection("127.0.0.1", port, timeout=30)
        assert post(conn, [make_event(chat_id="w")])[0] == 200
        monkeypatch.setattr(OneSendTask, "get_environment", real)
        assert post(conn, [make_event(chat_id="l")])[0] == 200
        conn.close()
        assert live.staged_on[0].startswith("waitress-") and live.staged_on[1] == "loop"
