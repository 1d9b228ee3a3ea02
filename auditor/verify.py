"""`consent-ledger verify`: check a ledger for tampering and name the first bad record.

Checks, in order: the head file's checkpoint is signed by this ledger's key; every line is a
record in its exact form, numbered in sequence and chained to the one before; every record
decrypts and authenticates under the data key (its content and position bound as associated
data) to a valid event; the records reach the checkpoint and match its hash. A torn last
line above the checkpoint is crash debris, reported but not a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from auditor.events import EventError, validate_event
from auditor.keys import KeysMissingError, load_keys
from auditor.ledger import (
    HEAD_FILE,
    LEDGER_FILE,
    LedgerCorruptError,
    LedgerError,
    Scan,
    check_against_checkpoint,
    head_checkpoint,
    iter_ledger,
    read_head,
    verify_checkpoint,
)


@dataclass
class LedgerVerdict:
    ok: bool
    records: int = 0
    head: str = ""
    checkpoint_seq: int = 0
    ledger_id: str = ""
    problem: str | None = None
    line: int | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.ok:
            return f"TAMPERED OR DAMAGED: {self.problem}"
        lines = [f"ok: ledger {self.ledger_id}, {self.records} events, head {self.head}",
                 f"signed checkpoint at record {self.checkpoint_seq} matches"]
        return "\n".join(lines + self.notes)


def verify_ledger(data_dir: Path, config_dir: Path, *, passphrase: str | None = None
                  ) -> LedgerVerdict:
    head = read_head(data_dir)
    if head is None:
        raise LedgerError(f"no ledger in {data_dir} (no {HEAD_FILE})")
    ledger_id = str(head["ledger_id"])
    verdict = LedgerVerdict(ok=True, ledger_id=ledger_id)
    try:
        keys = load_keys(config_dir, ledger_id, passphrase=passphrase)
    except KeysMissingError as exc:
        raise LedgerError(f"{exc}; verify needs them to authenticate every record") from None
    cp = head_checkpoint(head)
    verdict.checkpoint_seq = cp.seq
    if head.get("public_key") != keys.public_key_b64 or not verify_checkpoint(
            keys.public_key, cp):
        return _bad(verdict, None, f"{HEAD_FILE}: the checkpoint is not signed by this "
                                   "ledger's key (head file edited or replaced)")
    scan = Scan()
    try:
        for seq, event in iter_ledger(data_dir / LEDGER_FILE, ledger_id, scan, keys=keys,
                                      want_seqs=(cp.seq,), strict=True):
            try:
                validate_event(event)
            except EventError as exc:
                return _bad(verdict, seq, f"line {seq}: holds an invalid event ({exc})")
        check_against_checkpoint(scan, cp)
    except LedgerCorruptError as exc:
        return _bad(verdict, exc.line, str(exc))
    verdict.records, verdict.head = scan.records, scan.head
    if scan.tail is not None:
        line, _offset, why = scan.tail
        verdict.notes.append(f"note: line {line} onwards is crash debris past the checkpoint "
                             f"({why}); it was never acknowledged and is set aside when the "
                             "ledger is next opened to write")
    return verdict


def _bad(verdict: LedgerVerdict, line: int | None, problem: str) -> LedgerVerdict:
    verdict.ok = False
    verdict.line = line
    verdict.problem = problem
    return verdict
