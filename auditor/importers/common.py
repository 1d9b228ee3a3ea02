"""What every importer shares: errors, the summary, event ids, times and the progress bar.

Event ids are derived from the export itself (provider, account label, chat id and the
message's own id, or its time where the export has none), so importing the same export twice,
or two overlapping exports, yields the same ids and the ledger's idempotency stores nothing
new. No message text ever reaches an event: only ids, times and chat titles.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from auditor.events import Event, EventError, validate_event
from auditor.times import TimeFormatError, format_time, parse_rfc3339

log = logging.getLogger("auditor.importers")

# The summary keeps this many skipped records by name; the rest are only counted.
MAX_SKIPPED_NAMED = 200
TITLE_MAX = 1000
CHAT_ID_MAX = 200


class ImportFormatError(ValueError):
    """The path is not a provider export this tool can read (the CLI exits 2)."""


class ImportOptionError(ValueError):
    """An option that does not fit the export found (e.g. a plan the provider does not sell)."""


class RecordError(ValueError):
    """One record of an export is broken; it is skipped and named in the summary."""


@dataclass
class Skipped:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ImportSummary:
    """What an import found. Counts are final once `complete` is true (events consumed)."""

    provider: str
    format: str
    source: str
    files: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    chats: int = 0
    messages: int = 0
    feedback: int = 0
    empty_chats: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    skipped_count: int = 0
    missing_shards: list[str] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    complete: bool = False

    def skip(self, where: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_SKIPPED_NAMED:
            self.skipped.append(Skipped(where, reason))
        log.warning("skipped %s: %s", where, reason)

    def missing(self, name: str, why: str) -> None:
        self.missing_shards.append(name)
        log.warning("missing part of the export: %s (%s)", name, why)

    def ignore(self, what: str, n: int = 1) -> None:
        self.ignored[what] = self.ignored.get(what, 0) + n

    def feature(self, name: str) -> None:
        if name not in self.features:
            self.features.append(name)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            log.info("%s", text)

    def account(self, label: str) -> None:
        if label not in self.accounts:
            self.accounts.append(label)


@dataclass
class ImportResult:
    """`events` is lazy (the export is streamed); `summary` is complete once it is consumed."""

    events: Iterator[Event]
    summary: ImportSummary

    def __iter__(self) -> Iterator[Event]:
        return self.events


def event_id(*parts: str) -> str:
    """An id "imp-" + 40 hex of SHA-256 over the parts: the same export gives the same ids."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return "imp-" + digest[:40]


# A user message: when it was sent, and the export's own id for it (or a stand-in).
Prompt = tuple[datetime, str]


class Emitter:
    """Builds and validates the events of one import, counting them into the summary."""

    def __init__(self, provider: str, summary: ImportSummary, plan: str | None) -> None:
        self.provider = provider
        self.summary = summary
        self.plan = plan

    def activity(self, *, account: str, chat_id: str, at: str, key: str,
                 title: str | None = None, kind: str = "chat") -> Event:
        event: Event = {
            "v": 1,
            "id": event_id(self.provider, account, chat_id, "activity", key),
            "type": "chat.activity",
            "at": at,
            "provider": self.provider,
            "account": account,
            "chat_id": chat_id,
            "kind": kind,
            "incognito": False,
        }
        if title:
            event["title"] = title[:TITLE_MAX]
        if self.plan:
            event["plan"] = self.plan
        return event

    def feedback(self, *, account: str, chat_id: str, at: str, key: str, rating: str) -> Event:
        return {
            "v": 1,
            "id": event_id(self.provider, account, chat_id, "feedback", key),
            "type": "chat.feedback",
            "at": at,
            "provider": self.provider,
            "account": account,
            "chat_id": chat_id,
            "rating": rating,
        }

    def chat(self, where: str, *, account: str, chat_id: str, prompts: Iterable[Prompt],
             title: str | None = None, kind: str = "chat") -> list[Event]:
        """One chat's activities, validated and in time order; counts the chat once."""
        ordered = sorted(prompts)
        out = self.validated(where, (
            self.activity(account=account, chat_id=chat_id, at=format_time(when), key=key,
                          title=title, kind=kind) for when, key in ordered))
        if out:
            self.summary.chats += 1
            self.summary.messages += len(out)
            self.summary.account(account)
        else:
            self.summary.empty_chats += 1
        return out

    def validated(self, where: str, events: Iterable[Event]) -> list[Event]:
        out = []
        for event in events:
            try:
                out.append(validate_event(event))
            except EventError as exc:
                self.summary.skip(where, f"would make an invalid event ({exc})")
        return out


def check_chat_id(value: Any, what: str = "conversation id") -> str:
    if type(value) is not str or not value:
        raise RecordError(f"has no {what}")
    if len(value) > CHAT_ID_MAX:
        raise RecordError(f"its {what} is longer than {CHAT_ID_MAX} characters")
    return value


def title_of(value: Any) -> str | None:
    return value if type(value) is str and value.strip() else None


def iso_time(value: Any) -> datetime:
    """An ISO 8601 / RFC 3339 time from an export, as an aware UTC datetime."""
    if type(value) is not str:
        raise RecordError(f"time {_show(value)} is not a date-time string")
    try:
        return parse_rfc3339(value.strip())
    except TimeFormatError:
        raise RecordError(f"time {_show(value)} is not an RFC 3339 date-time") from None


def iso_at(value: Any) -> str:
    """An export's time as the ledger writes times (UTC, Z)."""
    return format_time(iso_time(value))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_time(value: Any) -> datetime:
    """Epoch seconds (ChatGPT) to a datetime, cut to the microsecond as parse_rfc3339 does.

    ijson hands numbers over as Decimal, so the digits in the file are used exactly.
    """
    if type(value) is bool or value is None:
        raise RecordError(f"time {_show(value)} is not epoch seconds")
    if type(value) is int:
        micros = value * 1_000_000
    else:
        if type(value) is str:
            try:
                value = Decimal(value.strip())
            except InvalidOperation:
                return iso_time(value)
        try:
            d = value if isinstance(value, Decimal) else Decimal(repr(value))
            if not d.is_finite():
                raise InvalidOperation
            micros = int((d * 1_000_000).to_integral_value(rounding="ROUND_FLOOR"))
        except (InvalidOperation, TypeError, ValueError):
            raise RecordError(f"time {_show(value)} is not a usable epoch time") from None
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise RecordError(f"time {_show(value)} is out of range") from None


def epoch_at(value: Any) -> str:
    return format_time(epoch_time(value))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, total: int, *, enabled: bool, label: str = "importing") -> None:
        self.total = max(total, 1)
        self.done = 0
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.monotonic()
        self.last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        if self.enabled:
            now = time.monotonic()
            if now - self.last >= 0.2:
                self.last = now
                self.draw(now)

    def draw(self, now: float) -> None:
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        rate = self.done / 1e6 / max(now - self.start, 1e-6)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac:4.0%} "
                         f"{self.done / 1e6:,.0f}/{self.total / 1e6:,.0f} MB {rate:,.0f} MB/s")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            self.done = self.total
            self.draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()


class CountingReader:
    """A binary stream that reports the bytes read to a Progress."""

    def __init__(self, raw: BinaryIO, progress: Progress) -> None:
        self.raw = raw
        self.progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.progress.advance(len(data))
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self.raw.readline(limit)
        self.progress.advance(len(data))
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> CountingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
