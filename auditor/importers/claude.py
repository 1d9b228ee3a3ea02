"""Claude.ai's "Export data" archive, every generation (EXPORTS.md section 1).

Chats come from every file whose records are conversations (`conversations.json`, Team
shards `conversations-NNNN.json`, in any `-batch-000N` zip or folder) and from
`design_chats/<uuid>.json`. Projects, memories, users and login history produce no events.

Each human message is one `chat.activity` at its own `created_at`; `chat_messages` is not in
time order in real exports, so a chat's events are sorted. The account is the row's
`account.uuid` (hashed); rows without one (old exports, design chats) take the account the
other rows name when they all name the same one, else `default`, so they are held back and
written last.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor.events import Event, account_label
from auditor.importers.common import (
    Emitter,
    ImportSummary,
    Prompt,
    RecordError,
    check_chat_id,
    iso_time,
    title_of,
)
from auditor.importers.source import Entry, Tree, new_chats

_SHARD = re.compile(r"^conversations-(\d+)\.json$", re.IGNORECASE)
_BATCH = re.compile(r"-batch-(\d{4})(?:\.zip)?$", re.IGNORECASE)
NO_ACCOUNT = object()


def describe(roles: dict[str, list[Entry]]) -> str:
    convs = roles.get("claude.conversations", [])
    shards = [e for e in convs if _SHARD.match(e.name)]
    parts = ["Claude export"]
    if shards:
        parts.append(f"Team/organisation shards ({len(shards)} conversations-NNNN.json)")
    batches = sorted({m.group(1) for e in convs for p in e.parts[:-1] if (m := _BATCH.search(p))})
    if batches:
        parts.append(f"batches {', '.join(batches)}")
    if roles.get("claude.design_chat"):
        parts.append(f"{len(roles['claude.design_chat'])} design chats")
    if any(e.shape and e.shape.kind == "wrapped" for e in convs):
        parts.append('wrapped as {"conversations": [...]}')
    return ", ".join(parts)


def missing_parts(roles: dict[str, list[Entry]]) -> list[str]:
    """Gaps in the numbering of shards and batches: a part the export had but is not here."""
    convs = roles.get("claude.conversations", [])
    missing = []
    shard_nums = sorted({int(m.group(1)) for e in convs if (m := _SHARD.match(e.name))})
    width = max((len(m.group(1)) for e in convs if (m := _SHARD.match(e.name))), default=4)
    missing += [f"conversations-{n:0{width}d}.json" for n in _gaps(shard_nums, None)]
    batch_nums = sorted({int(m.group(1)) for e in convs for p in e.parts[:-1]
                         if (m := _BATCH.search(p))})
    missing += [f"batch-{n:04d}" for n in _gaps(batch_nums, 0)]
    return missing


def sibling_batches(path: Path) -> list[str]:
    """Other `-batch-NNNN.zip` archives of the same export beside the one given."""
    m = _BATCH.search(path.name)
    if not path.is_file() or m is None:
        return []
    stem = path.name[:m.start()]
    return sorted(p.name for p in path.parent.glob(f"{glob.escape(stem)}-batch-*.zip")
                  if p != path and _BATCH.search(p.name))


def _gaps(nums: list[int], first: int | None) -> list[int]:
    """Numbers missing below the highest present (from `first`, or the lowest present)."""
    if not nums:
        return []
    present = set(nums)
    start = nums[0] if first is None else min(first, nums[0])
    return [n for n in range(start, nums[-1]) if n not in present]


def read(tree: Tree, roles: dict[str, list[Entry]], summary: ImportSummary, *, salt: bytes,
         account: str | None, plan: str | None) -> Iterator[Event]:
    emit = Emitter("claude", summary, plan)
    override = account_label(salt, "claude", account) if account else None
    seen_ids: set[str] = set()
    held: list[tuple[str, list[Prompt], str | None, str, str]] = []
    chats_seen: set[str] = set()
    if roles.get("claude.side"):
        summary.ignore("projects, memories and users files (no events)",
                       len(roles["claude.side"]))
    for entry in roles.get("claude.conversations", []):
        summary.files.append(entry.path)
        for where, (chat_id, account_id, title, prompts) in new_chats(
                tree, entry, summary, lambda row, _where: _conversation(row, summary),
                name=_name, seen=chats_seen, again="the same conversation again; read once"):
            if isinstance(account_id, str):
                seen_ids.add(account_id)
            if override is None and not isinstance(account_id, str):
                held.append((chat_id, prompts, title, where, "chat"))
                continue
            label = override or account_label(salt, "claude", account_id)  # type: ignore[arg-type]
            yield from _emit(emit, label, chat_id, prompts, title, where)
    for entry in roles.get("claude.design_chat", []):
        summary.files.append(entry.path)
        summary.feature("design chats")
        for where, (chat_id, account_id, title, prompts) in new_chats(
                tree, entry, summary, lambda row, where: _design_chat(row, summary, where),
                name=_name, seen=chats_seen, again="the same design chat again; read once"):
            if override is None and account_id is None:
                held.append((chat_id, prompts, title, where, "chat"))
                continue
            label = override or account_label(salt, "claude", account_id)
            yield from _emit(emit, label, chat_id, prompts, title, where)
    if held:
        if len(seen_ids) == 1:
            only = next(iter(seen_ids))
            label = account_label(salt, "claude", only)
            summary.note(f"{len(held)} chats name no account; given the export's one account")
        else:
            label = account_label(salt, "claude", None)
            summary.note(f"{len(held)} chats name no account and the export does not name a "
                         "single one; they are under 'default' (use --account to set it)")
        for chat_id, prompts, title, where, _kind in held:
            yield from _emit(emit, label, chat_id, prompts, title, where)


def _emit(emit: Emitter, label: str, chat_id: str, prompts: list[Prompt],
          title: str | None, where: str) -> list[Event]:
    return emit.chat(where, account=label, chat_id=chat_id, prompts=prompts, title=title)


def _name(where: str, row: Any) -> str:
    if isinstance(row, dict) and isinstance(row.get("uuid"), str):
        return f"{where} (conversation {row['uuid'][:64]})"
    return where


def _conversation(row: Any, summary: ImportSummary) -> tuple[str, object, str | None,
                                                             list[Prompt]]:
    if not isinstance(row, dict):
        raise RecordError("is not a conversation object")
    chat_id = check_chat_id(row.get("uuid"), "uuid")
    messages = row.get("chat_messages")
    if not isinstance(messages, list):
        raise RecordError("has no chat_messages list")
    acct = row.get("account")
    account_id: object = NO_ACCOUNT
    if isinstance(acct, dict) and isinstance(acct.get("uuid"), str) and acct["uuid"]:
        account_id = acct["uuid"]
    if "summary" in row:
        summary.feature("conversation summaries (late 2025+)")
    prompts: list[Prompt] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            summary.skip(f"conversation {chat_id} message {i}", "is not a message object")
            continue
        if "parent_message_uuid" in msg:
            summary.feature("message branches (parent_message_uuid, 2026)")
        if "content" not in msg and "text" in msg:
            summary.feature("text-only messages (old style)")
        if msg.get("sender") != "human":
            continue
        key = msg.get("uuid") if isinstance(msg.get("uuid"), str) and msg["uuid"] else None
        try:
            when = iso_time(msg.get("created_at"))
        except RecordError as exc:
            summary.skip(f"conversation {chat_id} message {key or i}", str(exc))
            continue
        prompts.append((when, key or f"{msg.get('created_at')}#{i}"))
    return chat_id, account_id, title_of(row.get("name")), prompts


def _design_chat(row: Any, summary: ImportSummary, where: str) -> tuple[
        str, str | None, str | None, list[Prompt]]:
    if not isinstance(row, dict):
        raise RecordError("is not a design chat object")
    chat_id = check_chat_id(row.get("uuid"), "uuid")
    messages = row.get("messages")
    if not isinstance(messages, list):
        raise RecordError("has no messages list")
    prompts: list[Prompt] = []
    account_id = None
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            summary.skip(f"design chat {chat_id} message {i}", "is not a message object")
            continue
        content = msg.get("content") if isinstance(msg.get("content"), dict) else {}
        role = msg.get("role") or content.get("role")
        if role != "user":
            continue
        author = content.get("authorAccountUuid")
        if isinstance(author, str) and author and account_id is None:
            account_id = author
        key = msg.get("uuid") or content.get("id")
        key = key if isinstance(key, str) and key else None
        stamp = msg.get("created_at") or content.get("timestamp")
        try:
            when = iso_time(stamp)
        except RecordError as exc:
            summary.skip(f"design chat {chat_id} message {key or i}", str(exc))
            continue
        prompts.append((when, key or f"{stamp}#{i}"))
    return chat_id, account_id, title_of(row.get("title")), prompts
