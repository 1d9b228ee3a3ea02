"""Benchmark: `audit` of 100k and 1M events against the plain Python pass of the ledger
bench (parse each JSON line, keep the latest time per chat), measured in the same run.

The ledger is built first (not timed); then, each in a fresh child process so peak memory
(ru_maxrss) is its own: the plain pass over the events' JSON lines, and
`consent-ledger audit --format json -o FILE` over the ledger. The audit may fork a second
process (auditor.split_read, auditor.split_rows): its peak RSS is printed too, and one more
audit run is sampled from outside for the peak PSS of both processes together (shared pages
counted once), the honest total. Targets (issue 3): audit of
100k events at most 3x the plain pass; 1M events under 500 MB peak RSS.

    python bench/audit_bench.py [--sizes 100000 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ledger_bench import best_of, generate, plain_pass, report_timing  # noqa: E402


def child(mode: str, path: str, work: str) -> None:
    os.environ["CONSENT_LEDGER_DIR"] = os.path.join(work, "data")
    os.environ["CONSENT_LEDGER_CONFIG_DIR"] = os.path.join(work, "config")

    def run() -> None:
        if mode == "plain":
            plain_pass(Path(path))
            return
        from server.cli import main
        assert main(["audit", "--as-of", "2026-11-28", "-o", os.path.join(work, "r.json")]) == 0

    report_timing(run)


def tree_pss_peak(cmd: list[str]) -> float:
    """Run `cmd`; the largest sum of PSS (each shared page counted once, split among its
    sharers) over it and its children, sampled every 50 ms, in MB. Linux only; 0 elsewhere.
    Sampled from outside: a sampling thread inside would stop the audit forking."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        total = 0
        for pid in _tree(proc.pid):
            try:
                with open(f"/proc/{pid}/smaps_rollup") as fh:
                    total += next(int(line.split()[1]) for line in fh
                                  if line.startswith("Pss:"))
            except (OSError, StopIteration):
                pass
        peak = max(peak, total)
        time.sleep(0.05)
    return peak / 1024


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                for child_pid in fh.read().split():
                    out += _tree(int(child_pid))
    except OSError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "events.jsonl"
            generate(path, n)
            env = {**os.environ, "CONSENT_LEDGER_DIR": os.path.join(work, "data"),
                   "CONSENT_LEDGER_CONFIG_DIR": os.path.join(work, "config")}
            subprocess.run([sys.executable, "-m", "server.cli", "ingest", str(path)],
                           check=True, env=env, cwd=ROOT, capture_output=True)
            best = best_of(__file__, ("plain", "audit"), path, repeat=args.repeat, work=work)
            chats = len(json.loads(Path(work, "r.json").read_text())["chats"])
            pss = tree_pss_peak([sys.executable, __file__, "--child", "audit", str(path), work])
            ratio = best["audit"]["seconds"] / best["plain"]["seconds"]
            print(f"{n:>9} events ({chats} chats): plain pass {best['plain']['seconds']:.2f}s, "
                  f"audit {best['audit']['seconds']:.2f}s ({best['audit']['peak_mb']:.0f} MB "
                  f"peak RSS; its second process {best['audit']['children_peak_mb']:.0f} MB; "
                  f"both together {pss:.0f} MB peak PSS), ratio {ratio:.2f}x "
                  "(targets: <= 3x at 100k; < 500 MB at 1M)")


if __name__ == "__main__":
    main()
