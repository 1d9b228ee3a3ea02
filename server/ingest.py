"""The fast way in for `POST /api/v1/events`: a WSGI layer in front of the Flask app.

Flask's own work per request (request context, URL matching, response object, hooks)
costs about as much as a durable append itself, and ingest is what the extension does all
day. So the one exact request `POST /api/v1/events` (the raw request target exactly that
path: no query, no `//`, no `%61pi`, no absolute form) is answered here; everything else,
aliases of that path included, goes to Flask unchanged.

Here runs the same guard (`server.guard.check` on a `RequestView` of the environ, routed to
`api.events`), the same handler (`server.api.stage_events`, then `commit_events`) and the
same error bodies and headers (`server.guard.secure`) as on the Flask path, so the answer is
the same, byte for byte (tests/test_ingest_fast_path.py sends a table of requests both ways).
`begin` and `finish` are the two halves, for server/channel.py's LoopIngest: it stages the
batches of several requests, commits them together, and leaves each answer in its environ
(`ANSWERED`) for the WSGI call that sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_input_stream

from auditor.ledger import Staged
from server.api import commit_events, encode_answer, stage_events
from server.guard import JSON, Refused, RequestView, check, error_json, secure

EVENTS_PATH = "/api/v1/events"
ENDPOINT = "api.events"
# An answer worked out before the WSGI call (server/channel.py), in the environ: no
# request header can make this key (theirs are HTTP_*).
ANSWERED = "consent_ledger.answered"
_T = TypeVar("_T")
_R = TypeVar("_R")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def status_line(code: int) -> str:
    """The status line as werkzeug writes it (`400 BAD REQUEST`)."""
    reason = HTTP_STATUS_CODES.get(code)
    return f"{code} {reason.upper()}" if reason else f"{code} UNKNOWN"


class FastIngest:
    """WSGI middleware: `POST /api/v1/events` answered here, all else passed to `wsgi_app`."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        # Every answer of ours starts with these two headers; the rest come from the one
        # function that adds them to Flask's answers, worked out once for this path.
        probe = Headers([("Content-Type", JSON), ("Content-Length", "0")])
        secure(probe, EVENTS_PATH)
        assert probe.to_wsgi_list()[:2] == [("Content-Type", JSON), ("Content-Length", "0")]
        self._headers = probe.to_wsgi_list()[2:]

    @staticmethod
    def handles(environ: dict[str, Any]) -> bool:
        uri = environ.get("REQUEST_URI", environ.get("RAW_URI"))
        return (environ.get("REQUEST_METHOD") == "POST" and uri == EVENTS_PATH
                and environ.get("PATH_INFO") == EVENTS_PATH
                and not environ.get("QUERY_STRING") and not environ.get("SCRIPT_NAME"))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        answer = environ.get(ANSWERED)
        if answer is None:
            if not self.handles(environ):
                return self.wsgi_app(environ, start_response)
            answer = self.answer(environ)
        status, body = answer
        start_response(status_line(status), [("Content-Type", JSON),
                                             ("Content-Length", str(len(body))),
                                             *self._headers])
        return [body]

    def answer(self, environ: dict[str, Any]) -> tuple[int, bytes]:
        """The status and body, as the Flask path makes them (guard, handler, error pages)."""
        begun = self.begin(environ)
        return begun if isinstance(begun, tuple) else self.finish(begun)

    def begin(self, environ: dict[str, Any]) -> tuple[int, bytes] | Staged:
        """`answer`'s first half: a refusal's status and body, or the batch staged in the
        ledger, for `finish` (server/channel.py stages several, then finishes them all)."""
        return self._as_flask_would(self._stage, environ)

    def finish(self, staged: Staged) -> tuple[int, bytes]:
        """`answer`'s second half: the status and body once the staged batch is on disk."""
        return self._as_flask_would(self._commit, staged)

    def _stage(self, environ: dict[str, Any]) -> tuple[int, bytes] | Staged:
        app = self.app
        state = app.extensions["consent_ledger"]
        admitted = check(RequestView(environ, EVENTS_PATH), state,
                         port=app.config["PORT"], max_body=app.config["MAX_BODY"],
                         endpoint=ENDPOINT)
        # Read as Flask's `request.get_data()` reads (its limit falls back to the config).
        limit = admitted.limit
        if limit is None:
            limit = app.config["MAX_CONTENT_LENGTH"]
        data = get_input_stream(environ, max_content_length=limit).read()
        staged = stage_events(state, data)
        if isinstance(staged, tuple):
            return staged[0], encode_answer(staged[1])
        return staged

    def _commit(self, staged: Staged) -> tuple[int, bytes]:
        status, payload = commit_events(self.app.extensions["consent_ledger"], staged)
        return status, encode_answer(payload)

    def _as_flask_would(self, work: Callable[[_T], _R], arg: _T) -> _R | tuple[int, bytes]:
        """`work(arg)`, with what the guard and the handler raise turned into the answer the
        Flask path gives."""
        app = self.app
        try:
            return work(arg)
        except Refused as exc:   # an API endpoint: always the JSON error, never a page
            return exc.status, error_json(exc.message)
        except HTTPException as exc:
            return exc.code or 500, error_json(exc.description or exc.name)
        except Exception:
            propagate = app.config["PROPAGATE_EXCEPTIONS"]
            if propagate or (propagate is None and (app.testing or app.debug)):
                raise
            # As Flask logs it, then its 500 through the same error body.
            app.logger.error(f"Exception on {EVENTS_PATH} [POST]", exc_info=True)
            error = InternalServerError()
            return 500, error_json(error.description or error.name)


def install(app: Flask) -> None:
    app.wsgi_app = FastIngest(app, app.wsgi_app)  # type: ignore[method-assign]
