"""The audit report (CONTRACT.md section 4): built from the engine, signed, checked offline.

The signature is Ed25519 over the canonical form of the report without its `signature`
field: UTF-8 JSON, keys sorted, separators `,` and `:`, non-ASCII kept. Anyone with the
ledger's public key can check a report with that rule alone; `verify_report` does it and,
where the ledger is at hand, also checks that the key is this ledger's.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.engine import Engine
from auditor.keys import LedgerKeys
from auditor.ledger import Checkpoint, checkpoint_message
from auditor.times import format_time, utcnow

SCHEMA = "consent-ledger/report/v1"
FORMATS = ("json", "csv", "html", "ics")
CSV_COLUMNS = ("provider", "account", "chat_id", "title", "kind", "incognito",
               "first_activity", "last_activity", "deleted_at", "training", "training_from",
               "training_until", "expires_at", "expiry_basis", "expired", "reasons")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8",
               "html": "text/html; charset=utf-8", "ics": "text/calendar; charset=utf-8"}


class ReportError(ValueError):
    """A report that cannot be read or checked."""


def canonical(body: Mapping[str, Any]) -> bytes:
    """CONTRACT section 4's canonical form. The contract states it as Python's
    `json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`; orjson with
    sorted keys writes the same bytes for a report (strings, integers, booleans, nulls: a
    property test checks both agree) several times faster."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def build_report(engine: Engine, *, keys: LedgerKeys, events: int, checkpoint: Checkpoint,
                 as_of: datetime, generated_at: datetime | None = None) -> dict[str, Any]:
    """The signed report as of `as_of`, over the ledger state described by `checkpoint`."""
    rows = engine.rows(as_of)
    body: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": format_time(generated_at or utcnow()),
        "as_of": format_time(as_of),
        "ledger": _ledger_part(events, checkpoint),
        "accounts": engine.accounts(as_of),
        "chats": rows,
        "summary": engine.summary(rows),
    }
    return sign_report(body, keys)


def _ledger_part(events: int, checkpoint: Checkpoint) -> dict[str, Any]:
    return {"events": events, "head": checkpoint.head, "checkpoint": checkpoint.to_json()}


def sign_report(body: dict[str, Any], keys: LedgerKeys) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if k != "signature"}
    body["signature"] = _signature(keys, canonical(body))
    return body


def _signature(keys: LedgerKeys, message: bytes | bytearray) -> dict[str, str]:
    return {"alg": "ed25519", "public_key": keys.public_key_b64, "value": keys.sign(message)}


# --- the JSON download ------------------------------------------------------------------------
#
# The file is the canonical body (the very bytes the signature covers) with a line break
# before each chat, then the signature: a large report is written row by row and diffs one
# chat per line. Canonical JSON never holds a raw line break (orjson escapes them inside
# strings), so the signed bytes are the body with every line break taken out.

_SORT = orjson.OPT_SORT_KEYS


ChatWriter = Callable[[Callable[[bytes], object]], dict[str, int]]


def _write_body(write: Callable[[bytes], object], *, accounts: Any, as_of: str,
                write_chats: ChatWriter, generated_at: str, ledger: Mapping[str, Any]) -> None:
    """Write the body's layout: canonical, keys sorted, a line break before each chat;
    `write_chats` writes the chats and returns the summary's counts."""
    dumps = orjson.dumps
    write(b'{"accounts":' + dumps(accounts, option=_SORT) + b',"as_of":' + dumps(as_of)
          + b',"chats":[')
    counts = write_chats(write)
    write(b'\n],"generated_at":' + dumps(generated_at) + b',"ledger":'
          + dumps(ledger, option=_SORT) + b',"schema":' + dumps(SCHEMA) + b',"summary":'
          + dumps(counts, option=_SORT) + b"}")


def write_chat_lines(write: Callable[[bytes], object], rows: Iterable[Mapping[str, Any]], *,
                     first: bool = True) -> dict[str, int]:
    """Each row on a line of its own, canonical (after the first row of the list, with the
    comma before its line break); the summary's counts of these rows."""
    def written() -> Iterator[Mapping[str, Any]]:
        dumps = orjson.dumps
        sep = b"\n" if first else b",\n"
        for row in rows:
            write(sep + dumps(row, option=_SORT))
            sep = b",\n"
            yield row
    return Engine.summary(written())


def _signature_tail(signature: Mapping[str, Any]) -> bytes:
    """What replaces the body's closing brace: the signature, last."""
    return b',\n"signature":' + orjson.dumps(signature, option=_SORT) + b"}\n"


def report_json(report: Mapping[str, Any]) -> bytes:
    """The JSON download of a built report, UTF-8 (the layout `write_report_json` streams)."""
    out = io.BytesIO()
    _write_body(out.write, accounts=report["accounts"], as_of=report["as_of"],
                write_chats=lambda write: write_chat_lines(write, report["chats"]),
                generated_at=report["generated_at"], ledger=report["ledger"])
    data = out.getbuffer()
    return bytes(data[:-1]) + _signature_tail(report["signature"])


def write_report_json(fh: BinaryIO, engine: Engine, *, events: int, checkpoint: Checkpoint,
                      as_of: datetime, generated_at: datetime | None = None,
                      spool_dir: str | None = None) -> None:
    """Stream the report's body into `fh` (a readable, seekable binary file), one chat at a
    time, a large one on two cores (auditor.split_rows, its second half spooled in
    `spool_dir`); `sign_report_json` then signs it. Between the two the caller can drop the
    engine, so a large audit never holds its state, its rows and its text at once."""
    from auditor.split_rows import write_chats
    _write_body(fh.write, accounts=engine.accounts(as_of), as_of=format_time(as_of),
                write_chats=lambda write: write_chats(fh, engine, as_of, spool_dir=spool_dir),
                generated_at=format_time(generated_at or utcnow()),
                ledger=_ledger_part(events, checkpoint))


def sign_report_json(fh: BinaryIO, start: int, keys: LedgerKeys) -> None:
    """Sign the body written from offset `start` of `fh` and end the file with the
    signature (what `report_json` writes for the same report)."""
    fh.flush()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(start)
    message = bytearray(end - start)  # the canonical body: the layout less its line breaks
    size = 0
    while chunk := fh.read(1 << 20):
        chunk = chunk.replace(b"\n", b"")
        message[size:size + len(chunk)] = chunk
        size += len(chunk)
    del message[size:]
    if message[-1:] != b"}":
        raise ReportError("the report body was not written whole")
    signature = _signature(keys, message)
    del message
    fh.seek(end - 1)
    fh.write(_signature_tail(signature))
    fh.truncate()
    fh.flush()


def report_csv(report: Mapping[str, Any]) -> str:
    """One row per chat, CONTRACT section 4's columns, UTF-8 without a byte-order mark."""
    out = io.StringIO()
    _write_csv(out, report["chats"])
    return out.getvalue()


def write_report_csv(fh: BinaryIO, rows: Iterable[Mapping[str, Any]]) -> None:
    """`report_csv`'s bytes written into `fh` a row at a time, as `rows` come (an audit's
    `Engine.iter_rows`): a large audit never holds every row or the whole text."""
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    try:
        _write_csv(text, rows)
        text.flush()
    finally:
        text.detach()


def _write_csv(out: Any, rows: Iterable[Mapping[str, Any]]) -> None:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for chat in rows:
        windows = chat["training_windows"]
        cells = {**chat,
                 "training_from": windows[0]["from"] if windows else None,
                 "training_until": windows[-1]["until"] if windows else None,
                 "reasons": " | ".join(chat["reasons"])}
        writer.writerow([_cell(cells.get(c)) for c in CSV_COLUMNS])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(report: Mapping[str, Any], fmt: str) -> bytes:
    """The report in one of FORMATS, as the bytes of a download."""
    if fmt == "json":
        return report_json(report)
    if fmt == "csv":
        return report_csv(report).encode()
    if fmt == "html":
        from auditor.html_report import render_html
        return render_html(dict(report)).encode()
    if fmt == "ics":
        from auditor.calendar_report import render_ics
        return render_ics(dict(report))
    raise ReportError(f"unknown report format {fmt!r} (one of {', '.join(FORMATS)})")


# --- checking a report ------------------------------------------------------------------------

@dataclass
class ReportVerdict:
    ok: bool
    public_key: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        head = ("ok: the report's signature is valid" if self.ok
                else "REFUSED: " + "; ".join(self.problems))
        return "\n".join([head, *self.notes])


def load_report(data: bytes) -> dict[str, Any]:
    """A JSON report, or the signed JSON embedded in an HTML report."""
    text = data.decode("utf-8", errors="strict")
    if text.lstrip().startswith("{"):
        try:
            report = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportError(f"not a JSON report: {exc}") from None
    else:
        from auditor.html_report import extract_embedded_report
        try:
            report = extract_embedded_report(text)
        except (ValueError, KeyError) as exc:
            raise ReportError(f"not a Consent Ledger report (JSON or HTML): {exc}") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise ReportError(f"not a Consent Ledger report (no \"schema\": \"{SCHEMA}\")")
    return report


def verify_report(report: Mapping[str, Any], *, ledger_public_key: str | None = None
                  ) -> ReportVerdict:
    """Check the signature offline; with `ledger_public_key`, that it is that ledger's key."""
    sig = report.get("signature")
    if not isinstance(sig, dict) or sig.get("alg") != "ed25519":
        return ReportVerdict(False, problems=["no Ed25519 signature in the report"])
    verdict = ReportVerdict(True, public_key=str(sig.get("public_key")))
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sig["public_key"],
                                                                  validate=True))
        value = base64.b64decode(sig["value"], validate=True)
    except (ValueError, KeyError, TypeError):
        return ReportVerdict(False, problems=["the signature's key or value is not base64 of "
                                              "an Ed25519 key and signature"])
    body = {k: v for k, v in report.items() if k != "signature"}
    try:
        key.verify(value, canonical(body))
    except InvalidSignature:
        verdict.ok = False
        verdict.problems.append("the signature does not match the content: the report was "
                                "changed after it was signed, or signed by another key")
    cp = report.get("ledger", {}).get("checkpoint", {})
    try:
        key.verify(base64.b64decode(cp["signature"], validate=True),
                   checkpoint_message(int(cp["seq"]), str(cp["head"])))
        verdict.notes.append(f"checkpoint: record {cp['seq']}, head {cp['head']}, signed by "
                             "the same key")
    except (InvalidSignature, ValueError, KeyError, TypeError):
        verdict.ok = False
        verdict.problems.append("the ledger checkpoint in the report is not signed by the "
                                "report's key")
    if ledger_public_key is None:
        verdict.notes.append("no ledger at hand: the key could not be compared with one")
    elif ledger_public_key != verdict.public_key:
        verdict.ok = False
        verdict.problems.append("signed by a key that is not this ledger's")
    else:
        verdict.notes.append("signed by this ledger's key")
    verdict.notes.append(f"public key: {verdict.public_key}")
    return verdict
