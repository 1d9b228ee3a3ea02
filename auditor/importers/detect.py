"""Which export is this? Decided by what the files hold, never by their names alone.

Each readable file is peeked at (its first records only) and given a role; the roles that
carry chats name the provider. File names only matter inside an export already recognised
(ChatGPT's `user.json` and `message_feedback.json` have no content that tells them apart).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from auditor.importers.common import ImportFormatError
from auditor.importers.source import Entry, Shape, Tree, peek

# Roles that carry chats, and the provider each one means.
PRIMARY = {
    "claude.conversations": "claude",
    "claude.design_chat": "claude",
    "chatgpt.conversations": "chatgpt",
    "chatgpt.manifest": "chatgpt",
    "gemini.activity": "gemini",
    "claude_code.transcript": "claude_code",
}
SIDE = {
    "claude.side": "claude",
    "chatgpt.side": "chatgpt",
}

_GEMINI_WORDS = re.compile(r"gemini|bard", re.IGNORECASE)
_GEMINI_HOSTS = ("gemini.google.com", "bard.google.com")


def is_gemini_row(row: Mapping[str, Any]) -> bool:
    """A My Activity row of Gemini Apps (any language), not of another Google product."""
    texts = [row.get("header")]
    products = row.get("products")
    if isinstance(products, list):
        texts.extend(products)
    if any(isinstance(t, str) and _GEMINI_WORDS.search(t) for t in texts):
        return True
    return any(isinstance(u, str) and any(h in u for h in _GEMINI_HOSTS) for u in urls_of(row))


def urls_of(row: Mapping[str, Any]) -> list[str]:
    out = []
    if isinstance(row.get("titleUrl"), str):
        out.append(row["titleUrl"])
    details = row.get("details")
    if isinstance(details, list):
        out.extend(d["url"] for d in details
                   if isinstance(d, dict) and isinstance(d.get("url"), str))
    return out


def is_activity_row(row: Mapping[str, Any]) -> bool:
    return "time" in row and ("header" in row or "products" in row) and "title" in row


def role_of(shape: Shape) -> str | None:
    """The role of a file in an export, from its shape and first records."""
    if shape.kind == "jsonl":
        if any("sessionId" in s and "type" in s for s in shape.samples):
            return "claude_code.transcript"
        return None
    if shape.kind == "html":
        head = shape.samples[0].get("_html", "") if shape.samples else ""
        if _GEMINI_WORDS.search(head) and ("outer-cell" in head or "mdl-grid" in head
                                           or "My Activity" in head or "gemini.google" in head):
            return "gemini.html"
        return None
    if shape.kind not in ("array", "object", "wrapped"):
        return None
    for s in shape.samples:
        keys = set(s)
        if "mapping" in keys:
            return "chatgpt.conversations"
        if "chat_messages" in keys:
            return "claude.conversations"
        if "logical_files" in keys or "export_files" in keys:
            return "chatgpt.manifest"
        if "messages" in keys and "uuid" in keys:
            return "claude.design_chat"
        if is_activity_row(s):
            rows = [r for r in shape.samples if isinstance(r, dict)]
            return "gemini.activity" if any(map(is_gemini_row, rows)) else "activity.other"
        if "uuid" in keys and "account" in keys and "name" in keys:
            return "claude.conversations"
        if keys & {"prompt_template", "is_starter_project", "conversations_memory",
                   "memory_files", "email_address", "verified_phone_number"}:
            return "claude.side"
        if "account_uuid" in keys or ("uuid" in keys and "content" in keys and "title" in keys):
            return "claude.side"
        if {"uuid", "name", "description"} <= keys or {"uuid", "full_name"} <= keys:
            return "claude.side"
        if "chatgpt_plus_user" in keys or str(s.get("id", "")).startswith("user-"):
            return "chatgpt.side"
        if "conversation_id" in keys and ("rating" in keys or "is_anonymous" in keys):
            return "chatgpt.side"
    return None


def detect(tree: Tree) -> tuple[str, dict[str, list[Entry]]]:
    """Peek at every readable file; return the provider and the files of each role."""
    roles: dict[str, list[Entry]] = {}
    problems: list[str] = []
    for entry in tree.entries:
        shape = peek(tree, entry)
        entry.shape = shape
        role = role_of(shape)
        if role is None:
            if shape.error and tree.single_file:
                problems.append(shape.error)
            continue
        roles.setdefault(role, []).append(entry)
    providers = sorted({PRIMARY[r] for r in roles if r in PRIMARY})
    where = tree.root
    if len(providers) == 1:
        if tree.single_file and set(roles) & set(PRIMARY) == {"chatgpt.manifest"}:
            raise ImportFormatError(
                f"{where}: a ChatGPT export_manifest.json alone; import the folder or zip "
                "that holds it with its conversations-NNN.json shards")
        return providers[0], roles
    if len(providers) > 1:
        names = ", ".join(_provider_name(p) for p in providers)
        raise ImportFormatError(
            f"{where}: holds exports of several kinds ({names}); import them one at a time")
    if "gemini.html" in roles:
        raise ImportFormatError(
            f"{where}: a Google Takeout My Activity export in HTML; request it again from "
            "Takeout with the activity format set to JSON")
    side = sorted({SIDE[r] for r in roles if r in SIDE})
    if side:
        raise ImportFormatError(
            f"{where}: {_provider_name(side[0])} side files only (projects, memories, users or "
            "settings); they hold no chats. Import the whole export, or its conversations file")
    if "activity.other" in roles:
        raise ImportFormatError(
            f"{where}: a Google My Activity file, but not of Gemini Apps; nothing to import")
    if tree.single_file:
        detail = f" ({problems[0]})" if problems else ""
        raise ImportFormatError(
            f"{where}: not a Claude, ChatGPT or Gemini export, nor Claude Code transcripts"
            f"{detail}")
    raise ImportFormatError(
        f"{where}: no Claude, ChatGPT or Gemini export, nor Claude Code transcripts, found here "
        f"({len(tree.entries)} JSON/HTML files looked at)")


def _provider_name(p: str) -> str:
    return {"claude": "Claude", "chatgpt": "ChatGPT", "gemini": "Gemini",
            "claude_code": "Claude Code transcripts"}[p]
