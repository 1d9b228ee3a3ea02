"""The dashboard (issue 7): login by one-time link, CSRF, filters, pages, escaping,
downloads; Flask's test client for the pages' logic, the real `consent-ledger serve` for the
login link it prints and the downloads over loopback."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auditor.keys import load_keys
from auditor.ledger import Ledger
from auditor.live import LiveLedger
from auditor.report import verify_report
from auditor.times import utcnow
from server.app import ServerState, create_app
from server.auth import TokenStore
from server.dashboard import PAGE_SIZE
from tests.server_harness import ServeProcess

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
XSS = "<img src=x onerror=alert(1)>"
WORK = "5f0e4c1c2b9a4d7e8f6a3b2c1d0e9f8a"   # a second Claude account's label
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def sample(chats: int = 250) -> list[dict[str, Any]]:
    """Claude with training on from Sep 2025; ChatGPT off; a second Claude account ("work")
    whose setting was never seen; one title that is HTML; one chat deleted 10 days ago (its
    copies go within 30 days)."""
    now = utcnow().replace(microsecond=0)
    events: list[dict[str, Any]] = []

    def ev(type_: str, at: datetime, provider: str, account: str = "default", **fields: Any
           ) -> None:
        events.append({"v": 1, "id": f"dash-{len(events):06d}", "type": type_, "at": _iso(at),
                       "provider": provider, "account": account, **fields})

    ev("plan.set", datetime(2025, 6, 1, tzinfo=UTC), "claude", plan="pro")
    ev("consent.set", datetime(2025, 9, 15, tzinfo=UTC), "claude", setting="model_training",
       value=True, source="choice_prompt")
    ev("consent.set", datetime(2025, 9, 1, tzinfo=UTC), "chatgpt", setting="model_training",
       value=False, source="settings_page")
    where = (("claude", "default", "claude"), ("chatgpt", "default", "chatgpt"),
             ("claude", WORK, "work"))
    for i in range(chats):
        provider, account, name = where[i % 3]
        title = XSS if i == 4 else f"Chat {i:04d} about {name}"
        ev("chat.activity", datetime(2025, 10, 1, tzinfo=UTC) + timedelta(hours=7 * i),
           provider, account, chat_id=f"{name}-{i:04d}", kind="chat", incognito=False,
           title=title)
    ev("chat.deleted", now - timedelta(days=10), "claude", chat_id="claude-0003")
    return events


@pytest.fixture
def app(data_dir: Path, config_dir: Path) -> Iterator[Flask]:
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append(sample())
    live = LiveLedger.open(data_dir, config_dir)
    state = ServerState(live=live, tokens=TokenStore(config_dir / "tokens.json"))
    try:
        yield create_app(state, port=PORT)
    finally:
        live.close()


def state_of(app: Flask) -> ServerState:
    return app.extensions["consent_ledger"]  # type: ignore[no-any-return]


def login(app: Flask) -> FlaskClient:
    client = app.test_client()
    response = client.get(f"/login/{state_of(app).login_codes.issue()}", base_url=BASE)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    return client


def get(client: FlaskClient, path: str, **headers: str) -> Any:
    return client.get(path, base_url=BASE, headers=headers)


def titles(html: str) -> list[str]:
    return re.findall(r'<span class="title[^"]*">([^<]*)</span>', html)


def matching(html: str) -> int:
    """How many chats match, as the line above the table says."""
    found = re.search(r"of <strong>([\d,]+)</strong>", html)
    return int(found.group(1).replace(",", "")) if found else 0


def verdicts(html: str) -> set[str]:
    """The verdicts of the chats in the table (not the overview cards)."""
    return set(re.findall(r'<td class="b"><span class="badge b-(\w+)"', html))


# --- login and sessions ------------------------------------------------------------------------

def test_login_link_sets_a_strict_http_only_cookie_and_works_once(app: Flask) -> None:
    client = app.test_client()
    assert get(client, "/").status_code == 401          # the login page
    code = state_of(app).login_codes.issue()
    response = client.get(f"/login/{code}", base_url=BASE)
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = get(client, "/")
    assert page.status_code == 200 and "Log out" in page.text
    again = app.test_client().get(f"/login/{code}", base_url=BASE)
    assert again.status_code == 400 and "cannot be used" in again.text
    assert "`" not in again.text


def test_every_page_has_a_strict_policy_and_no_script(app: Flask) -> None:
    client = login(app)
    for path in ("/", "/login", "/?training=yes&page=2"):
        response = get(client, path)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert "script-src" not in csp                 # so scripts fall back to 'none'
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "<script" not in response.text.lower()
        assert " style=" not in response.text           # the policy would block it anyway
        assert "http://" not in response.text and "https://" not in response.text


def test_logout_needs_the_csrf_token(app: Flask) -> None:
    client = login(app)
    page = get(client, "/")
    token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in ("", "csrf_token=", f"csrf_token={token[:-1]}x", "other=1"):
        refused = client.post("/logout", base_url=BASE, data=body, headers=form)
        assert refused.status_code == 403, body
    assert client.post(f"/logout?csrf_token={token}", base_url=BASE, data="",
                       headers=form).status_code == 403      # the query string does not count
    assert get(client, "/").status_code == 200               # still logged in
    done = client.post("/logout", base_url=BASE, data={"csrf_token": token})
    assert done.status_code == 200 and "logged out" in done.text
    assert get(client, "/").status_code == 401


def test_every_post_form_carries_the_token(app: Flask) -> None:
    html = get(login(app), "/").text
    forms = re.findall(r"<form\b[^>]*>.*?</form>", html, re.S)
    posts = [f for f in forms if 'method="post"' in f]
    assert posts and all('name="csrf_token"' in f for f in posts)
    assert all('method="get"' in f for f in forms if f not in posts)


# --- what the dashboard shows -----------------------------------------------------------------

def test_summary_table_and_badges(app: Flask) -> None:
    html = get(login(app), "/").text
    assert "250 chats" in html
    assert verdicts(html) == {"yes", "no", "unknown"}
    for letter, key in (("T", "yes"), ("-", "no"), ("?", "unknown")):
        assert re.search(rf'<span class="badge b-{key}" role="img" aria-label="[^"]+" '
                         rf'title="[^"]+">{re.escape(letter)}</span>', html)
    css = (Path(__file__).resolve().parents[1] / "server/static/dashboard.css").read_text()
    for key, colour in (("yes", "#B45309"), ("was", "#7C3AED"), ("no", "#15803D"),
                        ("unknown", "#6B7280")):     # CONTRACT section 4's badge colours
        assert f"--{key}: {colour};" in css and f".b-{key} {{ background: var(--{key}); }}" in css
    assert "May be used for training since 20" in html          # the badge's title
    assert re.search(r"<summary>\d reasons</summary>", html)
    assert len(titles(html)) == PAGE_SIZE


def test_titles_are_escaped(app: Flask) -> None:
    client = login(app)
    html = get(client, "/?q=onerror").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img" not in html
    echoed = get(client, '/?q="><script>alert(1)</script>').text
    assert "<script>" not in echoed and "&#34;&gt;&lt;script&gt;" in echoed


def test_filters(app: Flask) -> None:
    client = login(app)
    claude = titles(get(client, "/?provider=claude").text)
    assert claude and all("chatgpt" not in t for t in claude)
    assert matching(get(client, "/?provider=claude").text) == 167
    assert verdicts(get(client, "/?training=yes").text) == {"yes"}
    no = get(client, "/?provider=chatgpt&training=no").text
    assert matching(no) == 83 and verdicts(no) == {"no"}     # 250 chats, every third
    work = get(client, f"/?provider=claude&account={WORK}").text
    assert matching(work) == 83 and verdicts(work) == {"unknown"}
    soon = get(client, "/?expiring=30").text
    assert titles(soon) == ["Chat 0003 about claude"]       # deleted 10 days ago
    assert matching(soon) == 1
    assert matching(get(client, "/?expiring=90&training=no").text) == 0
    assert titles(get(client, "/?q=0042").text) == ["Chat 0042 about claude"]
    assert "No chat matches" in get(client, "/?q=nothing-like-this").text
    # nonsense falls back to "all" rather than an error
    assert get(client, "/?provider=evil&training=maybe&expiring=7&sort=x&page=-3"
               ).status_code == 200


def test_sort_orders(app: Flask) -> None:
    client = login(app)
    recent = titles(get(client, "/").text)
    assert recent[:2] == ["Chat 0249 about claude", "Chat 0248 about work"]  # newest first
    report_order = titles(get(client, "/?sort=report").text)
    assert report_order[:2] == ["Chat 0001 about chatgpt", "Chat 0004 about chatgpt"] or \
        report_order[0] == "Chat 0001 about chatgpt"
    assert titles(get(client, "/?sort=title&q=about").text)[0] == "Chat 0000 about claude"
    by_expiry = titles(get(client, "/?sort=expiry").text)
    assert by_expiry[0] == "Chat 0003 about claude"


def test_pagination(app: Flask) -> None:
    client = login(app)
    first = get(client, "/").text
    assert "Page 1 of 3" in first and 'href="?page=2#chats"' in first
    last = get(client, "/?page=3").text
    assert len(titles(last)) == 250 - 2 * PAGE_SIZE and "Showing <strong>201–250</strong>" in last
    beyond = get(client, "/?page=99").text
    assert "Page 3 of 3" in beyond
    seen = set()
    for page in (1, 2, 3):
        seen |= set(titles(get(client, f"/?page={page}").text))
    assert len(seen) == 250
    kept = get(client, "/?provider=claude&sort=title").text     # links keep the filters
    assert "Page 1 of 2" in kept
    assert 'href="?provider=claude&amp;sort=title&amp;page=2#chats" rel="next"' in kept
    second = get(client, "/?provider=claude&sort=title&page=2").text
    assert 'href="?provider=claude&amp;sort=title#chats" rel="prev"' in second


def test_account_setting_timeline(app: Flask) -> None:
    html = get(login(app), "/").text
    svgs = re.findall(r'<svg class="band"[^>]*aria-label="([^"]*)"', html)
    assert len(svgs) == 3
    claude = next(s for s in svgs if "Claude, default" in s)
    assert "Training on since 15 Sep 2025" in claude
    chatgpt = next(s for s in svgs if "ChatGPT" in s)
    assert "Training off since 1 Sep 2025" in chatgpt
    work = next(s for s in svgs if "Claude, account 5f0e4c1c" in s)
    assert "Not recorded" in work and "Training on" not in work
    assert 'class="band-on"' in html and 'class="band-off"' in html
    assert "today</text>" in html


def test_new_events_show_on_the_next_view(app: Flask) -> None:
    client = login(app)
    assert titles(get(client, "/?q=brand-new").text) == []
    state_of(app).live.append([{"v": 1, "id": "dash-late-1", "type": "chat.activity",
                                "at": _iso(utcnow()), "provider": "claude",
                                "account": "default", "chat_id": "late", "kind": "chat",
                                "incognito": False, "title": "A brand-new chat"}])
    assert titles(get(client, "/?q=brand-new").text) == ["A brand-new chat"]
    assert "251 chats" in get(client, "/").text


def test_snapshot_is_reused_and_expires_with_the_rows(app: Flask) -> None:
    live = state_of(app).live
    now = utcnow()
    snap = live.snapshot(as_of=now)
    assert live.snapshot(as_of=now + timedelta(seconds=1)) is snap
    deleted = next(r for r in snap.rows if r["chat_id"] == "claude-0003")
    expires = datetime.fromisoformat(deleted["expires_at"])
    assert snap.valid_until is not None and snap.valid_until <= expires
    later = live.snapshot(as_of=expires + timedelta(seconds=1))
    assert later is not snap
    assert next(r for r in later.rows if r["chat_id"] == "claude-0003")["expired"] is True
    assert later.rows == live.engine.rows(expires + timedelta(seconds=1))


def test_an_empty_ledger(data_dir: Path, config_dir: Path) -> None:
    Ledger.open(data_dir, config_dir).close()
    live = LiveLedger.open(data_dir, config_dir)
    try:
        app = create_app(ServerState(live=live, tokens=TokenStore(config_dir / "t.json")),
                         port=PORT)
        html = get(login(app), "/?training=yes&page=4").text
        assert "0 chats" in html and "Nothing recorded yet" in html
        assert "No chat matches" in html and "<table" not in html
    finally:
        live.close()


# --- downloads ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, media", [
    ("json", "application/json"), ("csv", "text/csv; charset=utf-8"),
    ("html", "text/html; charset=utf-8"), ("ics", "text/calendar; charset=utf-8")])
def test_downloads(app: Flask, fmt: str, media: str) -> None:
    client = login(app)
    response = get(client, f"/reports/{fmt}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == media
    assert re.fullmatch(rf'attachment; filename="consent-ledger-report-\d{{4}}-\d\d-\d\d\.{fmt}"',
                        response.headers["Content-Disposition"])
    body = response.data
    if fmt == "json":
        report = json.loads(body)
        assert report["summary"]["chats"] == 250
        ledger = state_of(app).live.ledger
        verdict = verify_report(report, ledger_public_key=ledger.keys.public_key_b64)
        assert verdict.ok, verdict.problems
        report["chats"][0]["title"] = "edited"
        assert not verify_report(report).ok
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(body.decode())))
        assert rows[0][:3] == ["provider", "account", "chat_id"] and len(rows) == 251
        assert XSS in body.decode()                  # a download keeps the data as it is
    elif fmt == "html":
        assert b'id="consent-ledger-report"' in body
        assert b"&lt;img src=x onerror=alert(1)&gt;" in body     # shown escaped
    else:
        assert body.startswith(b"BEGIN:VCALENDAR")


def test_download_needs_a_session_and_a_known_format(app: Flask) -> None:
    assert get(app.test_client(), "/reports/json").status_code == 401
    client = login(app)
    missing = get(client, "/reports/pdf")
    assert missing.status_code == 404 and "no report format" in missing.text


# --- the real server ------------------------------------------------------------------------------

@pytest.fixture
def real_server(data_dir: Path, config_dir: Path) -> Iterator[ServeProcess]:
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append(sample(120))
    server = ServeProcess(data_dir, config_dir).start()
    try:
        yield server
    finally:
        assert server.stop() == 0, server.stderr()


def _session(server: ServeProcess, url: str) -> str:
    login = server.request("GET", "/" + url.split("/", 3)[3])
    assert login.status == 303, (login.status, login.body)
    cookie = SimpleCookie(login.header("Set-Cookie") or "")
    return f"cl_session={cookie['cl_session'].value}"


def test_real_serve_login_filters_downloads_and_logout(real_server: ServeProcess,
                                                       config_dir: Path) -> None:
    server = real_server
    cookie = _session(server, server.login_url)               # the link serve printed
    assert server.request("GET", "/" + server.login_url.split("/", 3)[3]).status == 400
    page = server.request("GET", "/?provider=chatgpt&training=no", headers={"Cookie": cookie})
    assert page.status == 200 and matching(page.body.decode()) == 40
    assert page.header("Content-Security-Policy", ).startswith("default-src 'none'")
    # `consent-ledger login` prints a fresh link that works too
    printed = server.cli("login")
    assert printed.returncode == 0, printed.stderr
    second = _session(server, printed.stdout.strip())
    assert server.request("GET", "/", headers={"Cookie": second}).status == 200
    # downloads, with a signature this ledger's key checks
    for fmt, media in (("json", "application/json"), ("csv", "text/csv; charset=utf-8"),
                       ("html", "text/html; charset=utf-8"),
                       ("ics", "text/calendar; charset=utf-8")):
        got = server.request("GET", f"/reports/{fmt}", headers={"Cookie": cookie})
        assert got.status == 200 and got.header("Content-Type") == media, fmt
        if fmt == "json":
            key = load_keys(config_dir, server.ledger_id).public_key_b64
            assert verify_report(json.loads(got.body), ledger_public_key=key).ok
    # logout: refused without the token, done with it
    csrf = CSRF_FIELD.search(page.body.decode()).group(1)  # type: ignore[union-attr]
    form = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    assert server.request("POST", "/logout", headers=form, body=b"").status == 403
    assert server.request("POST", "/logout", headers={**form, "Origin": "https://evil.example"},
                          body=f"csrf_token={csrf}".encode()).status == 403
    own = {**form, "Origin": server.base_url.rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    assert server.request("POST", "/logout", headers=own,
                          body=f"csrf_token={csrf}".encode()).status == 200
    assert server.request("GET", "/", headers={"Cookie": cookie}).status == 401
    assert server.request("GET", "/", headers={"Cookie": second}).status == 200
