"""The real `consent-ledger serve`, run as a subprocess for tests over loopback.

`ServeProcess` starts `python -m server.cli serve --port 0` in its own process group with the
test's data and config folders, reads what it prints (address, one-time login URL, pairing
code) and its hand-over file (`server-<ledger id>.json`, with the command line's token), and
stops it with SIGTERM (SIGKILL if it hangs). `raw_request` sends a request byte for byte as
written (`http.client` with `skip_host`), so `//api`, `%61pi`, `..` and bogus or missing
`Host` headers reach the server unnormalised; `requests` and `urllib` would tidy them away.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXT_ORIGIN = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
OTHER_EXT_ORIGIN = "chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba"
WEB_ORIGIN = "https://evil.example"
DEFAULT_HOST = object()   # raw_request: send `Host: 127.0.0.1:<port>`

_ADDRESS = re.compile(r"at (http://127\.0\.0\.1:(\d+)/)")
_LOGIN = re.compile(r"(http://127\.0\.0\.1:\d+/login/\S+)")
_PAIRING = re.compile(r"^Pairing code: (\S+)$", re.MULTILINE)


class ServeFailed(Exception):
    pass


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)

    def cors_headers(self) -> list[str]:
        """Every `Access-Control-*` header in the response (there must never be one)."""
        return [k for k, _ in self.headers if k.lower().startswith("access-control-")]


def raw_request(port: int, method: str, path: str, *,
                headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
                body: bytes | None = None, host: Any = DEFAULT_HOST,
                chunked: bool = False, timeout: float = 30) -> RawResponse:
    """One request, exactly as written: no path clean-up, Host as given (None: no Host)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is DEFAULT_HOST:
            conn.putheader("Host", f"127.0.0.1:{port}")
        elif host is not None:
            conn.putheader("Host", host)
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders(_chunks(body or b""), encode_chunked=True)
        else:
            if body is not None and not any(n.lower() == "content-length" for n, _ in items):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return RawResponse(response.status, response.getheaders(), data)
    finally:
        conn.close()


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterable[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


@contextlib.contextmanager
def served(app: Any, *, tuned: bool = True, threads: int = 2,
           on_loop: Callable[[], None] | None = None) -> Iterator[int]:
    """A WSGI app on waitress in this process, on a free loopback port, as `serve` runs it
    (with server/channel.py's channel and loop ingest unless `tuned` is False); every thread
    it started is
    gone afterwards (a ledger reader forks its helper only when alone). `on_loop` is
    called once per turn of waitress's main loop."""
    from waitress import wasyncore
    from waitress.server import create_server

    from server import channel
    before = set(threading.enumerate())
    server: Any = create_server(app, host="127.0.0.1", port=0, threads=threads,
                                clear_untrusted_proxy_headers=True, ident="consent-ledger")
    loop_ingest = channel.install(server, app) if tuned else None
    stop = threading.Event()

    def loop() -> None:   # waitress's loop, stopped from its own thread (see serve.py)
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
            if loop_ingest is not None:
                loop_ingest.run()
            if on_loop is not None:
                on_loop()
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)

    thread = threading.Thread(target=loop, name="loop", daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        stop.set()
        thread.join(timeout=10)
        for started in set(threading.enumerate()) - before:
            started.join(timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ServeProcess:
    """One run of `consent-ledger serve --port 0` over the given folders."""

    data_dir: Path
    config_dir: Path
    args: Sequence[str] = ()
    port: int = 0
    base_url: str = ""
    login_url: str = ""
    pairing_code: str = ""
    ledger_id: str = ""
    cli_token: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log_dir: Path | None = None
    _runs: int = field(default=0, repr=False)

    # -- life cycle

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CONSENT_LEDGER_DIR=str(self.data_dir),
                   CONSENT_LEDGER_CONFIG_DIR=str(self.config_dir), PYTHONUNBUFFERED="1")
        env.pop("CONSENT_LEDGER_PASSPHRASE", None)
        return env

    def start(self, timeout: float = 30) -> ServeProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._runs += 1
        logs = self.log_dir or self.config_dir.parent
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logs / f"serve-{self._runs}.out"
        self.stderr_path = logs / f"serve-{self._runs}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--port", "0", *self.args],
                cwd=ROOT, env=self.env(), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.stdout_path.read_text(errors="replace")
            if _PAIRING.search(text):
                break
            if self.proc.poll() is not None:
                raise ServeFailed(f"serve exited {self.proc.returncode}: {self.stderr()}")
            time.sleep(0.02)
        else:
            self.kill()
            raise ServeFailed(f"serve printed no pairing code in {timeout}s: {text!r} "
                              f"{self.stderr()}")
        address = _ADDRESS.search(text)
        login = _LOGIN.search(text)
        assert address and login, text
        self.base_url, self.port = address.group(1), int(address.group(2))
        self.login_url = login.group(1)
        self.pairing_code = _PAIRING.search(text).group(1)  # type: ignore[union-attr]
        self.ledger_id = re.search(r"serving ledger (\w+)", text).group(1)  # type: ignore[union-attr]
        info = json.loads(self.handover_path.read_text())
        assert info["port"] == self.port and info["pid"] == self.proc.pid
        self.cli_token = info["cli_token"]
        self._wait_answering(deadline)
        return self

    def _wait_answering(self, deadline: float) -> None:
        while True:
            try:
                if self.request("GET", "/api/v1/health", token=self.cli_token).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServeFailed("serve does not answer /api/v1/health")
            time.sleep(0.05)

    @property
    def handover_path(self) -> Path:
        return self.config_dir / f"server-{self.ledger_id}.json"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM to the process group; SIGKILL if it has not exited within `timeout`."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(10)
                raise ServeFailed(f"serve ignored SIGTERM for {timeout}s; killed") from None
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash, nothing gets to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal(signal.SIGKILL)
            self.proc.wait(10)

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)   # start_new_session: its pgid is its pid

    def stderr(self) -> str:
        path = getattr(self, "stderr_path", None)
        return path.read_text(errors="replace") if path and path.exists() else ""

    # -- talking to it

    def request(self, method: str, path: str, *, token: str | None = None,
                origin: str | None = None, json_body: Any = None, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, host: Any = DEFAULT_HOST,
                timeout: float = 30) -> RawResponse:
        sent: dict[str, str] = {}
        if token is not None:
            sent.update(bearer(token))
        if origin is not None:
            sent["Origin"] = origin
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        return raw_request(self.port, method, path, headers=sent, body=body, host=host,
                           timeout=timeout)

    def new_pairing_code(self) -> str:
        response = self.request("POST", "/api/v1/pairing-codes", token=self.cli_token,
                                json_body={})
        assert response.status == 200, response
        return str(response.json()["code"])

    def new_login_url(self) -> str:
        response = self.request("POST", "/api/v1/login-links", token=self.cli_token,
                                json_body={})
        assert response.status == 200, response
        return str(response.json()["url"])

    def pair(self, origin: str | None = EXT_ORIGIN, code: str | None = None) -> str:
        """A fresh token paired from `origin` (a fresh code from the CLI unless given)."""
        response = self.request("POST", "/api/v1/pair", origin=origin,
                                json_body={"code": code or self.new_pairing_code()})
        assert response.status == 200, (response.status, response.body)
        return str(response.json()["token"])

    def token_ids(self) -> dict[str | None, list[str]]:
        response = self.request("GET", "/api/v1/tokens", token=self.cli_token)
        assert response.status == 200, response
        ids: dict[str | None, list[str]] = {}
        for t in response.json()["tokens"]:
            ids.setdefault(t["origin"], []).append(t["id"])
        return ids

    def event_count(self) -> int:
        """The number of stored events, as the server's health check counts them."""
        response = self.request("GET", "/api/v1/health", token=self.cli_token)
        assert response.status == 200, (response.status, response.body)
        return int(response.json()["events"])

    def post_events(self, events: list[dict[str, Any]], *, token: str,
                    origin: str | None = EXT_ORIGIN, timeout: float = 30) -> RawResponse:
        return self.request("POST", "/api/v1/events", token=token, origin=origin,
                            json_body={"events": events}, timeout=timeout)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `consent-ledger ARGS` on this server's folders."""
        return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT,
                              env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)


ServeFactory = Callable[..., ServeProcess]
