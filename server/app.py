"""The Flask application factory: one `create_app`, the state it serves from, no globals.

Routes only parse and delegate to `auditor.live.LiveLedger`; the guard (server/guard.py)
has refused anything unwelcome before a route runs.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify

from auditor.live import LiveLedger
from server.auth import OneTimeCodes, Sessions, TokenStore, token_hash

DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 1 << 20


@dataclass
class ServerState:
    live: LiveLedger
    tokens: TokenStore
    pair_codes: OneTimeCodes = field(default_factory=OneTimeCodes)
    login_codes: OneTimeCodes = field(default_factory=OneTimeCodes)
    sessions: Sessions = field(default_factory=Sessions)
    cli_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        self._cli_hash = token_hash(self.cli_token)

    def is_cli_token(self, secret: str) -> bool:
        return hmac.compare_digest(token_hash(secret), self._cli_hash)


def create_app(state: ServerState, *, port: int = DEFAULT_PORT,
               max_body: int = DEFAULT_MAX_BODY, config: dict[str, Any] | None = None,
               fast_ingest: bool = True) -> Flask:
    """The app; with `fast_ingest`, `POST /api/v1/events` is answered by server/ingest.py's
    layer in front of Flask (same guard, same handler, same bytes), everything else by Flask."""
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config.update(PORT=port, MAX_BODY=max_body, MAX_CONTENT_LENGTH=None,
                      JSON_SORT_KEYS=False)
    if config:
        app.config.update(config)
    app.url_map.merge_slashes = False       # `//api` is not a way to `/api`
    app.url_map.strict_slashes = True       # nor is a trailing slash
    app.extensions["consent_ledger"] = state

    from server import api, guard, ingest, pages
    guard.install(app)
    if fast_ingest:
        ingest.install(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)

    @app.get("/openapi.json", endpoint="openapi", provide_automatic_options=False)
    def openapi() -> Response:
        from server.openapi import document
        return jsonify(document())

    return app
