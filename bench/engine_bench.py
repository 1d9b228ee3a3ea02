"""Benchmark: the engine's share of an audit, `Engine.apply_many` + `Engine.rows(as_of)`,
against the plain Python pass of the ledger bench (parse each JSON line, keep the latest time
per chat) over the same generated events, measured in the same run.

Timing (100k events, about 10k chats by default): the events are parsed to dicts first (not
timed; the ledger's reader hands the engine dicts), then apply_many and rows are timed apart,
best of --repeat runs, interleaved with the plain pass. Memory (1M events by default): a fresh
child process streams the lines into apply_many and builds the rows; its peak RSS
(ru_maxrss) is printed, with the RSS of the interpreter and imports alone for scale.

    python bench/engine_bench.py [--events 100000] [--memory-events 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor.engine import Engine  # noqa: E402
from auditor.times import parse_user_time  # noqa: E402
from bench.ledger_bench import generate, plain_pass  # noqa: E402

AS_OF = parse_user_time("2026-11-28")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(path: str) -> None:
    """Stream the events into a fresh engine, then build every row; print the peak RSS."""
    base = _peak_mb()
    with open(path, "rb") as fh:
        engine = Engine()
        engine.apply_many(json.loads(line) for line in fh)
    rows = engine.rows(AS_OF)
    print(json.dumps({"peak_mb": _peak_mb(), "base_mb": base, "chats": len(rows)}))


def timing(path: Path, repeat: int) -> None:
    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    best = {"plain": float("inf"), "apply": float("inf"), "rows": float("inf")}
    chats = 0
    for _ in range(repeat):  # interleaved, best of N: the machine is noisy
        gc.collect()
        t0 = time.perf_counter()
        plain_pass(path)
        best["plain"] = min(best["plain"], time.perf_counter() - t0)
        engine = Engine()
        t0 = time.perf_counter()
        engine.apply_many(events)
        t1 = time.perf_counter()
        rows = engine.rows(AS_OF)
        t2 = time.perf_counter()
        best["apply"] = min(best["apply"], t1 - t0)
        best["rows"] = min(best["rows"], t2 - t1)
        chats = len(rows)
        del engine, rows
    engine_s = best["apply"] + best["rows"]
    print(f"{len(events):>9} events ({chats} chats): plain pass {best['plain']:.3f}s; "
          f"apply_many {best['apply']:.3f}s, rows {best['rows']:.3f}s, "
          f"together {engine_s:.3f}s = {engine_s / best['plain']:.2f}x the plain pass")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--memory-events", type=int, default=1_000_000,
                    help="events for the peak-RSS run (0: skip it)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        memory_child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        # Memory first: on Linux a child's ru_maxrss starts from its parent's RSS at the
        # fork, so the parent must not hold the timing run's events yet.
        if args.memory_events:
            path = Path(tmp) / "events-memory.jsonl"
            generate(path, args.memory_events)
            out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True,
                                 capture_output=True, text=True, cwd=ROOT)
            r = json.loads(out.stdout)
            print(f"{args.memory_events:>9} events ({r['chats']} chats): apply_many + rows "
                  f"peak RSS {r['peak_mb']:.0f} MB (interpreter and imports "
                  f"{r['base_mb']:.0f} MB)")
        path = Path(tmp) / "events.jsonl"
        generate(path, args.events)
        timing(path, args.repeat)


if __name__ == "__main__":
    main()
