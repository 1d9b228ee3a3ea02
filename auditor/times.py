"""Time handling shared by events, the engine and the reports.

POLICIES.md rule R1: all times are UTC; a date alone means 00:00:00Z of that day; years and
months are calendar arithmetic keeping the time of day, a day missing in the target month
clamps to that month's last day; hours and days are exact.

CONTRACT.md section 4: times are written as RFC 3339 UTC with a `Z`, to the microsecond where
the value has a sub-second part (trailing zeros trimmed), whole seconds otherwise.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

# The shape of CONTRACT section 1's `at`: a date, a time, optional fraction, a zone.
RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
    re.ASCII,
)
PLAIN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
# Years a time may have: the engine adds years and months to them (R1), which must stay
# within what a datetime holds.
FIRST_YEAR, LAST_YEAR = 1970, 8999


class TimeFormatError(ValueError):
    """A time that is not RFC 3339 with a zone, or not a real date."""


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 date-time with a zone into an aware UTC datetime.

    Refuses impossible dates (2025-02-30), a missing zone, and leap seconds. Fractions
    longer than microseconds are cut to microseconds.
    """
    m = RFC3339.match(text) if isinstance(text, str) else None
    if m is None:
        raise TimeFormatError(
            f"{text!r} is not an RFC 3339 date-time with a zone (e.g. 2025-10-02T09:30:00Z)"
        )
    year, month, day, hour, minute, second, frac, zone = m.groups()
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        dt = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise TimeFormatError(f"{text!r} is not a real date-time: {exc}") from None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 23 or zm > 59:
            raise TimeFormatError(f"{text!r} has an impossible zone offset {zone}")
        try:
            dt -= sign * timedelta(hours=zh, minutes=zm)
        except OverflowError:
            raise TimeFormatError(f"{text!r} is out of range") from None
    if not FIRST_YEAR <= dt.year <= LAST_YEAR:
        raise TimeFormatError(f"{text!r} is out of range (years {FIRST_YEAR} to {LAST_YEAR})")
    return dt


def parse_user_time(text: str) -> datetime:
    """A time given on the command line: RFC 3339, or a plain date meaning 00:00Z."""
    if PLAIN_DATE.match(text):
        return parse_rfc3339(text + "T00:00:00Z")
    return parse_rfc3339(text)


def format_time(dt: datetime) -> str:
    """RFC 3339 UTC with `Z`; microseconds with trailing zeros trimmed, or whole seconds."""
    dt = dt.astimezone(UTC)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S") if dt.year >= 1000 else (
        f"{dt.year:04d}" + dt.strftime("-%m-%dT%H:%M:%S"))
    if dt.microsecond:
        return f"{base}.{dt.microsecond:06d}".rstrip("0") + "Z"
    return base + "Z"


def format_optional(dt: datetime | None) -> str | None:
    return None if dt is None else format_time(dt)


def add_months(dt: datetime, months: int) -> datetime:
    """Calendar months, keeping the time of day; a missing day clamps to the month's last."""
    total = dt.year * 12 + (dt.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return dt.replace(year=year, month=month, day=day)


def add_years(dt: datetime, years: int) -> datetime:
    """Calendar years: 2028-02-29T10:00Z + 5 years = 2033-02-28T10:00Z."""
    return add_months(dt, 12 * years)


def add_duration(dt: datetime, *, years: int = 0, months: int = 0, days: int = 0,
                 hours: int = 0) -> datetime:
    """Years and months by the calendar (R1), then days and hours exactly."""
    if years or months:
        dt = add_months(dt, 12 * years + months)
    return dt + timedelta(days=days, hours=hours)


def utcnow() -> datetime:
    return datetime.now(UTC)


def date_of(dt: datetime) -> str:
    """YYYY-MM-DD, as the badge titles write dates."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d")
