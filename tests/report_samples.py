"""Realistic audit report dicts (CONTRACT.md section 4) for the report renderers' tests and bench.

The reports are made here rather than by the engine so the renderers can be built and tested
in parallel with it. A small rules sketch (POLICIES.md A2-A10, O1-O6, G1-G4, R4, R9) turns a
seeded random history into verdicts, windows and expiry dates that look like the engine's: all
four verdicts, several providers and accounts, consent switched on and off, deleted, temporary
and incognito chats, expired copies, a legal hold, and titles with markup and non-ASCII text.
Signed for real with a fixed Ed25519 key, in the canonical form of section 4.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.times import add_years, date_of, format_time, parse_rfc3339

AS_OF = "2026-11-28T12:00:00Z"
GENERATED_AT = "2026-11-28T12:00:03.25Z"
SAMPLE_KEY = Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"consent-ledger samples").digest())

# Titles that must come out as text, never markup, in every rendering.
MARKUP_TITLES = (
    "<img src=x onerror=alert(1)>",
    '</script><script>alert("boom")</script>',
    "<!--<script> a comment that never closes",
    'Tom & Jerry\'s "best" <b>episodes</b>',
    "Line one\nline two; with, commas \\ and a backslash",
    "Résumé review — 東京 trip ✈️ \u2028 after a line separator",
)
TITLES = (
    "Trip planning: Lisbon in May", "Refactor the invoice parser", "Birthday poem for Mum",
    "Tax question about freelance income", "Python asyncio deadlock", "Sourdough starter help",
    "Cover letter for the museum job", "Explain mortgage offset accounts", "Garden layout ideas",
    "SQL window functions", "Translate a letter to German", "Marathon training plan",
    "Fix flaky CI test", "Dog food allergies", "Kubernetes ingress 502 errors",
    "Wedding speech draft", "Compare two phone contracts", "Rust borrow checker question",
    "Meal plan for a busy week", "Summarise a research paper on sleep", "Budget spreadsheet",
    "Landlord deposit dispute", "Learn Spanish verbs", "Write unit tests for the parser",
    "A very long title " + "that keeps going " * 12,
)

CLAUDE_CHANGE = datetime(2025, 8, 28, tzinfo=UTC)
LEGAL_HOLD = (datetime(2025, 5, 13, tzinfo=UTC), datetime(2025, 9, 27, tzinfo=UTC))


@dataclass(frozen=True)
class Account:
    provider: str
    account: str
    plan: str
    plan_at: str
    consent: tuple[tuple[str, bool, str], ...]   # (at, value, source)
    weight: float


ACCOUNTS = (
    Account("chatgpt", "c0ffee0123456789abcdef0123456789", "plus", "2024-11-02T08:00:00Z",
            (("2026-02-10T18:22:41Z", False, "settings_page"),), 0.28),
    Account("claude", "3f9c2a1be07d4c55a1e2f0b9d8c7a6e5", "pro", "2025-01-05T10:00:00Z",
            (("2025-09-12T07:41:09Z", True, "choice_prompt"),
             ("2026-03-02T21:05:00Z", False, "settings_page"),
             ("2026-07-20T09:13:27.5Z", True, "settings_page")), 0.42),
    Account("claude", "9a0b1c2d3e4f5061728394a5b6c7d8e9", "free", "2024-10-01T00:00:00Z",
            (), 0.12),
    Account("gemini", "default", "free", "2025-03-01T00:00:00Z",
            (("2025-11-01T12:00:00Z", True, "settings_page"),
             ("2026-05-05T16:30:00Z", False, "settings_page")), 0.18),
)


def _setting_at(account: Account, t: datetime) -> bool | None:
    value = None
    for at, v, _source in account.consent:
        if parse_rfc3339(at) <= t:
            value = v
    return value


def _switch_offs(account: Account) -> list[datetime]:
    return [parse_rfc3339(at) for at, v, _s in account.consent if not v]


def _chat_id(rng: random.Random, provider: str) -> str:
    if provider == "gemini":
        return "c_" + "".join(rng.choice("0123456789abcdef") for _ in range(16))
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _time(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    t = lo + timedelta(seconds=rng.uniform(0, max(1.0, (hi - lo).total_seconds())))
    # Most sources give whole seconds; some give milliseconds (CONTRACT section 4).
    return t.replace(microsecond=(t.microsecond // 1000) * 1000 if rng.random() < 0.2 else 0)


def _chat(rng: random.Random, account: Account, title: str | None, as_of: datetime,
          start: datetime) -> dict[str, Any]:
    p = account.provider
    seen_only = rng.random() < 0.02
    first = _time(rng, start, as_of - timedelta(hours=2))
    last = min(as_of - timedelta(hours=1), first + timedelta(days=rng.expovariate(1 / 12)))
    incognito = rng.random() < 0.06
    deleted = None
    if rng.random() < 0.13:
        deleted = min(as_of - timedelta(minutes=5), last + timedelta(days=rng.uniform(0, 120)))
    kind = "code" if p == "claude" and rng.random() < 0.15 else "chat"
    chat: dict[str, Any] = {
        "provider": p, "account": account.account, "chat_id": _chat_id(rng, p),
        "title": title, "kind": kind, "incognito": incognito,
        "first_activity": format_time(first), "last_activity": format_time(last),
        "deleted_at": format_time(deleted) if deleted else None,
        "training": "no", "training_windows": [], "expires_at": None, "expiry_basis": None,
        "expired": False, "reasons": [], "policies": ["R8"],
    }
    reasons = [f"R8: plan {account.plan} (seen {date_of(parse_rfc3339(account.plan_at))}) "
               "is a consumer plan."]
    if seen_only:
        chat.update(first_activity=None, last_activity=None, kind=None, deleted_at=None,
                    incognito=False, policies=["R7"],
                    reasons=["R7: you only opened this chat; nothing you wrote was recorded."])
        return chat

    activities = [first, last] if last > first else [first]
    offs = [t for t in _switch_offs(account) if p == "claude" and first < t <= as_of]
    windows: list[list[datetime | None]] = []
    unknown = False
    last_eligible: datetime | None = None
    # Walk activities and switch-offs in time order: a switch-off closes an open Claude
    # window (A4); a later eligible activity opens a new one.
    for t in sorted([*activities, *offs]):
        if t in offs:
            if windows and windows[-1][1] is None:
                windows[-1][1] = t
            continue
        setting = _setting_at(account, t)
        if p == "claude" and t < CLAUDE_CHANGE:
            continue
        if p == "claude" and setting is None and not incognito:
            unknown = True
            continue
        ok = (setting is True if p == "claude" else setting is not False) and not incognito
        if ok:
            last_eligible = t
            if not windows or windows[-1][1] is not None:
                windows.append([t, None])
    if deleted and windows and windows[-1][1] is None:
        windows[-1][1] = deleted

    policies = ["R8"]
    expires: datetime | None = None
    basis: str | None = None
    held = False
    if p == "claude":
        policies += ["A2"] if windows else ["A1" if last < CLAUDE_CHANGE else "A3"]
        if windows:
            on = next(parse_rfc3339(at) for at, v, _s in account.consent if v)
            reasons.append(f"A2: you wrote in this chat on {date_of(windows[0][0])} while the "
                           f"training setting was on (turned on {date_of(on)}), so the whole "
                           "chat became eligible.")
        elif last < CLAUDE_CHANGE:
            reasons.append("A1: all its activity was before 2025-08-28, when Claude chats "
                           "were never used for training.")
        if deleted:
            expires, basis = deleted + timedelta(days=30), "A5: deleted + 30 days"
            policies.append("A5")
            reasons.append(f"A5: you deleted it on {date_of(deleted)}; the back-end copy is "
                           "kept 30 days.")
        elif incognito:
            expires, basis = last + timedelta(days=30), "A6: incognito, last activity + 30 days"
            policies.append("A6")
            reasons.append("A6: an incognito chat is never used for training.")
        elif windows and last_eligible:
            expires = add_years(last_eligible, 5)
            basis = "A8: last activity in a window + 5 years"
            policies.append("A8")
        elif unknown:
            expires = add_years(last, 5)
            basis = "A10: setting not recorded; reckoned as if on (A8)"
            policies.append("A10")
            reasons.append("A10: the training setting of this account was never recorded, so "
                           "whether this chat may be used is not known.")
        else:
            basis = "A9: kept in your history until you delete it"
            policies.append("A9")
        if any(w[1] is not None and w[1] != deleted for w in windows):
            policies.append("A4")
            reasons.append(f"A4: the setting was switched off on {date_of(windows[-1][1])}; "
                           "the chat is out of future training runs.")
    elif p == "chatgpt":
        policies.append("O1")
        if windows:
            reasons.append("O1: 'Improve the model for everyone' was on (or never seen, and "
                           f"on by default) when you wrote on {date_of(windows[0][0])}.")
        else:
            reasons.append("O1: 'Improve the model for everyone' was off when you wrote.")
        if incognito:
            expires, basis = last + timedelta(days=30), "O3: temporary chat + 30 days"
            policies.append("O3")
            reasons.append("O3: a temporary chat is never used for training.")
        elif deleted and LEGAL_HOLD[0] <= deleted < LEGAL_HOLD[1]:
            held, basis = True, "O4: legal hold"
            policies.append("O4")
            reasons.append("O4: deleted while the court's preservation order was in force, so "
                           "OpenAI must keep it with no end date.")
        elif deleted:
            expires, basis = deleted + timedelta(days=30), "O4: deleted + 30 days"
            policies.append("O4")
        else:
            basis = "O6: kept until you delete it"
            policies.append("O6")
    else:
        policies.append("G1")
        if windows:
            reasons.append(f"G1: Keep Activity was on when you wrote on {date_of(windows[0][0])}.")
        if incognito:
            expires, basis = last + timedelta(hours=72), "G4: temporary chat + 72 hours"
            policies.append("G4")
        elif windows and last_eligible:
            expires = add_years(last_eligible, 3)
            basis = "G3: last activity with Keep Activity on + 3 years (reviewed copy)"
            policies.append("G3")
            reasons.append("G3: the account copy is auto-deleted on "
                           f"{date_of(add_years(last_eligible, 0) + timedelta(days=548))}; "
                           "a human-reviewed copy may be kept up to 3 years.")
        else:
            expires, basis = last + timedelta(hours=72), "G2: Keep Activity off + 72 hours"
            policies.append("G2")
    if deleted:
        policies.append("R4")

    if expires is not None and expires <= as_of:
        for w in windows:
            if w[1] is None or w[1] > expires:
                w[1] = expires
        policies.append("R9")
        reasons.append(f"R9: the provider's copies had to be gone by {date_of(expires)}.")
    verdict = "no"
    if windows:
        verdict = "yes" if windows[-1][1] is None else "was"
    elif unknown:
        verdict = "unknown"
    chat.update(
        training=verdict,
        training_windows=[{"from": format_time(a), "until": format_time(b) if b else None}
                          for a, b in windows],
        expires_at=None if held or expires is None else format_time(expires),
        expiry_basis=basis, expired=bool(expires and expires <= as_of and not held),
        reasons=reasons, policies=sorted(set(policies)),
    )
    return chat


def _sign(body: dict[str, Any]) -> dict[str, str]:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    raw_key = SAMPLE_KEY.public_key().public_bytes_raw()
    return {"alg": "ed25519", "public_key": base64.b64encode(raw_key).decode(),
            "value": base64.b64encode(SAMPLE_KEY.sign(canonical.encode())).decode()}


def make_report(n_chats: int = 30, *, seed: int = 6, as_of: str = AS_OF,
                generated_at: str = GENERATED_AT, markup: bool = True,
                accounts: tuple[Account, ...] = ACCOUNTS) -> dict[str, Any]:
    """A signed report of `n_chats` chats spread over `accounts`, the same for the same seed."""
    rng = random.Random(seed)
    as_of_dt = parse_rfc3339(as_of)
    start = datetime(2024, 9, 1, tzinfo=UTC)
    chats = []
    weights = [a.weight for a in accounts]
    for i in range(n_chats):
        account = rng.choices(accounts, weights)[0]
        if markup and i < len(MARKUP_TITLES):
            title: str | None = MARKUP_TITLES[i]
        elif rng.random() < 0.05:
            title = None
        else:
            title = rng.choice(TITLES)
        chats.append(_chat(rng, account, title, as_of_dt, start))
    chats.sort(key=lambda c: (c["provider"], c["account"], c["first_activity"] is None,
                              c["first_activity"] or "", c["chat_id"]))
    used = sorted({(c["provider"], c["account"]) for c in chats} |
                  {(a.provider, a.account) for a in accounts})
    by_key = {(a.provider, a.account): a for a in accounts}
    account_rows = [{
        "provider": p, "account": acc,
        "consent": [{"at": at, "value": v, "source": s} for at, v, s in by_key[p, acc].consent],
        "plans": [{"at": by_key[p, acc].plan_at, "plan": by_key[p, acc].plan}],
    } for p, acc in used]
    n_events = len(chats) * 3 + sum(len(a.consent) + 1 for a in accounts)
    head = hashlib.sha256(f"{seed}:{n_chats}:{as_of}".encode()).hexdigest()
    checkpoint_sig = SAMPLE_KEY.sign(f"consent-ledger/checkpoint/v1:{n_events}:{head}".encode())
    summary = {"chats": len(chats)}
    for verdict in ("yes", "was", "no", "unknown"):
        summary[f"training_{verdict}"] = sum(c["training"] == verdict for c in chats)
    body: dict[str, Any] = {
        "schema": "consent-ledger/report/v1", "generated_at": generated_at, "as_of": as_of,
        "ledger": {"events": n_events, "head": head,
                   "checkpoint": {"seq": n_events, "head": head,
                                  "signature": base64.b64encode(checkpoint_sig).decode()}},
        "accounts": account_rows, "chats": chats, "summary": summary,
    }
    body["signature"] = _sign(body)
    return body


def small_report(**kwargs: Any) -> dict[str, Any]:
    """About thirty chats: every account drawn chat by chat."""
    return make_report(30, **kwargs)


def large_report(**kwargs: Any) -> dict[str, Any]:
    """Ten thousand chats: every account dense enough to be drawn as a histogram."""
    return make_report(10_000, **kwargs)


def empty_report(**kwargs: Any) -> dict[str, Any]:
    """A ledger with accounts but no chats yet."""
    return make_report(0, **kwargs)


if __name__ == "__main__":
    import sys
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    json.dump(make_report(n), sys.stdout, ensure_ascii=False, indent=1)
