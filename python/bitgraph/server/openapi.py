"""The OpenAPI 3.1 description of the service (served at /openapi.json, rendered at /docs)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .._version import __version__

_VECTOR = {"oneOf": [{"type": "array", "items": {"type": "number"}},
                     {"type": "string", "description": "base64 of little-endian float32"}]}
_FILTER = {"type": "object", "description": (
    "bitgraph.Filter JSON (Filter.to_json()): {\"version\": 1, \"expr\": E} or a bare E, with E "
    "one of {op: eq, field, value}, {op: isin|has_any|has_all, field, values}, "
    "{op: range, field, gte, lte}, {op: ids, values}, {op: and|or, args: [E...]}, "
    "{op: not, arg: E}")}
_ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "code": {"type": "string"}, "message": {"type": "string"}}}}}
_SCHEMAS: dict[str, Any] = {
    "Error": _ERROR,
    "CollectionConfig": {"type": "object", "required": ["dim"], "properties": {
        "dim": {"type": "integer", "minimum": 1},
        "metric": {"enum": ["cosine", "l2", "ip"], "default": "cosine"},
        "kind": {"enum": ["hnsw", "flat", "binary", "ivf"], "default": "hnsw"},
        "storage": {"enum": ["float32", "float16", "int8"], "default": "float32"},
        "M": {"type": "integer", "default": 16}, "ef_construction": {"type": "integer",
                                                                     "default": 200},
        "seed": {"type": "integer", "default": 0},
        "binarizer": {"type": "object", "properties": {
            "loops": {"type": "integer"}, "code_dim": {"type": "integer"},
            "learned": {"type": "boolean"}, "train_size": {"type": "integer", "default": 1000},
            "graph": {"enum": ["hnsw", "flat"]}, "rerank": {"enum": ["memory", "mmap", None]}}}}},
    "Point": {"type": "object", "required": ["vector"], "properties": {
        "id": {"type": "integer", "minimum": 0}, "vector": _VECTOR,
        "attributes": {"type": "object", "additionalProperties": {"oneOf": [
            {"type": "integer"}, {"type": "number"},
            {"type": "array", "items": {"type": "integer"}}]}},
        "payload": {"type": ["object", "null"]}}},
    "Search": {"type": "object", "properties": {
        "vector": _VECTOR, "vectors": {"type": "array", "items": _VECTOR},
        "k": {"type": "integer", "default": 10}, "ef": {"type": "integer"},
        "oversample": {"type": "number"}, "filter": _FILTER,
        "filters": {"type": "array", "items": {"oneOf": [_FILTER, {"type": "null"}]}},
        "with_payload": {"type": "boolean", "default": False}}},
    "SearchResult": {"type": "object", "description": (
        "one query: ids / distances are lists of k; a batch: lists of lists. Padded slots "
        "have id -1 and distance null."), "properties": {
        "ids": {"type": "array"}, "distances": {"type": "array"}, "payloads": {"type": "array"}}},
}


def _op(summary: str, body: str | None = None, ok: str = "200", write: bool = False
        ) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {
        ok: {"description": "success"},
        "4XX": {"description": "a JSON error naming the problem",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"} if body in _SCHEMAS
            else {"type": "object", "description": body}}}}
    op["security"] = [{"apiKey": []}]
    if write:
        op["description"] = "needs the admin key when the server has keys"
    return op


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    c = "/collections/{name}"
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths = {
        "/livez": {"get": {"summary": "the process is up", "responses": {"200": {"description": "up"}}}},
        "/readyz": {"get": {"summary": "every collection is loaded",
                            "responses": {"200": {"description": "ready"},
                                          "503": {"description": "loading or failed"}}}},
        "/metrics": {"get": _op("Prometheus metrics")},
        "/collections": {"get": _op("list collections")},
        c: {"parameters": name,
            "put": _op("create a collection", "CollectionConfig", "201", True),
            "get": _op("count, nbytes and config"),
            "delete": _op("delete a collection and its files", write=True)},
        c + "/checkpoint": {"parameters": name, "post": _op(
            "write a snapshot and empty the log", write=True)},
        c + "/points": {"parameters": name, "put": _op(
            "upsert points: {points: [Point]}; durable (logged and fsync'd) when answered",
            "{points: [Point]}", write=True)},
        c + "/points/delete": {"parameters": name, "post": _op(
            "delete by ids or by filter", "{ids: [int]} or {filter: Filter}", write=True)},
        c + "/points/get": {"parameters": name, "post": _op(
            "points by id", "{ids: [int], with_vector: bool, with_payload: bool}")},
        c + "/points/count": {"parameters": name, "post": _op("count points", "{filter}")},
        c + "/points/search": {"parameters": name, "post": _op(
            "k nearest neighbours of one query (vector) or a batch (vectors)", "Search")},
        c + "/points/{id}": {"parameters": name + [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": _op("one point with its vector, attributes and payload")},
    }
    return {"openapi": "3.1.0",
            "info": {"title": "bitgraph serve", "version": __version__},
            "paths": paths,
            "components": {"schemas": _SCHEMAS, "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"}}}}


DOCS_HTML = """<!doctype html>
<html><head><title>bitgraph serve: API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>
"""
