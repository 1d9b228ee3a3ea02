"""Manual smoke run of the extension in Debian's Chromium against a real `consent-ledger serve`.

Not part of CI (the browser tests proper live in the project's tests/ and are someone else's):
this script shows the hooks they need. It pairs through the options page, serves the captured
pages on the three sites with `context.route`, makes a send on claude.ai, and prints the action
badge, the per-tab state and what the ledger recorded; screenshots go to $SMOKE_OUT (/tmp).

    python3 extension/tests/smoke_chromium.py      # needs chromium, playwright, consent-ledger
"""

import json
import os
import pathlib
import re
import subprocess
import tempfile
import time

from playwright.sync_api import sync_playwright

EXT = pathlib.Path(__file__).resolve().parents[1]
REPO = EXT.parent
FIXTURES = pathlib.Path(os.environ.get("CONSENT_LEDGER_FIXTURES", REPO.parent / "shared" / "fixtures" / "pages"))
OUT = pathlib.Path(os.environ.get("SMOKE_OUT", tempfile.gettempdir()))
UUID = "0b6f3c1e-1111-4a2b-9c3d-123456789abc"
PORT = int(os.environ.get("SMOKE_PORT", "18765"))
ACCOUNTS = {  # what the sites' own account endpoints answer (routed): the adapters keep ids and plan only
    "claude.ai": {"uuid": "4f1c2d3e-0000-4000-8000-123456789abc", "email_address": "me@example.com",
                  "settings": {"grove_enabled": True},
                  "memberships": [{"organization": {"capabilities": ["chat", "claude_pro"]}}]},
    "chatgpt.com": {"user": {"id": "user-AbC123dEf456gHi"}, "account": {"planType": "plus"}},
}
SITES = [("claude.ai", "claude-chat-simple.html", f"/chat/{UUID}", "Claude の HTML構造テスト - Claude"),
         ("chatgpt.com", "chatgpt-chat-simple.html", f"/c/{UUID}", "Primes"),
         ("gemini.google.com", "gemini-chat-simple.html", "/app/805e7b06c9459c98", "Gemini")]


def site_handler(host, html):
    def handle(route):
        if "/api/" in route.request.url:
            route.fulfill(content_type="application/json", body=json.dumps(ACCOUNTS.get(host, {})))
        else:
            route.fulfill(content_type="text/html; charset=utf-8", body=html)
    return handle


def main():
    tmp = pathlib.Path(tempfile.mkdtemp())
    env = dict(os.environ, CONSENT_LEDGER_DIR=str(tmp / "data"), CONSENT_LEDGER_CONFIG_DIR=str(tmp / "cfg"))
    server = subprocess.Popen(["consent-ledger", "serve", "--port", str(PORT)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        code = None
        deadline = time.time() + 20
        while code is None and time.time() < deadline:
            m = re.search(r"Pairing code:\s*(\S+)", server.stdout.readline())
            code = m.group(1) if m else None
        assert code, "the server printed no pairing code"
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp / "profile"), executable_path="/usr/lib/chromium/chromium", headless=True,
                args=[f"--disable-extensions-except={EXT}", f"--load-extension={EXT}"],
                ignore_default_args=["--disable-extensions"])
            sw = ctx.service_workers[0] if ctx.service_workers else ctx.wait_for_event("serviceworker")
            ext_id = sw.url.split("/")[2]
            if os.environ.get("SMOKE_ADD_ORIGIN"):
                # Chromium's extension worker sends no Origin on GET, and the server pins tokens to
                # the Origin: this adds it, to show the status path once the server accepts such GETs.
                def add_origin(route):
                    headers = {**route.request.headers, "origin": f"chrome-extension://{ext_id}"}
                    route.fulfill(response=route.fetch(headers=headers))
                ctx.route(re.compile(rf"^http://127\.0\.0\.1:{PORT}/api/v1/chats/"), add_origin)
            options = ctx.new_page()
            options.goto(f"chrome-extension://{ext_id}/options.html")
            options.fill("#server", f"http://127.0.0.1:{PORT}")
            options.fill("#code", code)
            options.click("button[type=submit]")
            for _ in range(50):  # extension pages forbid eval, so no wait_for_function
                if (options.text_content("#pair-result") or "").startswith(("Paired", "Not")):
                    break
                options.wait_for_timeout(200)
            print("pairing:", options.text_content("#pair-result"))
            pages = {}
            for host, name, path, title in SITES:
                body = (FIXTURES / name).read_text()
                html = f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
                ctx.route(f"https://{host}/**", site_handler(host, html))
                pages[host] = ctx.new_page()
                pages[host].goto(f"https://{host}{path}")
            claude = pages["claude.ai"]
            claude.wait_for_timeout(1500)
            claude.focus('[data-testid="chat-input"]')
            claude.keyboard.press("Enter")  # the intent; then the site shows the new message
            claude.evaluate("""() => { const last = [...document.querySelectorAll('[data-testid="user-message"]')].pop();
                const m = document.createElement('div'); m.setAttribute('data-testid', 'user-message');
                m.textContent = 'hello'; last.parentElement.parentElement.appendChild(m); }""")
            claude.wait_for_timeout(5000)
            tab_id = sw.evaluate("async () => (await chrome.tabs.query({url: 'https://claude.ai/*'}))[0].id")
            print("action badge:", sw.evaluate(
                "t => Promise.all([chrome.action.getBadgeText({tabId: t}), chrome.action.getTitle({tabId: t})])", tab_id))
            print("in-page badges:", claude.locator("[data-consent-ledger-badge]").count())
            print("tabs:", json.dumps(sw.evaluate("() => chrome.storage.session.get(null)"), ensure_ascii=False))
            popup = ctx.new_page()
            popup.set_viewport_size({"width": 360, "height": 520})
            popup.goto(f"chrome-extension://{ext_id}/popup.html?tab={tab_id}")
            popup.wait_for_timeout(1500)
            popup.screenshot(path=str(OUT / "consent-ledger-popup.png"))
            ctx.close()
    finally:
        server.terminate()
        server.wait(10)
    audit = subprocess.run(["consent-ledger", "audit", "--format", "json"], env=env, capture_output=True, text=True)
    report = json.loads(audit.stdout)
    print("ledger:", report["ledger"]["events"], "events;",
          [(c["provider"], c["chat_id"], c["training"]) for c in report["chats"]])


if __name__ == "__main__":
    main()
