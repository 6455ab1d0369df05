"""``bitgraph.Client``: a served collection with the verbs of an embedded index.

>>> client = bg.Client("http://127.0.0.1:8080", api_key=None)
>>> docs = client.create_collection("docs", dim=384, metric="cosine")
>>> docs.add(vectors, ids, attributes={"lang": langs}, payloads=[{"title": t} for t in titles])
>>> ids, distances = docs.search(queries, k=10, filter=bg.Filter.eq("lang", 2))

``add`` / ``search`` / ``remove`` / ``count`` / ``get_vectors`` / ``get_attributes`` / ``len``
take and return what :class:`bitgraph.HNSWIndex` does (a :class:`bitgraph.SearchResult`), so code
moves between an embedded index and a served collection unchanged. Vectors travel as base64
float32. Needs the ``server`` extra (httpx).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import httpx
import numpy as np
import orjson

from .errors import BitgraphError, BitgraphValueError, UnknownIdError
from .filters import Filter
from .result import SearchResult

_UPSERT_CHUNK = 5_000  # points per request (the server takes at most 10,000)
_SEARCH_CHUNK = 1_000  # queries per request (the server takes at most 1,024)


class ServiceError(BitgraphError):
    """The server answered with an error: ``status`` (HTTP), ``code`` and the message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class ServiceValueError(ServiceError, BitgraphValueError):
    """400: the request was malformed or its values wrong (the message names what)."""


class ServiceNotFound(ServiceError, UnknownIdError):
    """404: no such collection or point."""


class ServiceAuthError(ServiceError, PermissionError):
    """401 / 403: no key, a wrong key, or a read-only key used to write."""


class ServiceOverloaded(ServiceError):
    """429 / 503: try again later (``retry_after`` seconds)."""

    retry_after: float = 1.0


_ERRORS = {400: ServiceValueError, 413: ServiceValueError, 404: ServiceNotFound,
           401: ServiceAuthError, 403: ServiceAuthError, 429: ServiceOverloaded,
           503: ServiceOverloaded}


def _b64(rows: np.ndarray) -> list[str]:
    rows = np.ascontiguousarray(rows, dtype="<f4")
    return [base64.b64encode(r.tobytes()).decode() for r in rows]


class Client:
    """A connection to ``bitgraph serve`` (thread-safe; one connection pool)."""

    def __init__(self, url: str = "http://127.0.0.1:8080", api_key: str | None = None, *,
                 timeout: float = 60.0) -> None:
        headers = {"content-type": "application/json"}
        if api_key:
            headers["api-key"] = api_key
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call of the HTTP API: the parsed JSON answer, or a ServiceError."""
        content = None if body is None else orjson.dumps(body)
        r = self._http.request(method, path, content=content)
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                code, message = err["code"], err["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", r.text[:200]
            exc = _ERRORS.get(r.status_code, ServiceError)(r.status_code, code, message)
            if isinstance(exc, ServiceOverloaded):
                exc.retry_after = float(r.headers.get("retry-after", 1))
            raise exc
        return orjson.loads(r.content) if r.content else None

    # --- service ------------------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether every collection is loaded (``/readyz``)."""
        return self._http.get("/readyz").status_code == 200

    def list_collections(self) -> list[str]:
        return list(self.request("GET", "/collections")["collections"])

    def create_collection(self, name: str, dim: int, *, metric: str = "cosine",
                          kind: str = "hnsw", storage: str | None = None, M: int | None = None,
                          ef_construction: int | None = None, seed: int | None = None,
                          binarizer: dict[str, Any] | None = None) -> RemoteCollection:
        """Creates a collection (kind "hnsw", "flat" or "binary") and returns it."""
        config: dict[str, Any] = {"dim": dim, "metric": metric, "kind": kind}
        for key, value in (("storage", storage), ("M", M), ("ef_construction", ef_construction),
                           ("seed", seed), ("binarizer", binarizer)):
            if value is not None:
                config[key] = value
        self.request("PUT", f"/collections/{name}", config)
        return RemoteCollection(self, name)

    def collection(self, name: str) -> RemoteCollection:
        """An existing collection (raises ServiceNotFound if there is none)."""
        coll = RemoteCollection(self, name)
        coll.info()
        return coll

    def delete_collection(self, name: str) -> None:
        self.request("DELETE", f"/collections/{name}")


class RemoteCollection:
    """A served collection with the verbs of an embedded index."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name
        self._path = f"/collections/{name}"
        self._dim: int | None = None

    def info(self) -> dict[str, Any]:
        """count, nbytes, config, snapshot generation and log size."""
        info = self._client.request("GET", self._path)
        self._dim = int(info["config"]["dim"])
        return info

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.info()
        assert self._dim is not None
        return self._dim

    def __len__(self) -> int:
        return int(self.info()["count"])

    def _matrix(self, x: Any, what: str) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise BitgraphValueError(f"{what} must be (n, {self.dim}), got shape {arr.shape}")
        return arr

    def add(self, vectors: Any, ids: Any = None, *, attributes: dict[str, Any] | None = None,
            payloads: Iterable[dict[str, Any] | None] | None = None) -> np.ndarray:
        """Upserts points (durable when it returns); returns their ids. ``attributes`` is
        ``{field: one value per vector}`` as for an embedded index; ``payloads`` one JSON
        object (or None) per vector. Sent in chunks of 5,000 points."""
        x = self._matrix(vectors, "vectors")
        n = x.shape[0]
        id_list = None if ids is None else [int(i) for i in np.asarray(ids).reshape(-1)]
        if id_list is not None and len(id_list) != n:
            raise BitgraphValueError(f"ids has {len(id_list)} entries for {n} vectors")
        cols = {f: list(v) for f, v in (attributes or {}).items()}
        for f, v in cols.items():
            if len(v) != n:
                raise BitgraphValueError(f"attribute {f!r} has {len(v)} values for {n} vectors")
        pays = None if payloads is None else list(payloads)
        if pays is not None and len(pays) != n:
            raise BitgraphValueError(f"payloads has {len(pays)} entries for {n} vectors")
        out = []
        for start in range(0, n, _UPSERT_CHUNK):
            stop = min(n, start + _UPSERT_CHUNK)
            points = []
            for j, vec in zip(range(start, stop), _b64(x[start:stop])):
                p: dict[str, Any] = {"vector": vec}
                if id_list is not None:
                    p["id"] = id_list[j]
                if cols:
                    p["attributes"] = {f: _plain(v[j]) for f, v in cols.items()}
                if pays is not None and pays[j] is not None:
                    p["payload"] = pays[j]
                points.append(p)
            out.extend(self._client.request("PUT", self._path + "/points",
                                            {"points": points})["ids"])
        return np.asarray(out, dtype=np.int64)

    def search(self, queries: Any, k: int = 10, *, ef: int | None = None,
               filter: Filter | list[Filter | None] | None = None,
               oversample: float | None = None, with_payload: bool = False) -> SearchResult:
        """The k nearest neighbours of each query, as :meth:`bitgraph.HNSWIndex.search`. One
        query goes as a single-query request (the server batches those with others)."""
        q = self._matrix(queries, "queries")
        body: dict[str, Any] = {"k": k}
        if ef is not None:
            body["ef"] = ef
        if oversample is not None:
            body["oversample"] = oversample
        if with_payload:
            body["with_payload"] = True
        if isinstance(filter, list):
            if len(filter) != q.shape[0]:
                raise BitgraphValueError(f"filter has {len(filter)} entries for {q.shape[0]} "
                                         "queries")
        elif filter is not None:
            body["filter"] = filter.to_dict()
        if q.shape[0] == 1 and not isinstance(filter, list):
            r = self._client.request("POST", self._path + "/points/search",
                                     {**body, "vector": _b64(q)[0]})
            return _result([r["ids"]], [r["distances"]], [r["payloads"]] if with_payload else None)
        ids: list[Any] = []
        dists: list[Any] = []
        pays: list[Any] = []
        for start in range(0, q.shape[0], _SEARCH_CHUNK):
            part = {**body, "vectors": _b64(q[start:start + _SEARCH_CHUNK])}
            if isinstance(filter, list):
                part["filters"] = [None if f is None else f.to_dict()
                                   for f in filter[start:start + _SEARCH_CHUNK]]
            r = self._client.request("POST", self._path + "/points/search", part)
            ids += r["ids"]
            dists += r["distances"]
            pays += r.get("payloads", [])
        return _result(ids, dists, pays if with_payload else None)

    def remove(self, ids: Any) -> None:
        """Removes points by id; as an embedded index, an unknown id raises (ServiceNotFound,
        an UnknownIdError) and removes nothing."""
        id_list = [int(i) for i in np.asarray(ids).reshape(-1)]
        if id_list:
            self._client.request("POST", self._path + "/points/delete",
                                 {"ids": id_list, "strict": True})

    def remove_matching(self, filter: Filter) -> int:
        """Removes every point matching ``filter``; returns how many."""
        return int(self._client.request("POST", self._path + "/points/delete",
                                        {"filter": filter.to_dict()})["deleted"])

    def count(self, filter: Filter | None = None) -> int:
        body = {} if filter is None else {"filter": filter.to_dict()}
        return int(self._client.request("POST", self._path + "/points/count", body)["count"])

    def _points(self, ids: Any, with_vector: bool, with_payload: bool) -> list[dict[str, Any]]:
        id_list = [int(i) for i in np.asarray(ids).reshape(-1)]
        points = self._client.request("POST", self._path + "/points/get", {
            "ids": id_list, "with_vector": with_vector, "with_payload": with_payload})["points"]
        found = {p["id"] for p in points}
        missing = [i for i in id_list if i not in found]
        if missing:
            raise ServiceNotFound(404, "not_found", f"{len(missing)} id(s) not in the "
                                  f"collection, e.g. {missing[0]}")
        return points

    def get_vectors(self, ids: Any) -> np.ndarray:
        """``(n, dim)`` float32: the stored vectors (as ``index.get_vectors``)."""
        points = self._points(ids, True, False)
        if not points:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray([p["vector"] for p in points], dtype=np.float32)

    def get_attributes(self, ids: Any) -> dict[str, list[Any]]:
        """``{field: [value per id]}`` (None where missing), as ``index.get_attributes``."""
        points = self._points(ids, False, False)
        fields = points[0]["attributes"] if points else {}
        return {f: [p["attributes"].get(f) for p in points] for f in fields}

    def get_payloads(self, ids: Any) -> list[dict[str, Any] | None]:
        return [p.get("payload") for p in self._points(ids, False, True)]

    def checkpoint(self) -> None:
        """Asks the server to write a snapshot and empty the collection's log."""
        self._client.request("POST", self._path + "/checkpoint")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple, np.ndarray)):
        return [int(t) for t in v]
    return v


def _result(ids: list[Any], dists: list[Any], payloads: list[Any] | None) -> SearchResult:
    d = np.array([[np.inf if x is None else x for x in row] for row in dists], dtype=np.float32)
    i = np.asarray(ids, dtype=np.int64).reshape(d.shape)
    return SearchResult(i, d, payloads=payloads)
