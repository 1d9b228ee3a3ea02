"""Helpers for the real-browser tests of the extension (tests/test_extension_browser.py).

What is here, following /work/shared/design/BROWSER-TESTING.md:
- `LedgerServe`: the real `consent-ledger serve` (waitress) as a subprocess on loopback,
  stoppable with SIGTERM and restartable on the same folders and port; reads the ledger
  back (audit JSON, decrypted events, verify).
- `prepare_extension`: a copy of extension/ with a pinned manifest `key` (a stable id).
- `Sites`: `context.route` handlers serving pages built from the captured DOM (by path, at
  test time; our own minimal pages in tests/data/pages/ when the captures are absent) and
  the sites' account endpoints (claude's `/api/account`, chatgpt's `/api/auth/session`).
- `Browser`: Debian's Chromium with the unpacked extension (Playwright, persistent context,
  headless), and what the tests read from it: the action badge per tab, the in-page badge
  in its closed shadow root (DevTools protocol, `DOM.describeNode` with `pierce`), the
  content script's isolated world, the worker's storage; stopping the worker.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "extension"
CHROMIUM = Path(os.environ.get("CONSENT_LEDGER_CHROMIUM", "/usr/lib/chromium/chromium"))
FIXTURES = Path(os.environ.get("CONSENT_LEDGER_FIXTURES",
                               ROOT.parent / "shared" / "fixtures" / "pages"))
OWN_PAGES = Path(__file__).resolve().parent / "data" / "pages"

# A public key pinned in the test copy of the manifest, so the extension id is stable
# (BROWSER-TESTING.md P12). Only the public half exists; nothing is signed with it.
MANIFEST_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsOAoAbB4WhY6IgyAcwmcd0NXoiCKfZDcEiJCpzF3SbIB"
    "Dv+wVRCggelfkXBgCyr7d/1IDbtxwqJWjjOg/peQXBfjpb1QGmnnazi8ErR0JRSr43U7w9E5bmXUDVktADSsBDzb"
    "oYHAq+qlBTGHe7WBzd72+EczIhyMgbxMD4fpyqJZ9WeZBqyyKbDP75lN/j2JCXkFRJ8eMiV8cemfLB1H5FhqlhQ0"
    "tgrRGW4QuRfR1ELxtaYBDKC3A+tgH+YGIGqwURduxMh4FsxFhOs8R7/etErb1INXyqWidlS35fPvWllfmyc08iLA"
    "pJk+sH40P7iVU0lYasIjCxK/4fN3PW0/dwIDAQAB")
EXTENSION_ID = "oikoggbdbnfglkgmmnpbemlafhemelif"


def extension_id_for(key_b64: str) -> str:
    """Chromium's id for a manifest key: sha256 of the DER key, first 32 hex digits as a-p."""
    import base64
    import hashlib
    digest = hashlib.sha256(base64.b64decode(key_b64)).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


def missing_browser_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"Debian's Chromium is not installed ({CHROMIUM}; apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install playwright)"
    return None


def wait_until(check: Callable[[], Any], timeout: float, what: str,
               pause: Callable[[float], None] = time.sleep, step: float = 0.1) -> Any:
    """Polls `check` until it returns something truthy; `pause` lets Playwright run routes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        pause(step)


# --- the server -------------------------------------------------------------------------

_ADDRESS = re.compile(r"at (http://127\.0\.0\.1:(\d+))/")
_PAIRING = re.compile(r"^Pairing code: (\S+)$", re.MULTILINE)
_LEDGER = re.compile(r"serving ledger (\w+)")


@dataclass
class LedgerServe:
    """`consent-ledger serve` over one data and config folder; restartable on its port."""

    data_dir: Path
    config_dir: Path
    port: int = 0
    url: str = ""
    pairing_code: str = ""
    ledger_id: str = ""
    cli_token: str = ""
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    log: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = dict(os.environ, CONSENT_LEDGER_DIR=str(self.data_dir),
                   CONSENT_LEDGER_CONFIG_DIR=str(self.config_dir), PYTHONUNBUFFERED="1")
        env.pop("CONSENT_LEDGER_PASSPHRASE", None)
        return env

    def start(self, timeout: float = 30) -> LedgerServe:
        assert not self.running, "already running"
        self.runs += 1
        out = self.config_dir.parent / f"serve-{self.runs}.out"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
                cwd=ROOT, env=self.env(), stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        text = ""
        while not _PAIRING.search(text):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"serve did not start: {out.read_text(errors='replace')}")
            time.sleep(0.03)
            text = out.read_text(errors="replace")
        self.log.append(text)
        address = _ADDRESS.search(text)
        assert address, text
        self.url, self.port = address.group(1), int(address.group(2))
        self.pairing_code = _PAIRING.search(text).group(1)  # type: ignore[union-attr]
        self.ledger_id = _LEDGER.search(text).group(1)  # type: ignore[union-attr]
        handover = self.config_dir / f"server-{self.ledger_id}.json"
        self.cli_token = json.loads(handover.read_text())["cli_token"]
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as a user's Ctrl-C or a service manager would; SIGKILL if it hangs."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("serve ignored SIGTERM") from None
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    # reading the ledger back

    def api(self, path: str) -> tuple[int, Any]:
        """GET on the API with the command line's token (no Origin, as the CLI sends)."""
        req = urllib.request.Request(self.url + path,
                                     headers={"Authorization": f"Bearer {self.cli_token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT,
                              env=self.env(), capture_output=True, text=True, timeout=60,
                              check=False)

    def audit(self) -> tuple[dict[str, Any], str]:
        """`consent-ledger audit --format json`: the parsed report and its raw text."""
        done = self.cli("audit", "--format", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout), done.stdout

    def events(self) -> list[dict[str, Any]]:
        """Every event in the ledger, decrypted (read-only, beside the running server)."""
        from auditor.ledger import Ledger
        ledger = Ledger.open(self.data_dir, self.config_dir, writable=False)
        try:
            return [dict(e) for e in ledger.events()]
        finally:
            ledger.close()


# --- the extension and the sites -------------------------------------------------------

def prepare_extension(dest: Path) -> Path:
    """A copy of extension/ (without node_modules and tests) with the pinned `key`."""
    shutil.copytree(EXTENSION, dest, ignore=shutil.ignore_patterns(
        "node_modules", "tests", "test", "package*.json", "*.mjs"))
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["key"] = MANIFEST_KEY
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return dest


@dataclass(frozen=True)
class SitePage:
    host: str
    fixture: str   # a captured page in FIXTURES, by name
    own: str       # our own minimal page in tests/data/pages/, when the captures are absent
    title: str     # the document title the site would show


CLAUDE = SitePage("claude.ai", "claude-chat-simple.html", "claude.html",
                  "Claude の HTML構造テスト - Claude")
CHATGPT = SitePage("chatgpt.com", "chatgpt-chat-simple.html", "chatgpt.html", "Primes - ChatGPT")
GEMINI = SitePage("gemini.google.com", "gemini-chat-simple.html", "gemini.html", "Gemini")

# Where a new user message goes, per site: the message element and its turn.
USER_MESSAGE = {"claude.ai": '[data-testid="user-message"]',
                "chatgpt.com": '[data-message-author-role="user"]',
                "gemini.google.com": "user-query"}
COMPOSER = {"claude.ai": '[data-testid="chat-input"]', "chatgpt.com": "#prompt-textarea",
            "gemini.google.com": ".ql-editor"}


def captured_pages_present() -> bool:
    return all((FIXTURES / p.fixture).exists() for p in (CLAUDE, CHATGPT, GEMINI))


def page_body(site: SitePage) -> tuple[str, str]:
    """The body markup for a site (the captured DOM when present) and where it came from."""
    captured = FIXTURES / site.fixture
    if captured.exists():
        return captured.read_text(encoding="utf-8"), f"captured:{site.fixture}"
    return (OWN_PAGES / site.own).read_text(encoding="utf-8"), f"own:{site.own}"


def page_html(site: SitePage, *, extra_body: str = "", tail_script: str = "") -> str:
    """A page shell around the site's body; `tail_script` runs (main world) at the end of
    parsing, before the content scripts (document_idle)."""
    body, _ = page_body(site)
    script = f"<script>{tail_script}</script>" if tail_script else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(site.title)}</title></head>"
            f"<body>{extra_body}{body}{script}</body></html>")


# JS (main world, the page's own): append a new user message after the last one, as the
# site renders a message the user just sent. The new turn is a copy of the last user turn.
APPEND_USER_MESSAGE = """
([sel, text, newId]) => {
  const all = document.querySelectorAll(sel);
  const last = all[all.length - 1];
  let turn = last.closest('article[data-turn], .conversation-container');
  if (!turn) {
    turn = last;
    while (turn.parentElement && turn.parentElement !== document.body
           && turn.parentElement.querySelectorAll(sel).length === 1) turn = turn.parentElement;
    if (turn.parentElement === document.body) turn = last.parentElement;
  }
  const copy = turn.cloneNode(true);
  const msg = copy.matches(sel) ? copy : copy.querySelector(sel);
  msg.textContent = text;
  if (msg.hasAttribute('data-message-id')) msg.setAttribute('data-message-id', newId);
  turn.after(copy);
  return document.querySelectorAll(sel).length;
}
"""


class Sites:
    """`context.route` for the three sites: pages by path, account endpoints by host."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}          # "host/path" -> html; or host -> default
        self.accounts: dict[str, Any] = {}       # host -> JSON answer of the account endpoint
        self.account_requests: list[str] = []

    def install(self, context: Any) -> None:
        for host in ("claude.ai", "chatgpt.com", "gemini.google.com"):
            context.route(f"https://{host}/**", self._handler(host))

    def _handler(self, host: str) -> Callable[[Any], None]:
        def handle(route: Any) -> None:
            url = route.request.url
            path = url.split(host, 1)[1].split("?", 1)[0].split("#", 1)[0]
            if path.startswith("/api/"):
                self.account_requests.append(url)
                answer = self.accounts.get(host)
                if path in ("/api/account", "/api/auth/session") and answer is not None:
                    route.fulfill(status=200, content_type="application/json",
                                  body=json.dumps(answer))
                else:
                    route.fulfill(status=404, content_type="application/json", body="{}")
                return
            body = self.pages.get(f"{host}{path}") or self.pages.get(host)
            if body is None:
                route.fulfill(status=404, content_type="text/plain", body="not routed")
            else:
                route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)
        return handle


# --- the browser --------------------------------------------------------------------------

def hex_color(rgba: list[int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgba[:3])


class Browser:
    """Chromium with the unpacked extension, driven by Playwright (sync API)."""

    def __init__(self, profile: Path, extension: Path) -> None:
        from playwright.sync_api import sync_playwright
        self._pw_cm = sync_playwright()
        self.pw = self._pw_cm.__enter__()
        try:
            self.context = self.pw.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), headless=True,
                args=[f"--disable-extensions-except={extension}",
                      f"--load-extension={extension}"],
                ignore_default_args=["--disable-extensions"],
                viewport={"width": 1280, "height": 800})
            self.sw = (self.context.service_workers[0] if self.context.service_workers
                       else self.context.wait_for_event("serviceworker", timeout=20_000))
            self.ext_id = self.sw.url.split("/")[2]
            self._helper: Any = None
        except BaseException:
            self._pw_cm.__exit__(None, None, None)
            raise

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            self._pw_cm.__exit__(None, None, None)

    def pause(self, seconds: float) -> None:
        """Waits while letting Playwright dispatch route handlers and events."""
        page = self.helper_page()
        page.wait_for_timeout(seconds * 1000)

    def helper_page(self) -> Any:
        if self._helper is None or self._helper.is_closed():
            self._helper = self.context.new_page()
            self._helper.goto(f"chrome-extension://{self.ext_id}/options.html")
        return self._helper

    def wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        return wait_until(check, timeout, what, pause=self.pause)

    # the worker's view

    def worker(self, expression: str, arg: Any = None) -> Any:
        return self.sw.evaluate(expression, arg)

    def storage(self, area: str = "local") -> dict[str, Any]:
        return self.worker(f"() => chrome.storage.{area}.get(null)")

    def tab_id(self, page: Any) -> int:
        url = page.url
        found = self.worker("""async (url) => {
            const tabs = await chrome.tabs.query({});
            const t = tabs.find((t) => t.url === url);
            return t ? t.id : null; }""", url)
        assert isinstance(found, int), f"no tab for {url}"
        return found

    def action_badge(self, tab_id: int) -> tuple[str, str, str]:
        text, rgba, title = self.worker("""async (t) => [
            await chrome.action.getBadgeText({tabId: t}),
            await chrome.action.getBadgeBackgroundColor({tabId: t}),
            await chrome.action.getTitle({tabId: t})]""", tab_id)
        return text, hex_color(rgba), title

    def wait_badge(self, tab_id: int, expected: tuple[str, str], timeout: float = 15
                   ) -> tuple[str, str, str]:
        """Waits for the action badge's (text, colour); the worker sets text, colour, then
        title, so the answer is read again a moment later, once all three are in place."""
        try:
            self.wait(lambda: self.action_badge(tab_id)[:2] == expected, timeout,
                      f"action badge {expected} on tab {tab_id}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the badge is {self.action_badge(tab_id)}") from None
        self.pause(0.2)
        badge = self.action_badge(tab_id)
        assert badge[:2] == expected, badge
        return badge

    # the page's view

    def in_page_badge(self, page: Any) -> dict[str, str] | None:
        """The in-page badge's text and style, read through its closed shadow root with the
        DevTools protocol (a page script cannot: `shadowRoot` is null for a closed root)."""
        cdp = self.context.new_cdp_session(page)
        try:
            doc = cdp.send("DOM.getDocument", {"depth": 0})
            hit = cdp.send("DOM.querySelector", {"nodeId": doc["root"]["nodeId"],
                                                 "selector": "[data-consent-ledger-badge]"})
            if not hit.get("nodeId"):
                return None
            node = cdp.send("DOM.describeNode", {"nodeId": hit["nodeId"], "depth": -1,
                                                 "pierce": True})["node"]
            roots = node.get("shadowRoots") or []
            if not roots:
                return {"shadow": "none"}
            pill = roots[0]["children"][0]
            attrs = dict(zip(pill["attributes"][::2], pill["attributes"][1::2], strict=True))
            text = "".join(c.get("nodeValue", "") for c in pill.get("children", []))
            return {"shadow": roots[0].get("shadowRootType", ""), "text": text,
                    "style": attrs.get("style", ""), "title": attrs.get("title", "")}
        finally:
            cdp.detach()

    @contextlib.contextmanager
    def isolated_world(self, page: Any) -> Iterator[Callable[[str], Any]]:
        """Evaluates expressions in the content script's isolated world (DevTools protocol)."""
        cdp = self.context.new_cdp_session(page)
        contexts: list[dict[str, Any]] = []
        cdp.on("Runtime.executionContextCreated", lambda e: contexts.append(e["context"]))
        cdp.send("Runtime.enable")
        try:
            ours = wait_until(lambda: [c for c in contexts
                                       if c.get("origin", "").endswith(self.ext_id)
                                       or c.get("name") == "Consent Ledger"],
                              10, "the content script's world", pause=page.wait_for_timeout)

            def run(expression: str) -> Any:
                got = cdp.send("Runtime.evaluate", {
                    "expression": expression, "contextId": ours[-1]["id"],
                    "returnByValue": True, "awaitPromise": True})
                if "exceptionDetails" in got:
                    raise AssertionError(f"isolated world: {got['exceptionDetails']}")
                return got["result"].get("value")

            yield run
        finally:
            with contextlib.suppress(Exception):
                cdp.detach()

    def stop_service_worker(self) -> None:
        """Stops the extension's worker, as Chromium does when it idles (BROWSER-TESTING P8)."""
        cdp = self.context.new_cdp_session(self.helper_page())
        try:
            cdp.send("ServiceWorker.enable")
            cdp.send("ServiceWorker.stopAllWorkers")
        finally:
            cdp.detach()

    def running_worker(self) -> Any:
        """The extension's worker as Playwright sees it now (after a restart, possibly a new
        object); only call this once something has woken the worker."""
        workers = [w for w in self.context.service_workers if self.ext_id in w.url]
        if workers:
            self.sw = workers[-1]
        return self.sw


def simulate_send(page: Any, host: str, text: str, new_id: str = "") -> int:
    """A send as the user makes it: type in the composer, press Enter; then the site shows
    the message (appended as the site would). Returns the number of user messages."""
    page.click(COMPOSER[host])
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    return int(page.evaluate(APPEND_USER_MESSAGE, [USER_MESSAGE[host], text, new_id]))
