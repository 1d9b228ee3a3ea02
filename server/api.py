"""The HTTP API under /api/v1 (CONTRACT.md section 2). Each route parses, delegates to the
live ledger, and answers; the guard has already checked who is asking.

No route answers OPTIONS (`provide_automatic_options=False`), so a preflight never gets 2xx.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, request

from auditor.events import PROVIDERS, EventError
from auditor.ledger import Staged
from auditor.report import FORMATS, MEDIA_TYPES, render
from auditor.times import TimeFormatError, parse_user_time
from server.auth import CodeRefused
from server.guard import JSON, Refused

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger("consent_ledger.api")
HELLO_PREFIX = b"consent-ledger/hello/v1:"
_NONCE = re.compile(r"^[0-9a-fA-F]{16,64}$")


def route(rule: str, **options: Any):  # type: ignore[no-untyped-def]
    return bp.route(rule, provide_automatic_options=False, **options)


def _state() -> Any:
    return current_app.extensions["consent_ledger"]


def _bad_json(message: str, field: str | None = None, index: int | None = None
              ) -> dict[str, Any]:
    return {"error": message, "field": field, "index": index}


def _bad(message: str, field: str | None = None, index: int | None = None,
         status: int = 400) -> Response:
    response = jsonify(_bad_json(message, field, index))
    response.status_code = status
    return response


def parse_json(data: bytes) -> Any:
    """A request body as JSON (the guard has checked it is sent as JSON), or Refused (400).

    Nesting deeper than MAX_DEPTH is refused before parsing: where the parser itself would
    give up depends on how deep the call stack already is, and the answer must not depend
    on which way the request came in (server/ingest.py). Events are 3 levels deep.
    """
    if _deeper_than(data, MAX_DEPTH):
        raise Refused(400, "the body is nested too deeply", "api")
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    except RecursionError:   # not reached below MAX_DEPTH; still 400, never 500
        raise Refused(400, "the body is nested too deeply", "api") from None
    if body is None:
        raise Refused(400, "the body is not JSON", "api")
    return body


MAX_DEPTH = 100
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A JSON string, or an unclosed one up to the end (so the scan stays linear).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)


def _deeper_than(data: bytes, limit: int) -> bool:
    """Whether the parser would go more than `limit` arrays or objects deep.

    Decided on the bytes alone: first counting every bracket (an upper bound, as brackets
    inside strings count too), and only if that is over the limit, again without the
    strings. A body that `json.loads` cannot decode (it reads UTF-8, 16 and 32) is left to
    it: it fails before any nesting.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    encoding = json.detect_encoding(data)
    try:
        if not encoding.startswith("utf-8"):
            data = data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
        if _max_depth(data.translate(None, _NOT_BRACKETS), limit) <= limit:
            return False
        data.decode("utf-8", "surrogatepass")
    except UnicodeError:
        return False
    return _max_depth(_STRING.sub(b"", data).translate(None, _NOT_BRACKETS), limit) > limit


def _max_depth(brackets: bytes, limit: int) -> int:
    """How many brackets are open at most (stopping once past `limit`)."""
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def _json_body() -> Any:
    return parse_json(request.get_data())


def encode_answer(payload: dict[str, Any]) -> bytes:
    """An answer's body, byte for byte what Flask's `jsonify` makes of it (sorted keys,
    compact, ASCII, a final newline), for the routes that answer the fast way too.

    orjson writes the same bytes when no string needs an escape (its output then holds
    only printable ASCII and no backslash), as for every stored batch's answer; anything
    else goes through `json.dumps` as jsonify does. Answers hold no floats.
    """
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        body = b""
    if body and _PLAIN.fullmatch(body, 0, len(body) - 1):
        return body
    return (json.dumps(payload, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
            + "\n").encode()


_PLAIN = re.compile(rb"[ -\[\]-~]*")   # printable ASCII but the backslash


@route("/pair", methods=["POST"], endpoint="pair")
def pair() -> Response:
    body = _json_body()
    code = body.get("code") if isinstance(body, dict) else None
    state = _state()
    try:
        state.pair_codes.redeem(code)
    except CodeRefused as exc:
        return _bad(str(exc), "code", status=exc.status)
    token = state.tokens.issue(request.headers.get("Origin"))
    ledger = state.live.ledger
    return jsonify({"token": token, "account_salt": ledger.account_salt.hex(),
                    "server_key": ledger.keys.public_key_b64})


@route("/hello", methods=["GET"], endpoint="hello")
def hello() -> Response:
    nonce = request.args.get("nonce", "")
    if not _NONCE.match(nonce):
        return _bad("nonce must be 16 to 64 hex characters", "nonce")
    keys = _state().live.ledger.keys
    return jsonify({"server_key": keys.public_key_b64,
                    "signature": keys.sign(HELLO_PREFIX + nonce.encode("ascii"))})


@route("/events", methods=["POST"], endpoint="events")
def events() -> Response:
    status, payload = append_events(_state(), request.get_data())
    return Response(encode_answer(payload), status=status, mimetype=JSON)


Answer = tuple[int, dict[str, Any]]


def append_events(state: Any, data: bytes) -> Answer:
    """`POST /api/v1/events` once the guard let it through, for both ways in (this route
    and server/ingest.py): the status and answer, or Refused for a body that is not JSON."""
    staged = stage_events(state, data)
    return staged if isinstance(staged, tuple) else commit_events(state, staged)


def stage_events(state: Any, data: bytes) -> Answer | Staged:
    """`append_events`' first half: a refusal's answer, or the batch staged in the ledger
    (`LiveLedger.stage`), which `commit_events` must then complete. Batches staged one
    after another, then committed, share one write and one fsync (server/channel.py)."""
    body = parse_json(data)
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        return 400, _bad_json('the body must be {"events": [...]}', "events")
    unknown = set(body) - {"events"}
    if unknown:
        return 400, _bad_json(f"unknown field {sorted(unknown)[0]!r} in the body",
                              sorted(unknown)[0])
    try:
        return state.live.stage(body["events"])
    except EventError as exc:
        return 400, _bad_json(str(exc), exc.field, exc.index)
    except OSError as exc:
        return _not_written(exc)


def commit_events(state: Any, staged: Staged) -> Answer:
    """`append_events`' second half: the answer once the staged batch is on disk."""
    try:
        result = state.live.commit(staged)
    except OSError as exc:
        return _not_written(exc)
    return 200, {"stored": result.stored, "duplicates": result.duplicates,
                 "head": result.head, "checkpoint": result.checkpoint.to_json()}


def _not_written(exc: OSError) -> Answer:
    """A full or failing disk: the batch is not acknowledged, so it is sent again later."""
    log.error("could not store a batch: %s", exc)
    reason = exc.strerror or str(exc)
    return 503, _bad_json(f"the ledger could not be written ({reason}); this batch was "
                          "not acknowledged: send it again later")


@route("/chats/<provider>/<chat_id>", methods=["GET"], endpoint="chat")
def chat(provider: str, chat_id: str) -> Response:
    if provider not in PROVIDERS:
        return _bad(f"unknown provider {provider!r}", "provider", status=404)
    status = _state().live.chat_status(provider, chat_id, account=request.args.get("account"))
    if status is None:
        return _bad("this chat has not been seen", "chat_id", status=404)
    return jsonify(status)


@route("/report", methods=["GET"], endpoint="report")
def report() -> Response:
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        return _bad(f"format must be one of {', '.join(FORMATS)}", "format")
    as_of = None
    if request.args.get("as_of"):
        try:
            as_of = parse_user_time(request.args["as_of"])
        except TimeFormatError as exc:   # also years the engine cannot reckon with
            return _bad(str(exc), "as_of")
    body = _state().live.report(as_of=as_of)
    stamp = body["as_of"][:10]
    return Response(render(body, fmt), mimetype=MEDIA_TYPES[fmt].split(";")[0],
                    headers={"Content-Disposition":
                             f'attachment; filename="consent-ledger-report-{stamp}.{fmt}"',
                             "Content-Type": MEDIA_TYPES[fmt]})


@route("/health", methods=["GET"], endpoint="health")
def health() -> Response:
    return jsonify(_state().live.health())


@route("/accounts", methods=["GET"], endpoint="accounts")
def accounts() -> Response:
    return jsonify({"accounts": _state().live.accounts()})


@route("/pairing-codes", methods=["POST"], endpoint="pairing_code")
def pairing_code() -> Response:
    return jsonify({"code": _state().pair_codes.issue(), "expires_in": 600})


@route("/login-links", methods=["POST"], endpoint="login_link")
def login_link() -> Response:
    code = _state().login_codes.issue()
    port = current_app.config["PORT"]
    return jsonify({"url": f"http://127.0.0.1:{port}/login/{code}", "expires_in": 600})


@route("/tokens", methods=["GET"], endpoint="tokens")
def tokens() -> Response:
    return jsonify({"tokens": [
        {"id": t.id, "origin": t.origin, "paired_at": t.paired_at, "last_used": t.last_used}
        for t in _state().tokens.list()]})


@route("/tokens/<token_id>", methods=["DELETE"], endpoint="revoke_token")
def revoke_token(token_id: str) -> Response:
    if not _state().tokens.revoke(token_id):
        return _bad(f"no paired client with id {token_id!r}", "id", status=404)
    return jsonify({"revoked": token_id})
