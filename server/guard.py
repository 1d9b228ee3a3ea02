"""The one request guard: CONTRACT.md section 2's checks, in its order, before any handler.

Decided on the routed endpoint with default deny (SECURITY.md row 4): every endpoint is
listed in `POLICIES` with its area (api or page) and who may call it; an endpoint missing
from the table is refused. Order: Host, then Origin / Sec-Fetch-Site, then the route, then
the token or session, then the token's pinned Origin, then content type and body size;
the schema is checked by the handler.

The checks (`check`) read a `RequestView`, taken from the WSGI environ, so the same code
guards both ways in: Flask's `before_request` (every route) and the ingest fast path
(server/ingest.py, `POST /api/v1/events` only). Each way in says which endpoint it routed
to; Flask also hands over its routing error, which is raised at the route's place in the
order.

The origin rules follow the lessons of ActivityWatch's localhost API (GHSA-v9fg-6g9j-h4x4)
and Jupyter's host check: no CORS header is ever sent, so a web page can at most fire a
request it cannot read, and such a request is refused here before it can do anything.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from flask import Flask, Response, current_app, g, request
from markupsafe import escape
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length

from server.auth import Token

if TYPE_CHECKING:
    from server.app import ServerState

Area = Literal["api", "page"]
Access = Literal["public", "token", "cli", "session"]


@dataclass(frozen=True)
class Policy:
    area: Area
    access: Access


# endpoint -> who may call it. Anything not here is refused (default deny).
POLICIES: dict[str, Policy] = {
    "api.pair": Policy("api", "public"),
    "api.hello": Policy("api", "public"),
    "api.events": Policy("api", "token"),
    "api.chat": Policy("api", "token"),
    "api.report": Policy("api", "token"),
    "api.health": Policy("api", "token"),
    "api.accounts": Policy("api", "token"),
    "api.pairing_code": Policy("api", "cli"),
    "api.login_link": Policy("api", "cli"),
    "api.tokens": Policy("api", "cli"),
    "api.revoke_token": Policy("api", "cli"),
    "openapi": Policy("api", "public"),
    "pages.dashboard": Policy("page", "session"),
    "pages.download": Policy("page", "session"),
    "pages.logout": Policy("page", "session"),
    "pages.login": Policy("page", "public"),
    "pages.login_code": Policy("page", "public"),
    "static": Policy("page", "public"),
}

EXTENSION_SCHEMES = ("chrome-extension://", "moz-extension://")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"


class Refused(Exception):
    def __init__(self, status: int, message: str, area: Area) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.area = area


def is_extension_origin(origin: str | None) -> bool:
    return origin is not None and origin.startswith(EXTENSION_SCHEMES) and len(origin) > 20


@lru_cache(maxsize=8)
def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})


def path_area(path: str) -> Area:
    """The area a path is answered in when no endpoint says otherwise (errors, 404s)."""
    return "api" if path.lower().lstrip("/").startswith("api") else "page"


def _no_session() -> str | None:
    return None


def _no_form_token() -> str:
    return ""


class RequestView:
    """What the guard reads of a request: its WSGI environ, read as werkzeug's `Request`
    reads it (so both ways in see the same), plus the routed `path` and, for pages, how to
    get the session cookie and the form's CSRF token (which only Flask parses)."""

    __slots__ = ("area", "authorization", "environ", "form_token", "host", "method",
                 "origin", "path", "session_id", "site")

    def __init__(self, environ: dict[str, Any], path: str, *,
                 session_id: Callable[[], str | None] = _no_session,
                 form_token: Callable[[], str] = _no_form_token) -> None:
        self.environ = environ
        self.path = path
        self.area = path_area(path)
        self.method: str = environ.get("REQUEST_METHOD", "GET").upper()
        self.host: str = environ.get("HTTP_HOST", "").lower()
        self.origin: str | None = environ.get("HTTP_ORIGIN")
        self.site: str | None = environ.get("HTTP_SEC_FETCH_SITE")
        self.authorization: str = environ.get("HTTP_AUTHORIZATION", "")
        self.session_id = session_id
        self.form_token = form_token

    @property
    def mimetype(self) -> str:
        content_type = self.environ.get("CONTENT_TYPE", "")
        if content_type == JSON:   # the common case, parsed the same without the parser
            return JSON
        return parse_options_header(content_type)[0].lower()

    @property
    def content_length(self) -> int | None:
        return get_content_length(self.environ)


@dataclass(frozen=True)
class Admission:
    """A request the guard let through: its token (None for the command line's, or where no
    token is needed), whether it is the command line's, the body limit, and a page's CSRF
    token."""

    token: Token | None = None
    is_cli: bool = False
    limit: int | None = None
    csrf: str | None = None


def check(view: RequestView, state: ServerState, *, port: int, max_body: int,
          endpoint: str | None, route_error: Exception | None = None) -> Admission:
    """Raise Refused (or the routing error), or say who was let through."""
    policy = POLICIES.get(endpoint) if endpoint is not None else None
    area = policy.area if policy else view.area

    # 1. Host: no DNS rebinding, on every route, pages and static files too.
    host = view.host
    if host not in allowed_hosts(port):
        raise Refused(400, f"Host {host!r} is not this server (use 127.0.0.1:{port})", area)

    # 2. Origin and Sec-Fetch-Site.
    origin = view.origin
    site = view.site
    if area == "api":
        if origin is not None and not is_extension_origin(origin):
            raise Refused(403, "web pages may not call this API", area)
        if site in ("cross-site", "same-site") and not is_extension_origin(origin):
            raise Refused(403, "cross-site requests are refused", area)
    else:
        if origin is not None and origin != f"http://{host}":
            raise Refused(403, "cross-origin requests to the dashboard are refused", area)
        if site is not None and site not in ("same-origin", "none"):
            raise Refused(403, "cross-site requests to the dashboard are refused", area)

    # 3. The route, after the server's own normalisation (no merged slashes, exact case).
    if route_error is not None:
        raise route_error
    if policy is None:
        raise Refused(404, "not found", area)

    # 4. Token or session; 5. the token's pinned Origin.
    token: Token | None = None
    is_cli = False
    csrf: str | None = None
    if policy.access in ("token", "cli"):
        token, is_cli = _bearer(view.authorization, state)
        if token is None and not is_cli:
            raise Refused(401, "a valid Bearer token is required (pair first)", area)
        if policy.access == "cli" and not is_cli:
            raise Refused(403, "only the command line may do this", area)
        pinned = None if is_cli else token.origin  # type: ignore[union-attr]
        if pinned != origin and not _extension_read(pinned, origin, site, view.method):
            raise Refused(403, "this token was paired from another origin", area)
        if token is not None:
            state.tokens.touch(token)
    elif policy.access == "session":
        csrf = state.sessions.csrf_for(view.session_id())
        if csrf is None:
            raise Refused(401, "please log in with the link `consent-ledger login` prints", area)
        if view.method in WRITE_METHODS:
            sent = view.form_token()
            if not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise Refused(403, "missing or wrong CSRF token", area)

    # 6. Writes: JSON only on the API; 7. body size (not for the command line's hand-over).
    if area == "api" and view.method in WRITE_METHODS and view.mimetype != JSON:
        raise Refused(415, "send Content-Type: application/json", area)
    limit = None if is_cli else max_body
    if limit is not None and (view.content_length or 0) > limit:
        raise Refused(413, f"the body is larger than {limit} bytes", area)
    return Admission(token=token, is_cli=is_cli, limit=limit, csrf=csrf)


def _extension_read(pinned: str | None, origin: str | None, site: str | None,
                    method: str) -> bool:
    """Chromium's extension worker sends no Origin on GET (only `Sec-Fetch-Site: none`), so
    a token paired from an extension may read without one; writes always carry the Origin.
    A web page cannot get here: it would need the token, and its requests carry a
    cross-site or same-site Sec-Fetch-Site, refused above."""
    return (is_extension_origin(pinned) and origin is None and site == "none"
            and method in ("GET", "HEAD"))


def _bearer(header: str, state: ServerState) -> tuple[Token | None, bool]:
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None, False
    secret = secret.strip()
    if state.is_cli_token(secret):
        return None, True
    return state.tokens.find(secret), False


def guard() -> None:
    """Flask `before_request`: raise Refused, or let the handler run."""
    rule = request.url_rule
    view = RequestView(request.environ, request.path,
                       session_id=lambda: request.cookies.get("cl_session"),
                       form_token=lambda: request.form.get("csrf_token", ""))
    admitted = check(view, current_app.extensions["consent_ledger"],
                     port=current_app.config["PORT"], max_body=current_app.config["MAX_BODY"],
                     endpoint=rule.endpoint if rule is not None else None,
                     route_error=request.routing_exception)
    g.token = admitted.token
    if admitted.csrf is not None:
        g.csrf = admitted.csrf
    request.max_content_length = admitted.limit


def secure(headers: Headers, path: str) -> None:
    """The headers every answer carries, whoever made it; never a CORS header."""
    headers["X-Content-Type-Options"] = "nosniff"
    # Pages say same-origin: with no-referrer Chromium sends `Origin: null` on the
    # dashboard's own form posts, which the page rules would then refuse.
    headers.setdefault("Referrer-Policy",
                       "no-referrer" if path_area(path) == "api" else "same-origin")
    headers.setdefault("Cache-Control", "no-store")
    for name in list(headers.keys()):
        if name.lower().startswith("access-control-"):
            del headers[name]      # never CORS, whatever a library adds


def install(app: Flask) -> None:
    app.before_request(guard)

    @app.errorhandler(Refused)
    def refused(exc: Refused) -> Response:
        if exc.area == "page" and exc.status == 401:
            from server.pages import login_page
            return login_page(exc.message, 401)
        return _error(exc.status, exc.message, exc.area)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.description or exc.name, path_area(request.path))

    @app.after_request
    def headers(response: Response) -> Response:
        secure(response.headers, request.path)
        return response


def error_json(message: str) -> bytes:
    """An API refusal's body: `{"error": ...}`."""
    return json.dumps({"error": message}).encode()


def _error(status: int, message: str, area: Area) -> Response:
    if area == "api":
        return Response(error_json(message), status=status, mimetype=JSON)
    return Response(f"<!doctype html><title>{status}</title><p>{escape(message)}</p>",
                    status=status, mimetype="text/html")
