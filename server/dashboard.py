"""What the dashboard shows: filters, pages of chats, each account's setting over time.

Built from `LiveLedger.snapshot()` (the engine's unsigned rows, cached until an event
arrives), never from the signed report: signing 10,000 rows for every page view would be
slow, and only a download needs a signature. Per snapshot, `ChatIndex` keeps what every
filter and sort needs (parsed times, lower-case titles, counts), so a page view filters
10,000 rows with plain comparisons and formats only the 100 it shows.

Words and colours come from the HTML report (`auditor.html_report`) so the dashboard, the
report and the extension's badge say the same thing the same way.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from auditor.html_report import (
    PLOT_X0,
    PROVIDER_NAMES,
    VERDICTS,
    TimeScale,
    _account_name,
    _consent_band,
    _month_index,
    _month_start,
    _Times,
    active_text,
    badge_title,
    kept_text,
    window_texts,
)
from auditor.live import RowsSnapshot

PAGE_SIZE = 100
EXPIRING_DAYS = (30, 90, 365)
SORTS = {"recent": "Most recently used first", "expiry": "Deleted soonest first",
         "title": "Title, A to Z", "report": "Provider and account, oldest first"}
_FAR = float("inf")


# --- what the person asked for -----------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """The query string, checked: anything unknown falls back to "all" rather than erroring."""

    provider: str = ""
    account: str = ""
    training: str = ""
    expiring: int = 0
    q: str = ""
    sort: str = "recent"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        provider = args.get("provider", "")
        training = args.get("training", "")
        sort = args.get("sort", "recent")
        try:
            expiring = int(args.get("expiring", "0") or 0)
        except ValueError:
            expiring = 0
        try:
            page = max(1, min(int(args.get("page", "1") or 1), 1_000_000))
        except ValueError:
            page = 1
        return cls(provider=provider if provider in PROVIDER_NAMES else "",
                   account=args.get("account", "")[:128],
                   training=training if training in VERDICTS else "",
                   expiring=expiring if expiring in EXPIRING_DAYS else 0,
                   q=" ".join(args.get("q", "").split())[:200],
                   sort=sort if sort in SORTS else "recent", page=page)

    @property
    def active(self) -> bool:
        return bool(self.provider or self.account or self.training or self.expiring or self.q)

    def query(self, **change: Any) -> str:
        """This view's query string with some parameters changed (defaults left out)."""
        values: dict[str, Any] = {"provider": self.provider, "account": self.account,
                                  "training": self.training, "expiring": self.expiring,
                                  "q": self.q, "sort": self.sort, "page": self.page}
        values.update(change)
        kept = {k: v for k, v in values.items()
                if v and not (k == "sort" and v == "recent") and not (k == "page" and v == 1)}
        return "?" + urlencode(kept) if kept else "/"


# --- per snapshot: what filters and sorts need --------------------------------------------------

class ChatIndex:
    """Derived once per snapshot; read-only afterwards, so threads may share it."""

    def __init__(self, snap: RowsSnapshot) -> None:
        self.snap = snap
        rows = snap.rows
        self.expires = [_ts(r["expires_at"]) for r in rows]
        self.last = [_ts(r["last_activity"]) for r in rows]
        self.titles = [(r["title"] or "").casefold() for r in rows]
        self.verdicts = Counter(r["training"] for r in rows)
        self.providers = Counter(r["provider"] for r in rows)
        self.by_account = Counter((r["provider"], r["account"], r["training"]) for r in rows)
        self._orders: dict[str, list[int]] = {}

    def order(self, sort: str) -> list[int]:
        order = self._orders.get(sort)
        if order is None:
            n = range(len(self.snap.rows))
            if sort == "recent":
                last = self.last
                order = sorted(n, key=lambda i: -last[i] if last[i] is not None else _FAR)
            elif sort == "expiry":
                exp = self.expires
                order = sorted(n, key=lambda i: exp[i] if exp[i] is not None else _FAR)
            elif sort == "title":
                titles = self.titles
                order = sorted(n, key=lambda i: (not titles[i], titles[i]))
            else:
                order = list(n)
            self._orders[sort] = order
        return order

    def expiring_count(self, now: float, days: int) -> int:
        limit = now + days * 86400
        return sum(1 for e in self.expires if e is not None and now < e <= limit)


def _ts(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


# --- one page of chats ---------------------------------------------------------------------

@dataclass(frozen=True)
class ChatView:
    """One row of the table, every text ready for the template (which escapes it)."""

    verdict: Any
    badge_title: str
    title: str
    untitled: bool
    provider: str
    account: str
    kind: str
    incognito: bool
    chat_id: str
    active: str
    deleted: str
    windows: list[str]
    kept: str
    kept_note: str
    expired: bool
    soon: bool
    reasons: list[str]


@dataclass(frozen=True)
class Page:
    chats: list[ChatView]
    total: int
    matching: int
    number: int
    pages: int
    first: int
    last: int


def select(index: ChatIndex, filters: Filters, now: float) -> Page:
    rows = index.snap.rows
    order = index.order(filters.sort)
    wanted = []
    if filters.active:
        f_provider, f_account, f_training = filters.provider, filters.account, filters.training
        q = filters.q.casefold()
        limit = now + filters.expiring * 86400 if filters.expiring else None
        expires, titles = index.expires, index.titles
        for i in order:
            row = rows[i]
            if f_provider and row["provider"] != f_provider:
                continue
            if f_account and row["account"] != f_account:
                continue
            if f_training and row["training"] != f_training:
                continue
            if limit is not None:
                e = expires[i]
                if e is None or e <= now or e > limit:
                    continue
            if q and q not in titles[i] and q not in row["chat_id"].casefold():
                continue
            wanted.append(i)
    else:
        wanted = order
    pages = max(1, math.ceil(len(wanted) / PAGE_SIZE))
    number = min(filters.page, pages)
    start = (number - 1) * PAGE_SIZE
    shown = wanted[start:start + PAGE_SIZE]
    times = _Times()
    chats = [_chat_view(rows[i], index.expires[i], now, times) for i in shown]
    return Page(chats=chats, total=len(rows), matching=len(wanted), number=number,
                pages=pages, first=start + 1 if shown else 0, last=start + len(shown))


def _chat_view(row: Mapping[str, Any], expires: float | None, now: float, times: _Times
               ) -> ChatView:
    title = " ".join(str(row["title"] or "").split())
    seconds_left = expires - now if row["expires_at"] and expires is not None else None
    kept, kept_note = kept_text(row, seconds_left, times)
    soon = seconds_left is not None and not row["expired"] and seconds_left <= 30 * 86400
    windows = window_texts(row, times, " to ")
    active = active_text(row, times, " to ")
    return ChatView(
        verdict=VERDICTS.get(row["training"], VERDICTS["unknown"]), badge_title=badge_title(row),
        title=title or "Untitled chat", untitled=not title,
        provider=PROVIDER_NAMES.get(row["provider"], row["provider"]),
        account="" if row["account"] == "default" else f"account {row['account'][:8]}",
        kind="code session" if row["kind"] == "code" else "chat",
        incognito=bool(row["incognito"]), chat_id=row["chat_id"], active=active,
        deleted=times.day(row["deleted_at"]), windows=windows, kept=kept,
        kept_note=kept_note, expired=bool(row["expired"]), soon=soon,
        reasons=list(row["reasons"]))


# --- each account's training setting over time ----------------------------------------------

# The band's geometry, in the HTML report's viewBox units (its x axis); only the past is
# drawn, a little taller than the report's band since it stands alone.
BAND_Y = 6
BAND_H = 24
TICK_Y = BAND_Y + BAND_H + 17
SVG_H = TICK_Y + 5


@dataclass(frozen=True)
class Timeline:
    scale: TimeScale
    ticks: list[dict[str, Any]]
    view_x: float
    view_w: float
    band_y: int = BAND_Y
    band_h: int = BAND_H
    tick_y: int = TICK_Y
    height: int = SVG_H


def timeline(labels: Sequence[Mapping[str, Any]], as_of: datetime) -> Timeline:
    """One time axis shared by every account, from the ledger's first event to today."""
    today = as_of.timestamp()
    firsts = [_ts(a["first_event"]) for a in labels if a.get("first_event")]
    start = min([t for t in firsts if t is not None and t <= today] + [today - 90 * 86400])
    start_month = _month_start(_month_index(datetime.fromtimestamp(start, UTC)))
    scale = TimeScale(start_month.timestamp(), today,
                      (as_of + timedelta(days=366)).timestamp())
    ticks = [t for t in scale.ticks() if t["x"] <= scale.x_today - 30]
    return Timeline(scale=scale, ticks=ticks, view_x=PLOT_X0 - 4,
                    view_w=scale.x_today - PLOT_X0 + 40)


def account_views(accounts: Sequence[Mapping[str, Any]], index: ChatIndex, line: Timeline
                  ) -> list[dict[str, Any]]:
    times = _Times()
    known = {(a["provider"], a["account"]) for a in accounts}
    extra = sorted({(p, a) for p, a, _t in index.by_account} - known)
    out = []
    for account in [*accounts, *({"provider": p, "account": a, "consent": [], "plans": []}
                                 for p, a in extra)]:
        key = (account["provider"], account["account"])
        consent = sorted(account["consent"], key=lambda e: (times.ts(e["at"]), e["value"]))
        plans = account["plans"]
        facts = {v: index.by_account.get((*key, v), 0) for v in VERDICTS}
        out.append({
            "provider": key[0], "account": key[1], "name": _account_name(*key),
            "setting": consent[-1] if consent else None,
            "setting_since": times.day(consent[-1]["at"]) if consent else "",
            "plan": plans[-1]["plan"] if plans else None,
            "changes": [{"on": e["value"], "day": times.day(e["at"]),
                         "source": str(e["source"]).replace("_", " ")} for e in consent],
            "facts": facts, "count": sum(facts.values()),
            "band": _consent_band(account, line.scale, times),
        })
    return out
