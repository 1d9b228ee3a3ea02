"""Shared by the importer tests: the salt, the real exports others wrote (used by path,
skipped when absent), and reading an export with every event checked."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.events import validate_event
from auditor.importers import read_export
from auditor.times import parse_rfc3339

SALT = bytes(range(32))
DATA = Path(__file__).parent / "data" / "exports"
REAL = Path(os.environ.get("CONSENT_LEDGER_EXPORT_FIXTURES",
                           Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "exports"))


def need_real(name: str) -> Path:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"shared export fixture {name} not present")
    return path


def read(path: Path, **kw: Any) -> tuple[list[dict[str, Any]], Any]:
    """Every event of an export, each one valid, and the finished summary."""
    result = read_export(path, salt=SALT, **kw)
    events = list(result.events)
    assert result.summary.complete
    for e in events:
        assert validate_event(e) == e
    return events, result.summary


def spans(events: list[dict[str, Any]]) -> dict[str, tuple[datetime, datetime, int]]:
    """Per chat: first and last activity, and how many, from the events themselves."""
    out: dict[str, tuple[datetime, datetime, int]] = {}
    for e in events:
        if e["type"] == "chat.activity":
            t = parse_rfc3339(e["at"])
            first, last, n = out.get(e["chat_id"], (t, t, 0))
            out[e["chat_id"]] = (min(first, t), max(last, t), n + 1)
    return out


def strings_under(obj: Any, keys: tuple[str, ...], *, min_len: int = 6) -> set[str]:
    """Every string (stripped, at least `min_len` long) held under one of `keys`, at any
    depth of dicts and lists: the message texts an export holds, to check none is kept."""
    found: set[str] = set()

    def walk(x: Any, key: str = "") -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, k)
        elif isinstance(x, list):
            for v in x:
                walk(v, key)
        elif isinstance(x, str) and key in keys and len(x.strip()) >= min_len:
            found.add(x.strip())
    walk(obj)
    return found
