"""ChatGPT's "Export data" archive (EXPORTS.md section 2): the single `conversations.json`
(2023-2025) and the sharded layout with `export_manifest.json` (2026).

Every user message anywhere in a conversation's `mapping` tree is activity, on every branch:
an edited prompt or a regenerated answer leaves the old branch in the export, and the user
did send it. Hidden nodes are not the user writing: custom instructions
(`user_editable_context`, `is_user_system_message`), `is_visually_hidden_from_conversation`,
`weight: 0`, and system, assistant and tool nodes. `message_feedback.json` gives
`chat.feedback`; the account id is `user.json`'s `id`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ijson

from auditor.events import Event, account_label
from auditor.importers.common import (
    Emitter,
    ImportSummary,
    Prompt,
    RecordError,
    check_chat_id,
    epoch_at,
    epoch_time,
    title_of,
)
from auditor.importers.source import Entry, Tree, new_chats, records, safe_records

HIDDEN_CONTENT = {"user_editable_context", "model_editable_context"}
RATINGS = {"thumbsup": "up", "up": "up", "positive": "up", "good": "up", "like": "up",
           "thumbsdown": "down", "down": "down", "negative": "down", "bad": "down",
           "dislike": "down"}


def _by_name(tree: Tree, name: str) -> list[Entry]:
    return [e for e in tree.entries if e.name == name]


def plan_files(tree: Tree, roles: dict[str, list[Entry]],
               summary: ImportSummary) -> list[Entry]:
    """The conversation files in reading order: the manifest's shards first, in its order."""
    convs = list(roles.get("chatgpt.conversations", []))
    manifests = roles.get("chatgpt.manifest", [])
    if not manifests:
        return convs
    ordered: list[Entry] = []
    for manifest in manifests:
        base = manifest.path.rsplit("/", 1)[0] + "/" if "/" in manifest.path else ""
        try:
            body = next(records(tree, manifest))[1]
        except (ijson.JSONError, ValueError, StopIteration) as exc:
            summary.skip(manifest.path, f"manifest not readable ({exc})")
            continue
        logical = body.get("logical_files") if isinstance(body, dict) else None
        listed = (logical or {}).get("conversations.json", {})
        names = listed.get("files") if isinstance(listed, dict) else None
        if not isinstance(names, list):
            summary.skip(manifest.path, "manifest lists no conversations.json files")
            continue
        summary.feature(f"export_manifest.json listing {len(names)} conversation shards")
        by_path = {e.path: e for e in tree.entries}
        for name in names:
            if not isinstance(name, str):
                continue
            entry = by_path.get(base + name)
            if entry is None:
                summary.missing(name, f"listed in {manifest.path}, not in the export")
            elif entry not in ordered:
                ordered.append(entry)
    extra = [e for e in convs if e not in ordered]
    if extra and ordered:
        summary.note(f"{len(extra)} conversation files not in the manifest were read too")
    return ordered + extra


def describe(tree: Tree, roles: dict[str, list[Entry]]) -> str:
    convs = roles.get("chatgpt.conversations", [])
    if roles.get("chatgpt.manifest"):
        return f"ChatGPT export, sharded (export_manifest.json, {len(convs)} shards present)"
    if len(convs) == 1 and convs[0].shape and convs[0].shape.kind == "object":
        return "ChatGPT conversation (one conversation object)"
    if len(convs) > 1:
        return f"ChatGPT export, {len(convs)} conversation files"
    return "ChatGPT export (single conversations.json)"


def read(tree: Tree, roles: dict[str, list[Entry]], summary: ImportSummary, *, salt: bytes,
         account: str | None, plan: str | None) -> Iterator[Event]:
    emit = Emitter("chatgpt", summary, plan)
    account_id = account or _user_id(tree, summary)
    label = account_label(salt, "chatgpt", account_id)
    if not account_id:
        summary.note("no user.json read: chats are under the account 'default' (import the "
                     "whole export, or give --account, to match the extension's account)")
    seen: set[str] = set()
    for entry in plan_files(tree, roles, summary):
        summary.files.append(entry.path)
        for where, (chat_id, title, prompts) in new_chats(
                tree, entry, summary, lambda conv, _where: _conversation(conv, summary),
                name=_name, seen=seen, again="the same conversation again; read once"):
            yield from emit.chat(where, account=label, chat_id=chat_id, prompts=prompts,
                                 title=title)
    for entry in _by_name(tree, "message_feedback.json"):
        summary.files.append(entry.path)
        yield from _feedback(tree, entry, emit, label, summary)


def _name(where: str, conv: Any) -> str:
    if isinstance(conv, dict):
        cid = conv.get("id") or conv.get("conversation_id")
        if isinstance(cid, str):
            return f"{where} (conversation {cid[:64]})"
    return where


def _user_id(tree: Tree, summary: ImportSummary) -> str | None:
    for entry in _by_name(tree, "user.json"):
        try:
            body = next(records(tree, entry))[1]
        except (ijson.JSONError, ValueError, StopIteration):
            summary.skip(entry.path, "user.json is not readable; account unknown")
            continue
        if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
            return body["id"]
    return None


def _conversation(conv: Any, summary: ImportSummary) -> tuple[str, str | None, list[Prompt]]:
    if not isinstance(conv, dict):
        raise RecordError("is not a conversation object")
    chat_id = check_chat_id(conv.get("id") or conv.get("conversation_id"), "id")
    mapping = conv.get("mapping")
    if not isinstance(mapping, dict):
        raise RecordError("has no mapping")
    prompts: list[Prompt] = []
    for node_id, node in mapping.items():
        if not isinstance(node, dict):
            summary.skip(f"conversation {chat_id} node {node_id}", "is not a node object")
            continue
        msg = node.get("message")
        if not isinstance(msg, dict) or not _is_user_prompt(msg):
            continue
        key = msg.get("id") if isinstance(msg.get("id"), str) and msg["id"] else str(node_id)
        if msg.get("create_time") is None:
            summary.skip(f"conversation {chat_id} message {key}", "a user message with no time")
            continue
        try:
            when = epoch_time(msg.get("create_time"))
        except RecordError as exc:
            summary.skip(f"conversation {chat_id} message {key}", str(exc))
            continue
        prompts.append((when, key))
    return chat_id, title_of(conv.get("title")), prompts


def _is_user_prompt(msg: dict[str, Any]) -> bool:
    author = msg.get("author")
    if not isinstance(author, dict) or author.get("role") != "user":
        return False
    meta = msg.get("metadata") if isinstance(msg.get("metadata"), dict) else {}
    if meta.get("is_visually_hidden_from_conversation") or meta.get("is_user_system_message"):
        return False
    content = msg.get("content") if isinstance(msg.get("content"), dict) else {}
    if content.get("content_type") in HIDDEN_CONTENT:
        return False
    weight = msg.get("weight")
    return not (weight is not None and not isinstance(weight, bool) and weight == 0)


def _feedback(tree: Tree, entry: Entry, emit: Emitter, label: str,
              summary: ImportSummary) -> Iterator[Event]:
    for index, row in safe_records(tree, entry, summary):
        where = f"{entry.path} record {index}"
        try:
            if not isinstance(row, dict):
                raise RecordError("is not a feedback object")
            chat_id = check_chat_id(row.get("conversation_id"), "conversation_id")
            rating = _rating(row.get("rating"))
            stamp = row.get("create_time")
            if stamp is None:
                stamp = row.get("update_time")
            if stamp is None:
                raise RecordError("has no create_time")
            at = epoch_at(stamp)
        except RecordError as exc:
            summary.skip(where, str(exc))
            continue
        key = row.get("id") or f"{row.get('message_id')}@{at}"
        event = emit.feedback(account=label, chat_id=chat_id, at=at, key=str(key),
                              rating=rating)
        for valid in emit.validated(where, [event]):
            summary.feedback += 1
            yield valid


def _rating(value: Any) -> str:
    if isinstance(value, str) and value.replace("_", "").lower() in RATINGS:
        return RATINGS[value.replace("_", "").lower()]
    if isinstance(value, int | float) and not isinstance(value, bool) and value:
        return "up" if value > 0 else "down"
    raise RecordError(f"rating {value!r} is neither thumbs up nor thumbs down")
