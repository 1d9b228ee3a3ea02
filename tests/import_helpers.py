"""Shared by the importer tests: the salt, the real exports others wrote (used by path,
skipped when absent), and reading an export with every event checked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from auditor.events import validate_event
from auditor.importers import read_export

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
