"""Writing a large report's chats on two cores: a forked child works out the later half of
the rows (in the report's order) into an unnamed spool file while this process writes the
earlier half into the report, then copies the child's half after it. Only up to
SPLIT_MAX_CHATS chats, as the child may come to hold a copy of the engine.

The child starts from this process's engine as it stands (a copy-on-write fork, nothing
recomputed) and runs the same code (`Engine.iter_rows` over its slice of `row_order`, then
`write_chat_lines`), so the bytes are those a single process writes. If the child fails in
any way, this process works out that half itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from auditor.engine import Engine
from auditor.report import write_chat_lines
from auditor.split_read import can_fork

SPLIT_MIN_CHATS = 2000   # below this the second process costs more than it saves
# The child shares the engine's memory copy-on-write, but reading an object writes its
# reference count, so it may end up with a copy of most of the engine: above this many chats
# the rows are worked out in one process, so the audit's memory stays about the engine's once.
SPLIT_MAX_CHATS = 40_000
PARENT_SHARE = 0.5       # a row costs the same in both; copying the spool is cheap


def write_chats(fh: BinaryIO, engine: Engine, as_of: datetime, *,
                spool_dir: str | None = None) -> dict[str, int]:
    """Write every chat's row into `fh` (see `write_chat_lines`); return the counts."""
    order = engine.row_order(as_of)
    cut = int(len(order) * PARENT_SHARE)
    if not SPLIT_MIN_CHATS <= len(order) <= SPLIT_MAX_CHATS or not can_fork():
        return write_chat_lines(fh.write, engine.iter_rows(as_of, order))
    fh.flush()
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(r)
            _child_main(w, spool, engine, as_of, order[cut:])
        os.close(w)
        try:
            counts = write_chat_lines(fh.write, engine.iter_rows(as_of, order[:cut]))
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            _wait(r, pid)
            raise
        found = _wait(r, pid)
        if found is None or not counts["chats"]:  # work out the child's half here
            more = write_chat_lines(fh.write, engine.iter_rows(as_of, order[cut:]),
                                    first=not counts["chats"])
        else:
            fh.flush()
            spool.seek(0)
            shutil.copyfileobj(spool, fh, 1 << 20)
            more = found
    return {name: counts[name] + more[name] for name in counts}


def _wait(fd: int, pid: int) -> dict[str, int] | None:
    """The child's counts once it has finished, or None if it failed."""
    with open(fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return None
    try:
        found = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, dict) and "chats" in found else None


def _child_main(fd: int, spool: Any, engine: Engine, as_of: datetime,
                keys: list[Any]) -> None:
    code = 1
    try:
        with open(spool.fileno(), "wb", buffering=1 << 20, closefd=False) as out:
            counts = write_chat_lines(out.write, engine.iter_rows(as_of, keys), first=False)
        os.write(fd, orjson.dumps(counts))
        code = 0
    except BaseException:  # anything: the parent sees the failure and does this half itself
        pass
    os._exit(code)


__all__ = ["write_chats"]
