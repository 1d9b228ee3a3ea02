"""The OpenAPI document keeps up with the app: the same routes, methods and event schema.

The app is built with `create_app` over a temporary live ledger and its `url_map` walked;
the document is the one `/openapi.json` serves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from auditor.live import LiveLedger
from server.app import DEFAULT_PORT, ServerState, create_app
from server.auth import TokenStore
from server.guard import POLICIES

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DESIGN_SCHEMAS = Path("/work/shared/design/schemas")


@pytest.fixture
def app(data_dir: Path, config_dir: Path) -> Iterator[Flask]:
    live = LiveLedger.open(data_dir, config_dir)
    try:
        yield create_app(ServerState(live=live, tokens=TokenStore(config_dir / "tokens.json")))
    finally:
        live.close()


@pytest.fixture
def document(app: Flask) -> dict[str, Any]:
    client = app.test_client()
    response = client.get("/openapi.json", base_url=f"http://127.0.0.1:{DEFAULT_PORT}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert not [h for h, _ in response.headers if h.lower().startswith("access-control")]
    return json.loads(response.data)


def _openapi_path(rule: str) -> str:
    """`/api/v1/chats/<provider>/<path:chat_id>` -> `/api/v1/chats/{provider}/{chat_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _app_routes(app: Flask) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule == "/openapi.json":
            methods = {m.lower() for m in rule.methods or ()} - {"head"}  # HEAD: with GET
            routes.setdefault(_openapi_path(rule.rule), set()).update(methods)
    return routes


def _doc_routes(document: dict[str, Any]) -> dict[str, set[str]]:
    return {path: set(item) & HTTP_METHODS for path, item in document["paths"].items()}


def test_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_event_schema_is_the_projects(document: dict[str, Any]) -> None:
    own = json.loads(resources.files("auditor").joinpath("schemas/event.schema.json")
                     .read_text())
    own.pop("$id", None)
    own.pop("$schema", None)
    assert document["components"]["schemas"]["Event"] == own
    items = (document["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]
             ["application/json"]["schema"]["properties"]["events"]["items"])
    assert items == {"$ref": "#/components/schemas/Event"}


@pytest.mark.skipif(not DESIGN_SCHEMAS.is_dir(), reason="design docs not checked out here")
@pytest.mark.parametrize("name", ["event.schema.json", "report.schema.json"])
def test_schemas_match_the_contracts_copy(name: str) -> None:
    own = json.loads(resources.files("auditor").joinpath(f"schemas/{name}").read_text())
    assert own == json.loads((DESIGN_SCHEMAS / name).read_text())


def test_paths_are_exactly_the_apps_api_routes(app: Flask, document: dict[str, Any]) -> None:
    routes = _app_routes(app)
    assert _doc_routes(document) == routes
    assert all(path.startswith("/api/v1/") for path in routes if path != "/openapi.json")


def test_no_api_route_answers_options(app: Flask) -> None:
    """A preflight must never get 2xx: no API rule has the automatic OPTIONS handler.
    (Flask's static route keeps its own; the guard refuses it a web origin.)"""
    offenders = [r.rule for r in app.url_map.iter_rules()
                 if "OPTIONS" in (r.methods or ()) and r.endpoint != "static"]
    assert offenders == []


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        wanted = set(re.findall(r"{([^}]+)}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == wanted, (path, method)


def test_public_operations_are_exactly_the_guards_public_endpoints(
        app: Flask, document: dict[str, Any]) -> None:
    """`security: []` in the document if and only if the guard lets the call in untokened."""
    for rule in app.url_map.iter_rules():
        path = _openapi_path(rule.rule)
        if path not in document["paths"]:
            continue
        public = POLICIES[rule.endpoint].access == "public"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            op = document["paths"][path][method.lower()]
            assert (op["security"] == []) is public, (path, method)


def test_every_route_has_a_policy_and_every_policy_a_route(app: Flask) -> None:
    """Default deny: a route missing from the guard's table could never be reached."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(POLICIES)


def test_writes_take_json_only(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                assert set(op["requestBody"]["content"]) == {"application/json"}, path
            if method in ("post", "put", "patch", "delete") and op["security"] != []:
                assert {"401", "403", "413", "415"} <= set(op["responses"]), (path, method)
