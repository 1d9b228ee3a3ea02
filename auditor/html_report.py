"""The audit report as one HTML file a person reads (CONTRACT.md section 4, `--format html`).

Design: the signed JSON report is the only input and is embedded verbatim, in its canonical
form, in `<script type="application/json" id="consent-ledger-report">`, so
`consent-ledger verify report.html` checks the same bytes that were signed
(`extract_embedded_report`). Everything a person sees is derived from it by a pure function:
no clock, no locale, no network, so the same report always renders to the same bytes and a
verifier can re-render the embedded report and compare (`rendering_matches`), which catches a
visible part edited behind a still-valid signature.

The page is self-contained and readable without JavaScript: inline CSS, inline SVG, no
external asset, and a Content-Security-Policy that forbids loading anything. All text goes
through jinja2's autoescape; the embedded JSON escapes `</` and `<!` so no title can end or
re-open the script element (the HTML spec's "script data escaped" states).

The timeline draws each account's training setting as a band and, per chat, its eligibility
windows and expiry date. Past `dense_above` chats in an account, rows stop being readable, so
the account is drawn as per-month counts instead: chats usable for training above the axis,
copies due to be gone below. The axis is piecewise: the past up to `as_of` takes most of the
width, the future (where most expiry dates lie, years ahead) is compressed on the right.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
from markupsafe import Markup

from auditor import __version__
from auditor.times import date_of, parse_rfc3339

REPORT_SCRIPT_ID = "consent-ledger-report"
DENSE_ABOVE = 60
GENERATOR = f"consent-ledger {__version__}"

PROVIDER_NAMES = {"claude": "Claude", "chatgpt": "ChatGPT", "gemini": "Gemini"}


@dataclass(frozen=True)
class Verdict:
    """How one `training` value is shown: CONTRACT section 4's badge, and words for people."""

    key: str
    text: str
    color: str
    label: str        # a short phrase for the table and the summary cards
    meaning: str      # one sentence for the legend


VERDICTS: dict[str, Verdict] = {
    "yes": Verdict("yes", "T", "#B45309", "May be used for training",
                   "The provider's rules let it use this chat to train its models now."),
    "was": Verdict("was", "W", "#7C3AED", "Was usable for training",
                   "It could be used for a while; it stays in training runs started back then, "
                   "but is out of future ones."),
    "no": Verdict("no", "-", "#15803D", "Not used for training",
                  "Under the provider's rules this chat was never eligible for training."),
    "unknown": Verdict("unknown", "?", "#6B7280", "Not known",
                       "Your training setting was not recorded when you used this chat. Open "
                       "the provider's privacy settings once so the ledger sees it."),
}

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# SVG geometry, in viewBox units (the picture scales to the page width).
SVG_W = 1000
PLOT_X0 = 200
PLOT_X1 = 984
FUTURE_SHARE = 0.26
FUTURE_GAP = 8
ROW_H = 17
BAND_H = 18
HIST_UP = 92
HIST_DOWN = 56

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMBED = re.compile(
    r"<script\b[^>]*\bid\s*=\s*[\"']?" + REPORT_SCRIPT_ID + r"[\"']?[^>]*>(.*?)</script\s*>",
    re.S | re.I,
)


class EmbeddedReportError(ValueError):
    """An HTML file with no readable embedded Consent Ledger report."""


# ---------------------------------------------------------------------------------------------
# Embedding and extracting the signed JSON


def embedded_json(report: Mapping[str, Any]) -> str:
    """The report's canonical JSON (CONTRACT section 4), made safe inside a script element.

    `<\\/` and `<\\u0021` are JSON escapes of `</` and `<!`, so `json.loads` gives back the
    same strings; lone surrogates, which UTF-8 cannot carry, are written as `\\uXXXX` too.
    """
    text = json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("</", "<\\/").replace("<!", "<\\u0021")
    if not _is_utf8_safe(text):
        text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def _is_utf8_safe(text: str) -> bool:
    """False when `text` holds a lone surrogate (JSON `\\ud800`): UTF-8 cannot carry one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def extract_embedded_report(html: str) -> dict[str, Any]:
    """The report dict embedded by `render_html`, exactly as it was given.

    Only the first script element with the report's id counts: it comes before anything drawn
    from the report's own text could (all of which is escaped, so cannot form a tag anyway).
    """
    match = _EMBED.search(html)
    if match is None:
        raise EmbeddedReportError(
            f'no <script id="{REPORT_SCRIPT_ID}"> in this file: is it a Consent Ledger report?'
        )
    try:
        report = json.loads(match.group(1))
    except json.JSONDecodeError as exc:
        raise EmbeddedReportError(f"the embedded report is not valid JSON: {exc}") from None
    if not isinstance(report, dict):
        raise EmbeddedReportError("the embedded report is not a JSON object")
    return report


def rendering_matches(html: str) -> bool:
    """True when the visible page is exactly what this version renders from its embedded report.

    A signature covers only the embedded JSON; this tells whether the rest was left alone.
    A page made by another version of Consent Ledger compares unequal even if untouched.
    """
    return render_html(extract_embedded_report(html)) == html


# ---------------------------------------------------------------------------------------------
# Dates, for people


class _Times:
    """Parses each RFC 3339 string once: a 10,000-chat report repeats many of them."""

    def __init__(self) -> None:
        self._cache: dict[str, datetime] = {}
        self._days: dict[str, str] = {}

    def dt(self, text: str) -> datetime:
        value = self._cache.get(text)
        if value is None:
            value = self._cache[text] = parse_rfc3339(text)
        return value

    def ts(self, text: str) -> float:
        return self.dt(text).timestamp()

    def day(self, text: str | None) -> str:
        """`2 Oct 2025`: no locale, and no month/day order to misread."""
        if text is None:
            return ""
        day = self._days.get(text)
        if day is None:
            d = self.dt(text)
            day = self._days[text] = f"{d.day} {MONTHS[d.month - 1]} {d.year}"
        return day

    def day_time(self, text: str) -> str:
        d = self.dt(text)
        return f"{d.day} {MONTHS[d.month - 1]} {d.year}, {d:%H:%M} UTC"


def _relative(seconds: float) -> str:
    """`in 3 days`, `2 months ago`: rough on purpose, the exact date stands beside it."""
    future = seconds >= 0
    days = abs(seconds) / 86400
    if days < 1:
        return "within a day" if future else "less than a day ago"
    if days < 61:
        n, unit = round(days), "day"
    elif days < 730:
        n, unit = round(days / 30.44), "month"
    else:
        n, unit = round(days / 365.25), "year"
    amount = f"{n} {unit}{'' if n == 1 else 's'}"
    return f"in {amount}" if future else f"{amount} ago"


def _month_index(d: datetime) -> int:
    return d.year * 12 + d.month - 1


def _month_start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _chat_name(chat: Mapping[str, Any]) -> str:
    title = chat.get("title")
    if title is None or not str(title).strip():
        return ""
    return " ".join(str(title).split())


_NARROW = frozenset(" .,:;'!|()[]-ijlrtfI1")


def _char_width(ch: str) -> float:
    if ch in _NARROW:
        return 0.55
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 1.9
    if ch.isupper() or ch in "mwMW@%&":
        return 1.2
    return 1.0


def _short(text: str, limit: float) -> str:
    """Cut `text` to about `limit` average characters of width, with an ellipsis."""
    used = 0.0
    for i, ch in enumerate(text):
        used += _char_width(ch)
        if used > limit:
            return text[:i].rstrip() + "…"
    return text


def _account_name(provider: str, account: str) -> str:
    name = PROVIDER_NAMES.get(provider, provider)
    if account == "default":
        return f"{name}, default account"
    return f"{name}, account {account[:8]}"


def badge_title(chat: Mapping[str, Any]) -> str:
    """The badge's title of CONTRACT section 4, dates as YYYY-MM-DD."""
    kept = chat["expires_at"][:10] if chat.get("expires_at") else "you delete it"
    windows = chat.get("training_windows") or []
    verdict = chat.get("training")
    if verdict == "yes" and windows:
        return f"May be used for training since {windows[0]['from'][:10]}; kept until {kept}"
    if verdict == "was" and windows:
        until = windows[-1]["until"] or ""
        return (f"Was usable for training from {windows[0]['from'][:10]} to {until[:10]}; "
                f"kept until {kept}")
    if verdict == "no":
        return f"Not used for training; kept until {kept}"
    return "Training setting not recorded; open the provider's privacy settings once"


# ---------------------------------------------------------------------------------------------
# The time axis


@dataclass(frozen=True)
class TimeScale:
    """Epoch seconds to x: [start, today] linearly on the left, (today, end] on the right."""

    start: float
    today: float
    end: float
    x_today: float = field(init=False)
    x_future: float = field(init=False)

    def __post_init__(self) -> None:
        past_w = (PLOT_X1 - PLOT_X0) * (1 - FUTURE_SHARE)
        object.__setattr__(self, "x_today", PLOT_X0 + past_w)
        object.__setattr__(self, "x_future", PLOT_X0 + past_w + FUTURE_GAP)

    def x(self, t: float) -> float:
        if t <= self.today:
            span = max(1.0, self.today - self.start)
            return round(PLOT_X0 + (self.x_today - PLOT_X0) * max(0.0, t - self.start) / span, 1)
        span = max(1.0, self.end - self.today)
        frac = min(1.0, (t - self.today) / span)
        return round(self.x_future + (PLOT_X1 - self.x_future) * frac, 1)

    def ticks(self) -> list[dict[str, Any]]:
        """Month ticks in the past (every 1, 2, 3, 6 or 12 months), year ticks in the future."""
        out: list[dict[str, Any]] = []
        first = _month_index(datetime.fromtimestamp(self.start, UTC))
        last = _month_index(datetime.fromtimestamp(self.today, UTC))
        months = last - first + 1
        step = next((s for s in (1, 2, 3, 6, 12, 24) if months / s <= 9), 60)
        labelled_year = False
        for m in range(first + 1, last + 1):
            if m % step:
                continue
            t = _month_start(m)
            if step >= 12:
                label = str(t.year)
            elif t.month == 1 or not labelled_year:
                label, labelled_year = f"{MONTHS[t.month - 1]} {t.year}", True
            else:
                label = MONTHS[t.month - 1]
            x = self.x(t.timestamp())
            if self.x_today - x > 34:   # leave room for the "today" label
                out.append({"x": x, "label": label, "major": t.month == 1})
        y0 = datetime.fromtimestamp(self.today, UTC).year + 1
        y1 = datetime.fromtimestamp(self.end, UTC).year
        ystep = next((s for s in (1, 2, 5, 10, 20, 50) if (y1 - y0 + 1) / s <= 5), 100)
        for y in range(y0, y1 + 1):
            if (y - y0) % ystep == 0:
                x = self.x(datetime(y, 1, 1, tzinfo=UTC).timestamp())
                if x - self.x_today > 34:
                    out.append({"x": x, "label": str(y), "major": True})
        return out


def _scale(report: Mapping[str, Any], times: _Times) -> TimeScale:
    today = times.ts(report["as_of"])
    earliest: list[str] = []
    latest = today
    for account in report.get("accounts", ()):
        earliest += [e["at"] for e in account.get("consent", ())]
    for chat in report.get("chats", ()):
        if chat.get("first_activity"):
            earliest.append(chat["first_activity"])
        if chat.get("training_windows"):
            earliest.append(chat["training_windows"][0]["from"])
        if chat.get("expires_at"):
            latest = max(latest, times.ts(chat["expires_at"]))
    start = min((times.ts(t) for t in earliest), default=today - 365 * 86400)
    start = min(start, today - 90 * 86400)
    start_month = _month_start(_month_index(datetime.fromtimestamp(start, UTC)))
    end_year = max(datetime.fromtimestamp(latest, UTC).year,
                   datetime.fromtimestamp(today, UTC).year + 1) + 1
    return TimeScale(start_month.timestamp(), today,
                     datetime(end_year, 1, 1, tzinfo=UTC).timestamp())


# ---------------------------------------------------------------------------------------------
# What the template draws


def _consent_band(account: Mapping[str, Any], scale: TimeScale, times: _Times
                  ) -> list[dict[str, Any]]:
    """The account's training setting over time, as segments from the scale's start to today."""
    events = sorted(
        ((times.ts(e["at"]), bool(e["value"]), e["at"]) for e in account.get("consent", ())
         if times.ts(e["at"]) <= scale.today),
        key=lambda e: (e[0], e[1]),   # R2: at one instant, `true` wins
    )
    marks: list[tuple[float, bool | None, str | None]] = [(scale.start, None, None)]
    for ts, value, at in events:
        if marks[-1][1] is value:
            continue
        if ts <= marks[-1][0]:
            marks[-1] = (marks[-1][0], value, at)
        else:
            marks.append((ts, value, at))
    segments = []
    for i, (ts, value, at) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else scale.today
        x0, x1 = scale.x(ts), scale.x(end)
        state = {True: "on", False: "off", None: "none"}[value]
        label = {"on": "Training on", "off": "Training off", "none": "Not recorded"}[state]
        since = f" since {times.day(at)}" if at else ""
        segments.append({
            "x": x0, "w": max(0.0, round(x1 - x0, 1)), "state": state, "label": label,
            "tip": f"{label}{since}",
            "text": label if x1 - x0 > 74 else ("on" if state == "on" else "off"
                                                if state == "off" else ""),
            "text_fits": x1 - x0 > 22,
        })
    return segments


def _chat_rows(chats: list[Mapping[str, Any]], scale: TimeScale, times: _Times
               ) -> list[dict[str, Any]]:
    rows = []
    for chat in chats:
        verdict = VERDICTS.get(chat["training"], VERDICTS["unknown"])
        name = _chat_name(chat)
        row: dict[str, Any] = {
            "label": _short(name, 24) if name else "Untitled chat",
            "untitled": not name,
            "tip": f"{name or 'Untitled chat'}: {verdict.label.lower()}",
            "windows": [], "active": None, "deleted": None,
            "expiry": None,
        }
        first, last = chat.get("first_activity"), chat.get("last_activity")
        if first and last:
            x0 = scale.x(times.ts(first))
            row["active"] = (x0, max(scale.x(times.ts(last)), x0 + 3))   # a day stays visible
        for w in chat.get("training_windows") or ():
            x0 = scale.x(times.ts(w["from"]))
            x1 = scale.x(times.ts(w["until"])) if w["until"] else scale.x(scale.today)
            color = VERDICTS["yes" if w["until"] is None else "was"].color
            row["windows"].append({"x": x0, "w": max(2.0, round(x1 - x0, 1)), "color": color})
        if chat.get("deleted_at"):
            row["deleted"] = scale.x(times.ts(chat["deleted_at"]))
        if chat.get("expires_at"):
            row["expiry"] = {"x": scale.x(times.ts(chat["expires_at"])),
                             "past": bool(chat.get("expired")),
                             "tip": f"Copies must be gone by {times.day(chat['expires_at'])}"}
        rows.append(row)
    return rows


def _month_span(m: int, scale: TimeScale) -> tuple[float, float]:
    """A month's x range; the month of `as_of` stops at the today line, not across the gap."""
    x0 = scale.x(_month_start(m).timestamp())
    x1 = scale.x(_month_start(m + 1).timestamp())
    if x0 < scale.x_today < x1:
        x1 = scale.x_today
    return x0, x1


def _histogram(chats: list[Mapping[str, Any]], scale: TimeScale, times: _Times
               ) -> dict[str, Any]:
    """Per month: chats with an eligibility window in it (open or closed), and expiry dates."""
    usable: dict[str, Counter[int]] = {"yes": Counter(), "was": Counter()}
    expiring: Counter[int] = Counter()
    today_m = _month_index(datetime.fromtimestamp(scale.today, UTC))
    for chat in chats:
        for w in chat.get("training_windows") or ():
            m0 = _month_index(times.dt(w["from"]))
            m1 = _month_index(times.dt(w["until"])) if w["until"] else today_m
            usable["yes" if w["until"] is None else "was"].update(range(m0, m1 + 1))
        if chat.get("expires_at"):
            expiring[_month_index(times.dt(chat["expires_at"]))] += 1
    top_up = max((usable["yes"][m] + usable["was"][m] for m in usable["yes"] | usable["was"]),
                 default=0)
    top_down = max(expiring.values(), default=0)
    bars_up, bars_down = [], []
    for m in sorted(set(usable["yes"]) | set(usable["was"])):
        x0, x1 = _month_span(m, scale)
        y, w = usable["yes"][m], usable["was"][m]
        label = f"{MONTHS[m % 12]} {m // 12}"
        h_y = HIST_UP * y / top_up
        h_w = HIST_UP * w / top_up
        bars_up.append({"x": x0 + 0.4, "w": max(0.8, round(x1 - x0 - 0.8, 1)),
                        "h_yes": round(h_y, 1), "h_was": round(h_w, 1),
                        "tip": f"{label}: {y:,} chats still usable for training, "
                               f"{w:,} usable then but no longer"})
    today_month = today_m
    for m in sorted(expiring):
        x0, x1 = _month_span(m, scale)
        n = expiring[m]
        label = f"{MONTHS[m % 12]} {m // 12}"
        bars_down.append({"x": x0 + 0.3, "w": max(0.8, round(x1 - x0 - 0.6, 1)),
                          "h": round(max(1.0, HIST_DOWN * n / top_down), 1),
                          "past": m < today_month,
                          "tip": f"{label}: {n:,} chats whose copies "
                                 f"{'had' if m < today_month else 'must'} be gone"})
    busiest = max(((usable["yes"][m] + usable["was"][m], m)
                   for m in set(usable["yes"]) | set(usable["was"])), default=None)
    return {"up": bars_up, "down": bars_down, "top_up": top_up, "top_down": top_down,
            "busiest": (f"{MONTHS[busiest[1] % 12]} {busiest[1] // 12}", busiest[0])
            if busiest else None}


def _facts(chats: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(c["training"] for c in chats)
    return {k: counts.get(k, 0) for k in VERDICTS}


def _current(entries: list[Mapping[str, Any]], key: str, as_of: float, times: _Times
             ) -> Mapping[str, Any] | None:
    seen = [e for e in entries if times.ts(e["at"]) <= as_of]
    if not seen:
        return None
    return max(seen, key=lambda e: (times.ts(e["at"]), e[key] is True))


def _accounts(report: Mapping[str, Any], scale: TimeScale, times: _Times, dense_above: int
              ) -> list[dict[str, Any]]:
    by_key: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for chat in report.get("chats", ()):
        by_key.setdefault((chat["provider"], chat["account"]), []).append(chat)
    keys = [(a["provider"], a["account"]) for a in report.get("accounts", ())]
    known = {k: a for k, a in zip(keys, report.get("accounts", ()), strict=True)}
    keys += sorted(k for k in by_key if k not in known)
    out = []
    for i, key in enumerate(keys):
        account = known.get(key, {"provider": key[0], "account": key[1],
                                  "consent": [], "plans": []})
        chats = by_key.get(key, [])
        setting = _current(list(account.get("consent", ())), "value", scale.today, times)
        plan = _current(list(account.get("plans", ())), "plan", scale.today, times)
        dense = len(chats) > dense_above
        view: dict[str, Any] = {
            "anchor": f"account-{i + 1}", "name": _account_name(*key), "label": key[1],
            "provider": PROVIDER_NAMES.get(key[0], key[0]),
            "setting": None if setting is None else {
                "on": bool(setting["value"]), "since": times.day(setting["at"]),
                "source": str(setting.get("source", "")).replace("_", " ")},
            "plan": None if plan is None else {"name": str(plan["plan"]),
                                                "since": times.day(plan["at"])},
            "chats": chats, "count": len(chats), "facts": _facts(chats), "dense": dense,
            "band": _consent_band(account, scale, times),
        }
        if dense:
            view["hist"] = _histogram(chats, scale, times)
            top = 34 + BAND_H + 14
            view["svg"] = {"band_y": 30, "base": top + HIST_UP, "top": top,
                           "height": top + HIST_UP + HIST_DOWN + 34}
        else:
            view["rows"] = _chat_rows(chats, scale, times)
            rows_y = 30 + BAND_H + 12
            axis = rows_y + ROW_H * len(chats) + 4
            view["svg"] = {"band_y": 30, "rows_y": rows_y, "axis": axis, "height": axis + 24}
        out.append(view)
    return out


def _upcoming(report: Mapping[str, Any], today: float, times: _Times, limit: int
              ) -> list[dict[str, Any]]:
    soon = sorted(
        ((times.ts(c["expires_at"]), i, c) for i, c in enumerate(report.get("chats", ()))
         if c.get("expires_at") and times.ts(c["expires_at"]) > today),
        key=lambda e: (e[0], e[1]),
    )[:limit]
    return [{
        "date": times.day(c["expires_at"]), "when": _relative(ts - today),
        "name": _chat_name(c), "provider": PROVIDER_NAMES.get(c["provider"], c["provider"]),
        "verdict": VERDICTS.get(c["training"], VERDICTS["unknown"]),
    } for ts, _i, c in soon]


@dataclass(frozen=True, slots=True)
class TableRow:
    """One chat in the table, every text ready; slots make jinja's lookups cheap at 10,000."""

    verdict: Verdict
    badge_title: str
    name: str
    provider: str
    kind: str
    incognito: bool
    chat_id: str
    active: str
    deleted: str
    windows: list[str]
    kept: str
    kept_note: str
    expired: bool
    basis: str
    reasons: list[str]


def kept_text(chat: Mapping[str, Any], seconds_left: float | None, times: _Times
              ) -> tuple[str, str]:
    """Until when the provider keeps the chat, and a note: shared by this report's table
    and the dashboard's."""
    expires = chat.get("expires_at")
    if expires and seconds_left is not None:
        when = _relative(seconds_left)
        return times.day(expires), (f"already gone ({when})" if chat.get("expired") else when)
    if (chat.get("expiry_basis") or "").startswith("O4"):
        return "No end date", "a court order makes the provider keep it"
    return "Until you delete it", ""


def window_texts(chat: Mapping[str, Any], times: _Times, joiner: str) -> list[str]:
    return [f"{times.day(w['from'])}{joiner}{times.day(w['until']) if w['until'] else 'now'}"
            for w in chat.get("training_windows") or ()]


def active_text(chat: Mapping[str, Any], times: _Times, joiner: str) -> str:
    first, last = chat.get("first_activity"), chat.get("last_activity")
    if not (first and last):
        return "Only opened, never written in"
    start, end = times.day(first), times.day(last)
    return start if start == end else f"{start}{joiner}{end}"


def _table_rows(chats: list[Mapping[str, Any]], today: float, times: _Times
                ) -> list[TableRow]:
    rows = []
    for chat in chats:
        expires = chat.get("expires_at")
        basis = chat.get("expiry_basis") or ""
        kept, kept_note = kept_text(chat, times.ts(expires) - today if expires else None,
                                    times)
        windows = window_texts(chat, times, " → ")
        active = active_text(chat, times, " – ")
        rows.append(TableRow(
            verdict=VERDICTS.get(chat["training"], VERDICTS["unknown"]),
            badge_title=badge_title(chat), name=_chat_name(chat),
            provider=PROVIDER_NAMES.get(chat["provider"], chat["provider"]),
            kind="code session" if chat.get("kind") == "code" else "chat",
            incognito=bool(chat.get("incognito")), chat_id=str(chat.get("chat_id", "")),
            active=active, deleted=times.day(chat.get("deleted_at")), windows=windows,
            kept=kept, kept_note=kept_note, expired=bool(chat.get("expired")),
            basis=basis, reasons=list(chat.get("reasons") or ()),
        ))
    return rows


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("auditor", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )
    env.filters["thousands"] = lambda n: f"{n:,}"
    return env


_ENV: jinja2.Environment | None = None


def _template() -> jinja2.Template:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV.get_template("report.html.j2")


def render_html(report: Mapping[str, Any], *, dense_above: int = DENSE_ABOVE,
                upcoming: int = 8) -> str:
    """The report as one self-contained HTML page; the same report gives the same bytes."""
    times = _Times()
    scale = _scale(report, times)
    today = scale.today
    chats = list(report.get("chats", ()))
    accounts = _accounts(report, scale, times, dense_above)
    for account in accounts:
        account["table"] = _table_rows(account["chats"], today, times)
    summary = report.get("summary") or {}
    counts = {k: summary.get(f"training_{k}", 0) for k in VERDICTS}
    ledger = report.get("ledger") or {}
    page = _template().render(
        report=report, verdicts=VERDICTS, counts=counts, total=summary.get("chats", len(chats)),
        accounts=accounts, scale=scale, ticks=scale.ticks(),
        as_of=times.day_time(report["as_of"]), generated=times.day_time(report["generated_at"]),
        upcoming=_upcoming(report, today, times, upcoming),
        expired=sum(1 for c in chats if c.get("expired")),
        no_end=sum(1 for c in chats if not c.get("expires_at")),
        held=sum(1 for c in chats if not c.get("expires_at")
                 and (c.get("expiry_basis") or "").startswith("O4")),
        ledger=ledger, checkpoint=ledger.get("checkpoint") or {},
        signature=report.get("signature") or {},
        embedded=Markup(embedded_json(report)), script_id=REPORT_SCRIPT_ID,
        generator=GENERATOR, dense_above=dense_above, svg_w=SVG_W,
        any_dense=any(a["dense"] for a in accounts),
        plot_x0=PLOT_X0, plot_x1=PLOT_X1, row_h=ROW_H, band_h=BAND_H,
        hist_up=HIST_UP, hist_down=HIST_DOWN,
        today_date=date_of(times.dt(report["as_of"])),
    )
    if not _is_utf8_safe(page):
        page = _SURROGATE.sub("\ufffd", page)
    if _CONTROL.search(page):   # a parse error in HTML; the JSON part has them escaped
        page = _CONTROL.sub("\ufffd", page)
    return page
