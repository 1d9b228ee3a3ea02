"""`consent-ledger demo`: a sample ledger that shows every verdict.

The story: a Claude Pro user turns training on in the September 2025 choice prompt, chats,
deletes one chat, uses an incognito chat, rates a reply, turns training off in November;
an older chat from before the change is never resumed; a second Claude account's setting
was never seen. On ChatGPT the same person has an ordinary chat, a temporary chat and a
chat deleted during the 2025 preservation order; on Gemini one chat with Keep Activity on
and a temporary one.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.ledger import Ledger
from auditor.times import utcnow

_N = 0


def _ev(type_: str, at: str, provider: str = "claude", account: str = "default",
        **fields: Any) -> dict[str, Any]:
    global _N
    _N += 1
    return {"v": 1, "id": f"demo-{_N:04d}", "type": type_, "at": at, "provider": provider,
            "account": account, **fields}


def _chat(at: str, chat_id: str, title: str, provider: str = "claude",
          account: str = "default", *, incognito: bool = False, kind: str = "chat",
          **fields: Any) -> dict[str, Any]:
    return _ev("chat.activity", at, provider, account, chat_id=chat_id, kind=kind,
               incognito=incognito, title=title, **fields)


def demo_events() -> list[dict[str, Any]]:
    global _N
    _N = 0
    work = "5f0e4c1c2b9a4d7e8f6a3b2c1d0e9f8a"   # a second Claude account's label
    return [
        _ev("plan.set", "2025-06-01T08:00:00Z", plan="pro"),
        _chat("2025-06-03T10:00:00Z", "3d6c1c5e-1111-4a1b-9c1d-000000000001",
              "Trip to Lisbon (before the change)"),
        _ev("consent.set", "2025-09-15T18:20:00Z", setting="model_training", value=True,
            source="choice_prompt"),
        _chat("2025-09-16T09:00:00Z", "3d6c1c5e-1111-4a1b-9c1d-000000000002",
              "Refactoring the invoice parser"),
        _chat("2025-09-20T21:05:00Z", "3d6c1c5e-1111-4a1b-9c1d-000000000003",
              "Draft letter to the landlord"),
        _ev("chat.deleted", "2025-10-01T07:30:00Z",
            chat_id="3d6c1c5e-1111-4a1b-9c1d-000000000003"),
        _chat("2025-10-05T22:00:00Z", "3d6c1c5e-1111-4a1b-9c1d-000000000004",
              "Symptoms question", incognito=True),
        _chat("2025-10-12T12:00:00Z", "3d6c1c5e-1111-4a1b-9c1d-000000000005",
              "Sourdough schedule"),
        _ev("chat.feedback", "2025-10-12T12:03:00Z",
            chat_id="3d6c1c5e-1111-4a1b-9c1d-000000000005", rating="up"),
        _ev("consent.set", "2025-11-02T09:00:00Z", setting="model_training", value=False,
            source="settings_page"),
        _chat("2025-11-10T16:45:00Z", "3d6c1c5e-1111-4a1b-9c1d-000000000006",
              "Budget spreadsheet formulas"),
        _chat("2026-01-08T10:00:00Z", "3d6c1c5e-1111-4a1b-9c1d-000000000007",
              "Team retro notes", account=work),
        _chat("2026-02-02T14:00:00Z", "session-7f3a", "claude-code: ledger repo",
              kind="code", plan="api"),
        _ev("chat.seen", "2026-03-01T09:00:00Z",
            chat_id="3d6c1c5e-1111-4a1b-9c1d-000000000008", title="Opened, never written in"),
        _chat("2025-07-01T10:00:00Z", "68a1c2d3-0000-0000-0000-000000000001",
              "Python packaging question", provider="chatgpt"),
        _chat("2025-07-02T10:00:00Z", "68a1c2d3-0000-0000-0000-000000000002",
              "Gift ideas", provider="chatgpt"),
        _ev("chat.deleted", "2025-07-20T10:00:00Z", provider="chatgpt",
            chat_id="68a1c2d3-0000-0000-0000-000000000002"),
        _ev("consent.set", "2025-10-01T10:00:00Z", provider="chatgpt",
            setting="model_training", value=False, source="settings_page"),
        _chat("2025-10-03T10:00:00Z", "temporary-0b7d3c9e", "Temporary chat",
              provider="chatgpt", incognito=True),
        _chat("2025-11-03T10:00:00Z", "68a1c2d3-0000-0000-0000-000000000003",
              "Cover letter", provider="chatgpt"),
        _chat("2025-09-05T19:00:00Z", "c_4f1e2d3c4b5a6978", "Garden planning",
              provider="gemini"),
        _chat("2025-09-06T19:00:00Z", "temporary-9a8b7c6d", "Temporary chat",
              provider="gemini", incognito=True),
    ]


def build_demo(data_dir: Path, config_dir: Path, *, as_of: datetime | None = None) -> str:
    """Write the sample ledger, audit it, and return what to print."""
    from auditor.audit import audit_ledger

    with Ledger.open(data_dir, config_dir) as ledger:
        result = ledger.append(demo_events())
        report = audit_ledger(ledger, as_of=as_of or utcnow())
        ledger_id = ledger.ledger_id
    s = report["summary"]
    lines = [
        f"Sample ledger {ledger_id}",
        f"  data:   {data_dir}",
        f"  keys:   {config_dir}",
        f"  events: {result.stored}, head {result.head}",
        "",
        f"Audit as of {report['as_of']}: {s['chats']} chats; may be trained on "
        f"{s['training_yes']}, were {s['training_was']}, not {s['training_no']}, "
        f"unknown {s['training_unknown']}",
        "",
        f"  {'provider':<8} {'training':<8} {'kept until':<11} title",
    ]
    for chat in report["chats"]:
        until = (chat["expires_at"] or "")[:10] or (
            "legal hold" if (chat["expiry_basis"] or "").startswith("O4") else "you delete")
        lines.append(f"  {chat['provider']:<8} {chat['training']:<8} {until:<11} "
                     f"{chat['title'] or chat['chat_id']}")
    where = f"--data-dir {data_dir} --config-dir {config_dir}"
    lines += [
        "",
        "Try:",
        f"  consent-ledger {where} audit --format html -o report.html",
        f"  consent-ledger {where} verify",
        f"  consent-ledger {where} verify report.html",
    ]
    return "\n".join(lines)
