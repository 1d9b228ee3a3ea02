"""The dashboard's pages: one-time login links, a session cookie (HttpOnly,
SameSite=Strict), CSRF tokens on every form, report downloads."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request

from auditor.report import FORMATS, MEDIA_TYPES, render
from server.auth import CodeRefused

bp = Blueprint("pages", __name__)
COOKIE = "cl_session"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def route(rule: str, **options: Any):  # type: ignore[no-untyped-def]
    return bp.route(rule, provide_automatic_options=False, **options)


def _state() -> Any:
    return current_app.extensions["consent_ledger"]


def _page(template: str, status: int = 200, **context: Any) -> Response:
    response = Response(render_template(template, **context), status=status,
                        mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    return response


def login_page(message: str, status: int) -> Response:
    return _page("login.html", status, message=message)


@route("/login", methods=["GET"], endpoint="login")
def login() -> Response:
    return login_page("Open the one-time link that `consent-ledger serve` or "
                      "`consent-ledger login` printed.", 200)


@route("/login/<code>", methods=["GET"], endpoint="login_code")
def login_code(code: str) -> Response:
    state = _state()
    try:
        state.login_codes.redeem(code)
    except CodeRefused as exc:
        return login_page(f"That link cannot be used: {exc}. Run `consent-ledger login` for "
                          "a fresh one.", exc.status)
    sid, _csrf = state.sessions.open()
    response = redirect("/", code=303)
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/")
    return response


@route("/logout", methods=["POST"], endpoint="logout")
def logout() -> Response:
    _state().sessions.close(request.cookies.get(COOKIE))
    response = login_page("You are logged out.", 200)
    response.delete_cookie(COOKIE, path="/")
    return response


@route("/", methods=["GET"], endpoint="dashboard")
def dashboard() -> Response:
    report = _state().live.report()
    return _page("dashboard.html", report=report, csrf=g.csrf, formats=FORMATS)


@route("/reports/<fmt>", methods=["GET"], endpoint="download")
def download(fmt: str) -> Response:
    if fmt not in FORMATS:
        return _page("login.html", 404, message=f"No report format {fmt!r}.")
    report = _state().live.report()
    stamp = report["as_of"][:10]
    return Response(render(report, fmt), headers={
        "Content-Type": MEDIA_TYPES[fmt],
        "Content-Disposition": f'attachment; filename="consent-ledger-report-{stamp}.{fmt}"'})
