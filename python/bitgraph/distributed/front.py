"""A sharded index as one collection of the HTTP service (the Ray Serve ingress's state).

:class:`ShardedCollection` has the methods of :class:`bitgraph.server.collection.Collection`
that the service's routes call, over a :class:`~.sharded_index.ShardedIndex`;
:class:`ShardedRegistry` those of the server's registry. With them the routes, the request
parsing, the batcher, the metrics and the errors of ``bitgraph serve`` are reused unchanged
(:func:`bitgraph.server.app.build_app`): the sharded deployment answers the same HTTP API and
``bitgraph.Client`` works against it.

Differences, answered as errors: no payloads (400 on an upsert with one), collections are not
created or deleted over HTTP (409 / 400), and writes are durable once ``POST .../checkpoint``
(:meth:`ShardedIndex.save`) returns, not at acknowledgement (there is no write-ahead log).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

import bitgraph as bg

from ..server.collection import Upsert, _as_kind, _groups_by_fields, attribute_kinds
from ..server.errors import ApiError, bad_request, conflict, not_found, unavailable
from ..server.spec import CollectionSpec
from .errors import ShardUnavailableError
from .sharded_index import ShardedIndex


def collection_spec(name: str, spec: dict[str, Any]) -> CollectionSpec:
    keep = {k: spec[k] for k in ("metric", "storage", "M", "ef_construction", "seed")
            if k in spec}
    return CollectionSpec(name=name, dim=int(spec["dim"]), kind=spec["kind"], **keep)


class ShardedCollection:
    """One served collection over a sharded index (see the module docstring)."""

    def __init__(self, name: str, index: ShardedIndex, *,
                 probe_margin: float | None = None) -> None:
        index.router.check(margin=probe_margin)
        self.index = index
        self.probe_margin = probe_margin
        self.spec = collection_spec(name, index.manifest.spec)
        self._lock = threading.Lock()  # writes one at a time, as a Collection

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ShardUnavailableError as exc:
            raise unavailable(str(exc)) from None
        except (bg.BitgraphValueError, bg.BitgraphTypeError) as exc:
            if isinstance(exc, bg.UnknownIdError):
                raise
            raise bad_request(str(exc)) from None

    # --- reads --------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, ef: int | None, filters: Any,
               oversample: float | None, threads: int | None = None) -> bg.SearchResult:
        if oversample is not None and self.spec.kind != "binary":
            raise bad_request("oversample applies to binary collections only")
        return self._call(self.index.search, queries, k, ef=ef, filter=filters,
                          oversample=oversample, probe_margin=self.probe_margin)

    def payloads_of(self, ids: np.ndarray) -> list[list[Any]]:
        return [[None] * len(row) for row in ids.tolist()]

    def count(self) -> int:
        return int(self._call(self.index.count))

    def nbytes(self) -> int:
        return int(sum(i["nbytes"] for i in self._call(self.index.info)))

    def info(self) -> dict[str, Any]:
        shards = self._call(self.index.info)
        return {"name": self.spec.name, "count": sum(s["count"] for s in shards),
                "nbytes": sum(s["nbytes"] for s in shards), "config": self.spec.to_json(),
                "trained": True, "log_bytes": 0, "snapshot": self.index.manifest.generation,
                "shards": [{"count": s["count"], "nbytes": s["nbytes"],
                            "mapped_nbytes": s["mapped_nbytes"]} for s in shards],
                "route": self.index.router.kind}

    def get(self, ids: np.ndarray, with_vector: bool, with_payload: bool
            ) -> list[dict[str, Any]]:
        if ids.size == 0:
            return []
        ids = np.array(list(dict.fromkeys(ids.tolist())), dtype=np.int64)
        ids = ids[self._call(self.index.contains, ids)]
        if ids.size == 0:
            return []
        attrs = self._call(self.index.get_attributes, ids)
        vectors = self._call(self.index.get_vectors, ids) if with_vector else None
        out = []
        for row, i in enumerate(ids.tolist()):
            point: dict[str, Any] = {"id": i, "attributes": {f: v[row] for f, v in attrs.items()}}
            if vectors is not None:
                point["vector"] = vectors[row]
            if with_payload:
                point["payload"] = None
            out.append(point)
        return out

    # --- writes -------------------------------------------------------------------------------
    def upsert(self, batch: Upsert | None, vectors: np.ndarray | None = None,
               attributes: list[dict[str, Any]] | None = None,
               payloads: list[bytes | None] | None = None) -> np.ndarray:
        """Adds or replaces whole points (attributes a point does not name become missing)."""
        given = batch.payloads if batch is not None else (payloads or [])
        if any(p is not None for p in given):
            raise bad_request("a sharded collection stores no payloads (keep them beside it, "
                              "keyed by id)")
        with self._lock:
            if batch is None:
                assert vectors is not None
                n = vectors.shape[0]
                start = self.index.next_id
                batch = Upsert(np.arange(start, start + n, dtype=np.int64), vectors,
                               attributes or [{}] * n, [None] * n)
            if np.unique(batch.ids).size != batch.ids.size:
                raise bad_request("an upsert lists the same id twice")
            kinds = attribute_kinds(batch.attributes)
            old = batch.ids[self._call(self.index.contains, batch.ids)]
            if old.size:
                self._call(self.index.remove, old)
            for rows, fields in _groups_by_fields(batch.attributes):
                cols = {f: [_as_kind(batch.attributes[r][f], kinds[f]) for r in rows]
                        for f in fields}
                sel = np.asarray(rows, dtype=np.int64)
                self._call(self.index.add, batch.vectors[sel], batch.ids[sel],
                           attributes=cols or None)
            ids = batch.ids
        return ids

    def delete(self, ids: np.ndarray, strict: bool = False) -> int:
        with self._lock:
            ids = np.unique(np.asarray(ids, dtype=np.int64))
            present = ids[self._call(self.index.contains, ids)] if ids.size else ids
            if strict and present.size != ids.size:
                missing = np.setdiff1d(ids, present)
                raise ApiError(404, "not_found", f"{missing.size} id(s) not in the collection, "
                               f"e.g. {int(missing[0])}; nothing was deleted")
            if present.size:
                self._call(self.index.remove, present)
            return int(present.size)

    def delete_matching(self, filt: bg.Filter) -> int:
        with self._lock:
            ids = self._call(self.index.ids, filt)
            if ids.size:
                self._call(self.index.remove, ids)
            return int(ids.size)

    def checkpoint(self) -> None:
        with self._lock:
            self._call(self.index.save)

    def close(self, checkpoint: bool = False) -> None:
        """Nothing to flush: writes since the last checkpoint are in the shards' memory."""


class ShardedRegistry:
    """The server's registry, holding one sharded collection."""

    def __init__(self, collection: ShardedCollection) -> None:
        self.collections = {collection.spec.name: collection}
        self.failed: dict[str, str] = {}
        self.loading = False

    @property
    def ready(self) -> bool:
        return True

    def load_all(self) -> None:
        """Loaded already (the shards load when they start)."""

    def names(self) -> list[str]:
        return sorted(self.collections)

    def get(self, name: str) -> ShardedCollection:
        coll = self.collections.get(name)
        if coll is None:
            raise not_found(f"no collection {name!r} (this sharded deployment serves "
                            f"{', '.join(map(repr, self.collections))})")
        return coll

    def create(self, spec: CollectionSpec) -> Any:
        if spec.name in self.collections:
            raise conflict(f"collection {spec.name!r} already exists")
        raise bad_request("a sharded deployment serves the collection of its manifest; build "
                          "another with bitgraph.distributed.build_sharded")

    def delete(self, name: str) -> None:
        self.get(name)
        raise bad_request("a sharded collection is not deleted over HTTP (stop the "
                          "deployment and delete its directory)")

    def close_all(self) -> None:
        """Shutdown: nothing is saved implicitly (POST .../checkpoint saves)."""
