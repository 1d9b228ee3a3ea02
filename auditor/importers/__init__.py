"""Importers: a provider's own data export (or Claude Code's transcripts) into events.

    result = read_export(path, salt=salt)        # raises ImportFormatError if not an export
    for event in result.events: ...              # validated chat.activity / chat.feedback
    print(format_summary(result.summary))        # complete once the events are consumed

The export is recognised by what its files hold (zip, unpacked folder or single file), then
streamed record by record with ijson, so a 1 GB export imports in bounded memory. One module
per provider; `detect` decides which one reads the export.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from auditor.events import PLANS, Event, account_label
from auditor.importers import chatgpt, claude, claude_code, gemini
from auditor.importers.common import (
    ImportFormatError,
    ImportOptionError,
    ImportResult,
    ImportSummary,
    Progress,
    Skipped,
)
from auditor.importers.detect import detect
from auditor.importers.source import Tree, open_tree

__all__ = [
    "ImportFormatError",
    "ImportOptionError",
    "ImportResult",
    "ImportSummary",
    "Skipped",
    "format_summary",
    "read_export",
]

_PROVIDER_OF = {"claude": "claude", "chatgpt": "chatgpt", "gemini": "gemini",
                "claude_code": "claude"}


def read_export(path: Path, *, salt: bytes, account: str | None = None,
                plan: str | None = None, progress: bool = False) -> ImportResult:
    """Recognise the export at `path` and return its events, lazily, with a summary.

    `account`: the provider's raw account id or `label:<hex>` (else the export's own);
    `plan`: set on every activity. Raises ImportFormatError when `path` is not an export,
    ImportOptionError when `plan` is not one of the provider's plans.
    """
    tree = open_tree(Path(path))
    try:
        kind, roles = detect(tree)
        provider = _PROVIDER_OF[kind]
        if plan is not None and plan not in PLANS[provider]:
            raise ImportOptionError(
                f"--plan {plan!r} is not a {provider} plan (one of {', '.join(PLANS[provider])})")
        if account is not None and account.startswith("label:"):
            try:
                account_label(salt, provider, account)
            except ValueError as exc:
                raise ImportOptionError(str(exc)) from None
    except BaseException:
        tree.close()
        raise
    summary = ImportSummary(provider=provider, format=_describe(kind, tree, roles),
                            source=str(path))
    if kind == "claude":
        for name in claude.missing_parts(roles):
            summary.missing(name, "numbered parts of the export skip it")
        others = claude.sibling_batches(tree.root)
        if others:
            summary.note(f"other batches of this export lie beside it and were not read: "
                         f"{', '.join(others)} (import the folder to read them all)")
    module = {"claude": claude, "chatgpt": chatgpt, "gemini": gemini,
              "claude_code": claude_code}[kind]
    total = sum(e.size for r, entries in roles.items() for e in entries
                if not r.endswith(".side") and r != "activity.other")
    if kind == "claude_code":
        total *= 2  # read twice: titles first, then the prompts
    bar = Progress(total, enabled=progress)
    tree.progress = bar

    def events() -> Iterator[Event]:
        try:
            yield from module.read(tree, roles, summary, salt=salt, account=account, plan=plan)
            summary.complete = True
        finally:
            bar.finish()
            tree.close()
    return ImportResult(events=events(), summary=summary)


def _describe(kind: str, tree: Tree, roles: dict) -> str:
    if kind == "claude":
        return claude.describe(roles)
    if kind == "chatgpt":
        return chatgpt.describe(tree, roles)
    if kind == "gemini":
        return gemini.describe(roles)
    return claude_code.describe(roles)


def format_summary(summary: ImportSummary) -> str:
    """The summary for a person, one fact a line."""
    out = [
        f"Imported from {summary.source}",
        f"  recognised as: {summary.format}",
        f"  provider: {summary.provider}; account label(s): "
        f"{', '.join(summary.accounts) or '(none)'}",
        f"  chats: {summary.chats}, user messages: {summary.messages}, "
        f"feedback: {summary.feedback}",
    ]
    if summary.empty_chats:
        out.append(f"  chats with no user message (no events): {summary.empty_chats}")
    if summary.features:
        out.append(f"  seen: {'; '.join(summary.features)}")
    for what, n in sorted(summary.ignored.items()):
        out.append(f"  ignored: {what}: {n}")
    if summary.missing_shards:
        out.append(f"  MISSING parts (listed or numbered but not present): "
                   f"{', '.join(summary.missing_shards)}")
    if summary.skipped_count:
        out.append(f"  skipped records: {summary.skipped_count}")
        out.extend(f"    - {s}" for s in summary.skipped)
        if summary.skipped_count > len(summary.skipped):
            out.append(f"    ... and {summary.skipped_count - len(summary.skipped)} more")
    out.extend(f"  note: {n}" for n in summary.notes)
    if not summary.complete:
        out.append("  (incomplete: not all events were read)")
    return "\n".join(out)
