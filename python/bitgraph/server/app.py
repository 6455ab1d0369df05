"""The HTTP layer: routes, authentication, limits, errors and metrics over the collections.

Starlette (ASGI) under uvicorn; JSON by orjson (the fastest of the parsers measured: a 384-d
vector body parses into numpy in ~13 us with orjson, ~15 us with msgspec, ~73 us with the
standard library; a result encodes in 0.3 / 0.5 / 3.4 us). Every handler goes through
:func:`_endpoint`, which checks the key, caps the body, times the request and turns every error
into a JSON 4xx (a 5xx only for a bug or a failing disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

import bitgraph as bg

from .auth import ApiKeys, check_access
from .batcher import SearchBatcher
from .collection import CHECKPOINT_LOG_BYTES, Collection, Upsert
from .errors import ApiError, bad_request, too_large
from .fast_path import SearchFastPath
from .metrics import Metrics
from .openapi import DOCS_HTML, openapi_document
from .registry import Registry
from .requests import (
    Limits,
    check_keys,
    get_bool,
    get_float,
    get_int,
    parse_attributes,
    parse_body,
    parse_filter,
    parse_id,
    parse_ids,
    parse_payload,
    parse_vector,
    parse_vectors,
)
from .spec import CollectionSpec

log = logging.getLogger("bitgraph.server")
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


@dataclass
class ServerConfig:
    """Everything ``bitgraph serve`` takes."""

    data_dir: str
    api_keys: ApiKeys | None = None
    limits: Limits = field(default_factory=Limits)
    batching: bool = True
    max_batch: int = 256
    max_wait_us: float = 200.0
    max_queue: int = 4096
    checkpoint_bytes: int = CHECKPOINT_LOG_BYTES


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(orjson.dumps(data, option=_JSON_OPTS), status_code=status,
                    media_type="application/json", headers=headers)


class Service:
    """The state behind the routes: the registry, one batcher per collection, the metrics."""

    def __init__(self, config: ServerConfig, registry: Any = None) -> None:
        self.config = config
        # registry: the data dir's collections, or another source of them with the same
        # methods (the sharded front of bitgraph.distributed.serve)
        self.registry = (Registry(config.data_dir, config.checkpoint_bytes) if registry is None
                         else registry)
        self.batchers: dict[str, SearchBatcher] = {}
        self.metrics = Metrics(self._collection_figures)
        self._batchers_lock = threading.Lock()

    def _collection_figures(self) -> list[tuple[str, int, int, int]]:
        out = []
        for name, coll in list(self.registry.collections.items()):
            b = self.batchers.get(name)
            out.append((name, coll.count(), coll.nbytes(), b.depth if b else 0))
        return out

    def batcher(self, coll: Collection) -> SearchBatcher:
        b = self.batchers.get(coll.spec.name)
        if b is None:
            with self._batchers_lock:
                b = self.batchers.get(coll.spec.name)
                if b is None:
                    cfg = self.config
                    b = SearchBatcher(coll.search, max_batch=cfg.max_batch,
                                      max_wait_s=cfg.max_wait_us * 1e-6,
                                      max_queue=cfg.max_queue, name=coll.spec.name,
                                      on_batch=self.metrics.batch_size.observe)
                    self.batchers[coll.spec.name] = b
        return b

    def drop_batcher(self, name: str) -> None:
        with self._batchers_lock:
            b = self.batchers.pop(name, None)
        if b is not None:
            b.stop()

    def shutdown(self) -> None:
        """Drains every batcher, then checkpoints every collection."""
        for name in list(self.batchers):
            self.drop_batcher(name)
        self.registry.close_all()


# --- plumbing ----------------------------------------------------------------------------------

Handler = Callable[[Request, Service], Awaitable[Response]]


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise bad_request("Content-Length must be a number")
        if int(declared) > limit:
            raise too_large(f"the body is {declared} bytes; at most {limit} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, service: Service) -> dict[str, Any]:
    raw = await read_body(request, service.config.limits.max_body_bytes)
    if len(raw) > 1 << 20:  # a large body parses off the event loop
        return await run_in_threadpool(parse_body, raw)
    return parse_body(raw)


def error_parts(exc: Exception, what: str) -> tuple[int, bytes, dict[str, str]]:
    """(status, JSON body, headers) of an error: a 4xx for whatever a request got wrong, a
    logged 500 for anything else (a bug or a failing disk)."""
    if isinstance(exc, ApiError):
        return exc.status, orjson.dumps(exc.body()), exc.headers
    if isinstance(exc, (bg.UnknownIdError, KeyError)):
        return 404, orjson.dumps(_error("not_found", str(exc))), {}
    if isinstance(exc, (bg.BitgraphValueError, bg.BitgraphTypeError)):
        return 400, orjson.dumps(_error("bad_request", str(exc))), {}
    log.error("%s failed", what, exc_info=exc)
    return 500, orjson.dumps(_error("internal", "internal error (logged by the server)")), {}


def _endpoint(route: str, handler: Handler, service: Service, *, write: bool = False,
              open_route: bool = False) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            if not open_route:
                check_access(service.config.api_keys, request.headers, write)
            response = await handler(request, service)
        except ClientDisconnect:
            response = Response(status_code=499)
        except Exception as exc:  # noqa: BLE001 - every error becomes an answer
            status, body, headers = error_parts(exc, f"{request.method} {request.url.path}")
            response = Response(body, status, headers, media_type="application/json")
        service.metrics.observe(route, request.method, response.status_code,
                                time.perf_counter() - t0)
        return response

    return endpoint


def _error(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def _collection(request: Request, service: Service) -> Collection:
    return service.registry.get(request.path_params["name"])


# --- health, metrics, docs ---------------------------------------------------------------------

async def livez(request: Request, service: Service) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request, service: Service) -> Response:
    reg = service.registry
    if reg.ready:
        return json_response({"status": "ready", "collections": len(reg.collections)})
    return json_response({"status": "loading" if reg.loading else "failed",
                          "failed": reg.failed}, 503, {"Retry-After": "1"})


async def metrics(request: Request, service: Service) -> Response:
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")


async def openapi(request: Request, service: Service) -> Response:
    return json_response(openapi_document())


async def docs(request: Request, service: Service) -> Response:
    return HTMLResponse(DOCS_HTML)


# --- collections -------------------------------------------------------------------------------

async def list_collections(request: Request, service: Service) -> Response:
    return json_response({"collections": service.registry.names()})


async def create_collection(request: Request, service: Service) -> Response:
    spec = CollectionSpec.from_json(request.path_params["name"], await json_body(request, service))
    coll = await run_in_threadpool(service.registry.create, spec)
    return json_response(coll.info(), 201)


async def collection_info(request: Request, service: Service) -> Response:
    return json_response(_collection(request, service).info())


async def delete_collection(request: Request, service: Service) -> Response:
    name = request.path_params["name"]
    if name not in service.registry.failed:
        service.registry.get(name)
    service.drop_batcher(name)
    await run_in_threadpool(service.registry.delete, name)
    return json_response({"deleted": name})


async def checkpoint(request: Request, service: Service) -> Response:
    coll = _collection(request, service)
    await run_in_threadpool(coll.checkpoint)
    return json_response(coll.info())


# --- points ------------------------------------------------------------------------------------

_POINT_KEYS = frozenset(("id", "vector", "attributes", "payload"))


def parse_upsert(body: dict[str, Any], dim: int, limits: Limits
                 ) -> tuple[Upsert | None, np.ndarray, list[dict[str, Any]], list[bytes | None]]:
    check_keys(body, frozenset(("points",)), "upsert")
    points = body.get("points")
    if not isinstance(points, list) or not points:
        raise bad_request("points must be a non-empty array of {id, vector, attributes, payload}")
    if len(points) > limits.max_points:
        raise bad_request(f"at most {limits.max_points} points per upsert, got {len(points)}")
    vectors = np.empty((len(points), dim), dtype=np.float32)
    attributes, payloads, ids = [], [], []
    for i, p in enumerate(points):
        where = f"points[{i}]"
        if not isinstance(p, dict):
            raise bad_request(f"{where} must be an object")
        check_keys(p, _POINT_KEYS, where)
        if "vector" not in p:
            raise bad_request(f"{where}: vector is required")
        vectors[i] = parse_vector(p["vector"], dim, f"{where}.vector")
        attributes.append(parse_attributes(p.get("attributes"), f"{where}.attributes"))
        payloads.append(parse_payload(p.get("payload"), f"{where}.payload"))
        if "id" in p:
            ids.append(parse_id(p["id"], f"{where}.id"))
    if ids and len(ids) != len(points):
        raise bad_request("give an id for every point or for none (then ids are assigned)")
    if not ids:
        return None, vectors, attributes, payloads
    return Upsert(np.array(ids, dtype=np.int64), vectors, attributes, payloads), vectors, \
        attributes, payloads


async def upsert(request: Request, service: Service) -> Response:
    coll = _collection(request, service)
    body = await json_body(request, service)
    batch, vectors, attributes, payloads = parse_upsert(body, coll.spec.dim,
                                                        service.config.limits)
    ids = await run_in_threadpool(coll.upsert, batch, vectors, attributes, payloads)
    return json_response({"ids": ids, "count": coll.count()})


async def delete_points(request: Request, service: Service) -> Response:
    coll = _collection(request, service)
    body = await json_body(request, service)
    check_keys(body, frozenset(("ids", "filter", "strict")), "delete")
    if ("ids" in body) == ("filter" in body):
        raise bad_request("delete takes either ids or a filter")
    if "ids" in body:
        ids = parse_ids(body["ids"], "ids", service.config.limits.max_points)
        n = await run_in_threadpool(coll.delete, ids, get_bool(body, "strict", False))
    else:
        filt = parse_filter(body["filter"], "filter")
        if filt is None:
            raise bad_request("filter must not be null (delete every point by deleting the "
                              "collection)")
        n = await run_in_threadpool(coll.delete_matching, filt)
    return json_response({"deleted": n, "count": coll.count()})


async def get_points(request: Request, service: Service) -> Response:
    coll = _collection(request, service)
    body = await json_body(request, service)
    check_keys(body, frozenset(("ids", "with_vector", "with_payload")), "get")
    ids = parse_ids(body.get("ids"), "ids", service.config.limits.max_points)
    points = await run_in_threadpool(coll.get, ids, get_bool(body, "with_vector", False),
                                     get_bool(body, "with_payload", True))
    return json_response({"points": points})


async def get_point(request: Request, service: Service) -> Response:
    coll = _collection(request, service)
    text = request.path_params["id"]
    if not text.isdigit() or len(text) > 19:
        raise bad_request(f"a point id is a non-negative integer, got {text[:40]!r}")
    pid = parse_id(int(text), "id")
    points = await run_in_threadpool(coll.get, np.array([pid], np.int64), True, True)
    if not points:
        raise ApiError(404, "not_found", f"no point with id {pid} in {coll.spec.name!r}")
    return json_response(points[0])


async def count_points(request: Request, service: Service) -> Response:
    coll = _collection(request, service)
    body = await json_body(request, service)
    check_keys(body, frozenset(("filter",)), "count")
    filt = parse_filter(body.get("filter"), "filter")
    index = coll.index
    n = 0 if index is None else (len(index) if filt is None else index.count(filt))
    return json_response({"count": int(n)})


# --- search ------------------------------------------------------------------------------------

_SEARCH_KEYS = frozenset(("vector", "vectors", "k", "ef", "oversample", "filter", "filters",
                          "with_payload"))


def _rows(ids: np.ndarray, dists: np.ndarray) -> dict[str, Any]:
    # JSON has no infinity: orjson writes the +inf of padded slots (id -1) as null.
    return {"ids": ids, "distances": dists}


async def search(request: Request, service: Service) -> Response:
    """POST .../points/search through Starlette (the fast path of fast_path.py answers the
    same requests without it; both run :func:`search_json`)."""
    coll = _collection(request, service)
    data = await search_json(service, coll, lambda: read_body(
        request, service.config.limits.max_body_bytes))
    return Response(data, media_type="application/json")


async def search_json(service: Service, coll: Collection,
                      read: Callable[[], Awaitable[bytes]]) -> bytes:
    """The answer of a search request, given how to read its body. A single query waits in
    the collection's batcher (when batching is on); a batch is one index search."""
    cfg = service.config
    if cfg.batching:
        b = service.batcher(coll)
        with b.arriving() as arrival:
            body = parse_body(await read())  # search bodies are small: parsed on the loop
            params = search_params(body, coll, cfg.limits)
            if params[0] is not None:  # one query: queue it for the next batch
                vec, k, ef, filt, oversample, with_payload = params
                fut = arrival.submit_async(asyncio.get_running_loop(), vec, k, ef, filt,
                                           oversample)
        if params[0] is not None:
            return single_answer(coll, await fut, with_payload)
    else:
        body = parse_body(await read())  # search bodies are small: parsed on the loop
        params = search_params(body, coll, cfg.limits)
        if params[0] is not None:
            vec, k, ef, filt, oversample, with_payload = params
            res = await run_in_threadpool(coll.search, vec[None], k, ef, filt, oversample, 1)
            return single_answer(coll, (res.ids[0], res.distances[0]), with_payload)
    return await _search_batch(body, coll, cfg.limits)


def single_answer(coll: Collection, row: tuple[np.ndarray, np.ndarray],
                  with_payload: bool) -> bytes:
    """The JSON answer of a one-query search from its (ids, distances) row."""
    ids, dists = row
    out = _rows(ids, dists)
    if with_payload:
        out["payloads"] = coll.payloads_of(ids[None])[0]
    return orjson.dumps(out, option=_JSON_OPTS)


def search_params(body: dict[str, Any], coll: Collection, limits: Limits) -> tuple[Any, ...]:
    """(vector, k, ef, filter, oversample, with_payload) of a one-query search; (None,) for a
    batch (``vectors``)."""
    check_keys(body, _SEARCH_KEYS, "search")
    if ("vector" in body) == ("vectors" in body):
        raise bad_request("search takes either vector (one query) or vectors (a batch)")
    if "vectors" in body:
        return (None,)
    if "filters" in body:
        raise bad_request("filters (one per query) goes with vectors; use filter for one query")
    k = get_int(body, "k", 10, 1, limits.max_k)
    ef = get_int(body, "ef", None, 1, limits.max_ef)
    oversample = get_float(body, "oversample", 1.0, 1000.0)
    return (parse_vector(body["vector"], coll.spec.dim, "vector"), k, ef,
            parse_filter(body.get("filter"), "filter"), oversample,
            get_bool(body, "with_payload", False))


async def _search_batch(body: dict[str, Any], coll: Collection, limits: Limits) -> bytes:
    queries = parse_vectors(body["vectors"], coll.spec.dim, "vectors", limits.max_queries)
    k = get_int(body, "k", 10, 1, limits.max_k)
    ef = get_int(body, "ef", None, 1, limits.max_ef)
    oversample = get_float(body, "oversample", 1.0, 1000.0)
    if "filter" in body and "filters" in body:
        raise bad_request("give filter (for every query) or filters (one per query), not both")
    filt: Any = parse_filter(body.get("filter"), "filter")
    if "filters" in body:
        fl = body["filters"]
        if not isinstance(fl, list) or len(fl) != queries.shape[0]:
            raise bad_request(f"filters must be an array with one filter (or null) per query "
                              f"({queries.shape[0]})")
        filt = [parse_filter(f, f"filters[{i}]") for i, f in enumerate(fl)]
    res = await run_in_threadpool(coll.search, queries, k, ef, filt, oversample)
    out = _rows(res.ids, res.distances)
    if get_bool(body, "with_payload", False):
        out["payloads"] = coll.payloads_of(res.ids)
    return orjson.dumps(out, option=_JSON_OPTS)


# --- the app -----------------------------------------------------------------------------------

async def _not_found(request: Request, exc: HTTPException) -> Response:
    code = "not_found" if exc.status_code == 404 else "method_not_allowed"
    return json_response(_error(code, f"{request.method} {request.url.path}: {exc.detail}"),
                         exc.status_code)


def create_app(config: ServerConfig) -> Starlette:
    """The ASGI app; collections load in the background at startup (``/readyz`` says when)."""
    return build_app(Service(config))


def build_app(service: Service) -> Starlette:
    """The ASGI app over a service: the routes, the lifespan (``service.registry.load_all``
    in the background at startup, ``service.shutdown`` at the end) and the search fast path.
    The sharded front (bitgraph.distributed.serve) passes its own service of the same shape."""

    def r(path: str, handler: Handler, methods: list[str], **kw: bool) -> Route:
        return Route(path, _endpoint(path, handler, service, **kw), methods=methods)

    c = "/collections/{name}"
    routes = [
        r("/livez", livez, ["GET"], open_route=True),
        r("/readyz", readyz, ["GET"], open_route=True),
        r("/metrics", metrics, ["GET"]),
        r("/openapi.json", openapi, ["GET"], open_route=True),
        r("/docs", docs, ["GET"], open_route=True),
        r("/collections", list_collections, ["GET"]),
        r(c, create_collection, ["PUT"], write=True),
        r(c, collection_info, ["GET"]),
        r(c, delete_collection, ["DELETE"], write=True),
        r(c + "/checkpoint", checkpoint, ["POST"], write=True),
        r(c + "/points", upsert, ["PUT"], write=True),
        r(c + "/points/delete", delete_points, ["POST"], write=True),
        r(c + "/points/get", get_points, ["POST"]),
        r(c + "/points/count", count_points, ["POST"]),
        r(c + "/points/search", search, ["POST"]),
        r(c + "/points/{id}", get_point, ["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        loader = threading.Thread(target=service.registry.load_all, name="bitgraph-load",
                                  daemon=True)
        loader.start()
        yield
        loader.join()
        await run_in_threadpool(service.shutdown)

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: _not_found, 405: _not_found})
    app.state.service = service
    return SearchFastPath(app, service, search_json, error_parts)
