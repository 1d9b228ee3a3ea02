"""Who may talk to the server: pairing codes, tokens, login links and dashboard sessions.

- Pairing codes (CONTRACT section 2): 10 symbols of Crockford's base32 alphabet (50 bits),
  single use, valid 10 minutes; at most 5 wrong tries a minute, then every try is refused
  with 429 until the minute has passed.
- Tokens: 256 random bits, stored only as SHA-256 hashes (in the config dir, 0600, so they
  survive restarts), compared in constant time, each pinned to the Origin it was paired
  from (None for a command-line client). The command line's own token is made at each
  start and lives only in memory and in the 0600 hand-over file.
- Login links: the same kind of one-time code, for the dashboard; a session cookie follows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from auditor.keys import write_private_file
from auditor.times import format_time, utcnow

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"   # Crockford: no I, L, O, U
CODE_LENGTH = 10
CODE_TTL = 600.0
WRONG_TRIES_PER_MINUTE = 5
SESSION_TTL = 12 * 3600.0


class CodeRefused(Exception):
    """A pairing or login code that is wrong, used or expired (400), or too many tries (429)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_code(text: str) -> str:
    """Codes are read back by people: ignore case, spaces and dashes; O means 0, I/L mean 1."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -")
    return cleaned.translate(str.maketrans("OIL", "011"))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OneTimeCodes:
    """Single-use codes with a lifetime and a limit on wrong tries."""

    def __init__(self, ttl: float = CODE_TTL, now: Callable[[], float] = time.monotonic
                 ) -> None:
        self._ttl = ttl
        self._codes: dict[str, float] = {}
        self._wrong: deque[float] = deque()
        self._lock = threading.Lock()
        self._now = now

    def issue(self) -> str:
        code = new_code()
        with self._lock:
            self._codes[normalise_code(code)] = self._now() + self._ttl
        return code

    def redeem(self, given: object) -> None:
        """Use up a code; raises CodeRefused (400, or 429 after too many wrong tries)."""
        now = self._now()
        with self._lock:
            while self._wrong and self._wrong[0] <= now - 60:
                self._wrong.popleft()
            if len(self._wrong) >= WRONG_TRIES_PER_MINUTE:
                raise CodeRefused("too many wrong codes; wait a minute", 429)
            if not isinstance(given, str) or not given.strip():
                self._wrong.append(now)
                raise CodeRefused("a code is required")
            key = normalise_code(given)
            match = None
            for code, expires in self._codes.items():   # constant-time per candidate
                if hmac.compare_digest(code.encode(), key.encode()):
                    match = (code, expires)
            if match is None:
                self._wrong.append(now)
                raise CodeRefused("wrong or already used code")
            del self._codes[match[0]]
            if match[1] < now:
                self._wrong.append(now)
                raise CodeRefused("that code has expired; ask for a fresh one")


@dataclass
class Token:
    id: str
    hash: str
    origin: str | None
    paired_at: str
    last_used: str | None = None


class TokenStore:
    """Paired clients, persisted as hashes in `tokens-<ledger id>.json` (config dir)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self._dirty = False
        self._touched: tuple[int, str] = (-1, "")
        if path.exists():
            for item in json.loads(path.read_text()).get("tokens", []):
                token = Token(**item)
                self._tokens[token.hash] = token

    def issue(self, origin: str | None) -> str:
        secret = secrets.token_urlsafe(32)   # 256 bits
        token = Token(id=secrets.token_hex(4), hash=token_hash(secret), origin=origin,
                      paired_at=format_time(utcnow().replace(microsecond=0)))
        with self._lock:
            self._tokens[token.hash] = token
            self._save()
        return secret

    def find(self, secret: str) -> Token | None:
        wanted = token_hash(secret)
        with self._lock:
            found = None
            for h, token in self._tokens.items():
                if hmac.compare_digest(h, wanted):
                    found = token
            return found

    def touch(self, token: Token) -> None:
        """Note the token's use, to the second (in memory; `flush` writes it)."""
        second = int(time.time())
        if second != self._touched[0]:     # the text made once a second, not per request
            self._touched = (second, format_time(datetime.fromtimestamp(second, UTC)))
        token.last_used = self._touched[1]
        self._dirty = True

    def list(self) -> list[Token]:
        with self._lock:
            return sorted(self._tokens.values(), key=lambda t: t.paired_at)

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            for h, token in list(self._tokens.items()):
                if token.id == token_id:
                    del self._tokens[h]
                    self._save()
                    return True
        return False

    def flush(self) -> None:
        """Persist `last_used` times (written lazily, not on every request)."""
        with self._lock:
            if self._dirty:
                self._save()

    def _save(self) -> None:
        body = {"tokens": [asdict(t) for t in self._tokens.values()]}
        write_private_file(self.path, json.dumps(body, indent=1).encode())
        self._dirty = False


class Sessions:
    """Dashboard sessions: random ids in an HttpOnly, SameSite=Strict cookie, with a CSRF
    token each; in memory only, so a restart logs everyone out."""

    def __init__(self, ttl: float = SESSION_TTL) -> None:
        self._ttl = ttl
        self._sessions: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def open(self) -> tuple[str, str]:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = (time.monotonic() + self._ttl, csrf)
        return sid, csrf

    def csrf_for(self, sid: str | None) -> str | None:
        if not sid:
            return None
        with self._lock:
            found = self._sessions.get(sid)
            if found is None:
                return None
            if found[0] < time.monotonic():
                del self._sessions[sid]
                return None
            return found[1]

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)
