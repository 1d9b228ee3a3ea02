"""Reading a large ledger on two cores: a forked child checks and decrypts the later part
while this process checks the earlier part and folds both parts' events.

Every record is checked exactly as the one-process reader checks it (auditor.ledger's
`_read_range`, the same code). The child starts at a line boundary past the middle and takes
that line's `seq` and `prev` as given; where this process's part ends, they must be the next
seq and the hash of its last line, so the chain is checked across the cut as everywhere else.
Whatever goes wrong in the child (a bad line, a failed join, a crash) makes this process read
the later part again itself, so a damaged ledger is named exactly as the plain reader names it.

The child sends each event's decrypted JSON over a pipe (never to disk) and its findings in
a last line; this process polls the pipe between its own lines, so the child never waits for
long and little is buffered. Events arrive out of ledger order, which the engine allows (R2).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from auditor.events import Event
from auditor.keys import LedgerKeys
from auditor.ledger import Scan, _check_end, _Cursor, _read_range, genesis, iter_ledger

SPLIT_MIN_BYTES = 8 << 20   # below this the second process costs more than it saves
PARENT_SHARE = 0.33         # this process also parses and folds the child's events
_POLL_EVERY = 64            # own lines between two looks at the pipe
_CHILD_BUFFER = 1 << 20     # the child's writes to the pipe
_TRAILER = b"\x00"          # starts the child's last line (a JSON event never does)


def read_events(path: Path, ledger_id: str, scan: Scan, *, keys: LedgerKeys,
                want_seqs: tuple[int, ...]) -> Iterator[Event]:
    """Every event of the framed ledger at `path` (as `iter_ledger(..., framed=True)` gives
    them, perhaps in another order), filling `scan` the same way."""
    mid = (_cut(path, scan.good_len)
           if scan.good_len and scan.good_len >= SPLIT_MIN_BYTES and can_fork() else None)
    if mid is None:  # one process: the plain reader
        for _seq, event in iter_ledger(path, ledger_id, scan, keys=keys, want_seqs=want_seqs,
                                       framed=True):
            yield event
        return
    scan.head = genesis(ledger_id)
    want = set(want_seqs)
    cursor = _Cursor(1, scan.head)
    with open(path, "rb") as fh:
        child = _Child.start(path, mid, scan.good_len, ledger_id, keys, want)
        try:
            own = _read_range(fh, mid, ledger_id, scan, cursor, keys=keys, want=want)
            for count, (_seq, event) in enumerate(own, 1):
                yield event
                if count % _POLL_EVERY == 0:
                    yield from child.poll()
            if scan.problem is not None:
                return
            yield from child.drain()
            found = child.findings
            if found is not None and found.get("start") == [cursor.seq, cursor.prev] and (
                    found["problem"] is None):
                scan.hash_at.update({int(k): v for k, v in found["hash_at"].items()})
                if found["records"]:
                    scan.records, scan.head = found["records"], found["head"]
                cursor.seq, cursor.prev, cursor.ended = found["cursor"]
            else:  # the child found a problem, or crashed: read its part here, exactly
                fh.seek(mid)
                skip = child.delivered  # those came through already: each event once
                for _seq, event in _read_range(fh, scan.good_len, ledger_id, scan, cursor,
                                               keys=keys, want=want, offset=mid):
                    if skip:
                        skip -= 1
                    else:
                        yield event
            _check_end(scan, cursor)
        finally:
            child.stop()


def can_fork() -> bool:
    """Whether this process may fork a helper: not with other threads running (their locks
    would be copied mid-use)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def _cut(path: Path, size: int) -> int | None:
    """The start of the first line past PARENT_SHARE of the file, or None if none."""
    with open(path, "rb") as fh:
        fh.seek(int(size * PARENT_SHARE))
        fh.readline()
        mid = fh.tell()
    return mid if 0 < mid < size else None


class _Child:
    """The forked reader of the later part, seen from this process."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd
        self.rest = b""
        self.findings: dict[str, Any] | None = None
        self.done = False
        self.delivered = 0  # events passed on, in the child's (the ledger's) order

    @classmethod
    def start(cls, path: Path, mid: int, stop: int, ledger_id: str, keys: LedgerKeys,
              want: set[int]) -> _Child:
        r, w = os.pipe()
        with contextlib.suppress(AttributeError, OSError):  # Linux: a pipe of 1 MiB, not 64 KiB
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)  # type: ignore[attr-defined]
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(r)
            _child_main(w, path, mid, stop, ledger_id, keys, want)
        os.close(w)
        os.set_blocking(r, False)
        return cls(pid, r)

    def poll(self) -> Iterator[Event]:
        """The events the child has sent so far (without waiting)."""
        if self.done:
            return
        try:
            data = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return
        yield from self._take(data)

    def drain(self) -> Iterator[Event]:
        """Every event still to come, waiting for the child to finish."""
        os.set_blocking(self.fd, True)
        while not self.done:
            yield from self._take(os.read(self.fd, 1 << 20))

    def _take(self, data: bytes) -> Iterator[Event]:
        if not data:  # end of the pipe
            self.done = True
            if self.rest.startswith(_TRAILER):
                self.findings = orjson.loads(self.rest[1:])
            return
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        loads = orjson.loads
        for line in lines:
            yield loads(line)
            self.delivered += 1

    def stop(self) -> None:
        """Reap the child (killing it if this process stopped reading early)."""
        os.close(self.fd)
        if not self.done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def _child_main(fd: int, path: Path, mid: int, stop: int, ledger_id: str, keys: LedgerKeys,
                want: set[int]) -> None:
    """In the child: check and decrypt [mid, stop), send each event's JSON, then what was
    found (the first line's seq and prev as given, the scan's results, or the problem)."""
    code = 0
    findings: dict[str, Any] = {"problem": "the child failed"}
    try:
        out = os.fdopen(fd, "wb", buffering=_CHILD_BUFFER)
        with open(path, "rb") as fh:
            fh.seek(mid)
            first = orjson.loads(fh.readline())
            start = [first["seq"], first["prev"]]
            fh.seek(mid)
            scan = Scan(good_len=stop)
            cursor = _Cursor(*start)
            write = out.write
            for _seq, plain in _read_range(fh, stop, ledger_id, scan, cursor, keys=keys,
                                           want=want, plain=True, offset=mid):
                write(plain)
                write(b"\n")
        problem = scan.problem
        findings = {"start": start, "records": scan.records, "head": scan.head,
                    "hash_at": {str(k): v for k, v in scan.hash_at.items()},
                    "cursor": [cursor.seq, cursor.prev, cursor.ended],
                    "problem": None if problem is None else str(problem)}
    except BaseException as exc:  # anything: the parent reads this part itself
        findings = {"problem": f"the child failed: {exc!r}"}
        code = 1
    try:
        out.write(_TRAILER + orjson.dumps(findings))
        out.close()
    except BaseException:  # the parent sees no findings: reads it itself
        code = 1
    os._exit(code)


__all__ = ["can_fork", "read_events"]
