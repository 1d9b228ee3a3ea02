"""Claude Code's local session transcripts (EXPORTS.md section 5).

`~/.claude`, its `projects/` folder, one project folder or one session file: every
`*.jsonl` whose lines carry a `sessionId`. Each session is a chat of kind `code` (its id the
session id, as `claude --resume` names it); each of the user's own prompts is an activity at
the line's `timestamp`. Not the user writing, so not activity: tool results (a `user` line
whose blocks are `tool_result`), sidechains (a subagent's prompts are written by the main
agent; subagent files are folded into their session and add no activity of their own), meta
lines (caveats, expanded slash-command bodies), compaction summaries, the "[Request
interrupted by user]" markers and local commands such as /clear. Lines copied into a resumed
session keep their uuid, so they give the same event id and are counted once.

Whether a session ran on a Pro/Max sign-in or an API key is not in the files: `--plan api`
marks every imported session as run with an API key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from auditor.events import Event, account_label
from auditor.importers.common import (
    Emitter,
    ImportSummary,
    Prompt,
    RecordError,
    check_chat_id,
    iso_time,
)
from auditor.importers.source import Entry, Tree, lines

LOCAL_COMMANDS = {
    "/clear", "/exit", "/quit", "/help", "/model", "/config", "/cost", "/status", "/login",
    "/logout", "/resume", "/doctor", "/memory", "/permissions", "/context", "/usage", "/ide",
    "/hooks", "/mcp", "/agents", "/vim", "/theme", "/terminal-setup", "/export", "/add-dir",
    "/statusline", "/privacy-settings", "/upgrade", "/rewind", "/todos", "/bashes",
}
NOT_PROMPTS = ("<local-command-stdout>", "<local-command-stderr>", "<local-command-caveat>",
               "[Request interrupted by user", "<bash-stdout>", "<bash-stderr>")
_COMMAND = re.compile(r"<command-name>\s*(/?[^<\s]+)\s*</command-name>")


def describe(roles: dict[str, list[Entry]]) -> str:
    files = roles.get("claude_code.transcript", [])
    agents = sum(1 for e in files if _is_subagent_file(e))
    return (f"Claude Code transcripts ({len(files) - agents} session files, "
            f"{agents} subagent files)")


def _is_subagent_file(entry: Entry) -> bool:
    return entry.name.startswith("agent-") or "subagents" in entry.parts[:-1]


def prompt_text_kind(content: Any) -> str | None:
    """'prompt' when a user line's content is the user's own words, else why it is not."""
    if isinstance(content, str):
        text = content.lstrip()
    elif isinstance(content, list):
        types = {b.get("type") for b in content if isinstance(b, dict)}
        if "tool_result" in types:
            return "tool result"
        texts = [b.get("text", "") for b in content
                 if isinstance(b, dict) and b.get("type") == "text"]
        if not texts and not types & {"image", "document"}:
            return "no text"
        text = (texts[0] if texts else "").lstrip()
    else:
        return "no content"
    if text.startswith(NOT_PROMPTS):
        return "generated"
    m = _COMMAND.search(text[:500]) if text.startswith(("<command-name>", "<command-message>")) \
        else None
    if m and m.group(1).split()[0] in LOCAL_COMMANDS:
        return "local command"
    return None


def read(tree: Tree, roles: dict[str, list[Entry]], summary: ImportSummary, *, salt: bytes,
         account: str | None, plan: str | None) -> Iterator[Event]:
    emit = Emitter("claude", summary, plan)
    label = account_label(salt, "claude", account)
    if not account:
        summary.note("transcripts name no account: sessions are under 'default' (give "
                     "--account with your claude.ai account uuid to file them with it)")
    files = roles.get("claude_code.transcript", [])
    # Pass 1: titles. A `summary` line names the conversation ending at its `leafUuid`,
    # which may sit in another file, so titles are gathered before the sessions are read.
    leaves: dict[str, str] = {}
    for entry in files:
        for _n, raw in lines(tree, entry):
            if b'"summary"' in raw and b'"leafUuid"' in raw:
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict) and obj.get("type") == "summary":
                    text, leaf = obj.get("summary"), obj.get("leafUuid")
                    if isinstance(text, str) and isinstance(leaf, str):
                        leaves[leaf] = text
    # Pass 2: prompts per session, in the order sessions first appear.
    sessions: dict[str, dict[str, Prompt]] = {}
    titles: dict[str, str] = {}
    for entry in files:
        summary.files.append(entry.path)
        if _is_subagent_file(entry):
            summary.ignore("subagent files (folded into their session, no prompts of the user)")
        for n, raw in lines(tree, entry):
            where = f"{entry.path} line {n}"
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                summary.skip(where, "not a JSON line")
                continue
            if not isinstance(obj, dict):
                continue
            uuid = obj.get("uuid")
            sid = obj.get("sessionId")
            if isinstance(uuid, str) and uuid in leaves and isinstance(sid, str):
                titles[sid] = leaves[uuid]
            if obj.get("type") != "user":
                continue
            if isinstance(sid, str) and sid not in sessions:
                sessions[sid] = {}
            try:
                prompt = _prompt(obj)
            except RecordError as exc:
                summary.skip(where, str(exc))
                continue
            if prompt is None:
                continue
            chat_id, when, key = prompt
            sessions.setdefault(chat_id, {})[key] = (when, key)
    for chat_id, prompts in sessions.items():
        yield from emit.chat(f"session {chat_id}", account=label, chat_id=chat_id,
                             prompts=prompts.values(), title=titles.get(chat_id), kind="code")


def _prompt(obj: dict[str, Any]) -> tuple[str, datetime, str] | None:
    if obj.get("isSidechain") or obj.get("isMeta") or obj.get("isCompactSummary") \
            or obj.get("isVisibleInTranscriptOnly"):
        return None
    msg = obj.get("message")
    if not isinstance(msg, dict) or msg.get("role", "user") != "user":
        return None
    if prompt_text_kind(msg.get("content")) is not None:
        return None
    chat_id = check_chat_id(obj.get("sessionId"), "sessionId")
    when = iso_time(obj.get("timestamp"))
    key = obj.get("uuid") if isinstance(obj.get("uuid"), str) and obj["uuid"] else \
        str(obj.get("timestamp"))
    return chat_id, when, key
