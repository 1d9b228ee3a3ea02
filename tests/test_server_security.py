"""The request guard against the real `consent-ledger serve` over loopback.

One table row per check of CONTRACT.md section 2 and per attack of SECURITY.md: label,
request, expected status. Every row also checks that nothing was stored (the event count is
unchanged) and that no `Access-Control-*` header came back. A second table of requests
that must succeed keeps the first honest: the refusals are not a server refusing everything.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import pytest

from tests.conftest import make_event
from tests.server_harness import (
    EXT_ORIGIN,
    OTHER_EXT_ORIGIN,
    WEB_ORIGIN,
    RawResponse,
    ServeFactory,
    ServeProcess,
    bearer,
    raw_request,
)

pytest_plugins = ["tests.conftest_server"]

JSON = "application/json"
LIMIT = 1 << 20


@pytest.fixture(scope="module")
def tokens(module_server: ServeProcess) -> dict[str, str]:
    """ext: paired from EXT_ORIGIN; bare: paired with no Origin; cli: the command line's."""
    return {"ext": module_server.pair(EXT_ORIGIN), "bare": module_server.pair(None),
            "cli": module_server.cli_token, "wrong": secrets.token_urlsafe(32)}


def fresh_events(n: int = 2) -> list[dict[str, Any]]:
    tag = secrets.token_hex(6)
    return [make_event(id=f"sec-{tag}-{i:05d}", chat_id=f"chat-{tag}-{i}") for i in range(n)]


def big_batch() -> bytes:
    """A valid batch just over the 1 MiB limit: a server that ignored the limit would store it."""
    events: list[dict[str, Any]] = []
    tag = secrets.token_hex(6)
    body = b""
    while len(body) <= LIMIT:
        start = len(events)
        events += [make_event(id=f"big-{tag}-{start + i:06d}", title="x" * 100)
                   for i in range(500)]
        body = json.dumps({"events": events}).encode()
    return body


@dataclass(frozen=True)
class Row:
    label: str
    method: str
    path: str
    expect: int
    token: str | None = None          # a key of the `tokens` fixture
    origin: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    host: str | None = "ok"           # "ok", None (no Host at all), or "{port}"/"{other}" template
    body: str | None = None           # "events", "big", "deep", "code", or a literal text body
    content_type: str | None = JSON
    chunked: bool = False


def R(label: str, method: str, path: str, expect: int, **kw: Any) -> Any:
    return pytest.param(Row(label, method, path, expect, **kw), id=label)


def _send(server: ServeProcess, tokens: dict[str, str], row: Row) -> RawResponse:
    """Send a row; `{port}`, `{other}` (another port) and `{cli}` in its texts filled in."""
    def fill(text: str) -> str:
        return text.format(port=server.port, other=server.port % 65535 + 1, cli=tokens["cli"])

    headers: list[tuple[str, str]] = []
    if row.token is not None:
        headers += bearer(tokens[row.token]).items()
    if row.origin is not None:
        headers.append(("Origin", fill(row.origin)))
    headers += [(name, fill(value)) for name, value in row.headers]
    body: bytes | None = None
    if row.body is not None:
        body = {"events": lambda: json.dumps({"events": fresh_events()}).encode(),
                "big": big_batch,
                "deep": lambda: b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                "code": lambda: b'{"code": "00000-00000"}',
                }.get(row.body, lambda: row.body.encode())()  # type: ignore[union-attr]
        if row.content_type is not None:
            headers.append(("Content-Type", row.content_type))
    host = f"127.0.0.1:{server.port}" if row.host == "ok" else row.host and fill(row.host)
    return raw_request(server.port, row.method, row.path, headers=headers, body=body,
                       host=host, chunked=row.chunked)


EVENTS = "/api/v1/events"
HEALTH = "/api/v1/health"
EXT = {"token": "ext", "origin": EXT_ORIGIN}

REFUSALS = [
    # -- 1. Host: DNS rebinding (SECURITY 2), on the API, pages and static files alike
    R("host-evil-api", "GET", HEALTH, 400, token="cli", host="evil.example:{port}"),
    R("host-other-port-api", "GET", HEALTH, 400, token="cli", host="127.0.0.1:{other}"),
    R("host-missing-api", "GET", HEALTH, 400, token="cli", host=None),
    R("host-no-port-api", "GET", HEALTH, 400, token="cli", host="localhost"),
    R("host-suffix-api", "GET", HEALTH, 400, token="cli", host="127.0.0.1:{port}.evil.example"),
    R("host-two-values-api", "GET", HEALTH, 400, token="cli",
      host="127.0.0.1:{port}, evil.example"),
    R("host-evil-post-events", "POST", EVENTS, 400, **EXT, body="events",
      host="evil.example:{port}"),
    R("host-evil-pair", "POST", "/api/v1/pair", 400, origin=EXT_ORIGIN, body="code",
      host="evil.example:{port}"),
    R("host-evil-dashboard", "GET", "/", 400, host="evil.example:{port}"),
    R("host-other-port-dashboard", "GET", "/", 400, host="127.0.0.1:{other}"),
    R("host-missing-dashboard", "GET", "/", 400, host=None),
    R("host-evil-login", "GET", "/login", 400, host="evil.example:{port}"),
    R("host-evil-login-code", "GET", "/login/00000-00000", 400, host="evil.example:{port}"),
    R("host-other-port-login", "GET", "/login", 400, host="127.0.0.1:{other}"),
    R("host-missing-login", "GET", "/login", 400, host=None),
    R("host-evil-static", "GET", "/static/dashboard.css", 400, host="evil.example:{port}"),
    R("host-missing-static", "GET", "/static/dashboard.css", 400, host=None),
    R("host-other-port-static", "GET", "/static/dashboard.css", 400, host="127.0.0.1:{other}"),
    R("host-evil-openapi", "GET", "/openapi.json", 400, host="evil.example:{port}"),
    # -- 2. Origin / Sec-Fetch-Site on the API (SECURITY 1): web pages are refused
    R("web-origin-get", "GET", HEALTH, 403, token="ext", origin=WEB_ORIGIN),
    R("web-origin-post-events", "POST", EVENTS, 403, token="ext", origin=WEB_ORIGIN,
      body="events"),
    R("web-origin-post-simple", "POST", EVENTS, 403, origin=WEB_ORIGIN, body="events",
      content_type="text/plain"),
    R("web-origin-pair", "POST", "/api/v1/pair", 403, origin=WEB_ORIGIN, body="code"),
    R("web-origin-hello", "GET", "/api/v1/hello?nonce=00112233445566778899", 403,
      origin=WEB_ORIGIN),
    R("web-origin-openapi", "GET", "/openapi.json", 403, origin=WEB_ORIGIN),
    R("null-origin-get", "GET", HEALTH, 403, token="ext", origin="null"),
    R("null-origin-post-events", "POST", EVENTS, 403, token="ext", origin="null",
      body="events"),
    R("same-server-page-origin", "POST", EVENTS, 403, token="bare",
      origin="http://127.0.0.1:{port}", body="events"),
    R("localhost-page-origin", "POST", EVENTS, 403, token="bare",
      origin="http://localhost:{port}", body="events"),
    R("bare-scheme-origin", "GET", HEALTH, 403, token="ext", origin="chrome-extension://"),
    R("preflight-web-origin", "OPTIONS", EVENTS, 403, origin=WEB_ORIGIN,
      headers=(("Access-Control-Request-Method", "POST"),
               ("Access-Control-Request-Headers", "authorization,content-type"))),
    R("preflight-web-origin-pair", "OPTIONS", "/api/v1/pair", 403, origin=WEB_ORIGIN,
      headers=(("Access-Control-Request-Method", "POST"),)),
    R("preflight-localhost-origin", "OPTIONS", HEALTH, 403, origin="http://localhost:{port}",
      headers=(("Access-Control-Request-Method", "GET"),)),
    R("sec-fetch-cross-site", "GET", HEALTH, 403, token="bare",
      headers=(("Sec-Fetch-Site", "cross-site"),)),
    R("sec-fetch-same-site", "GET", HEALTH, 403, token="bare",
      headers=(("Sec-Fetch-Site", "same-site"),)),
    R("sec-fetch-cross-site-post", "POST", EVENTS, 403, token="bare", body="events",
      headers=(("Sec-Fetch-Site", "cross-site"),)),
    R("sec-fetch-cross-site-cli-token", "GET", "/api/v1/tokens", 403, token="cli",
      headers=(("Sec-Fetch-Site", "cross-site"),)),
    R("sec-fetch-same-site-web-origin", "POST", EVENTS, 403, token="ext", origin=WEB_ORIGIN,
      body="events", headers=(("Sec-Fetch-Site", "same-site"),)),
    # -- 3. pages: same origin only
    R("page-web-origin", "GET", "/", 403, origin=WEB_ORIGIN),
    R("page-cross-site", "GET", "/", 403, headers=(("Sec-Fetch-Site", "cross-site"),)),
    R("page-same-site", "GET", "/login", 403, headers=(("Sec-Fetch-Site", "same-site"),)),
    R("page-logout-web-origin", "POST", "/logout", 403, origin=WEB_ORIGIN,
      body="csrf_token=x", content_type="application/x-www-form-urlencoded"),
    R("page-other-port-origin", "GET", "/", 403, origin="http://127.0.0.1:{other}"),
    # -- 4. routes after normalisation (SECURITY 4): unknown routes are 404, aliases of a
    #       route get every check of that route (so no token: 401, never 2xx)
    R("double-slash-no-token", "GET", "//api/v1/health", 401),
    R("percent-encoded-no-token", "GET", "/%61pi/v1/health", 401),
    R("encoded-slash-no-token", "GET", "/api%2Fv1/health", 401),
    R("dot-dot", "GET", "/api/v1/../v1/health", 404),
    R("dot-dot-token", "GET", "/api/v1/../v1/health", 404, token="cli"),
    R("dot", "GET", "/api/v1/./health", 404),
    R("trailing-slash", "GET", "/api/v1/health/", 404),
    R("trailing-encoded-slash", "GET", "/api/v1/health%2F", 404),
    R("inner-double-slash", "GET", "/api//v1/health", 404),
    R("upper-case", "GET", "/API/v1/health", 404),
    R("upper-case-token", "GET", "/API/v1/health", 404, token="cli"),
    R("semicolon", "GET", "/api/v1/health;x", 404),
    R("nul", "GET", "/api/v1/health%00", 404),
    R("unknown-api-route", "GET", "/api/v1/export", 404, token="cli"),
    R("unknown-api-version", "GET", "/api/v2/health", 404, token="cli"),
    R("static-dot-dot", "GET", "/static/../server/app.py", 404),
    R("static-encoded-dot-dot", "GET", "/static/%2e%2e/app.py", 404),
    R("double-slash-web-origin", "POST", "//api/v1/events", 403, token="ext",
      origin=WEB_ORIGIN, body="events"),
    R("percent-encoded-web-origin", "POST", "/%61pi/v1/events", 403, token="ext",
      origin=WEB_ORIGIN, body="events"),
    R("double-slash-other-extension", "GET", "//api/v1/health", 403, token="ext",
      origin=OTHER_EXT_ORIGIN),
    R("double-slash-text-plain", "POST", "//api/v1/events", 415, **EXT, body="events",
      content_type="text/plain"),
    R("double-slash-cli-only", "POST", "//api/v1/pairing-codes", 403, **EXT, body="{}"),
    R("absolute-form-no-token", "GET", "http://evil.example/api/v1/health", 401),
    # -- 5. a token (SECURITY 1, 5)
    R("no-token-get", "GET", HEALTH, 401),
    R("no-token-post-events", "POST", EVENTS, 401, origin=EXT_ORIGIN, body="events"),
    R("no-token-report", "GET", "/api/v1/report?format=json", 401, origin=EXT_ORIGIN),
    R("no-token-chat", "GET", "/api/v1/chats/claude/chat-1", 401, origin=EXT_ORIGIN),
    R("no-token-accounts", "GET", "/api/v1/accounts", 401),
    R("no-token-tokens", "GET", "/api/v1/tokens", 401),
    R("no-token-pairing-codes", "POST", "/api/v1/pairing-codes", 401, body="{}"),
    R("wrong-token", "GET", HEALTH, 401, token="wrong", origin=EXT_ORIGIN),
    R("wrong-token-post", "POST", EVENTS, 401, token="wrong", origin=EXT_ORIGIN,
      body="events"),
    R("basic-auth", "GET", HEALTH, 401, headers=(("Authorization", "Basic YTpi"),)),
    R("empty-bearer", "GET", HEALTH, 401, headers=(("Authorization", "Bearer "),)),
    R("token-in-query", "GET", "/api/v1/health?token=x&access_token=x", 401),
    R("no-token-text-plain", "POST", EVENTS, 401, origin=EXT_ORIGIN, body="events",
      content_type="text/plain"),
    R("no-token-oversized", "POST", EVENTS, 401, origin=EXT_ORIGIN, body="big"),
    # -- 6. the token's pinned Origin (SECURITY 3)
    R("other-extension-get", "GET", HEALTH, 403, token="ext", origin=OTHER_EXT_ORIGIN),
    R("other-extension-post", "POST", EVENTS, 403, token="ext", origin=OTHER_EXT_ORIGIN,
      body="events"),
    R("firefox-same-id", "GET", HEALTH, 403, token="ext",
      origin=EXT_ORIGIN.replace("chrome-extension", "moz-extension")),
    R("ext-token-no-origin", "GET", HEALTH, 403, token="ext"),
    R("ext-token-no-origin-post", "POST", EVENTS, 403, token="ext", body="events"),
    R("bare-token-from-extension", "GET", HEALTH, 403, token="bare", origin=EXT_ORIGIN),
    R("cli-token-from-extension", "GET", HEALTH, 403, token="cli", origin=EXT_ORIGIN),
    # -- command-line-only routes refused for every other token
    R("ext-pairing-codes", "POST", "/api/v1/pairing-codes", 403, **EXT, body="{}"),
    R("ext-login-links", "POST", "/api/v1/login-links", 403, **EXT, body="{}"),
    R("ext-tokens", "GET", "/api/v1/tokens", 403, **EXT),
    R("ext-revoke", "DELETE", "/api/v1/tokens/00000000", 403, **EXT),
    R("bare-tokens", "GET", "/api/v1/tokens", 403, token="bare"),
    R("bare-pairing-codes", "POST", "/api/v1/pairing-codes", 403, token="bare", body="{}"),
    # -- 7. writes: JSON only (SECURITY 1: "simple" requests a page can send)
    R("form-post", "POST", EVENTS, 415, **EXT, body="events=%5B%5D",
      content_type="application/x-www-form-urlencoded"),
    R("text-plain-json-body", "POST", EVENTS, 415, **EXT, body="events",
      content_type="text/plain"),
    R("text-plain-charset", "POST", EVENTS, 415, **EXT, body="events",
      content_type="text/plain; charset=utf-8"),
    R("multipart", "POST", EVENTS, 415, **EXT, body="events",
      content_type="multipart/form-data; boundary=x"),
    R("no-content-type", "POST", EVENTS, 415, **EXT, body="events", content_type=None),
    R("json-lookalike", "POST", EVENTS, 415, **EXT, body="events",
      content_type="application/jsonx"),
    R("text-plain-pair", "POST", "/api/v1/pair", 415, origin=EXT_ORIGIN, body="code",
      content_type="text/plain"),
    R("form-cli-only", "POST", "/api/v1/pairing-codes", 415, token="cli", body="a=b",
      content_type="application/x-www-form-urlencoded"),
    # -- 8. body size (SECURITY 12)
    R("oversized", "POST", EVENTS, 413, **EXT, body="big"),
    R("oversized-chunked", "POST", EVENTS, 413, **EXT, body="big", chunked=True),
    R("oversized-bare-token", "POST", EVENTS, 413, token="bare", body="big"),
    # -- 9. the schema: 4xx, never 5xx
    R("not-json", "POST", EVENTS, 400, **EXT, body="{not json"),
    R("deeply-nested-json", "POST", EVENTS, 400, **EXT, body="deep"),
    R("not-a-batch", "POST", EVENTS, 400, **EXT, body='[{"v": 1}]'),
    R("unknown-body-field", "POST", EVENTS, 400, **EXT, body='{"events": [], "text": "hi"}'),
    R("bad-nonce", "GET", "/api/v1/hello?nonce=xyz", 400),
    R("bad-report-format", "GET", "/api/v1/report?format=pdf", 400, **EXT),
    R("bad-as-of", "GET", "/api/v1/report?as_of=2026-13-01", 400, **EXT),
    R("as-of-offset-past-9999", "GET", "/api/v1/report?as_of=9999-12-31T23:59:59-01:00", 400,
      **EXT),
    R("as-of-offset-before-0001", "GET", "/api/v1/report?as_of=0001-01-01T00:00:00%2B01:00",
      400, **EXT),
    R("as-of-past-expiry-range", "GET", "/api/v1/report?as_of=9999-12-31", 400, **EXT),
    # -- 10. HEAD and OPTIONS never 2xx where GET/POST would be refused
    R("head-health-no-token", "HEAD", HEALTH, 401),
    R("head-report-no-token", "HEAD", "/api/v1/report", 401),
    R("head-accounts-no-token", "HEAD", "/api/v1/accounts", 401),
    R("head-chat-no-token", "HEAD", "/api/v1/chats/claude/chat-1", 401),
    R("head-tokens-no-token", "HEAD", "/api/v1/tokens", 401),
    R("head-double-slash-no-token", "HEAD", "//api/v1/health", 401),
    R("head-wrong-token", "HEAD", HEALTH, 401, token="wrong"),
    R("head-web-origin", "HEAD", HEALTH, 403, token="ext", origin=WEB_ORIGIN),
    R("head-other-extension", "HEAD", HEALTH, 403, token="ext", origin=OTHER_EXT_ORIGIN),
    R("head-ext-tokens", "HEAD", "/api/v1/tokens", 403, **EXT),
    R("head-dashboard-no-session", "HEAD", "/", 401),
    R("options-health", "OPTIONS", HEALTH, 405),
    R("options-events-extension", "OPTIONS", EVENTS, 405, origin=EXT_ORIGIN,
      headers=(("Access-Control-Request-Method", "POST"),)),
    R("options-events-token", "OPTIONS", EVENTS, 405, **EXT),
    R("options-star", "OPTIONS", "*", 404),
    R("options-dashboard", "OPTIONS", "/", 405),
    R("options-static-web-origin", "OPTIONS", "/static/dashboard.css", 403, origin=WEB_ORIGIN,
      headers=(("Access-Control-Request-Method", "GET"),)),
    R("put-events", "PUT", EVENTS, 405, **EXT, body="events"),
    R("get-events", "GET", EVENTS, 405, **EXT),
    R("post-health", "POST", HEALTH, 405, **EXT, body="events"),
    R("made-up-method", "BREW", HEALTH, 405, **EXT),
    # -- 11. pages without a session: the login page, 401
    R("dashboard-no-session", "GET", "/", 401),
    R("download-no-session", "GET", "/reports/json", 401),
    R("logout-no-session", "POST", "/logout", 401, body="csrf_token=x",
      content_type="application/x-www-form-urlencoded"),
    R("dashboard-bogus-cookie", "GET", "/", 401, headers=(("Cookie", "cl_session=forged"),)),
    R("dashboard-with-token", "GET", "/", 401, token="cli"),
]


@pytest.mark.parametrize("row", REFUSALS)
def test_refused(module_server: ServeProcess, tokens: dict[str, str], row: Row) -> None:
    before = module_server.event_count()
    response = _send(module_server, tokens, row)
    assert response.status == row.expect, (row.label, response.status, response.body[:300])
    assert response.cors_headers() == []
    assert module_server.event_count() == before, f"{row.label} stored something"
    if row.method != "HEAD":
        kind = (response.header("Content-Type") or "").split(";")[0]
        if row.path.lower().lstrip("/").startswith(("api", "%61pi")) and row.host == "ok":
            assert kind == JSON, (row.label, kind)
        if row.expect == 401 and kind == "text/html":
            assert b"consent-ledger login" in response.body   # the login page


ACCEPTED = [
    R("extension", "GET", HEALTH, 200, **EXT),
    R("extension-sec-fetch-none", "GET", HEALTH, 200, **EXT,
      headers=(("Sec-Fetch-Site", "none"),)),
    R("extension-cross-site", "GET", HEALTH, 200, **EXT,
      headers=(("Sec-Fetch-Site", "cross-site"),)),
    R("firefox-extension-origin", "GET", "/api/v1/hello?nonce=00112233445566778899", 200,
      origin="moz-extension://0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
    R("bare-token", "GET", HEALTH, 200, token="bare"),
    R("cli-token", "GET", "/api/v1/tokens", 200, token="cli"),
    R("cli-token-lower-case-scheme", "GET", HEALTH, 200,
      headers=(("Authorization", "bearer {cli}"),)),
    R("host-localhost", "GET", HEALTH, 200, token="cli", host="localhost:{port}"),
    R("host-ipv6", "GET", HEALTH, 200, token="cli", host="[::1]:{port}"),
    R("host-upper-case", "GET", HEALTH, 200, token="cli", host="LOCALHOST:{port}"),
    R("json-charset", "POST", EVENTS, 200, **EXT, body="events",
      content_type="application/json; charset=utf-8"),
    R("post-events", "POST", EVENTS, 200, **EXT, body="events"),
    R("double-slash-is-health", "GET", "//api/v1/health", 200, **EXT),
    R("percent-encoded-is-health", "GET", "/%61pi/v1/health", 200, **EXT),
    R("head-health", "HEAD", HEALTH, 200, **EXT),
    R("hello", "GET", "/api/v1/hello?nonce=00112233445566778899", 200),
    R("openapi", "GET", "/openapi.json", 200),
    R("login-page", "GET", "/login", 200),
    R("login-page-sec-fetch-none", "GET", "/login", 200, headers=(("Sec-Fetch-Site", "none"),)),
    R("static", "GET", "/static/dashboard.css", 200),
    R("report", "GET", "/api/v1/report?format=csv", 200, **EXT),
]


@pytest.mark.parametrize("row", ACCEPTED)
def test_accepted(module_server: ServeProcess, tokens: dict[str, str], row: Row) -> None:
    before = module_server.event_count()
    response = _send(module_server, tokens, row)
    assert response.status == row.expect, (row.label, response.status, response.body[:300])
    assert response.cors_headers() == []
    if row.method == "POST" and row.path == EVENTS:
        assert response.json()["stored"] == 2
        assert module_server.event_count() == before + 2


# -- the schema: a bad event refuses the whole batch, naming field and index ------------------

BAD_EVENTS = [
    pytest.param({"provider": "bard"}, "provider", id="unknown-provider"),
    pytest.param({"text": "the message itself"}, "text", id="unknown-field"),
    pytest.param({"at": "2025-02-30T00:00:00Z"}, "at", id="not-a-real-date"),
    pytest.param({"at": "2025-10-02T09:30:00"}, "at", id="no-zone"),
    pytest.param({"id": "short"}, "id", id="short-id"),
    pytest.param({"v": 2}, "v", id="wrong-version"),
    pytest.param({"incognito": "no"}, "incognito", id="wrong-type"),
    pytest.param({"chat_id": None}, "chat_id", id="null-chat-id"),
    pytest.param({"at": "9999-12-31T23:59:59-01:00"}, "at", id="offset-past-9999"),
    pytest.param({"at": "0001-01-01T00:00:00+01:00"}, "at", id="offset-before-0001"),
]


@pytest.mark.parametrize(("change", "field"), BAD_EVENTS)
def test_bad_event_refuses_the_batch(module_server: ServeProcess, tokens: dict[str, str],
                                     change: dict[str, Any], field: str) -> None:
    batch = fresh_events(4)
    batch[2] = {**batch[2], **change}
    before = module_server.event_count()
    response = module_server.post_events(batch, token=tokens["ext"])
    assert response.status == 400
    body = response.json()
    assert (body["field"], body["index"]) == (field, 2), body
    assert module_server.event_count() == before


def test_not_an_object_in_the_batch(module_server: ServeProcess, tokens: dict[str, str]) -> None:
    batch: list[Any] = [*fresh_events(2), "an event?"]
    before = module_server.event_count()
    response = module_server.post_events(batch, token=tokens["ext"])
    assert response.status == 400 and response.json()["index"] == 2
    assert module_server.event_count() == before


def test_duplicates_are_counted_not_stored(module_server: ServeProcess,
                                           tokens: dict[str, str]) -> None:
    batch = fresh_events(3)
    before = module_server.event_count()
    first = module_server.post_events(batch, token=tokens["ext"]).json()
    assert (first["stored"], first["duplicates"]) == (3, 0)
    again = module_server.post_events([*batch, *fresh_events(1)], token=tokens["ext"]).json()
    assert (again["stored"], again["duplicates"]) == (1, 3)
    inner = fresh_events(1)
    twice = module_server.post_events(inner + inner, token=tokens["ext"]).json()
    assert (twice["stored"], twice["duplicates"]) == (1, 1)
    assert module_server.event_count() == before + 5


def test_times_at_the_edge_of_the_calendar(module_server: ServeProcess,
                                           tokens: dict[str, str]) -> None:
    """Times the engine cannot add years to are refused (400 naming `at`, nothing stored);
    the last year accepted still reports, and an `as_of` out of range is a 400."""
    before = module_server.event_count()
    for n, at in enumerate(["9999-06-01T00:00:00Z", "0001-01-01T00:00:00Z",
                            "9000-01-01T00:00:00Z"]):
        bad = [make_event(id=f"edge-{secrets.token_hex(4)}", chat_id=f"edge-bad-{n}", at=at)]
        response = module_server.post_events(bad, token=tokens["ext"])
        assert response.status == 400, at
        assert response.json()["field"] == "at"
    assert module_server.event_count() == before
    edge = [make_event(id=f"edge-{secrets.token_hex(4)}", chat_id=f"edge-{n}", at=at)
            for n, at in enumerate(["8999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"])]
    assert module_server.post_events(edge, token=tokens["ext"]).status == 200
    for query, status in [("", 200), ("?as_of=8999-12-31T23:59:59Z", 200),
                          ("?as_of=9999-12-31T23:59:59Z", 400), ("?as_of=1970-01-01", 200)]:
        response = module_server.request("GET", f"/api/v1/report{query}", token=tokens["ext"],
                                         origin=EXT_ORIGIN)
        assert response.status == status, (query, response.body[:300])
    chat = module_server.request("GET", "/api/v1/chats/claude/edge-1", token=tokens["ext"],
                                 origin=EXT_ORIGIN)
    assert chat.status == 200


def test_cli_token_may_send_more_than_the_limit(module_server: ServeProcess) -> None:
    """CONTRACT section 3's hand-over: `ingest` through the server is one batch of any size."""
    body = big_batch()
    n = len(json.loads(body)["events"])
    before = module_server.event_count()
    response = raw_request(module_server.port, "POST", EVENTS, body=body, headers={
        **bearer(module_server.cli_token), "Content-Type": JSON})
    assert response.status == 200, response.body[:300]
    assert response.json()["stored"] == n
    assert module_server.event_count() == before + n


def test_chat_status_after_posting(module_server: ServeProcess, tokens: dict[str, str]) -> None:
    batch = fresh_events(1)
    assert module_server.post_events(batch, token=tokens["ext"]).status == 200
    response = module_server.request("GET", f"/api/v1/chats/claude/{batch[0]['chat_id']}",
                                     token=tokens["ext"], origin=EXT_ORIGIN)
    assert response.status == 200
    assert set(response.json()["badge"]) == {"text", "color", "title"}
    unseen = module_server.request("GET", "/api/v1/chats/claude/never-seen-chat",
                                   token=tokens["ext"], origin=EXT_ORIGIN)
    assert unseen.status == 404


# -- pairing codes: single use; 5 wrong tries a minute, then 429 even for the right code -----

def _pair(server: ServeProcess, code: str, origin: str = EXT_ORIGIN) -> RawResponse:
    return server.request("POST", "/api/v1/pair", origin=origin, json_body={"code": code})


def test_pairing_code_is_single_use(serve_factory: ServeFactory) -> None:
    server = serve_factory()
    first = _pair(server, server.pairing_code)
    assert first.status == 200
    body = first.json()
    assert set(body) == {"token", "account_salt", "server_key"}
    assert re.fullmatch(r"[0-9a-f]{64}", body["account_salt"])
    assert len(server.pairing_code.replace("-", "")) >= 8
    reused = _pair(server, server.pairing_code)
    assert reused.status == 400 and reused.json()["field"] == "code"
    assert "token" not in reused.json()
    # the code the command line asks for works once too, and the first token still works
    code = server.new_pairing_code()
    assert _pair(server, code, OTHER_EXT_ORIGIN).status == 200
    assert _pair(server, code, OTHER_EXT_ORIGIN).status == 400
    health = server.request("GET", HEALTH, token=body["token"], origin=EXT_ORIGIN)
    assert health.status == 200


def test_wrong_codes_then_429_even_for_the_right_code(serve_factory: ServeFactory) -> None:
    server = serve_factory()
    for attempt in range(5):
        wrong = _pair(server, f"ZZZZZ-ZZZZ{attempt}")
        assert wrong.status == 400, attempt
    right = _pair(server, server.pairing_code)
    assert right.status == 429
    assert "token" not in right.json()
    assert right.cors_headers() == []
    # the right code is not used up by the refused try: nor by a web page's attempt
    assert _pair(server, server.pairing_code, WEB_ORIGIN).status == 403


# -- the dashboard: one-time login link, cookie, CSRF --------------------------------------

def _cookie(response: RawResponse) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for value in response.header_all("Set-Cookie"):
        jar.load(value)
    return jar


def test_dashboard_login_session_and_logout(module_server: ServeProcess) -> None:
    server = module_server
    path = "/" + server.new_login_url().split("/", 3)[3]
    login = server.request("GET", path)
    assert login.status == 303 and login.header("Location") in ("/", f"{server.base_url}")
    raw_cookie = login.header("Set-Cookie") or ""
    assert "HttpOnly" in raw_cookie and "SameSite=Strict" in raw_cookie, raw_cookie
    sid = _cookie(login)["cl_session"].value
    cookie = {"Cookie": f"cl_session={sid}"}

    reused = server.request("GET", path)
    assert reused.status == 400 and reused.header("Set-Cookie") is None

    page = server.request("GET", "/", headers=cookie)
    assert page.status == 200
    assert page.header("Content-Security-Policy") and page.header("X-Frame-Options") == "DENY"
    field = re.search(rb'<input[^>]*name="csrf_token"[^>]*>', page.body)
    assert field, page.body[:500]
    match = re.search(rb'value="([^"]+)"', field.group(0))
    assert match, field.group(0)
    csrf = match.group(1).decode()
    assert server.request("GET", "/reports/csv", headers=cookie).status == 200

    form = {**cookie, "Content-Type": "application/x-www-form-urlencoded"}
    own = f"http://127.0.0.1:{server.port}"
    rows = [
        ("no-csrf", {}, b"", 403),
        ("wrong-csrf", {}, b"csrf_token=" + b"x" * len(csrf), 403),
        ("csrf-in-query-only", {}, b"", 403),
        ("cross-origin", {"Origin": WEB_ORIGIN}, f"csrf_token={csrf}".encode(), 403),
        ("null-origin", {"Origin": "null"}, f"csrf_token={csrf}".encode(), 403),
        ("cross-site", {"Sec-Fetch-Site": "cross-site"}, f"csrf_token={csrf}".encode(), 403),
        ("same-site", {"Sec-Fetch-Site": "same-site"}, f"csrf_token={csrf}".encode(), 403),
    ]
    for label, extra, body, expect in rows:
        target = f"/logout?csrf_token={csrf}" if label == "csrf-in-query-only" else "/logout"
        response = server.request("POST", target, headers={**form, **extra}, body=body)
        assert response.status == expect, (label, response.status)
        assert response.cors_headers() == []
        assert server.request("GET", "/", headers=cookie).status == 200, f"{label} logged out"

    out = server.request("POST", "/logout", headers={**form, "Origin": own,
                                                     "Sec-Fetch-Site": "same-origin"},
                         body=f"csrf_token={csrf}".encode())
    assert out.status == 200
    after = server.request("GET", "/", headers=cookie)
    assert after.status == 401 and b"consent-ledger login" in after.body


def test_printed_login_url_works_once(serve_factory: ServeFactory) -> None:
    server = serve_factory()
    path = "/" + server.login_url.split("/", 3)[3]
    assert server.request("GET", path).status == 303
    assert server.request("GET", path).status == 400
    assert server.request("GET", "/login/00000-00000").status == 400


# -- tokens: hashed, survive a restart, revocable -------------------------------------------

def test_tokens_survive_restart_and_can_be_revoked(serve_factory: ServeFactory) -> None:
    server = serve_factory()
    token = server.pair(EXT_ORIGIN)
    other = server.pair(OTHER_EXT_ORIGIN)
    stored = (server.config_dir / f"tokens-{server.ledger_id}.json").read_text()
    assert token not in stored and other not in stored     # only hashes on disk
    assert server.stop() == 0
    assert not server.handover_path.exists()

    server.start()
    assert server.request("GET", HEALTH, token=token, origin=EXT_ORIGIN).status == 200
    assert server.request("GET", HEALTH, token=other, origin=OTHER_EXT_ORIGIN).status == 200
    assert server.request("GET", HEALTH, token=token, origin=OTHER_EXT_ORIGIN).status == 403

    listed = server.cli("tokens")
    assert listed.returncode == 0 and EXT_ORIGIN in listed.stdout, listed
    token_id = server.token_ids()[EXT_ORIGIN][0]
    revoked = server.cli("tokens", "--revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert server.request("GET", HEALTH, token=token, origin=EXT_ORIGIN).status == 401
    assert server.post_events(fresh_events(), token=token).status == 401
    assert server.request("GET", HEALTH, token=other, origin=OTHER_EXT_ORIGIN).status == 200
    assert server.cli("tokens", "--revoke", token_id).returncode == 2   # gone already
