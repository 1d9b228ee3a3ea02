"""Fixtures that run the real `consent-ledger serve` (tests/server_harness.py).

A test module uses them with `pytest_plugins = ["tests.conftest_server"]` (tests/conftest.py
is left alone, so only the modules that run servers load this).

- `module_server`: one server for a whole module (its own folders), for tests that do not
  disturb each other; stopped with SIGTERM after the module, which must exit 0.
- `serve_factory`: starts servers on demand (fresh folders, or given ones to restart on);
  every server it started is stopped at the end of the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_harness import ServeFactory, ServeProcess


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("serve")
    server = ServeProcess(root / "data", root / "config").start()
    try:
        yield server
    finally:
        if server.running:
            code = server.stop()
            assert code == 0, f"serve exited {code}: {server.stderr()}"


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[ServeFactory]:
    started: list[ServeProcess] = []

    def start(data_dir: Path | None = None, config_dir: Path | None = None,
              args: tuple[str, ...] = ()) -> ServeProcess:
        root = tmp_path / f"serve-{len(started)}"
        server = ServeProcess(data_dir or tmp_path / "srv" / "data",
                              config_dir or tmp_path / "srv" / "config", args=args,
                              log_dir=root)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        try:
            server.stop()
        except Exception:
            server.kill()
