"""The dashboard's pages: one-time login links, a session cookie (HttpOnly,
SameSite=Strict), CSRF tokens on every form POST, the chats with filters and pages, report
downloads.

No JavaScript and nothing from elsewhere: filters are a plain GET form read on the server,
pages are links, the setting timelines inline SVG; the Content-Security-Policy allows only
this server's own style sheet. Page views read the engine's unsigned rows
(`LiveLedger.snapshot`); only downloads build and sign the full report.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, render_template, request

from auditor.html_report import PROVIDER_NAMES, VERDICTS, _Times
from auditor.report import FORMATS, MEDIA_TYPES, render
from auditor.times import format_time, utcnow
from server.auth import CodeRefused
from server.dashboard import (
    EXPIRING_DAYS,
    SORTS,
    ChatIndex,
    Filters,
    account_views,
    select,
    timeline,
)

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
    # Messages name commands in `backticks` for terminals; on a page, the words suffice.
    text = message.replace("`", "").strip()
    text = text[:1].upper() + text[1:]
    return _page("login.html", status, message=text if text.endswith(".") else text + ".")


@route("/login", methods=["GET"], endpoint="login")
def login() -> Response:
    return login_page("Open the one-time link that consent-ledger serve or "
                      "consent-ledger login printed in your terminal.", 200)


@route("/login/<code>", methods=["GET"], endpoint="login_code")
def login_code(code: str) -> Response:
    state = _state()
    try:
        state.login_codes.redeem(code)
    except CodeRefused as exc:
        return login_page(f"That link cannot be used: {exc}. Run consent-ledger login for "
                          "a fresh one.", exc.status)
    # Evaluate every chat and compile the page now, so the dashboard itself opens fast.
    _index(state.live)
    current_app.jinja_env.get_template("dashboard.html")
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


FORMAT_NOTES = {
    "json": ("JSON", "the signed report, for programs and for checking with consent-ledger verify"),
    "csv": ("CSV", "one line per chat, for a spreadsheet"),
    "html": ("HTML", "a page to keep or print, with timelines; its signature is inside"),
    "ics": ("Calendar", "the dates by which copies must be gone, for your calendar app"),
}


def _index(live: Any) -> ChatIndex:
    """The filter index of the current snapshot, built once per snapshot."""
    snap = live.snapshot()
    holder = current_app.extensions.setdefault("consent_ledger_dashboard",
                                               {"lock": threading.Lock(), "index": None})
    with holder["lock"]:
        index = holder["index"]
        if index is None or index.snap is not snap:
            index = holder["index"] = ChatIndex(snap)
    return index


@route("/", methods=["GET"], endpoint="dashboard")
def dashboard() -> Response:
    live = _state().live
    filters = Filters.from_args(request.args)
    index = _index(live)
    now = utcnow()
    stamp = now.timestamp()
    page = select(index, filters, stamp)
    history = live.account_history(as_of=now)
    line = timeline(live.accounts(), now)
    return _page(
        "dashboard.html", csrf=g.csrf, filters=filters, page=page,
        accounts=account_views(history, index, line), line=line, verdicts=VERDICTS,
        providers=PROVIDER_NAMES, sorts=SORTS, expiring_days=EXPIRING_DAYS,
        counts=index.verdicts, provider_counts=index.providers, total=len(index.snap.rows),
        events=index.snap.events, now_text=_Times().day_time(format_time(now)),
        soon={d: index.expiring_count(stamp, d) for d in EXPIRING_DAYS},
        formats=FORMAT_NOTES)


@route("/reports/<fmt>", methods=["GET"], endpoint="download")
def download(fmt: str) -> Response:
    if fmt not in FORMATS:
        return _page("message.html", 404, title="Not found",
                     message=f"There is no report format called {fmt!r}.")
    report = _state().live.report()
    stamp = report["as_of"][:10]
    return Response(render(report, fmt), headers={
        "Content-Type": MEDIA_TYPES[fmt],
        "Content-Disposition": f'attachment; filename="consent-ledger-report-{stamp}.{fmt}"'})
