"""The ledger on disk: encrypted, hash-chained JSON lines with a signed checkpoint.

Layout of a data dir (ARCHITECTURE.md, "The ledger on disk"):
- `ledger.jsonl`: one line per event, `{"seq", "prev", "kid", "end", "nonce", "ct"}`:
  sequence number from 1, SHA-256 of the previous line (or of the genesis string), a keyed
  hash of the event id (duplicates are found without decrypting), whether this record ends
  its batch, and the AES-GCM nonce and ciphertext of the event. The associated data binds
  ledger id, seq, prev, kid and end, so a line cannot be edited, moved or re-chained without
  the data key. `end` makes a batch all or nothing across a crash.
- `head.json`: the ledger id, its public key, and the last checkpoint: `{seq, head,
  signature}`, Ed25519 over `consent-ledger/checkpoint/v1:<seq>:<head>`. It is made durable
  at least once a second while records arrive and at a clean close, off the append path.
- `ledger.lock`: the exclusive lock of the one process that writes.

Durability: an append returns only after its records are fsynced; concurrent appends share
one write and one fsync (group commit: a small batch's records wait in memory for whoever
fsyncs next, who writes them all at once). On open, whole records past the checkpoint that
chain correctly were written by an earlier run and are kept; a torn last line, or a batch
that never got its `end` record, is crash debris: it is moved aside to
`ledger.jsonl.torn-<time>` with a warning.
A record missing, changed or out of order at or below the checkpoint is tampering.

The limit, stated plainly: whoever holds the signing key can rewrite the whole history and
sign a new checkpoint; only a checkpoint kept elsewhere (a report, the extension) shows it.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import logging
import os
import queue
import re
import secrets
import threading
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auditor.events import Event, EventError, validate_batch, validate_event
from auditor.keys import (
    LedgerKeys,
    ensure_private_dir,
    load_keys,
    save_keys,
    write_private_file,
)
from auditor.times import format_time, utcnow

LEDGER_FILE = "ledger.jsonl"
HEAD_FILE = "head.json"
LOCK_FILE = "ledger.lock"
HEAD_FORMAT = "consent-ledger/head/v1"
CHECKPOINT_PREFIX = b"consent-ledger/checkpoint/v1:"
_CHUNK_RECORDS = 512
_NONCE_BATCH = 256                # record nonces drawn from the OS at a time

log = logging.getLogger("consent_ledger.ledger")


class LedgerError(Exception):
    """A ledger that cannot be used; the message says why and what to do."""


class LedgerLockedError(LedgerError):
    pass


class LedgerCorruptError(LedgerError):
    """Tampering (or damage) found: names the first bad line."""

    def __init__(self, line: int | None, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"line {line}: {problem}" if line is not None else problem)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "head": self.head, "signature": self.signature}


@dataclass(frozen=True)
class AppendResult:
    stored: int
    duplicates: int
    seq: int
    head: str
    checkpoint: Checkpoint
    events: list[Event] = field(default_factory=list, repr=False)   # what was stored

    def to_json(self) -> dict[str, Any]:
        return {"stored": self.stored, "duplicates": self.duplicates, "head": self.head,
                "checkpoint": self.checkpoint.to_json()}


@dataclass
class Staged:
    """A batch written (or waiting to be written) but not yet known durable: what
    `Ledger.stage` gives and `Ledger.commit` completes."""
    stored: int
    duplicates: int
    seq: int
    head: str
    generation: int
    events: list[Event] = field(default_factory=list, repr=False)


def checkpoint_message(seq: int, head: str) -> bytes:
    return CHECKPOINT_PREFIX + f"{seq}:{head}".encode()


def verify_checkpoint(public_key: Ed25519PublicKey, cp: Checkpoint) -> bool:
    try:
        public_key.verify(base64.b64decode(cp.signature, validate=True),
                          checkpoint_message(cp.seq, cp.head))
    except (InvalidSignature, ValueError):
        return False
    return True


def genesis(ledger_id: str) -> str:
    """The `prev` of the first record: binds the chain to this ledger."""
    return hashlib.sha256(b"consent-ledger/genesis/v1:" + ledger_id.encode()).hexdigest()


def _aad(ledger_id: str, seq: int, prev: str, kid: str, end: bool) -> bytes:
    return f"consent-ledger/record/v1:{ledger_id}:{seq}:{prev}:{kid}:{int(end)}".encode()


# --- reading the file -------------------------------------------------------------------------

@dataclass
class Scan:
    """What a pass over `ledger.jsonl` found."""

    records: int = 0              # complete records in complete batches
    head: str = ""                # hash of the last of those
    good_len: int = 0             # bytes up to the end of the last complete batch
    kids: set[str] = field(default_factory=set)
    hash_at: dict[int, str] = field(default_factory=dict)   # hashes asked for by seq
    framed_records: int = 0       # what the framing pass counted, unchecked
    framed_head: str = ""
    problem: LedgerCorruptError | None = None   # the first bad line
    tail: tuple[int, int, str] | None = None    # (first line, byte offset, why) set aside


_END_MARK = b'"end":true,'


def frame_ledger(path: Path, scan: Scan) -> None:
    """A cheap first pass: where the last complete batch ends, and what follows it.

    Only the `end` marker and line ends are looked at, from the end of the file back (the
    checking pass then reads up to `good_len` and stops, so it can hand out events at once
    without holding a batch back). The number of records is the `seq` of the last complete
    batch's last line, unchecked: the checking pass confirms it line by line. Lines past the
    last complete batch, or a last line without its end of line, are crash debris:
    `scan.tail` says where they start.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; a missing file is an empty ledger
    except FileNotFoundError:
        return
    with fh:
        size = os.fstat(fh.fileno()).st_size
        found = _last_batch_end(fh, size)
        if found is None:  # no readable end line near the end: count every line instead
            fh.seek(0)
            good_len, good_lines, last, lines, torn = _frame_forward(fh)
        else:
            good_len, last, seq = found
            fh.seek(good_len)
            debris = fh.read()
            torn = bool(debris) and not debris.endswith(b"\n")
            good_lines = seq
            lines = seq + debris.count(b"\n") + torn
    scan.good_len = good_len
    scan.framed_records = good_lines
    if good_lines:
        scan.framed_head = hashlib.sha256(last[:-1]).hexdigest()
    if lines > good_lines:
        why = ("a torn last line (no end of line)" if torn and lines == good_lines + 1
               else "a batch that never finished (the writer stopped mid-batch)")
        scan.tail = (good_lines + 1, good_len, why)


_FRAME_CHUNK = 1 << 16
_FRAME_BACK_LIMIT = 1 << 24  # further back than this, the forward count is as cheap
_SEQ = re.compile(rb'\{"seq":([1-9][0-9]{0,17}),')


def _last_batch_end(fh: BinaryIO, size: int) -> tuple[int, bytes, int] | None:
    """(end offset, line, seq) of the last complete line carrying the end mark, read
    backwards from the end; None if there is none within reach or its seq is unreadable."""
    pos = size
    buf = b""
    while pos > 0 and size - pos < _FRAME_BACK_LIMIT:
        step = min(_FRAME_CHUNK, pos)
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        mark = len(buf)
        while (mark := buf.rfind(_END_MARK, 0, mark)) >= 0:
            line_end = buf.find(b"\n", mark) + 1
            if not line_end:
                continue  # the torn last line: look before it
            line_start = buf.rfind(b"\n", 0, mark) + 1
            if not line_start and pos > 0:
                break  # the line starts before this buffer: read further back
            line = buf[line_start:line_end]
            match = _SEQ.match(line)
            return (pos + line_end, line, int(match[1])) if match else None
    return None


def _frame_forward(fh: BinaryIO) -> tuple[int, int, bytes, int, bool]:
    """The framing by counting every line: (good_len, good lines, last good line, lines,
    torn)."""
    offset = good_len = lines = good_lines = 0
    last = b""
    torn = False
    for raw in fh:
        lines += 1
        offset += len(raw)
        if raw[-1:] != b"\n":
            torn = True
            break
        if _END_MARK in raw:
            good_len, good_lines, last = offset, lines, raw
    return good_len, good_lines, last, lines, torn


def iter_ledger(path: Path, ledger_id: str, scan: Scan, *, keys: LedgerKeys | None = None,
                want_seqs: Iterable[int] = (), collect_kids: bool = False,
                strict: bool = False, framed: bool = False) -> Iterator[tuple[int, Event]]:
    """Read and check every line of the complete batches: sequence, chain, and (with keys)
    the ciphertext's authentication; with `strict` (verify), also that each line is in its
    exact canonical form. Yield `(seq, event)` for each record as it is checked.

    A generator, so a ledger of any size is read in flat memory; `scan` is filled in as it
    goes and is complete when the generator is exhausted. A bad line stops the reading and
    is named in `scan.problem`. Without keys nothing is decrypted and nothing is yielded.
    With `framed`, `scan` comes already framed (read up to where that pass found the end).
    """
    if not framed:
        frame_ledger(path, scan)
    scan.head = genesis(ledger_id)
    if not scan.good_len:
        return
    cursor = _Cursor(1, scan.head)
    with open(path, "rb") as fh:
        yield from _read_range(fh, scan.good_len, ledger_id, scan, cursor, keys=keys,
                               want=set(want_seqs), collect_kids=collect_kids, strict=strict)
    _check_end(scan, cursor)


class _Cursor:
    """Where a reading pass is: the next line's expected seq and prev, and whether the line
    before ended a batch."""

    __slots__ = ("ended", "prev", "seq")

    def __init__(self, seq: int, prev: str, ended: bool = True) -> None:
        self.seq, self.prev, self.ended = seq, prev, ended


def _check_end(scan: Scan, cursor: _Cursor) -> None:
    if scan.problem is None and (not cursor.ended or scan.records != scan.framed_records):
        scan.problem = LedgerCorruptError(cursor.seq - 1, "the batch marks do not match "
                                                          "the lines (edited)")


def _read_range(fh: BinaryIO, stop: int, ledger_id: str, scan: Scan, cursor: _Cursor, *,
                keys: LedgerKeys | None, want: set[int], collect_kids: bool = False,
                strict: bool = False, plain: bool = False, offset: int = 0
                ) -> Iterator[tuple[int, Any]]:
    """Check the lines from `fh`'s position (file offset `offset`) up to offset `stop`,
    going on from `cursor`, which is left after the last good line; yield `(seq, event)`,
    or with `plain` `(seq, the event's JSON bytes)`. A bad line ends the range and is named
    in `scan.problem`."""
    decrypt = AESGCM(keys.data).decrypt if keys else None
    loads, sha256, record_keys = orjson.loads, hashlib.sha256, _RECORD_KEYS
    kids = scan.kids
    expected_seq, prev, ended = cursor.seq, cursor.prev, cursor.ended
    try:
        for raw in fh:
            offset += len(raw)
            body = raw[:-1]
            problem: str | None = None
            event = None
            # The common case inline (this loop is most of an audit's reading time); any
            # doubt goes to the helpers below, which say what is wrong.
            try:
                record = loads(body)
            except orjson.JSONDecodeError:
                record = None
                problem = "not a JSON record (edited or damaged)"
            else:
                if (strict or type(record) is not dict or record.keys() != record_keys
                        or record["seq"] != expected_seq or type(record["seq"]) is not int
                        or record["prev"] != prev or type(record["end"]) is not bool
                        or type(record["kid"]) is not str):
                    problem = _check_record(record, body, expected_seq, prev, strict=strict)
                if problem is None and decrypt is not None:
                    try:
                        if strict:
                            raise ValueError("check the exact form")
                        event = decrypt(
                            a2b_base64(record["nonce"], strict_mode=True),
                            a2b_base64(record["ct"], strict_mode=True),
                            _aad(ledger_id, expected_seq, prev, record["kid"], record["end"]))
                        if not plain:
                            event = loads(event)
                    except (InvalidTag, ValueError, TypeError, binascii.Error,
                            orjson.JSONDecodeError):
                        event, problem = _open_record(AESGCM(keys.data),  # type: ignore[union-attr]
                                                      ledger_id, record, strict=strict)
                        if plain and event is not None:
                            event = orjson.dumps(event)
            if problem is not None:
                scan.problem = LedgerCorruptError(expected_seq, problem)
                return
            digest = sha256(body).hexdigest()
            if expected_seq in want:
                scan.hash_at[expected_seq] = digest
            if collect_kids:
                kids.add(record["kid"])
            ended = record["end"]
            if ended:
                scan.records, scan.head = expected_seq, digest
            prev = digest
            if event is not None:
                yield expected_seq, event
            expected_seq += 1
            if offset >= stop:
                break
    finally:
        cursor.seq, cursor.prev, cursor.ended = expected_seq, prev, ended


_RECORD_KEYS = frozenset({"seq", "prev", "kid", "end", "nonce", "ct"})


def _check_record(record: Any, body: bytes, expected_seq: int, prev: str, *, strict: bool
                  ) -> str | None:
    if type(record) is not dict or record.keys() != _RECORD_KEYS:
        return "not a ledger record (edited or damaged)"
    seq = record["seq"]
    if type(seq) is not int or seq != expected_seq:
        return (f"sequence number {seq!r} where {expected_seq} was expected "
                "(a line was dropped, added or moved)")
    if record["prev"] != prev:
        return "does not chain to the line before it (edited, dropped or moved)"
    if type(record["end"]) is not bool or type(record["kid"]) is not str:
        return "not a ledger record (edited or damaged)"
    # A line whose bytes differ from its canonical form but parse the same (spacing, key
    # order, base64 spare bits) changes the hash without changing the record: `verify`
    # names that line itself; a plain read finds it one line later, by the chain.
    if strict and orjson.dumps(record) != body:
        return "not in the ledger's exact form (edited)"
    return None


def _open_record(aes: AESGCM, ledger_id: str, record: dict[str, Any], *, strict: bool
                 ) -> tuple[Event | None, str | None]:
    try:
        nonce = a2b_base64(record["nonce"], strict_mode=True)
        ct = a2b_base64(record["ct"], strict_mode=True)
        if strict and (b2a_base64(ct, newline=False) != record["ct"].encode()
                       or b2a_base64(nonce, newline=False) != record["nonce"].encode()):
            return None, "not in the ledger's exact form (edited)"
        aad = _aad(ledger_id, record["seq"], record["prev"], record["kid"], record["end"])
        plain = aes.decrypt(nonce, ct, aad)
    except (InvalidTag, ValueError, TypeError, binascii.Error):
        return None, "fails authentication: its content or position was changed"
    try:
        return orjson.loads(plain), None
    except orjson.JSONDecodeError:
        return None, "decrypts to something that is not an event"


# --- the head file ----------------------------------------------------------------------------

def read_head(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / HEAD_FILE
    try:
        head = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise LedgerError(f"{path} cannot be read ({exc}); it names the ledger and its "
                          "checkpoint") from None
    if not isinstance(head, dict) or head.get("format") != HEAD_FORMAT:
        raise LedgerError(f"{path} is not a Consent Ledger head file")
    return head


def head_checkpoint(head: dict[str, Any]) -> Checkpoint:
    cp = head["checkpoint"]
    return Checkpoint(int(cp["seq"]), str(cp["head"]), str(cp["signature"]))


# --- the ledger -------------------------------------------------------------------------------

class Ledger:
    """One ledger: append (the single writer) and read.

    Open with `Ledger.open(data_dir, config_dir)`; `writable=False` reads without the lock
    (for `audit` and `verify` while a server runs) and never changes a file.
    """

    def __init__(self, data_dir: Path, keys: LedgerKeys, *, writable: bool) -> None:
        self.data_dir = data_dir
        self.keys = keys
        self.ledger_id = keys.ledger_id
        self.writable = writable
        self.path = data_dir / LEDGER_FILE
        self.notices: list[str] = []
        self._aes = AESGCM(keys.data)
        self._kid_mac = hmac.new(keys.index, digestmod=hashlib.sha256)
        self._write_lock = threading.Lock()
        self._sync_cond = threading.Condition()
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._kids: set[str] = set()
        self._seq = 0
        self._head = genesis(self.ledger_id)
        self._len = 0
        self._written = (0, self._head)   # (seq, head) of what os.write has handed over
        self._synced = (0, self._head)    # (seq, head) known to be on disk
        self._syncing = False
        self._epoch = 0
        self._checkpoint: Checkpoint | None = None
        self._loaded_checkpoint = Checkpoint(0, self._head, "")
        self._frame: Scan | None = None
        self._persisted_seq = -1
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._signer: _Signer | None = None
        self._signing: _Signing | None = None   # the checkpoint of `_synced`, being signed
        self._nonces: list[bytes] = []         # unused nonces, last one first (`_nonce`)
        self._nonce_pid = 0
        # Records encoded but not yet handed to os.write (in order), their kids and bytes.
        self._pending: list[bytes] = []
        self._pending_kids: list[str] = []
        self._pending_bytes = 0
        # Each failed write of buffered records: (generation it ended, seq they started
        # after). An append of an earlier generation above that seq was lost, not stored.
        self._generation = 0
        self._lost: list[tuple[int, int]] = []
        self._write_error: OSError | None = None

    # -- opening

    @classmethod
    def open(cls, data_dir: Path, config_dir: Path, *, writable: bool = True,
             create: bool = True, passphrase: str | None = None,
             replay: Callable[[Iterator[Event]], object] | None = None) -> Ledger:
        """Open (or create) the ledger in `data_dir` with its keys from `config_dir`.

        A writer checks every line as it opens; with `replay`, that same pass decrypts the
        events and hands them to `replay` (a server's engine), so a start-up reads the file
        once, not twice. If the check then fails, the open fails: drop what `replay` built.
        """
        data_dir = Path(data_dir)
        config_dir = Path(config_dir)
        _refuse_keys_inside_data(data_dir, config_dir)
        lock_fd = None
        if writable:
            ensure_private_dir(data_dir)
            lock_fd = _take_lock(data_dir)
        try:
            head = read_head(data_dir)
            if head is None:
                if (data_dir / LEDGER_FILE).exists() and (data_dir / LEDGER_FILE).stat().st_size:
                    raise LedgerError(
                        f"{data_dir / HEAD_FILE} is missing but {LEDGER_FILE} has records: "
                        "the ledger cannot be checked without its head file")
                if not (writable and create):
                    raise LedgerError(f"no ledger in {data_dir} (no {HEAD_FILE})")
                ledger = cls._create(data_dir, config_dir, passphrase)
            else:
                keys = load_keys(config_dir, str(head["ledger_id"]), passphrase=passphrase)
                ledger = cls(data_dir, keys, writable=writable)
                ledger._load(head, replay)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        ledger._lock_fd = lock_fd
        if writable:
            ledger._fd = os.open(ledger.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return ledger

    @classmethod
    def _create(cls, data_dir: Path, config_dir: Path, passphrase: str | None) -> Ledger:
        keys = LedgerKeys.generate(secrets.token_hex(16))
        save_keys(keys, config_dir, passphrase=passphrase)
        ledger = cls(data_dir, keys, writable=True)
        fd = os.open(ledger.path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        ledger._write_head(0, ledger._head)
        return ledger

    def _load(self, head: dict[str, Any],
              replay: Callable[[Iterator[Event]], object] | None = None) -> None:
        cp = head_checkpoint(head)
        if not verify_checkpoint(self.keys.public_key, cp):
            raise LedgerCorruptError(None, f"{HEAD_FILE}: the checkpoint's signature is not "
                                           "this ledger's key (head file edited)")
        self._loaded_checkpoint = cp
        if self.writable:
            scan = Scan()
            records = iter_ledger(self.path, self.ledger_id, scan, want_seqs=(cp.seq,),
                                  collect_kids=True, keys=self.keys if replay else None)
            if replay is not None:
                replay(event for _seq, event in records)
            for _ in records:   # what `replay` left unread, and every line without it
                pass
            check_against_checkpoint(scan, cp)
            self._kids = scan.kids
            self._seq, self._head = scan.records, scan.head
        else:
            # A reader checks the chain while it reads the events (`events`); until then it
            # knows the size and head from the framing pass alone.
            scan = Scan()
            frame_ledger(self.path, scan)
            self._frame = scan
            if scan.framed_records < cp.seq:
                raise LedgerCorruptError(
                    scan.framed_records + 1,
                    f"missing: the signed checkpoint covers {cp.seq} records but only "
                    f"{scan.framed_records} are intact (records cut off or removed)")
            self._seq = scan.framed_records
            self._head = scan.framed_head or genesis(self.ledger_id)
        if scan.tail is not None:
            self._set_aside(scan)
        self._len = scan.good_len
        self._written = self._synced = (self._seq, self._head)
        self._checkpoint = cp
        self._persisted_seq = cp.seq

    def _set_aside(self, scan: Scan) -> None:
        line, offset, why = scan.tail  # type: ignore[misc]
        if not self.writable:
            self.notices.append(f"line {line} onwards is crash debris ({why}); it is ignored "
                                "and will be set aside when the ledger is next opened to write")
            return
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            debris = fh.read()
        stamp = format_time(utcnow()).replace(":", "")
        aside = self.data_dir / f"{LEDGER_FILE}.torn-{stamp}"
        write_private_file(aside, debris)
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        message = (f"set aside {len(debris)} bytes of crash debris from line {line} on "
                   f"({why}) to {aside.name}; every acknowledged record is kept")
        self.notices.append(message)
        log.warning(message)

    # -- properties

    @property
    def seq(self) -> int:
        """The number of records (events) stored."""
        return self._seq

    @property
    def head(self) -> str:
        return self._head

    @property
    def account_salt(self) -> bytes:
        return self.keys.account_salt

    def checkpoint_now(self) -> Checkpoint:
        """A fresh signed checkpoint of what is on disk."""
        seq, head = self._synced
        cp = self._checkpoint
        if cp is None or cp.seq != seq or cp.head != head:
            signing = self._signing
            if signing is not None and signing.seq == seq and signing.head == head:
                cp = signing.result()
            if cp is None or cp.seq != seq or cp.head != head:
                cp = Checkpoint(seq, head, self.keys.sign(checkpoint_message(seq, head)))
            self._checkpoint = cp
        return cp

    # -- appending

    def append(self, events: Iterable[dict[str, Any]], *, validated: bool = False,
               keep: bool = False) -> AppendResult:
        """Append one batch, all or nothing, and return once it is on disk.

        A list is validated before anything is written; any other iterable is streamed
        (bounded memory for big imports) and rolled back if an event in it is bad.
        Events whose id is already stored count as duplicates and are not stored again.
        With `keep`, the result lists the events stored (for an engine to apply).
        """
        return self.commit(self.stage(events, validated=validated, keep=keep))

    def commit(self, staged: Staged) -> AppendResult:
        """Wait until a staged batch is on disk (sharing the write and fsync with every
        batch staged meanwhile); raise OSError if a failed write lost it."""
        self._wait_durable(staged.seq, staged.generation)
        return AppendResult(staged.stored, staged.duplicates, staged.seq, staged.head,
                            self.checkpoint_now(), staged.events)

    def stage(self, events: Iterable[dict[str, Any]], *, validated: bool = False,
              keep: bool = False) -> Staged:
        """The first half of `append`: the batch checked and its records encoded, in
        memory or written, not yet durable. Someone must `commit` it before it is
        acknowledged; batches staged together share one write and one fsync."""
        if not self.writable or self._fd is None:
            raise LedgerError("this ledger was opened read-only")
        if isinstance(events, list) and not validated:
            events = validate_batch(events)
            validated = True
        with self._write_lock:
            start = (self._seq, self._head, self._len, len(self._pending), self._pending_bytes)
            generation = self._generation
            added: list[str] = []
            kept: list[Event] = []
            stored = duplicates = 0
            try:
                chunk: list[bytes] = []
                held: tuple[Event, str] | None = None
                for index, event in enumerate(events):
                    if not validated:
                        event = validate_event(event, index=index)
                    kid = self._kid(event["id"])
                    if kid in self._kids:
                        duplicates += 1
                        continue
                    self._kids.add(kid)
                    added.append(kid)
                    stored += 1
                    if keep:
                        kept.append(event)
                    if held is not None:
                        chunk.append(self._encode(*held, end=False))
                        if len(chunk) >= _CHUNK_RECORDS:
                            self._write(chunk)
                            chunk = []
                    held = (event, kid)
                if held is not None:
                    chunk.append(self._encode(*held, end=True))
                if self._len == start[2] and len(chunk) < _CHUNK_RECORDS:
                    # A small batch: its records wait for the next fsync's single write.
                    self._pending.extend(chunk)
                    self._pending_kids.extend(added)
                    self._pending_bytes += sum(map(len, chunk))
                else:
                    self._write(chunk)
            except BaseException:
                self._roll_back(start, added)
                raise
            return Staged(stored, duplicates, self._seq, self._head, generation, kept)

    def _kid(self, event_id: str) -> str:
        """The keyed hash of an event id: HMAC-SHA256 under the index key, cut to 128 bits
        (a copy of the keyed state is cheaper than keying anew for every event)."""
        mac = self._kid_mac.copy()
        mac.update(event_id.encode())
        return mac.digest()[:16].hex()

    def _nonce(self) -> bytes:
        """A fresh random 96-bit AES-GCM nonce. Drawn from the OS 256 at a time: the same
        randomness, one system call (which lets go of the GIL) per 256 records, not each."""
        pool = self._nonces
        if not pool or self._nonce_pid != os.getpid():   # a forked child draws its own
            pool.clear()
            self._nonce_pid = os.getpid()
            raw = os.urandom(12 * _NONCE_BATCH)
            pool.extend(raw[i:i + 12] for i in range(12 * (_NONCE_BATCH - 1), -1, -12))
        return pool.pop()

    def _encode(self, event: Event, kid: str, *, end: bool) -> bytes:
        seq = self._seq + 1
        prev = self._head
        nonce = self._nonce()
        ct = self._aes.encrypt(nonce, orjson.dumps(event), _aad(self.ledger_id, seq, prev,
                                                                 kid, end))
        body = orjson.dumps({"seq": seq, "prev": prev, "kid": kid, "end": end,
                             "nonce": b2a_base64(nonce, newline=False).decode(),
                             "ct": b2a_base64(ct, newline=False).decode()})
        self._seq = seq
        self._head = hashlib.sha256(body).hexdigest()
        return body + b"\n"

    def _write(self, chunk: list[bytes]) -> None:
        """Hand the buffered records, then `chunk`, to the file (under the write lock).

        If the write fails (a full disk), the file is cut back to what it held, and every
        record after it is lost: the buffered ones of other appends (who wait for them, and
        are told by `_wait_durable`) and `chunk` (its append rolls back)."""
        if self._pending:
            chunk = self._pending + chunk
        if not chunk:
            return
        data = b"".join(chunk)
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)  # type: ignore[arg-type]
                view = view[n:]
        except OSError as exc:
            if len(view) != len(data):
                os.ftruncate(self._fd, self._len)  # type: ignore[arg-type]
            self._kids.difference_update(self._pending_kids)
            self._clear_pending()
            self._seq, self._head = self._written
            with self._sync_cond:
                self._generation += 1
                self._lost.append((self._generation, self._seq))
                self._write_error = exc
            raise
        self._clear_pending()
        self._len += len(data)
        self._written = (self._seq, self._head)

    def _clear_pending(self) -> None:
        self._pending = []
        self._pending_kids = []
        self._pending_bytes = 0

    def _roll_back(self, start: tuple[int, str, int, int, int], added: list[str]) -> None:
        """Undo a batch that failed part-way: nothing of it stays on disk or in memory."""
        seq, head, length, pending, pending_bytes = start
        self._kids.difference_update(added)
        if self._seq <= seq:       # a failed write has already dropped all of it
            return
        if self._len == length:    # all of it still waits in memory, behind others' records
            del self._pending[pending:]
            del self._pending_kids[pending:]
            self._pending_bytes = pending_bytes
        else:                      # written: after the records that waited when it began
            keep = length + pending_bytes
            if self._len != keep:
                os.ftruncate(self._fd, keep)  # type: ignore[arg-type]
                os.fsync(self._fd)  # type: ignore[arg-type]
            self._len = keep
            self._clear_pending()
            self._written = (seq, head)
        self._seq, self._head = seq, head
        with self._sync_cond:
            self._epoch += 1
            if self._synced[0] > self._seq:
                self._synced = (self._seq, self._head)

    def _wait_durable(self, target: int, generation: int) -> None:
        """Group commit: one thread writes what is buffered and fsyncs for everyone."""
        with self._sync_cond:
            while True:
                self._check_not_lost(target, generation)
                if self._synced[0] >= target:
                    return
                if self._syncing:
                    self._sync_cond.wait()
                    continue
                self._syncing = True
                self._sync_cond.release()
                goal = signing = None
                try:
                    with self._write_lock:
                        if self._flush_pending():
                            goal, epoch = self._written, self._epoch
                    if goal is not None:   # else: records were lost, and who waits is told
                        # A server's ledger has its checkpoint signed on another thread while
                        # fsync waits for the disk (and lets go of the GIL), not after: the
                        # answer needs it.
                        signer = self._signer
                        signing = signer.sign(*goal) if signer is not None else None
                        os.fsync(self._fd)  # type: ignore[arg-type]
                except BaseException:
                    goal = None
                    raise
                finally:
                    self._sync_cond.acquire()
                    self._syncing = False
                    if goal is not None and epoch == self._epoch and goal[0] > self._synced[0]:
                        self._synced = goal
                        self._signing = signing
                    self._sync_cond.notify_all()

    def _flush_pending(self) -> bool:
        """Write the buffered records (under the write lock); False if that failed."""
        count = len(self._pending)
        if not count:
            return True
        try:
            self._write([])
        except OSError as exc:
            log.error("could not write %d buffered records: %s", count, exc)
            return False
        return True

    def _check_not_lost(self, target: int, generation: int) -> None:
        """Raise if a failed write lost an append (of `generation`, ending at `target`)."""
        for lost_in, after in self._lost:
            if lost_in > generation and target > after:
                error = self._write_error
                if error is None or error.errno is None:
                    raise OSError(f"{self.path}: the records of this batch were not written")
                raise OSError(error.errno, error.strerror, str(self.path))

    # -- checkpoints

    def write_checkpoint(self) -> Checkpoint:
        """Make the signed checkpoint of what is on disk durable in the head file."""
        cp = self.checkpoint_now()
        if cp.seq != self._persisted_seq:
            self._write_head(cp.seq, cp.head, cp)
        return cp

    def _write_head(self, seq: int, head: str, cp: Checkpoint | None = None) -> None:
        if cp is None:
            cp = Checkpoint(seq, head, self.keys.sign(checkpoint_message(seq, head)))
            self._checkpoint = cp
        body = {"format": HEAD_FORMAT, "ledger_id": self.ledger_id,
                "public_key": self.keys.public_key_b64, "checkpoint": cp.to_json()}
        write_private_file(self.data_dir / HEAD_FILE,
                           orjson.dumps(body, option=orjson.OPT_INDENT_2))
        self._persisted_seq = seq

    def start_checkpointer(self, interval: float = 1.0) -> None:
        """Persist the checkpoint at least once per `interval` while records arrive, and
        sign each append's checkpoint on a thread of its own while fsync runs (`_Signer`).
        What a server does; `close` stops both threads."""
        self._signer = self._signer or _Signer(self.keys)
        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.write_checkpoint()
                except OSError as exc:   # a full disk must not kill the server; say it
                    log.error("could not write the checkpoint: %s", exc)
        self._checkpointer = threading.Thread(target=run, name="checkpointer", daemon=True)
        self._checkpointer.start()

    def close(self) -> None:
        """Finish: fsync, a last checkpoint, release the lock. Safe to call twice."""
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
        if self._fd is not None:
            with self._write_lock:
                self._flush_pending()   # if that fails, the appends that waited are told
                os.fsync(self._fd)
                self._synced = self._written
                self.write_checkpoint()
                os.close(self._fd)
                self._fd = None
        if self._signer is not None:
            self._signer.close()
            self._signer = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading

    def events(self) -> Iterator[Event]:
        """Every stored event, decrypted (lazily: memory stays flat). A writer gives them in
        ledger order; a reader of a large ledger may read it on two cores
        (auditor.split_read) and give them in another order."""
        cp = self._loaded_checkpoint
        if self._frame is not None and not self.writable:
            # A reader reads what it framed when it opened (a snapshot, even while a server
            # appends).
            from auditor.split_read import read_events
            scan = Scan(good_len=self._frame.good_len,
                        framed_records=self._frame.framed_records)
            yield from read_events(self.path, self.ledger_id, scan, keys=self.keys,
                                   want_seqs=(cp.seq,))
        else:  # a writer frames again, as it may have appended since
            scan = Scan()
            for _seq, event in iter_ledger(self.path, self.ledger_id, scan, keys=self.keys,
                                           want_seqs=(cp.seq,)):
                yield event
        check_against_checkpoint(scan, cp)
        if not self.writable:
            self._seq, self._head = scan.records, scan.head
            self._written = self._synced = (self._seq, self._head)


class _Signing:
    """One checkpoint being signed by a `_Signer`; `result` waits for it (None if it failed)."""

    __slots__ = ("_done", "checkpoint", "head", "seq")

    def __init__(self, seq: int, head: str) -> None:
        self.seq, self.head = seq, head
        self.checkpoint: Checkpoint | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def finish(self, checkpoint: Checkpoint | None) -> None:
        self.checkpoint = checkpoint
        self._done.release()

    def result(self) -> Checkpoint | None:
        with self._done:
            return self.checkpoint


class _Signer:
    """A thread that signs checkpoints handed to it, one after another."""

    def __init__(self, keys: LedgerKeys) -> None:
        self._keys = keys
        self._jobs: queue.SimpleQueue[_Signing | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="checkpoint-signer",
                                        daemon=True)
        self._thread.start()

    def sign(self, seq: int, head: str) -> _Signing:
        job = _Signing(seq, head)
        self._jobs.put(job)
        return job

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            checkpoint = None
            try:
                checkpoint = Checkpoint(job.seq, job.head, self._keys.sign(
                    checkpoint_message(job.seq, job.head)))
            except Exception:   # the one who waits signs it again, and meets the error
                log.exception("could not sign the checkpoint ahead")
            finally:
                job.finish(checkpoint)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()


def check_against_checkpoint(scan: Scan, cp: Checkpoint) -> None:
    """Raise LedgerCorruptError when the file does not reach or match the checkpoint."""
    if scan.problem is not None:
        raise scan.problem
    if scan.records < cp.seq:
        raise LedgerCorruptError(
            scan.records + 1,
            f"missing: the signed checkpoint covers {cp.seq} records but only "
            f"{scan.records} are intact (records cut off or removed)")
    if cp.seq and scan.hash_at.get(cp.seq) != cp.head:
        raise LedgerCorruptError(cp.seq, "differs from the signed checkpoint (edited)")


def _take_lock(data_dir: Path) -> int:
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LedgerLockedError(
            f"another process is writing the ledger in {data_dir} (a running "
            "`consent-ledger serve`?); commands hand their batches to it when it runs") from None
    return fd


def _refuse_keys_inside_data(data_dir: Path, config_dir: Path) -> None:
    data = data_dir.resolve()
    conf = config_dir.resolve()
    if conf == data or data in conf.parents:
        raise LedgerError(
            f"the config dir {config_dir} is inside the data dir {data_dir}: keys must live "
            "apart from the data, so a copy of the data folder leaks nothing")


__all__ = [
    "AppendResult", "Checkpoint", "EventError", "Ledger", "LedgerCorruptError", "LedgerError",
    "LedgerLockedError", "Scan", "Staged", "check_against_checkpoint", "checkpoint_message",
    "genesis",
    "read_head", "verify_checkpoint",
]
