"""The one request guard: CONTRACT.md section 2's checks, in its order, before any handler.

Decided on the routed endpoint with default deny (SECURITY.md row 4): every endpoint is
listed in `POLICIES` with its area (api or page) and who may call it; an endpoint missing
from the table is refused. Order: Host, then Origin / Sec-Fetch-Site, then the route, then
the token or session, then the token's pinned Origin, then content type and body size;
the schema is checked by the handler.

The origin rules follow the lessons of ActivityWatch's localhost API (GHSA-v9fg-6g9j-h4x4)
and Jupyter's host check: no CORS header is ever sent, so a web page can at most fire a
request it cannot read, and such a request is refused here before it can do anything.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Literal

from flask import Flask, Response, current_app, g, request
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from server.auth import Token

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


class Refused(Exception):
    def __init__(self, status: int, message: str, area: Area) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.area = area


def is_extension_origin(origin: str | None) -> bool:
    return origin is not None and origin.startswith(EXTENSION_SCHEMES) and len(origin) > 20


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})


def guard() -> None:
    """Flask `before_request`: raise Refused, or let the handler run."""
    path_area: Area = "api" if request.path.lower().lstrip("/").startswith("api") else "page"
    rule = request.url_rule
    policy = POLICIES.get(rule.endpoint) if rule is not None else None
    area = policy.area if policy else path_area

    # 1. Host: no DNS rebinding, on every route, pages and static files too.
    port = current_app.config["PORT"]
    host = request.headers.get("Host", "").lower()
    if host not in allowed_hosts(port):
        raise Refused(400, f"Host {host!r} is not this server (use 127.0.0.1:{port})", area)

    # 2. Origin and Sec-Fetch-Site.
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
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
    if request.routing_exception is not None:
        raise request.routing_exception
    if policy is None:
        raise Refused(404, "not found", area)

    # 4. Token or session; 5. the token's pinned Origin.
    is_cli = False
    if policy.access in ("token", "cli"):
        token, is_cli = _bearer()
        if token is None and not is_cli:
            raise Refused(401, "a valid Bearer token is required (pair first)", area)
        if policy.access == "cli" and not is_cli:
            raise Refused(403, "only the command line may do this", area)
        pinned = None if is_cli else token.origin  # type: ignore[union-attr]
        if pinned != origin and not _extension_read(pinned, origin, site):
            raise Refused(403, "this token was paired from another origin", area)
        if token is not None:
            current_app.extensions["consent_ledger"].tokens.touch(token)
        g.token = token
    elif policy.access == "session":
        state = current_app.extensions["consent_ledger"]
        csrf = state.sessions.csrf_for(request.cookies.get("cl_session"))
        if csrf is None:
            raise Refused(401, "please log in with the link `consent-ledger login` prints", area)
        g.csrf = csrf
        if request.method in WRITE_METHODS:
            sent = request.form.get("csrf_token", "")
            if not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise Refused(403, "missing or wrong CSRF token", area)

    # 6. Writes: JSON only on the API; 7. body size (not for the command line's hand-over).
    if (area == "api" and request.method in WRITE_METHODS
            and request.mimetype != "application/json"):
        raise Refused(415, "send Content-Type: application/json", area)
    limit = None if is_cli else current_app.config["MAX_BODY"]
    request.max_content_length = limit
    if limit is not None and (request.content_length or 0) > limit:
        raise Refused(413, f"the body is larger than {limit} bytes", area)


def _extension_read(pinned: str | None, origin: str | None, site: str | None) -> bool:
    """Chromium's extension worker sends no Origin on GET (only `Sec-Fetch-Site: none`), so
    a token paired from an extension may read without one; writes always carry the Origin.
    A web page cannot get here: it would need the token, and its requests carry a
    cross-site or same-site Sec-Fetch-Site, refused above."""
    return (is_extension_origin(pinned) and origin is None and site == "none"
            and request.method in ("GET", "HEAD"))


def _bearer() -> tuple[Token | None, bool]:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None, False
    secret = secret.strip()
    state = current_app.extensions["consent_ledger"]
    if state.is_cli_token(secret):
        return None, True
    return state.tokens.find(secret), False


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
        area: Area = "api" if request.path.lower().lstrip("/").startswith("api") else "page"
        return _error(exc.code or 500, exc.description or exc.name, area)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Pages say same-origin: with no-referrer Chromium sends `Origin: null` on the
        # dashboard's own form posts, which the page rules would then refuse.
        response.headers.setdefault(
            "Referrer-Policy",
            "no-referrer" if request.path.lower().lstrip("/").startswith("api")
            else "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        for name in list(response.headers.keys()):
            if name.lower().startswith("access-control-"):
                del response.headers[name]      # never CORS, whatever a library adds
        return response


def _error(status: int, message: str, area: Area) -> Response:
    if area == "api":
        return Response(json.dumps({"error": message}), status=status,
                        mimetype="application/json")
    return Response(f"<!doctype html><title>{status}</title><p>{escape(message)}</p>",
                    status=status, mimetype="text/html")

