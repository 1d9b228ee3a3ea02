"""Shared fixtures: every test runs against its own data and config folders, never the
user's real ledger."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditor.ledger import Ledger


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSENT_LEDGER_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONSENT_LEDGER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("CONSENT_LEDGER_PASSPHRASE", raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def open_ledger(data_dir: Path, config_dir: Path) -> Callable[..., Ledger]:
    opened: list[Ledger] = []

    def _open(**kwargs: Any) -> Ledger:
        ledger = Ledger.open(data_dir, config_dir, **kwargs)
        opened.append(ledger)
        return ledger

    yield _open
    for ledger in opened:
        ledger.close()


_counter = itertools.count(1)


def make_event(type_: str = "chat.activity", *, at: str = "2025-10-02T09:30:00Z",
               provider: str = "claude", **fields: Any) -> dict[str, Any]:
    """A valid event of the given type; keyword fields override or add."""
    base: dict[str, Any] = {"v": 1, "id": f"evt-{next(_counter):08d}", "type": type_,
                            "at": at, "provider": provider}
    defaults: dict[str, dict[str, Any]] = {
        "chat.activity": {"chat_id": "chat-1", "kind": "chat", "incognito": False},
        "chat.deleted": {"chat_id": "chat-1"},
        "chat.feedback": {"chat_id": "chat-1", "rating": "up"},
        "chat.seen": {"chat_id": "chat-1"},
        "consent.set": {"setting": "model_training", "value": True, "source": "settings_page"},
        "plan.set": {"plan": "pro"},
    }
    return {**base, **defaults[type_], **fields}


@pytest.fixture
def event() -> Callable[..., dict[str, Any]]:
    return make_event
