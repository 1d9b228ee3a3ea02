"""The command line as a user runs it: a real `consent-ledger` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from server.cli import build_parser
from tests.conftest import make_event


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], input=stdin and
                          stdin.decode(), capture_output=True, text=True,
                          env={**os.environ, **(env or {})},
                          cwd=Path(__file__).parents[1], timeout=60)


def _jsonl(path: Path, events: list[Any]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _snapshot(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(data_dir.iterdir()) if p.is_file()}


def test_ingest_then_verify(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "e.jsonl", [make_event(), make_event("consent.set")])
    r = run("ingest", str(f))
    assert r.returncode == 0, r.stderr
    assert "stored 2 events, 0 duplicates" in r.stdout
    again = run("ingest", str(f))
    assert "stored 0 events, 2 duplicates" in again.stdout
    v = run("verify")
    assert v.returncode == 0 and "2 events" in v.stdout


def test_ingest_from_stdin(tmp_path: Path) -> None:
    body = (json.dumps(make_event()) + "\n\n" + json.dumps(make_event()) + "\n").encode()
    r = run("ingest", "-", stdin=body)
    assert r.returncode == 0, r.stderr
    assert "stored 2 events" in r.stdout


BAD_LINES = [
    ("not json", "{nope", "line 2", None),
    ("wrong type", json.dumps({**make_event(), "incognito": "no"}), "line 2", "incognito"),
    ("missing field", json.dumps({k: v for k, v in make_event().items() if k != "kind"}),
     "line 2", "kind"),
    ("unknown field", json.dumps({**make_event(), "prompt": "hello"}), "line 2", "prompt"),
    ("impossible date", json.dumps(make_event(at="2025-04-31T10:00:00Z")), "line 2", "at"),
    ("unknown type", json.dumps({**make_event(), "type": "chat.exported"}), "line 2", "type"),
    ("huge string", json.dumps(make_event(title="x" * 5000)), "line 2", "title"),
    ("huge line", json.dumps(make_event(title="x" * (2 << 20))), "line 2", None),
    ("a list", "[1, 2]", "line 2", None),
]


@pytest.mark.parametrize(("label", "line", "where", "field"), BAD_LINES,
                         ids=[b[0] for b in BAD_LINES])
def test_bad_input_exits_2_and_changes_nothing(tmp_path: Path, data_dir: Path, label: str,
                                               line: str, where: str, field: str | None
                                               ) -> None:
    assert run("ingest", str(_jsonl(tmp_path / "ok.jsonl", [make_event()]))).returncode == 0
    before = _snapshot(data_dir)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(make_event()) + "\n" + line + "\n" + json.dumps(make_event())
                   + "\n")
    r = run("ingest", str(bad))
    assert r.returncode == 2, (label, r.stdout, r.stderr)
    assert where in r.stderr and "nothing was stored" in r.stderr
    if field:
        assert f"field '{field}'" in r.stderr
    assert _snapshot(data_dir) == before


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    r = run("ingest", str(tmp_path / "nope.jsonl"))
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_verify_without_a_ledger_is_exit_2() -> None:
    r = run("verify")
    assert r.returncode == 2 and "no ledger" in r.stderr


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    f = _jsonl(tmp_path / "e.jsonl", [make_event()])
    assert run("ingest", str(f), env={"CONSENT_LEDGER_PASSPHRASE": "right"}).returncode == 0
    before = _snapshot(data_dir)
    r = run("ingest", str(_jsonl(tmp_path / "f.jsonl", [make_event()])),
            env={"CONSENT_LEDGER_PASSPHRASE": "wrong"})
    assert r.returncode == 2 and "wrong passphrase" in r.stderr
    assert _snapshot(data_dir) == before


def test_data_dir_flag_beats_the_environment(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    f = _jsonl(tmp_path / "e.jsonl", [make_event()])
    assert run("ingest", "--data-dir", str(other), str(f)).returncode == 0
    assert (other / "ledger.jsonl").exists()
    assert not (tmp_path / "data").exists()


def test_demo_builds_its_own_ledger_never_the_default(tmp_path: Path) -> None:
    r = run("demo")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "data").exists()       # the default ledger is untouched
    data = Path(next(line.split(":", 1)[1].strip() for line in r.stdout.splitlines()
                     if line.strip().startswith("data:")))
    config = Path(next(line.split(":", 1)[1].strip() for line in r.stdout.splitlines()
                       if line.strip().startswith("keys:")))
    assert (data / "ledger.jsonl").exists()
    v = run("verify", "--data-dir", str(data), "--config-dir", str(config))
    assert v.returncode == 0, v.stdout
    refused = run("demo", "--data-dir", str(tmp_path / "data"))
    assert refused.returncode == 2 and "default ledger" in refused.stderr


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", ["", *_commands()])
def test_help_everywhere(command: str) -> None:
    r = run(*([command] if command else []), "--help")
    assert r.returncode == 0 and "usage: consent-ledger" in r.stdout


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for command in _commands():
        assert f"consent-ledger {command}" in readme, command


def test_unknown_command_is_exit_2() -> None:
    assert run("frobnicate").returncode == 2


def test_the_command_line_loads_flask_only_to_serve(tmp_path: Path) -> None:
    code = ("import sys; from server.cli import main; main(['demo', '--data-dir', sys.argv[1]]);"
            " print('flask' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "demo")],
                       capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("False")


def test_the_default_port_is_one_number() -> None:
    from server import app, cli
    assert cli.DEFAULT_PORT == app.DEFAULT_PORT == 8765
