"""The command line's channel to a running server (CONTRACT.md section 2).

`serve` writes `server-<ledger id>.json` (0600) in the config dir with its port, pid and a
command-line token. While that server holds the ledger, `ingest` and `import` hand their
batch to it over loopback (one writer), and `pair`, `login` and `tokens` ask it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.ledger import read_head


class ServerUnavailable(Exception):
    pass


@dataclass(frozen=True)
class RunningServer:
    ledger_id: str
    port: int
    pid: int
    cli_token: str

    def call(self, method: str, path: str, body: Any = None, *, timeout: float = 600
             ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        if data is None and method in ("POST", "DELETE"):
            data = b"{}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.cli_token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"null")
            except ValueError:
                return exc.code, {"error": exc.reason}
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise ServerUnavailable(f"the server on port {self.port} did not answer: "
                                    f"{exc}") from None


def find_server(data_dir: Path, config_dir: Path) -> RunningServer | None:
    """The server holding this data dir's ledger, if one is running."""
    try:
        head = read_head(data_dir)
    except Exception:
        return None
    if head is None:
        return None
    path = config_dir / f"server-{head['ledger_id']}.json"
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError):
        return None
    if Path(info.get("data_dir", "")).resolve() != data_dir.resolve():
        return None
    return RunningServer(str(info["ledger_id"]), int(info["port"]), pid,
                         str(info["cli_token"]))


def require_server(data_dir: Path, config_dir: Path) -> RunningServer:
    server = find_server(data_dir, config_dir)
    if server is None:
        raise ServerUnavailable(f"no `consent-ledger serve` is running for {data_dir}; "
                                "start it first")
    return server
