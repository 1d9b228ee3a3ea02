"""The dashboard in Debian's Chromium (headless, Playwright) against the real
`consent-ledger serve` (recipe: /work/shared/design/BROWSER-TESTING.md).

1. Opened through the one-time link `serve` printed, filtered with the form, paged, a report
   downloaded and its signature checked, a hostile title shown as text, logged out; no
   Content-Security-Policy violation on the way. Screenshots go to a temporary folder, and
   also to $CONSENT_LEDGER_SCREENSHOTS when set.
2. A page on another origin (`https://evil.example`, routed to a page written here), granted
   `local-network-access` so its requests really leave the browser (§6), tries fetch() with
   and without credentials, with JSON and text/plain, and form posts, against the API and the
   pages while the user is logged in. The server must refuse every one (each answer seen on
   the wire is 4xx), the page must read nothing, and nothing may be stored or changed: the
   event count (asked with the command line's token) stays, the session stays logged in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.keys import load_keys
from auditor.ledger import Ledger
from auditor.report import verify_report
from bench.dashboard_bench import sample_events
from tests.server_harness import ServeProcess

CHROMIUM = Path("/usr/lib/chromium/chromium")
EVIL = "https://evil.example"
XSS = "<img src=x onerror=alert(1)>"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no `playwright install`)"
    return None


pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("dashboard-browser")
    events = sample_events(10_000)
    events.append({"v": 1, "id": "browser-xss-1", "type": "chat.activity",
                   "at": "2026-03-01T10:00:00Z", "provider": "claude", "account": "default",
                   "chat_id": "xss-chat", "kind": "chat", "incognito": False, "title": XSS})
    with Ledger.open(root / "data", root / "config") as ledger:
        ledger.append(events)
    serve = ServeProcess(root / "data", root / "config").start()
    try:
        yield serve
    finally:
        assert serve.stop() == 0, serve.stderr()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    keep = os.environ.get("CONSENT_LEDGER_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy(png, Path(keep) / png.name)


def _watch(page: Any) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"console": [], "dialogs": []}
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    return seen


def test_dashboard_login_filter_download_logout(server: ServeProcess, browser: Any,
                                                shots: Path, tmp_path: Path) -> None:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        seen = _watch(page)
        page.goto(server.base_url)                         # no session: the login page
        assert "consent-ledger login" in page.inner_text("main")
        page.screenshot(path=str(shots / "dashboard-login.png"))
        seen["console"].clear()                            # its 401 is logged as an error
        page.goto(server.login_url)                        # the link `serve` printed
        assert page.url == server.base_url
        assert page.get_by_role("button", name="Log out").is_visible()
        assert "10,001 chats" in page.inner_text(".asof")
        assert page.locator("svg.band").count() == 4       # one setting timeline per account
        page.screenshot(path=str(shots / "dashboard-top.png"))
        page.screenshot(path=str(shots / "dashboard-full.png"), full_page=True)

        page.set_viewport_size({"width": 420, "height": 900})   # a phone
        page.screenshot(path=str(shots / "dashboard-narrow.png"))
        page.set_viewport_size({"width": 1280, "height": 900})

        # the hostile title is text, and nothing ran
        page.fill("#f-q", "onerror")
        page.click("button:text('Show')")
        page.wait_for_load_state()
        assert page.locator(".chats .title").all_inner_texts() == [XSS]
        assert page.locator("img").count() == 0 and seen["dialogs"] == []

        # filter with the form, as a person would
        page.goto(server.base_url)
        page.select_option("#f-provider", "claude")
        page.select_option("#f-training", "yes")
        page.select_option("#f-sort", "expiry")
        page.click("button:text('Show')")
        page.wait_for_load_state()
        assert "provider=claude" in page.url and "training=yes" in page.url
        badges = page.locator(".chats td.b .badge").all_inner_texts()
        assert badges and set(badges) == {"T"}
        providers = [t.split(" · ")[0] for t in page.locator(".chats td.chat .sub")
                     .all_inner_texts()]
        assert providers and all(p.startswith("Claude") for p in providers)
        page.locator("#chats").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "dashboard-filtered.png"))
        if page.get_by_role("link", name="Next ›").count():
            page.get_by_role("link", name="Next ›").click()
            page.wait_for_load_state()
            assert re.search(r"Page 2 of \d+", page.inner_text(".pager"))
            assert "training=yes" in page.url

        # a report download, signed by this ledger's key
        with page.expect_download() as info:
            page.get_by_role("link", name="JSON").click()
        download = info.value
        assert re.fullmatch(r"consent-ledger-report-\d{4}-\d\d-\d\d\.json",
                            download.suggested_filename)
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        report = json.loads(saved.read_text())
        assert report["summary"]["chats"] == 10_001
        key = load_keys(server.config_dir, server.ledger_id).public_key_b64
        assert verify_report(report, ledger_public_key=key).ok
        with page.expect_download() as info:
            page.get_by_role("link", name="Calendar").click()
        assert info.value.suggested_filename.endswith(".ics")

        # the account timeline's words are there for a screen reader too
        labels = page.locator("svg.band").evaluate_all("els => els.map(e => e.ariaLabel)")
        assert any("Training on since" in label for label in labels)

        assert seen["console"] == [], seen["console"]      # no CSP violation, no error

        # Log out (a same-origin form POST with the CSRF token); the page is gone after
        page.get_by_role("button", name="Log out").click()
        page.wait_for_load_state()
        assert "You are logged out" in page.inner_text("main")
        page.goto(server.base_url)
        assert "consent-ledger login" in page.inner_text("main")
        assert not any("Content Security Policy" in m for m in seen["console"]), seen
    finally:
        context.close()


EVIL_PAGE = """<!doctype html><meta charset="utf-8"><title>evil</title>
<iframe name="sink"></iframe>
<form id="f-api" method="post" action="{base}api/v1/events" enctype="text/plain" target="sink">
<input name='{{"events":[{event}],"x":"' value='"}}'></form>
<form id="f-logout" method="post" action="{base}logout" target="sink">
<input name="csrf_token" value="guessed"></form>
<form id="f-page" method="get" action="{base}" target="sink"></form>
<script>
const BASE = {base_json};
const EVENT = {event};
const body = JSON.stringify({{events: [EVENT]}});
const attempts = [
  ["api json", BASE + "api/v1/events", {{method: "POST",
      headers: {{"Content-Type": "application/json"}}, body}}],
  ["api json with credentials", BASE + "api/v1/events", {{method: "POST",
      credentials: "include", headers: {{"Content-Type": "application/json"}}, body}}],
  ["api json with a guessed token", BASE + "api/v1/events", {{method: "POST",
      headers: {{"Content-Type": "application/json", "Authorization": "Bearer guess"}}, body}}],
  ["api text/plain", BASE + "api/v1/events", {{method: "POST",
      headers: {{"Content-Type": "text/plain"}}, body}}],
  ["api text/plain no-cors", BASE + "api/v1/events", {{method: "POST", mode: "no-cors",
      credentials: "include", headers: {{"Content-Type": "text/plain"}}, body}}],
  ["api health", BASE + "api/v1/health", {{credentials: "include"}}],
  ["dashboard", BASE, {{credentials: "include"}}],
  ["dashboard no-cors", BASE, {{mode: "no-cors", credentials: "include"}}],
  ["report download", BASE + "reports/json", {{credentials: "include"}}],
  ["logout", BASE + "logout", {{method: "POST", credentials: "include",
      body: new URLSearchParams({{csrf_token: "guessed"}})}}],
  ["logout no-cors", BASE + "logout", {{method: "POST", mode: "no-cors",
      credentials: "include", body: new URLSearchParams({{csrf_token: "guessed"}})}}],
];
async function attack() {{
  const results = [];
  for (const [name, url, init] of attempts) {{
    try {{
      const r = await fetch(url, init);
      let text = null;
      try {{ text = await r.text(); }} catch (e) {{ text = "unreadable: " + e; }}
      results.push({{name, outcome: "answered", type: r.type, status: r.status, text}});
    }} catch (e) {{
      results.push({{name, outcome: "failed", error: String(e)}});
    }}
  }}
  return results;
}}
function submit(id) {{
  return new Promise(resolve => {{
    const frame = document.querySelector("iframe");
    frame.onload = () => {{
      let read;
      try {{ read = frame.contentWindow.document.body.innerText; }}
      catch (e) {{ read = "blocked: " + e.name; }}
      resolve({{name: id, read}});
    }};
    document.getElementById(id).submit();
  }});
}}
</script>
"""


def test_another_origin_cannot_use_the_api_or_the_pages(server: ServeProcess, browser: Any,
                                                        shots: Path) -> None:
    event = json.dumps({"v": 1, "id": "evil-event-0001", "type": "chat.activity",
                        "at": "2026-01-01T00:00:00Z", "provider": "claude",
                        "chat_id": "evil-chat", "kind": "chat", "incognito": False,
                        "title": "planted"})
    html = EVIL_PAGE.format(base=server.base_url, base_json=json.dumps(server.base_url),
                            event=event)
    before = server.event_count()
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        context.grant_permissions(["local-network-access"], origin=EVIL)
        context.route(f"{EVIL}/**", lambda route: route.fulfill(
            status=200, content_type="text/html", body=html))
        # the user is logged in to the dashboard in this browser
        mine = context.new_page()
        mine.goto(server.new_login_url())
        assert mine.get_by_role("button", name="Log out").is_visible()

        # What came back over the wire. Playwright reports no response for a fetch the
        # browser then fails on CORS, so the raw status comes from the DevTools protocol
        # (responseReceivedExtraInfo: the headers as received from the network; Playwright's
        # own answers to preflights, P4, never appear there).
        answers: list[tuple[str, str, int]] = []
        context.on("response", lambda r: answers.append((r.request.method, r.url, r.status))
                   if r.url.startswith(server.base_url) else None)
        evil = context.new_page()
        cdp = context.new_cdp_session(evil)
        cdp.send("Network.enable")
        requests: dict[str, tuple[str, str]] = {}
        raw_status: dict[str, int] = {}
        cdp.on("Network.requestWillBeSent", lambda e: requests.__setitem__(
            e["requestId"], (e["request"]["method"], e["request"]["url"])))
        cdp.on("Network.responseReceivedExtraInfo", lambda e: raw_status.__setitem__(
            e["requestId"], e["statusCode"]))
        evil.goto(f"{EVIL}/page.html")
        results = evil.evaluate("attack()")
        forms = [evil.evaluate(f"submit('{form}')")
                 for form in ("f-api", "f-logout", "f-page")]
        evil.screenshot(path=str(shots / "evil-origin.png"))

        # the page read nothing
        by_name = {r["name"]: r for r in results}
        assert len(by_name) == 11
        for name, r in by_name.items():
            if "no-cors" in name:
                assert r["outcome"] == "answered" and r["type"] == "opaque", r
                assert r["status"] == 0 and r["text"] == "", r
            else:
                assert r["outcome"] == "failed" and "Failed to fetch" in r["error"], r
        for form in forms:
            assert form["read"].startswith("blocked: SecurityError"), form

        # every request did reach the server (LNA granted), and each was refused
        to_server = {rid: mu for rid, mu in requests.items() if mu[1].startswith(server.base_url)}
        fetched = [(mu, raw_status.get(rid)) for rid, mu in to_server.items()
                   if mu[0] != "OPTIONS"]     # preflights: answered by Playwright itself (P4)
        assert len(fetched) >= 11, fetched
        assert all(status is not None and 400 <= status < 500 for _mu, status in fetched), \
            fetched
        posted = [a for a in answers if "/login/" not in a[1]]
        assert posted and all(400 <= status < 500 for _m, _u, status in posted), answers
        assert {("POST", "/api/v1/events"), ("POST", "/logout"), ("GET", "/")} <= {
            (m, "/" + u.split("/", 3)[3].split("?")[0]) for m, u, _s in posted}

        # nothing stored, nothing changed
        assert server.event_count() == before
        assert server.request("GET", "/api/v1/chats/claude/evil-chat",
                              token=server.cli_token).status == 404
        mine.reload()
        assert mine.get_by_role("button", name="Log out").is_visible()   # still logged in
    finally:
        context.close()
