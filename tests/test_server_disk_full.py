"""A disk that fills up while the server runs: the batch is refused with 503 naming why, the
ledger keeps exactly what it held, and the same batch goes in once there is room again."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

import auditor.ledger
from auditor.live import LiveLedger
from server.app import ServerState, create_app
from server.auth import TokenStore
from tests.conftest import make_event
from tests.server_harness import raw_request, served

PORT = 8765
CLI_TOKEN = "cli-token-for-the-disk-full-test-0123456789"


class _Disk:
    """`os` for auditor.ledger whose writes to the ledger file fail while `full`."""

    def __init__(self) -> None:
        self.full = False
        self.ledger_fd: int | None = None

    def write(self, fd: int, data: Any) -> int:
        if self.full and fd == self.ledger_fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "flask"])
def test_a_full_disk_refuses_the_batch_and_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    disk = _Disk()
    monkeypatch.setattr(auditor.ledger, "os", disk)
    live = LiveLedger.open(tmp_path / "data", tmp_path / "config")
    live.ledger.start_checkpointer()
    disk.ledger_fd = live.ledger._fd
    state = ServerState(live=live, tokens=TokenStore(tmp_path / "config" / "tokens.json"),
                        cli_token=CLI_TOKEN)
    app = create_app(state, port=PORT, fast_ingest=fast)
    headers = {"Authorization": f"Bearer {CLI_TOKEN}", "Content-Type": "application/json"}
    first, batch = [make_event(chat_id="kept")], [make_event(chat_id=f"c{i}") for i in range(3)]
    try:
        with served(app) as port:
            def post(events: list[dict[str, Any]]) -> Any:
                return raw_request(port, "POST", "/api/v1/events", headers=headers,
                                   body=json.dumps({"events": events}).encode(),
                                   host=f"127.0.0.1:{PORT}")

            assert post(first).status == 200
            before = (live.ledger.path.read_bytes(), live.ledger.seq)
            disk.full = True
            refused = post(batch)
            assert refused.status == 503
            assert "No space left on device" in refused.json()["error"]
            assert "send it again" in refused.json()["error"]
            assert (live.ledger.path.read_bytes(), live.ledger.seq) == before
            assert live.chat_status("claude", "c0") is None      # not in the engine either
            disk.full = False
            again = post(batch)
            assert again.status == 200
            assert (again.json()["stored"], again.json()["duplicates"]) == (3, 0)
    finally:
        live.close()
    with auditor.ledger.Ledger.open(tmp_path / "data", tmp_path / "config",
                                    writable=False) as reader:
        assert sorted(e["chat_id"] for e in reader.events()) == ["c0", "c1", "c2", "kept"]
