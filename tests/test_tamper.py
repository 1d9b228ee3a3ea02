"""`verify` catches an edited, dropped, reordered or cut-off ledger and names the first bad
line (SECURITY.md row 8); exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.ledger import LEDGER_FILE, Ledger
from auditor.verify import verify_ledger
from server.cli import main
from tests.conftest import make_event

RECORDS = 6


@pytest.fixture
def ledger_lines(data_dir: Path, config_dir: Path) -> list[bytes]:
    with Ledger.open(data_dir, config_dir) as ledger:
        for i in range(RECORDS):   # one record per batch
            ledger.append([make_event(chat_id=f"c{i}")])
    return (data_dir / LEDGER_FILE).read_bytes().splitlines(keepends=True)


def _write(data_dir: Path, lines: list[bytes]) -> None:
    (data_dir / LEDGER_FILE).write_bytes(b"".join(lines))


def test_an_untouched_ledger_verifies(ledger_lines: list[bytes], data_dir: Path,
                                      config_dir: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    assert main(["verify"]) == 0
    assert f"{RECORDS} events" in capsys.readouterr().out


def test_every_single_byte_change_is_caught_at_its_line(ledger_lines: list[bytes],
                                                        data_dir: Path, config_dir: Path
                                                        ) -> None:
    target = 3   # 1-based line number
    line = ledger_lines[target - 1]
    for offset in range(len(line)):
        changed = bytearray(line)
        changed[offset] = ord("A") if changed[offset] != ord("A") else ord("B")
        _write(data_dir, [*ledger_lines[:target - 1], bytes(changed), *ledger_lines[target:]])
        verdict = verify_ledger(data_dir, config_dir)
        assert not verdict.ok, offset
        assert verdict.line == target, (offset, verdict.problem)


@pytest.mark.parametrize(("label", "mutate", "bad_line"), [
    ("line 3 dropped", lambda ls: ls[:2] + ls[3:], 3),
    ("lines 3 and 4 swapped", lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]], 3),
    ("line 2 repeated", lambda ls: [*ls[:2], ls[1], *ls[2:]], 3),
    ("cut to 4 lines, below the checkpoint", lambda ls: ls[:4], 5),
    ("cut mid-line below the checkpoint", lambda ls: [*ls[:4], ls[4][:40]], 5),
    ("first line dropped", lambda ls: ls[1:], 1),
    ("emptied", lambda ls: [], 1),
])
def test_structural_tampering_is_named(ledger_lines: list[bytes], data_dir: Path,
                                       config_dir: Path, capsys: pytest.CaptureFixture[str],
                                       label: str, mutate, bad_line: int) -> None:
    _write(data_dir, mutate(list(ledger_lines)))
    assert main(["verify"]) == 1, label
    out = capsys.readouterr().out
    assert f"line {bad_line}:" in out, out


def test_an_edited_checkpoint_is_caught(ledger_lines: list[bytes], data_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    head = json.loads((data_dir / "head.json").read_text())
    head["checkpoint"]["seq"] = 2     # a rollback of the checkpoint to hide later records
    (data_dir / "head.json").write_text(json.dumps(head))
    assert main(["verify"]) == 1
    assert "not signed by this ledger's key" in capsys.readouterr().out


def test_another_ledgers_records_do_not_verify(ledger_lines: list[bytes], data_dir: Path,
                                               tmp_path: Path) -> None:
    other = tmp_path / "other"
    with Ledger.open(other, tmp_path / "other-config") as ledger:
        for i in range(RECORDS):
            ledger.append([make_event(chat_id=f"c{i}")])
    lines = list(ledger_lines)
    lines[2] = (other / LEDGER_FILE).read_bytes().splitlines(keepends=True)[2]
    _write(data_dir, lines)
    verdict = verify_ledger(data_dir, tmp_path / "config")
    assert (verdict.ok, verdict.line) == (False, 3)


def test_a_torn_tail_past_the_checkpoint_is_a_note_not_a_failure(
        ledger_lines: list[bytes], data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(data_dir, [*ledger_lines, b'{"seq":7,"prev":"ab'])
    assert main(["verify"]) == 0
    assert "crash debris" in capsys.readouterr().out


def test_a_tampered_ledger_refuses_writes(ledger_lines: list[bytes], data_dir: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    _write(data_dir, ledger_lines[:2] + ledger_lines[3:])
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps(make_event()) + "\n")
    before = (data_dir / LEDGER_FILE).read_bytes()
    assert main(["ingest", str(events)]) == 2
    assert "line 3" in capsys.readouterr().err
    assert (data_dir / LEDGER_FILE).read_bytes() == before
