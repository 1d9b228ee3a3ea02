"""Crash safety: nothing acknowledged is lost, and debris from an unacknowledged write is
set aside, whatever byte the write was torn at."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditor.ledger import HEAD_FILE, LEDGER_FILE, Ledger
from auditor.verify import verify_ledger
from tests.conftest import make_event

pytestmark = pytest.mark.slow

CHILD = r"""
import random, sys
from pathlib import Path
from auditor.ledger import Ledger
data, config, run = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ledger = Ledger.open(data, config)
ledger.start_checkpointer(interval=0.05)
n = 0
while True:
    size = random.randint(1, 40)
    batch = []
    for _ in range(size):
        n += 1
        batch.append({"v": 1, "id": f"r{run}-{n:09d}", "type": "chat.activity",
                      "at": "2025-10-02T09:30:00Z", "provider": "claude",
                      "chat_id": f"c{n % 97}", "kind": "chat", "incognito": False})
    ledger.append(batch)
    sys.stdout.write(" ".join(e["id"] for e in batch) + "\n")
    sys.stdout.flush()
"""


def _run_and_kill(data: Path, config: Path, run: int, after_acks: int) -> set[str]:
    root = Path(__file__).parents[1]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(data), str(config), str(run)],
                            stdout=subprocess.PIPE, cwd=root, start_new_session=True)
    acked: set[str] = set()
    buf = b""
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    batches = 0
    while batches < after_acks and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        *complete, buf = buf.split(b"\n")
        for line in complete:
            acked.update(line.decode().split())
            batches += 1
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # Whatever was already printed was acknowledged before the kill.
    rest = proc.stdout.read()
    for line in (buf + rest).split(b"\n")[:-1]:
        acked.update(line.decode().split())
    proc.stdout.close()
    assert batches >= after_acks, "the child did not get going"
    return acked


def test_sigkill_mid_append_loses_nothing_acknowledged(data_dir: Path, config_dir: Path
                                                       ) -> None:
    acked: set[str] = set()
    for run, after in enumerate((50, 120, 7), start=1):
        acked |= _run_and_kill(data_dir, config_dir, run, after)
        verdict = verify_ledger(data_dir, config_dir)
        assert verdict.ok, verdict.problem
        with Ledger.open(data_dir, config_dir) as ledger:   # sets any debris aside
            stored = {e["id"] for e in ledger.events()}
        assert acked <= stored
        assert verify_ledger(data_dir, config_dir).ok


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_torn_write_at_every_byte_reopens_with_exactly_the_acknowledged(
        data_dir: Path, config_dir: Path, batch_size: int) -> None:
    with Ledger.open(data_dir, config_dir) as ledger:
        for i in range(4):
            ledger.append([make_event(chat_id=f"c{i}")])
        acked = [e["id"] for e in ledger.events()]
    base = (data_dir / LEDGER_FILE).read_bytes()
    head = (data_dir / HEAD_FILE).read_bytes()
    with Ledger.open(data_dir, config_dir) as ledger:   # the write that will be torn
        ledger.append([make_event(chat_id="late") for _ in range(batch_size)])
    extra = (data_dir / LEDGER_FILE).read_bytes()[len(base):]
    assert extra.count(b"\n") == batch_size

    for cut in range(1, len(extra)):
        (data_dir / LEDGER_FILE).write_bytes(base + extra[:cut])
        (data_dir / HEAD_FILE).write_bytes(head)
        for aside in data_dir.glob(f"{LEDGER_FILE}.torn-*"):
            aside.unlink()
        with Ledger.open(data_dir, config_dir) as ledger:
            assert [e["id"] for e in ledger.events()] == acked, cut
            assert ledger.notices and "crash debris" in ledger.notices[0]
        asides = list(data_dir.glob(f"{LEDGER_FILE}.torn-*"))
        assert len(asides) == 1 and asides[0].read_bytes() == extra[:cut]
        assert (data_dir / LEDGER_FILE).read_bytes() == base
        assert verify_ledger(data_dir, config_dir).ok, cut


def test_whole_records_past_the_checkpoint_are_kept(data_dir: Path, config_dir: Path) -> None:
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([make_event()])
    head = (data_dir / HEAD_FILE).read_bytes()   # checkpoint at 1
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append([make_event(), make_event()])
    (data_dir / HEAD_FILE).write_bytes(head)     # as if killed before the checkpoint moved
    assert json.loads(head)["checkpoint"]["seq"] == 1
    with Ledger.open(data_dir, config_dir) as ledger:
        assert ledger.seq == 3 and not ledger.notices
