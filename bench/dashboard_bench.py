"""The dashboard's first page with 10,000 chats: server time per view (target < 300 ms).

A ledger of `--chats` chats over four accounts (settings switched on and off, plans, some
chats deleted, incognito or resumed) is opened the way `serve` opens it; then the first
page of the dashboard is fetched through Flask's test client (the whole request: the guard,
the session, the view, the template), median of `--repeat` runs, in three states:

- login: the one-time link's request, which evaluates every chat once (then cached), so
  that the dashboard itself opens fast;
- first view: the first dashboard page right after that login;
- warm: a view with nothing new since the last one (the usual case);
- after an event: a view right after one new event (only the chats it touches re-evaluated);

and a filtered view (one provider, verdict "yes", page 3). Baselines in the same run:
`json.dumps` of the rows (the least any page built from all rows costs) and rendering a
trivial template through the same app (what any page costs).

    python bench/dashboard_bench.py [--chats 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 300.0
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
ACCOUNTS = (("claude", "default"), ("claude", "5f0e4c1c2b9a4d7e8f6a3b2c1d0e9f8a"),
            ("chatgpt", "default"), ("gemini", "default"))
WORDS = ("trip", "invoice", "parser", "letter", "landlord", "recipe", "sourdough", "budget",
         "python", "garden", "essay", "résumé", "holiday", "tax", "migration", "chart")


def sample_events(chats: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """A plausible ledger: settings and plans per account, then `chats` chats' activity."""
    rnd = random.Random(seed)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    n = 0

    def ev(type_: str, at: datetime, provider: str, account: str, **fields: Any
           ) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"v": 1, "id": f"bench-{n:08d}", "type": type_,
                "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "provider": provider,
                "account": account, **fields}

    events = []
    for i, (provider, account) in enumerate(ACCOUNTS):
        if i == 1:
            continue   # the second Claude account's setting was never seen
        plan = {"claude": "pro", "chatgpt": "plus", "gemini": "free"}[provider]
        events.append(ev("plan.set", start, provider, account, plan=plan))
        for days, value in ((100 + i * 7, True), (150 + i * 11, False), (300 + i * 5, True)):
            events.append(ev("consent.set", start + timedelta(days=days), provider, account,
                             setting="model_training", value=value, source="settings_page"))
    for c in range(chats):
        provider, account = ACCOUNTS[rnd.randrange(len(ACCOUNTS))]
        at = start + timedelta(seconds=rnd.randrange(540 * 86400))
        chat_id = f"{provider[:2]}-{c:06d}"
        title = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 5))).capitalize()
        events.append(ev("chat.activity", at, provider, account, chat_id=chat_id, kind="chat",
                         incognito=rnd.random() < 0.05, title=title))
        if rnd.random() < 0.3:
            events.append(ev("chat.activity", at + timedelta(days=rnd.randrange(1, 60)),
                             provider, account, chat_id=chat_id, kind="chat",
                             incognito=False, title=title))
        if rnd.random() < 0.1:
            events.append(ev("chat.deleted", at + timedelta(days=rnd.randrange(1, 200)),
                             provider, account, chat_id=chat_id))
    return events


def median_ms(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs), runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    from flask import render_template_string

    from auditor.ledger import Ledger
    from auditor.live import LiveLedger
    from server.app import ServerState, create_app
    from server.auth import TokenStore

    root = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    events = sample_events(args.chats)
    with Ledger.open(root / "data", root / "config") as ledger:
        ledger.append(events)
    live = LiveLedger.open(root / "data", root / "config")
    try:
        state = ServerState(live=live, tokens=TokenStore(root / "config" / "tokens.json"))
        app = create_app(state, port=PORT)

        @app.get("/bench-trivial", endpoint="bench_trivial")
        def trivial() -> str:
            return render_template_string("<!doctype html><title>x</title><p>{{ n }}</p>",
                                          n=len(live.engine))

        from server.guard import POLICIES, Policy
        POLICIES["bench_trivial"] = Policy("page", "session")
        client = app.test_client()
        code = state.login_codes.issue()
        t = time.perf_counter()
        assert client.get(f"/login/{code}", base_url=BASE).status_code == 303
        login_ms = (time.perf_counter() - t) * 1000

        def view(path: str = "/") -> None:
            response = client.get(path, base_url=BASE)
            assert response.status_code == 200, response.status_code

        print(f"ledger: {len(events):,} events, {len(live.engine):,} chats, "
              f"{len(ACCOUNTS)} accounts")
        t = time.perf_counter()
        view()
        cold = (time.perf_counter() - t) * 1000
        warm, _ = median_ms(view, args.repeat)

        def after_event() -> None:
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            live.append([{"v": 1, "id": f"late-{time.perf_counter_ns()}", "type":
                          "chat.activity", "at": at, "provider": "claude",
                          "account": "default", "chat_id": "cl-000001", "kind": "chat",
                          "incognito": False}])
            t0 = time.perf_counter()
            view()
            runs.append((time.perf_counter() - t0) * 1000)

        runs: list[float] = []
        for _ in range(args.repeat):
            after_event()
        evented = statistics.median(runs)
        filtered, _ = median_ms(lambda: view("/?provider=claude&training=yes&page=3"),
                                args.repeat)
        soon, _ = median_ms(lambda: view("/?expiring=365&sort=expiry&q=tax"), args.repeat)
        rows = live.snapshot().rows
        dumps, _ = median_ms(lambda: json.dumps(rows), args.repeat)
        trivial_ms, _ = median_ms(lambda: view("/bench-trivial"), args.repeat)
        t = time.perf_counter()
        live.report()
        report_ms = (time.perf_counter() - t) * 1000
    finally:
        live.close()

    print(f"{'what':52} {'median ms':>10} {'x json':>7}")
    for name, ms in (
        ("baseline: trivial template through the same app", trivial_ms),
        (f"baseline: json.dumps of the {len(rows):,} rows", dumps),
        ("login link (evaluates every chat once)", login_ms),
        ("dashboard page 1, first view after login", cold),
        ("dashboard page 1, warm (nothing new)", warm),
        ("dashboard page 1, right after one new event", evented),
        ("dashboard filtered (provider, yes, page 3)", filtered),
        ("dashboard expiring within a year, search, by expiry", soon),
        ("for comparison: the signed report (downloads only)", report_ms),
    ):
        print(f"{name:52} {ms:10.1f} {ms / dumps:7.2f}")
    worst = max(cold, warm, evented, filtered, soon)
    verdict = "ok" if worst < TARGET_MS else "OVER TARGET"
    print(f"first page, warm: {warm:.1f} ms; after an event: {evented:.1f} ms; worst view "
          f"{worst:.1f} ms (target {TARGET_MS:.0f} ms: {verdict}); first view after login "
          f"{cold:.0f} ms, the login itself {login_ms:.0f} ms")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
