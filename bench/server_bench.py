"""Benchmark the local server (issue 4), each figure against a baseline in the same run.

1. Durable ingest over loopback, 1 and 8 clients, batches of 1 and 50 events: the real
   `consent-ledger serve` against a bare waitress app (same thread count) whose handler
   only appends the body to a file and fsyncs. Target: batch-1 ingest >= 0.7x the bare app.
   A second baseline is the same bare app with serve's changes to waitress
   (server/channel.py), which make waitress itself faster with many clients: the ratio
   against it is what our own work per request costs.
2. Badge lookups (GET /api/v1/chats/...) with 100k chats loaded: p50 and p99 over HTTP,
   and in-process (LiveLedger.chat_status). Target: p99 <= 5 ms.
3. Start-up replay of 1M events (what `serve` does before it listens) against an audit of
   the same ledger. Target: replay <= 1.5x the audit.

    python bench/server_bench.py [--quick] [--only ingest|badges|replay] [--rounds N (3)]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE_APP = r"""
import logging, os, sys
from waitress.server import create_server
path, port, tuned = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "tuned"
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
def app(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    os.write(fd, body + b"\n")
    os.fsync(fd)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"stored": 1}']
logging.getLogger("waitress.queue").setLevel(logging.ERROR)
server = create_server(app, host="127.0.0.1", port=port, threads=8)
if tuned:   # with serve's own changes to waitress (server/channel.py)
    from server import channel
    channel.install(server)
server.run()
"""


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def event(i: int, run: str) -> dict[str, object]:
    return {"v": 1, "id": f"b{run}-{i:010d}", "type": "chat.activity",
            "at": "2025-10-02T09:30:00Z", "provider": "claude", "chat_id": f"chat-{i % 5000}",
            "kind": "chat", "incognito": False, "title": "A benchmark chat"}


def load(port: int, token: str | None, *, clients: int, batch: int, seconds: float,
         run: str) -> float:
    """Events per second acknowledged by the server, `clients` threads posting batches."""
    counter = iter(range(10**9))
    lock = threading.Lock()
    done = [0]
    stop = time.monotonic() + seconds
    headers = {"Content-Type": "application/json", "Host": f"127.0.0.1:{port}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            with lock:
                ids = [next(counter) for _ in range(batch)]
            body = json.dumps({"events": [event(i, run) for i in ids]})
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            with lock:
                done[0] += batch
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.monotonic() - t0)


def start_serve(work: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    env = {**os.environ, "CONSENT_LEDGER_DIR": str(work / "data"),
           "CONSENT_LEDGER_CONFIG_DIR": str(work / "config")}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, timeout=600)
    deadline = time.monotonic() + 60
    while not list((work / "config").glob("server-*.json")):   # written just after binding
        if time.monotonic() > deadline:
            raise RuntimeError("serve wrote no hand-over file")
        time.sleep(0.05)
    info = json.loads(next((work / "config").glob("server-*.json")).read_text())
    return proc, port, info["cli_token"]


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def bench_ingest(seconds: float, rounds: int = 1) -> None:
    print("1. durable ingest over loopback (events/s; ratio = server / bare fsync app"
          + (f"; best of {rounds} interleaved runs each" if rounds > 1 else "") + ")")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bares = {}
        for kind in ("plain", "tuned"):
            port_bare = free_port()
            bares[kind] = (subprocess.Popen(
                [sys.executable, "-c", BARE_APP, str(work / f"bare-{kind}.log"),
                 str(port_bare), kind], cwd=ROOT, start_new_session=True), port_bare)
            wait_port(port_bare)
        serve, port, token = start_serve(work)
        try:
            for clients in (1, 8):
                for batch in (1, 50):
                    best = {"plain": 0.0, "tuned": 0.0, "serve": 0.0}
                    for n in range(rounds):
                        for kind, (_proc, port_bare) in bares.items():
                            best[kind] = max(best[kind], load(
                                port_bare, None, clients=clients, batch=batch,
                                seconds=seconds, run=f"{kind}{clients}x{batch}r{n}"))
                        best["serve"] = max(best["serve"], load(
                            port, token, clients=clients, batch=batch, seconds=seconds,
                            run=f"s{clients}x{batch}r{n}"))
                    s, b, t = best["serve"], best["plain"], best["tuned"]
                    print(f"   {clients} client(s), batch {batch:>2}: server {s:7.0f}/s, "
                          f"bare {b:7.0f}/s, ratio {s / b:.2f}x"
                          + ("  (target >= 0.7x)" if batch == 1 else "")
                          + f"; bare with serve's waitress changes {t:7.0f}/s, {s / t:.2f}x")
        finally:
            stop(serve)
            for proc, _port in bares.values():
                os.killpg(proc.pid, signal.SIGKILL)


def build_ledger(work: Path, events: int, chats: int) -> None:
    from bench.ledger_bench import generate
    path = work / "events.jsonl"
    rng = random.Random(3)
    with open(path, "w") as fh:
        for i in range(events):
            fh.write(json.dumps({
                "v": 1, "id": f"l-{i:010d}", "type": "chat.activity",
                "at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                "provider": ("claude", "chatgpt", "gemini")[i % 3],
                "chat_id": f"chat-{rng.randrange(chats):07d}" if i >= chats else f"chat-{i:07d}",
                "kind": "chat", "incognito": False}) + "\n")
    del generate
    env = {**os.environ, "CONSENT_LEDGER_DIR": str(work / "data"),
           "CONSENT_LEDGER_CONFIG_DIR": str(work / "config")}
    subprocess.run([sys.executable, "-m", "server.cli", "ingest", str(path)], check=True,
                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    path.unlink()


def bench_badges(chats: int, lookups: int) -> None:
    print(f"2. badge lookups with {chats} chats loaded")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_ledger(work, chats * 2, chats)
        serve, port, token = start_serve(work)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = {"Authorization": f"Bearer {token}", "Host": f"127.0.0.1:{port}"}
            rng = random.Random(5)
            times = []
            for _ in range(lookups):
                chat = f"chat-{rng.randrange(chats):07d}"
                provider = ("claude", "chatgpt", "gemini")[int(chat[5:]) % 3]
                t0 = time.perf_counter()
                conn.request("GET", f"/api/v1/chats/{provider}/{chat}", headers=headers)
                response = conn.getresponse()
                response.read()
                times.append(time.perf_counter() - t0)
                assert response.status == 200, response.status
            q = statistics.quantiles(times, n=100)
            print(f"   over HTTP: p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms "
                  f"(target p99 <= 5 ms), {lookups} lookups of random chats")
        finally:
            stop(serve)


REPLAY = r"""
import sys, time, json, resource
from pathlib import Path
t0 = time.perf_counter()
if sys.argv[1] == "replay":
    from auditor.live import LiveLedger
    live = LiveLedger.open(Path(sys.argv[2]), Path(sys.argv[3]))
    live.ledger.close()
else:
    import os
    os.environ["CONSENT_LEDGER_DIR"], os.environ["CONSENT_LEDGER_CONFIG_DIR"] = sys.argv[2:4]
    from server.cli import main
    assert main(["audit", "--as-of", "2026-11-28", "-o", "/dev/null"]) == 0
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_replay(events: int) -> None:
    print(f"3. start-up replay of {events} events against an audit of the same ledger")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_ledger(work, events, max(1, events // 10))
        best: dict[str, dict[str, float]] = {}
        for _ in range(2):
            for mode in ("audit", "replay"):
                out = subprocess.run([sys.executable, "-c", REPLAY, mode, str(work / "data"),
                                      str(work / "config")], check=True, cwd=ROOT,
                                     capture_output=True, text=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if mode not in best or r["seconds"] < best[mode]["seconds"]:
                    best[mode] = r
        ratio = best["replay"]["seconds"] / best["audit"]["seconds"]
        print(f"   replay {best['replay']['seconds']:.2f}s ({best['replay']['peak_mb']:.0f} MB),"
              f" audit {best['audit']['seconds']:.2f}s ({best['audit']['peak_mb']:.0f} MB), "
              f"ratio {ratio:.2f}x (target <= 1.5x)")


PARTS = ("ingest", "badges", "replay")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--only", action="append", choices=PARTS,
                    help="run only this part (may be given more than once)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="ingest: the best of this many interleaved runs of each figure")
    args = ap.parse_args()
    parts = args.only or PARTS
    if "ingest" in parts:
        bench_ingest(seconds=1.5 if args.quick else 5, rounds=args.rounds)
    if "badges" in parts:
        bench_badges(chats=5_000 if args.quick else 100_000,
                     lookups=300 if args.quick else 3000)
    if "replay" in parts:
        bench_replay(events=20_000 if args.quick else 1_000_000)


if __name__ == "__main__":
    main()
