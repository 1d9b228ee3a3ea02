"""The ingest fast path (server/ingest.py) answers exactly as the Flask path does.

One table of requests is sent, over loopback to waitress, to an app with the fast path and
to one without it. Both serve copies of one ledger (same keys, same tokens) with the
record nonces drawn from the same seeded generator, so even the heads and checkpoint
signatures of the stored batches must come out the same. Every answer must match byte for
byte (status, headers but `Date`, body); a refused request stores nothing on either side;
and the exact `POST /api/v1/events` must not have reached Flask at all on the fast side.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response
from hypothesis import given, settings
from hypothesis import strategies as st

import auditor.ledger
from auditor.ledger import Ledger
from auditor.live import LiveLedger
from server.api import MAX_DEPTH, encode_answer
from server.app import ServerState, create_app
from server.auth import TokenStore
from server.ingest import FastIngest, status_line
from tests.conftest import make_event
from tests.server_harness import (
    EXT_ORIGIN,
    OTHER_EXT_ORIGIN,
    WEB_ORIGIN,
    RawResponse,
    raw_request,
    served,
)

PORT = 8765                     # what the apps think they listen on (the Host they accept)
HOST = f"127.0.0.1:{PORT}"
MAX_BODY = 4096                 # small, so the size rows stay small
CLI_TOKEN = "cli-token-for-both-apps-0123456789abcdef"
EVENTS = "/api/v1/events"
JSON = "application/json"


@dataclass(frozen=True)
class Row:
    label: str
    body: bytes | None
    token: str | None = "ext"            # a key of the tokens, or None
    origin: str | None = EXT_ORIGIN
    content_type: str | None = JSON
    host: str | None = HOST
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "POST"
    path: str = EVENTS
    chunked: bool = False

    @property
    def fast(self) -> bool:
        """Whether the fast path answers it (the exact request) or passes it to Flask."""
        return self.method == "POST" and self.path == EVENTS


def batch(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def ev(n: int, **fields: Any) -> dict[str, Any]:
    return make_event(**{"id": f"fast-path-{n:04d}", "chat_id": f"chat-{n % 3}", **fields})


def nested(depth: int) -> bytes:
    return b'{"events": [' + b"[" * (depth - 2) + b"]" * (depth - 2) + b"]}"


BIG = batch(*(ev(900 + i, title="x" * 200) for i in range(20)))
assert len(BIG) > MAX_BODY

ROWS = [
    Row("good", batch(ev(1), ev(2))),
    Row("good-cli-token", batch(ev(3)), token="cli", origin=None),
    Row("good-bare-token", batch(ev(4)), token="bare", origin=None),
    Row("good-json-charset", batch(ev(5)), content_type="application/json; charset=utf-8"),
    Row("good-upper-case-type", batch(ev(6)), content_type="Application/JSON"),
    Row("good-host-localhost", batch(ev(7)), host=f"LOCALHOST:{PORT}"),
    Row("good-host-ipv6", batch(ev(8)), host=f"[::1]:{PORT}"),
    Row("good-lower-case-bearer", batch(ev(9)), token=None, origin=None,
        headers=(("Authorization", f"bearer {CLI_TOKEN}"),)),
    Row("good-extension-cross-site", batch(ev(10)), headers=(("Sec-Fetch-Site", "cross-site"),)),
    Row("good-utf-16", json.dumps({"events": [ev(11, title="ünïcode")]}).encode("utf-16")),
    Row("good-non-ascii-title", batch(ev(12, title="Grüße, 日本")),),
    Row("good-chunked", batch(ev(13)), chunked=True),
    Row("good-empty-batch", batch()),
    Row("duplicate", batch(ev(1), ev(2))),
    Row("duplicate-and-new", batch(ev(1), ev(14))),
    Row("duplicate-within-batch", batch(ev(15), ev(15))),
    Row("cli-token-over-the-limit", BIG, token="cli", origin=None),
    # -- refused by the guard
    Row("bad-token", batch(ev(20)), token="wrong"),
    Row("no-token", batch(ev(21)), token=None),
    Row("basic-auth", batch(ev(22)), token=None, headers=(("Authorization", "Basic YTpi"),)),
    Row("empty-bearer", batch(ev(23)), token=None, headers=(("Authorization", "Bearer "),)),
    Row("web-origin", batch(ev(24)), origin=WEB_ORIGIN),
    Row("null-origin", batch(ev(25)), origin="null"),
    Row("page-origin", batch(ev(26)), token="bare", origin=f"http://{HOST}"),
    Row("other-extension", batch(ev(27)), origin=OTHER_EXT_ORIGIN),
    Row("ext-token-no-origin", batch(ev(28)), origin=None),
    Row("cli-token-from-extension", batch(ev(29)), token="cli"),
    Row("wrong-host", batch(ev(30)), host=f"evil.example:{PORT}"),
    Row("other-port", batch(ev(31)), host=f"127.0.0.1:{PORT + 1}"),
    Row("no-host", batch(ev(32)), host=None),
    Row("host-two-values", batch(ev(33)), host=f"{HOST}, evil.example"),
    Row("sec-fetch-cross-site", batch(ev(34)), token="bare", origin=None,
        headers=(("Sec-Fetch-Site", "cross-site"),)),
    Row("sec-fetch-same-site", batch(ev(35)), token="bare", origin=None,
        headers=(("Sec-Fetch-Site", "same-site"),)),
    Row("text-plain", batch(ev(36)), content_type="text/plain"),
    Row("text-plain-no-token", batch(ev(37)), token=None, content_type="text/plain"),
    Row("form", b"events=%5B%5D", content_type="application/x-www-form-urlencoded"),
    Row("no-content-type", batch(ev(38)), content_type=None),
    Row("json-lookalike", batch(ev(39)), content_type="application/jsonx"),
    Row("oversized", BIG),
    Row("oversized-chunked", BIG, chunked=True),
    Row("oversized-no-token", BIG, token=None),
    # -- refused by the handler
    Row("not-json", b"{not json"),
    Row("json-null", b"null"),
    Row("empty-body", b""),
    Row("bad-utf-8", b'{"events": ["\xff"]}'),
    Row("not-a-batch", b'[{"v": 1}]'),
    Row("events-not-a-list", b'{"events": {}}'),
    Row("unknown-body-field", b'{"events": [], "text": "hi"}'),
    Row("unknown-non-ascii-field", json.dumps({"events": [], "tëxt": 1}).encode()),
    Row("invalid-event", batch(ev(40), ev(41, provider="bard"), ev(42))),
    Row("invalid-event-non-ascii", batch(ev(43, kind="chät"))),
    Row("not-an-object", batch(ev(44)).replace(b"]}", b', "an event?"]}')),
    Row("deeply-nested", nested(100_000), token="cli", origin=None),
    Row("nested-2000", nested(2000)),
    Row("nested-past-the-limit", nested(MAX_DEPTH + 1)),
    Row("nested-at-the-limit", nested(MAX_DEPTH)),
    Row("nested-where-the-stack-decided", nested(960)),
    Row("brackets-in-strings", batch(ev(45, title="[" * 300))),
    Row("nested-with-bad-utf-8", nested(500).replace(b"]}", b'"\xff"]}')),
    # -- not the exact request: Flask answers on both sides
    Row("query-string", batch(ev(50)), path=f"{EVENTS}?x=1"),
    Row("double-slash", batch(ev(51)), path="//api/v1/events"),
    Row("percent-encoded", batch(ev(52)), path="/%61pi/v1/events"),
    Row("double-slash-web-origin", batch(ev(53)), path="//api/v1/events", origin=WEB_ORIGIN),
    Row("trailing-slash", batch(ev(54)), path=f"{EVENTS}/"),
    Row("upper-case", batch(ev(55)), path="/API/v1/events"),
    Row("absolute-form", batch(ev(56)), path=f"http://{HOST}{EVENTS}"),
    Row("put", batch(ev(57)), method="PUT"),
    Row("options", None, method="OPTIONS"),
    Row("get", None, method="GET"),
]


class _SeededOs:
    """`os` for auditor.ledger with `urandom` from a seeded generator (record nonces)."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def urandom(self, n: int) -> bytes:
        return self._random.randbytes(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


@dataclass
class Run:
    responses: list[RawResponse]
    seqs: list[int]             # the ledger's record count after each row
    reached_flask: list[bool]


def send_all(base: Path, copy: Path, tokens: dict[str, str], *, fast: bool,
             monkeypatch: pytest.MonkeyPatch) -> Run:
    shutil.copytree(base, copy)
    monkeypatch.setattr(auditor.ledger, "os", _SeededOs(7))
    live = LiveLedger.open(copy / "data", copy / "config")
    state = ServerState(live=live, tokens=TokenStore(copy / "config" / "tokens.json"),
                        cli_token=CLI_TOKEN)
    app = create_app(state, port=PORT, max_body=MAX_BODY, fast_ingest=fast)
    assert isinstance(app.wsgi_app, FastIngest) == fast
    flask_calls = [0]
    flask_app = app.wsgi_app.wsgi_app if fast else app.wsgi_app  # type: ignore[attr-defined]

    def counted(environ: dict[str, Any], start_response: Any) -> Any:
        flask_calls[0] += 1
        return flask_app(environ, start_response)

    if fast:
        app.wsgi_app.wsgi_app = counted  # type: ignore[attr-defined]
    else:
        app.wsgi_app = counted  # type: ignore[method-assign]
    run = Run([], [], [])
    try:
        with served(app) as port:
            for row in ROWS:
                headers: list[tuple[str, str]] = []
                if row.token is not None:
                    headers.append(("Authorization", f"Bearer {tokens[row.token]}"))
                if row.origin is not None:
                    headers.append(("Origin", row.origin))
                if row.content_type is not None:
                    headers.append(("Content-Type", row.content_type))
                headers += row.headers
                before = flask_calls[0]
                run.responses.append(raw_request(port, row.method, row.path, headers=headers,
                                                 body=row.body, host=row.host,
                                                 chunked=row.chunked))
                run.seqs.append(live.ledger.seq)
                run.reached_flask.append(flask_calls[0] > before)
    finally:
        live.close()
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    root = tmp_path_factory.mktemp("fast-path")
    base = root / "base"
    Ledger.open(base / "data", base / "config").close()
    store = TokenStore(base / "config" / "tokens.json")
    tokens = {"ext": store.issue(EXT_ORIGIN), "bare": store.issue(None), "cli": CLI_TOKEN,
              "wrong": "not-a-token-of-this-server-0123456789abcdefgh"}
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast = send_all(base, root / "fast", tokens, fast=True, monkeypatch=monkeypatch)
    with pytest.MonkeyPatch.context() as monkeypatch:
        slow = send_all(base, root / "flask", tokens, fast=False, monkeypatch=monkeypatch)
    return fast, slow


def _without_date(response: RawResponse) -> list[tuple[str, str]]:
    return [(k, v) for k, v in response.headers if k.lower() != "date"]


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[row.label for row in ROWS])
def test_same_answer_both_ways(runs: tuple[Run, Run], index: int) -> None:
    fast, slow = runs
    row = ROWS[index]
    a, b = fast.responses[index], slow.responses[index]
    assert (a.status, _without_date(a), a.body) == (b.status, _without_date(b), b.body)
    assert fast.seqs[index] == slow.seqs[index]
    assert a.cors_headers() == []
    if a.status != 200:     # a refused request stores nothing
        before = fast.seqs[index - 1] if index else 0
        assert fast.seqs[index] == before, f"{row.label} stored something"
    assert fast.reached_flask[index] == (not row.fast)
    assert slow.reached_flask[index]


def test_the_table_covers_what_it_says() -> None:
    """The rows meant to be stored or refused are (so the comparison is not of two 500s)."""
    by_label = {row.label: i for i, row in enumerate(ROWS)}
    assert len(by_label) == len(ROWS)
    assert all(label in by_label for label in ("good", "bad-token", "wrong-host", "oversized",
                                               "text-plain", "invalid-event", "duplicate"))


def test_the_statuses(runs: tuple[Run, Run]) -> None:
    fast, _ = runs
    status = {row.label: fast.responses[i].status for i, row in enumerate(ROWS)}
    body = {row.label: fast.responses[i].body for i, row in enumerate(ROWS)}
    for label in ("good", "good-cli-token", "good-utf-16", "good-chunked", "duplicate",
                  "cli-token-over-the-limit", "good-extension-cross-site"):
        assert status[label] == 200, (label, body[label][:200])
    assert json.loads(body["duplicate"])["duplicates"] == 2
    assert json.loads(body["duplicate-within-batch"]) | {"head": 0, "checkpoint": 0} == {
        "stored": 1, "duplicates": 1, "head": 0, "checkpoint": 0}
    expected = {"bad-token": 401, "no-token": 401, "web-origin": 403, "other-extension": 403,
                "wrong-host": 400, "no-host": 400, "sec-fetch-cross-site": 403,
                "text-plain": 415, "oversized": 413, "oversized-chunked": 413,
                "not-json": 400, "invalid-event": 400, "deeply-nested": 400,
                "nested-where-the-stack-decided": 400, "put": 405}
    assert {label: status[label] for label in expected} == expected
    assert json.loads(body["invalid-event"])["index"] == 1
    for label in ("deeply-nested", "nested-2000", "nested-past-the-limit",
                  "nested-where-the-stack-decided"):
        assert json.loads(body[label]) == {"error": "the body is nested too deeply"}
    assert json.loads(body["nested-at-the-limit"])["field"] is None  # the schema's turn
    assert status["brackets-in-strings"] == 200


_TEXT = st.text(st.characters(blacklist_categories=()))   # lone surrogates too
_ANSWERS = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TEXT, _ANSWERS, max_size=6))
def test_any_answer_is_encoded_as_jsonify_does(payload: dict[str, Any]) -> None:
    app = Flask(__name__)
    with app.app_context():
        assert encode_answer(payload) == app.json.response(payload).get_data()


def test_a_stored_answer_is_what_jsonify_makes() -> None:
    """The fast path's encoder is Flask's jsonify, byte for byte (non-ASCII included)."""
    app = Flask(__name__)
    for payload in ({"stored": 1, "duplicates": 0, "head": "ab" * 32,
                     "checkpoint": {"seq": 3, "head": "cd" * 32, "signature": "x+/="}},
                    {"error": "unknown field 'tëxt' in the body", "field": "tëxt",
                     "index": None}):
        with app.app_context():
            assert encode_answer(payload) == app.json.response(payload).get_data()
    for code in (200, 400, 401, 403, 404, 413, 415, 500, 599):
        assert status_line(code) == Response(status=code).status
