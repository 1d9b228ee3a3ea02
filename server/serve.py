"""`consent-ledger serve`: the local server on loopback, served by waitress.

Start: open the ledger (the one writer), replay it once into the engine, bind 127.0.0.1,
write `server-<ledger id>.json` (0600) in the config dir for the command line, print the
address, a one-time dashboard login URL and `Pairing code: <code>`. Stop (SIGTERM or
Ctrl-C): no new connections are accepted, the requests in flight finish and get their
answers, then the ledger is fsynced, its checkpoint written, and the hand-over file
removed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from auditor.keys import write_private_file
from auditor.live import LiveLedger
from server import channel
from server.app import DEFAULT_MAX_BODY, ServerState, create_app
from server.auth import TokenStore

LOOPBACK_NAMES = {"localhost"}


class ServeError(Exception):
    pass


def check_loopback(host: str) -> str:
    if host in LOOPBACK_NAMES:
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ServeError(f"{host!r} is not a loopback address; the server binds only "
                         "127.0.0.1 or ::1") from None
    if not address.is_loopback:
        raise ServeError(f"{host} is not a loopback address; the server never listens "
                         "beyond this machine")
    return str(address)


def run_until_stopped(server: Any, *, grace: float = 10.0,
                      after_turn: Callable[[], None] | None = None) -> None:
    """waitress's loop, until SIGTERM or Ctrl-C; then stop accepting connections, finish
    the requests in flight and send their answers (at most `grace` seconds), and stop.
    `after_turn` (server/channel.py's LoopIngest) runs after every turn of the loop."""
    from waitress import wasyncore
    from waitress.channel import HTTPChannel

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        server.pull_trigger()   # wake the loop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    adj = server.adj

    def step(timeout: float) -> None:
        wasyncore.loop(timeout=timeout, map=server._map, use_poll=adj.asyncore_use_poll,
                       count=1)
        if after_turn is not None:
            after_turn()

    while not stopping.is_set():
        step(adj.asyncore_loop_timeout)
    server.accepting = False
    dispatcher = server.task_dispatcher
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        busy = dispatcher.active_count or dispatcher.queue or any(
            isinstance(ch, HTTPChannel) and (ch.requests or ch.total_outbufs_len)
            for ch in list(server._map.values()))
        if not busy:
            break
        step(0.05)
    dispatcher.shutdown(timeout=1)


def handover_path(config_dir: Path, ledger_id: str) -> Path:
    return config_dir / f"server-{ledger_id}.json"


def serve(data_dir: Path, config_dir: Path, *, port: int, host: str = "127.0.0.1",
          passphrase: str | None = None, max_body: int = DEFAULT_MAX_BODY,
          threads: int = 8) -> None:
    from waitress.server import create_server

    host = check_loopback(host)
    # A short queue of requests behind a batch being fsynced is normal, not a warning.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    live = LiveLedger.open(data_dir, config_dir, passphrase=passphrase)
    ledger = live.ledger
    handover = handover_path(config_dir, ledger.ledger_id)
    state = ServerState(live=live, tokens=TokenStore(
        config_dir / f"tokens-{ledger.ledger_id}.json"))
    try:
        app = create_app(state, port=port, max_body=max_body)
        server = create_server(app, host=host, port=port, threads=threads,
                               clear_untrusted_proxy_headers=True, ident="consent-ledger")
        loop_ingest = channel.install(server, app)
        port = int(server.effective_port)  # type: ignore[union-attr]
        app.config["PORT"] = port
        ledger.start_checkpointer()
        write_private_file(handover, json.dumps({
            "ledger_id": ledger.ledger_id, "data_dir": str(data_dir.resolve()), "port": port,
            "pid": os.getpid(), "cli_token": state.cli_token}).encode())
        shown = f"[{host}]" if ":" in host else host
        login = state.login_codes.issue()
        print(f"Consent Ledger serving ledger {ledger.ledger_id} at http://{shown}:{port}/")
        print(f"Dashboard (one-time login link): http://{shown}:{port}/login/{login}")
        print(f"Pairing code: {state.pair_codes.issue()}")
        print("Paste the pairing code into the extension's options page. Ctrl-C stops.",
              flush=True)

        run_until_stopped(server, after_turn=loop_ingest.run if loop_ingest else None)
    finally:
        try:
            handover.unlink(missing_ok=True)
        finally:
            state.tokens.flush()
            live.close()
            print("Consent Ledger stopped; the ledger is closed and its checkpoint written.",
                  file=sys.stderr)
