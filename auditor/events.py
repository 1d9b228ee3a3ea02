"""The event schema of CONTRACT.md section 1, validated in one place.

Every producer (the HTTP API, `ingest`, the importers) passes its events through
`validate_batch`, so nothing unexpected (message text above all) can reach the ledger:
unknown fields are refused, every field is checked by type, and `at` must be a real date.

The checks mirror `schemas/event.schema.json` (a test runs both over the same cases); they are
written out by hand rather than run through a generic JSON Schema validator because ingest
validates every event of every batch and must stay within a few microseconds per event.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from auditor.times import TimeFormatError, parse_rfc3339

SCHEMA_VERSION = 1
PROVIDERS = ("claude", "chatgpt", "gemini")
EVENT_TYPES = (
    "consent.set", "plan.set", "chat.activity", "chat.deleted", "chat.feedback", "chat.seen",
)
# POLICIES.md rule R8; the consumer/commercial split lives in auditor/policies/.
PLANS: dict[str, tuple[str, ...]] = {
    "claude": ("free", "pro", "max", "team", "enterprise", "education", "gov", "api"),
    "chatgpt": ("free", "plus", "pro", "business", "team", "enterprise", "education", "api"),
    "gemini": ("free", "pro", "ultra", "workspace"),
}
CONSENT_SOURCES = ("settings_page", "choice_prompt", "user_declared", "import")
DEFAULT_ACCOUNT = "default"

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_HEX_LABEL = re.compile(r"^[0-9a-f]{32}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")

Event = dict[str, Any]


class EventError(ValueError):
    """A bad event: names the field, the event's index in its batch, and the file line."""

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.field = field
        self.index = index
        self.line = line
        where = []
        if line is not None:
            where.append(f"line {line}")
        if index is not None:
            where.append(f"event {index}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": str(self), "field": self.field, "index": self.index}
        if self.line is not None:
            body["line"] = self.line
        return body


# --- field checkers: each returns None when fine, else what is wrong ------------------------

Check = Callable[[Any, Mapping[str, Any]], str | None]


def _string(min_len: int, max_len: int) -> Check:
    def check(value: Any, _event: Mapping[str, Any]) -> str | None:
        if type(value) is not str:
            return f"must be a string, not {_kind(value)}"
        if not min_len <= len(value) <= max_len:
            return f"must be {min_len} to {max_len} characters long, not {len(value)}"
        return None
    return check


def _one_of(*allowed: Any) -> Check:
    def check(value: Any, _event: Mapping[str, Any]) -> str | None:
        if type(value) is not str or value not in allowed:
            return f"must be one of {', '.join(map(str, allowed))}, not {_show(value)}"
        return None
    return check


def _boolean(value: Any, _event: Mapping[str, Any]) -> str | None:
    return None if type(value) is bool else f"must be true or false, not {_show(value)}"


def _version(value: Any, _event: Mapping[str, Any]) -> str | None:
    if type(value) is not int or value != SCHEMA_VERSION:
        return f"must be {SCHEMA_VERSION} (this server speaks event schema v1), not {_show(value)}"
    return None


def _event_id(value: Any, _event: Mapping[str, Any]) -> str | None:
    if type(value) is not str or not _ID.match(value):
        return f"must be 8-64 characters of A-Z a-z 0-9 _ -, not {_show(value)}"
    return None


def _at(value: Any, _event: Mapping[str, Any]) -> str | None:
    if type(value) is not str:
        return f"must be an RFC 3339 date-time string, not {_kind(value)}"
    try:
        parse_rfc3339(value)
    except TimeFormatError as exc:
        return str(exc)
    return None


def _plan(value: Any, event: Mapping[str, Any]) -> str | None:
    plans = PLANS.get(event.get("provider"), ())
    if type(value) is not str or value not in plans:
        return (f"{_show(value)} is not a {event.get('provider')} plan "
                f"(one of {', '.join(plans)})")
    return None


def _messages(value: Any, _event: Mapping[str, Any]) -> str | None:
    if type(value) is not int or value < 1:
        return f"must be a whole number of at least 1, not {_show(value)}"
    return None


def _digest(value: Any, _event: Mapping[str, Any]) -> str | None:
    if type(value) is not str or not _DIGEST.match(value):
        return "must be 64 lowercase hex characters"
    return None


def _setting(value: Any, _event: Mapping[str, Any]) -> str | None:
    return None if value == "model_training" and type(value) is str else (
        f"must be model_training, not {_show(value)}")


_chat_id = _string(1, 200)
_title = _string(0, 1000)
_url = _string(0, 2000)

ENVELOPE: dict[str, tuple[Check, bool]] = {
    "v": (_version, True),
    "id": (_event_id, True),
    "type": (_one_of(*EVENT_TYPES), True),
    "at": (_at, True),
    "provider": (_one_of(*PROVIDERS), True),
    "account": (_string(1, 128), False),
}

# Per type: field -> (check, required).
TYPE_FIELDS: dict[str, dict[str, tuple[Check, bool]]] = {
    "consent.set": {
        "setting": (_setting, True),
        "value": (_boolean, True),
        "source": (_one_of(*CONSENT_SOURCES), True),
    },
    "plan.set": {"plan": (_plan, True)},
    "chat.activity": {
        "chat_id": (_chat_id, True),
        "kind": (_one_of("chat", "code"), True),
        "incognito": (_boolean, True),
        "title": (_title, False),
        "url": (_url, False),
        "messages": (_messages, False),
        "plan": (_plan, False),
        "message_digest": (_digest, False),
    },
    "chat.deleted": {"chat_id": (_chat_id, True)},
    "chat.feedback": {"chat_id": (_chat_id, True), "rating": (_one_of("up", "down"), True)},
    "chat.seen": {
        "chat_id": (_chat_id, True),
        "title": (_title, False),
        "url": (_url, False),
        "incognito": (_boolean, False),
    },
}

# The same rules, laid out for the loop below (it runs for every event of every batch).
_ENVELOPE_CHECKS = tuple((name, check, required) for name, (check, required) in ENVELOPE.items())
_TYPE_CHECKS = {t: {name: check for name, (check, _required) in fields.items()}
                for t, fields in TYPE_FIELDS.items()}
_TYPE_REQUIRED = {t: tuple(name for name, (_check, required) in fields.items() if required)
                  for t, fields in TYPE_FIELDS.items()}


def validate_event(obj: Any, *, index: int | None = None, line: int | None = None) -> Event:
    """Check one event; return it with `account` defaulted. Raises EventError."""
    if not isinstance(obj, dict):
        raise EventError(f"an event must be a JSON object, not {_kind(obj)}",
                         index=index, line=line)
    # The envelope first, in a fixed order, so the error names the most basic problem.
    for name, check, required in _ENVELOPE_CHECKS:
        if name not in obj:
            if required:
                raise EventError("is missing", field=name, index=index, line=line)
            continue
        problem = check(obj[name], obj)
        if problem:
            raise EventError(problem, field=name, index=index, line=line)
    kind = obj["type"]
    checks = _TYPE_CHECKS[kind]
    for name, value in obj.items():
        check = checks.get(name)
        if check is None:
            if name in ENVELOPE:
                continue
            raise EventError(f"is not a field of a {kind} event (unknown fields are "
                             "refused)", field=name, index=index, line=line)
        problem = check(value, obj)
        if problem:
            raise EventError(problem, field=name, index=index, line=line)
    for name in _TYPE_REQUIRED[kind]:
        if name not in obj:
            raise EventError(f"is missing (required for {kind})", field=name,
                             index=index, line=line)
    if "account" not in obj:
        obj = {**obj, "account": DEFAULT_ACCOUNT}
    return obj


def validate_batch(objs: Iterable[Any], *, lines: list[int] | None = None) -> list[Event]:
    """Validate a whole batch, all or nothing: the first bad event raises, naming its index."""
    out = []
    for i, obj in enumerate(objs):
        out.append(validate_event(obj, index=i, line=lines[i] if lines else None))
    return out


def account_label(salt: bytes, provider: str, account_id: str | None) -> str:
    """CONTRACT section 1: hex of the first 16 bytes of HMAC-SHA256(salt, "provider:id").

    Gemini, and any account whose id is not known, is the literal `default`. An existing
    label may be given as `label:<hex>`.
    """
    if not account_id or provider == "gemini":
        return DEFAULT_ACCOUNT
    if account_id.startswith("label:"):
        label = account_id[len("label:"):]
        if not _HEX_LABEL.match(label):
            raise ValueError(f"{account_id!r}: a label is label: and 32 lowercase hex characters")
        return label
    mac = hmac.new(salt, f"{provider}:{account_id}".encode(), hashlib.sha256).digest()
    return mac[:16].hex()


def chat_key(event: Mapping[str, Any]) -> tuple[str, str, str]:
    """Chats are keyed by (provider, account, chat_id)."""
    return (event["provider"], event.get("account", DEFAULT_ACCOUNT), event["chat_id"])


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
