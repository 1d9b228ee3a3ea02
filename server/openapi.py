"""The API as an OpenAPI 3.1 document, with the event and report schemas of CONTRACT.md.

Written as data next to the routes it describes; a test checks that every API route is here
and nothing else is, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from server.app import DEFAULT_PORT


def _schema(name: str) -> dict[str, Any]:
    doc = json.loads(resources.files("auditor").joinpath(f"schemas/{name}").read_text())
    doc.pop("$id", None)
    doc.pop("$schema", None)
    return doc


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"$ref": "#/components/schemas/Error"}
CHECKPOINT = {"$ref": "#/components/schemas/Checkpoint"}
REFUSALS = {
    "400": _json(ERROR, "Bad request: wrong Host, or invalid input naming the field"),
    "401": _json(ERROR, "No valid Bearer token"),
    "403": _json(ERROR, "A web origin, a cross-site request, or a token from another origin"),
}
WRITE_REFUSALS = {
    **REFUSALS,
    "413": _json(ERROR, "Body larger than the limit (1 MiB by default)"),
    "415": _json(ERROR, "Not Content-Type: application/json"),
}
BEARER = [{"bearer": []}]


def _op(summary: str, responses: dict[str, Any], *, public: bool = False,
        **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    op["security"] = [] if public else BEARER
    return op


@cache
def document() -> dict[str, Any]:
    obj = {"type": "object"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Consent Ledger local API", "version": "1",
                 "description": "Served on 127.0.0.1 only. Every call but pair, hello and "
                                "this document needs `Authorization: Bearer <token>`, from "
                                "the Origin the token was paired from."},
        "servers": [{"url": f"http://127.0.0.1:{DEFAULT_PORT}"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Event": _schema("event.schema.json"),
                "Report": _schema("report.schema.json"),
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"}, "field": {"type": ["string", "null"]},
                    "index": {"type": ["integer", "null"]}}},
                "Checkpoint": {"type": "object", "required": ["seq", "head", "signature"],
                               "properties": {"seq": {"type": "integer"},
                                              "head": {"type": "string"},
                                              "signature": {"type": "string"}}},
            },
        },
        "paths": {
            "/api/v1/pair": {"post": _op(
                "Trade a one-time pairing code for a token", public=True,
                requestBody={"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["code"],
                    "properties": {"code": {"type": "string"}}}}}},
                responses={"200": _json({"type": "object", "required": [
                    "token", "account_salt", "server_key"], "properties": {
                    "token": {"type": "string"},
                    "account_salt": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "server_key": {"type": "string"}}}),
                    **WRITE_REFUSALS, "429": _json(ERROR, "Too many wrong codes")})},
            "/api/v1/hello": {"get": _op(
                "Prove the server holds the ledger key", public=True,
                parameters=[{"name": "nonce", "in": "query", "required": True,
                             "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{16,64}$"}}],
                responses={"200": _json({"type": "object", "required": [
                    "server_key", "signature"], "properties": {
                    "server_key": {"type": "string"}, "signature": {"type": "string"}}}),
                    **REFUSALS})},
            "/api/v1/events": {"post": _op(
                "Append a batch of events durably (all or nothing)",
                requestBody={"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["events"], "additionalProperties": False,
                    "properties": {"events": {"type": "array",
                                              "items": {"$ref": "#/components/schemas/Event"}}}
                }}}},
                responses={"200": _json({"type": "object", "required": [
                    "stored", "duplicates", "head", "checkpoint"], "properties": {
                    "stored": {"type": "integer"}, "duplicates": {"type": "integer"},
                    "head": {"type": "string"}, "checkpoint": CHECKPOINT}}),
                    **WRITE_REFUSALS,
                    "503": _json(ERROR, "The ledger could not be written (a full disk): the "
                                        "batch was not acknowledged; send it again later")})},
            "/api/v1/chats/{provider}/{chat_id}": {"get": _op(
                "A chat's audit row and badge",
                parameters=[
                    {"name": "provider", "in": "path", "required": True,
                     "schema": {"enum": ["claude", "chatgpt", "gemini"]}},
                    {"name": "chat_id", "in": "path", "required": True,
                     "schema": {"type": "string"}},
                    {"name": "account", "in": "query", "required": False,
                     "schema": {"type": "string"}}],
                responses={"200": _json(obj), "404": _json(ERROR, "Never seen"),
                           **REFUSALS})},
            "/api/v1/report": {"get": _op(
                "The signed audit report as a download",
                parameters=[
                    {"name": "format", "in": "query", "required": False,
                     "schema": {"enum": ["json", "csv", "html", "ics"], "default": "json"}},
                    {"name": "as_of", "in": "query", "required": False,
                     "schema": {"type": "string"}}],
                responses={"200": {"description": "The report", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Report"}},
                    "text/csv": {"schema": {"type": "string"}},
                    "text/html": {"schema": {"type": "string"}},
                    "text/calendar": {"schema": {"type": "string"}}}}, **REFUSALS})},
            "/api/v1/health": {"get": _op(
                "Liveness and the ledger's head",
                responses={"200": _json({"type": "object", "required": [
                    "ok", "events", "head", "checkpoint"], "properties": {
                    "ok": {"type": "boolean"}, "events": {"type": "integer"},
                    "head": {"type": "string"}, "checkpoint": CHECKPOINT}}), **REFUSALS})},
            "/api/v1/accounts": {"get": _op(
                "The account labels the ledger knows",
                responses={"200": _json(obj), **REFUSALS})},
            "/api/v1/pairing-codes": {"post": _op(
                "A fresh one-time pairing code (command line only)",
                responses={"200": _json(obj), **WRITE_REFUSALS})},
            "/api/v1/login-links": {"post": _op(
                "A fresh one-time dashboard login URL (command line only)",
                responses={"200": _json(obj), **WRITE_REFUSALS})},
            "/api/v1/tokens": {"get": _op(
                "The paired clients (command line only)",
                responses={"200": _json(obj), **REFUSALS})},
            "/api/v1/tokens/{token_id}": {"delete": _op(
                "Revoke a paired client (command line only)",
                parameters=[{"name": "token_id", "in": "path", "required": True,
                             "schema": {"type": "string"}}],
                responses={"200": _json(obj), "404": _json(ERROR, "No such client"),
                           **WRITE_REFUSALS})},
            "/openapi.json": {"get": _op("This document", public=True,
                                        responses={"200": _json(obj)})},
        },
    }
