"""ShardedIndex: one index over shards on Ray, with the verbs of an embedded index.

``search`` sends the batch once to every shard (``ray.put``: one copy in the object store,
whatever the number of shards), or with k-means routing only to the shards each query visits
(its ``probe`` nearest, or those within ``probe_margin`` of its nearest); each shard searches
with its own threads and returns compact (nq, k) arrays, merged by (distance, id). ``add`` /
``remove`` go to the owning shard; ``save`` checkpoints every shard and commits a new
manifest.

Faults: a shard actor that dies is restarted by Ray from the file of the last checkpoint
(``max_restarts``). A call in flight on it is retried once (the retry waits for the restart);
if that fails too, the search raises :class:`ShardUnavailableError` naming the shards, or, with
``allow_partial=True``, returns the merged answer of the shards that did answer with
``result.partial`` set. Writes are not retried, and writes made since the last ``save`` live in
the shard's memory only: a restarted shard comes back as of the last checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BitgraphValueError, UnknownIdError
from ..result import SearchResult
from .errors import ShardUnavailableError
from .manifest import (
    Manifest,
    ShardEntry,
    commit,
    manifest_path,
    read_manifest,
    remove_generation_files,
)
from .merge import merge_results
from .router import router_from_json
from .shard_actor import filter_arg
from .shard_set import ActorShards, ShardSet

_INLINE_BYTES = 64 << 10


class ShardedIndex:
    """A sharded index: open one with :meth:`open` (or build one with
    :func:`~bitgraph.distributed.build_sharded`)."""

    def __init__(self, path: str | os.PathLike[str], manifest: Manifest, shards: ShardSet,
                 *, timeout: float | None = 60.0) -> None:
        self._path = manifest_path(path)
        self.manifest = manifest
        self.router = router_from_json(manifest.router)
        self._shards = shards
        self._next_id = manifest.next_id
        self.timeout = timeout

    @classmethod
    def open(cls, manifest: str | os.PathLike[str], *, threads: int | None = None,
             mmap: bool = True, verify: bool = False, max_restarts: int = -1,
             num_cpus: float = 0, timeout: float | None = 60.0,
             actor_options: dict[str, Any] | None = None) -> ShardedIndex:
        """Starts one Ray actor per shard, each loading its file (memory-mapped by default),
        and waits until all answer.

        Args:
            manifest: the manifest file or its directory (visible to every node: a shared
                file system when the cluster has several).
            threads: search / add threads per shard (default: all the cores of the shard's
                node). With more than one, the shards of a node take turns at batches that
                fill their threads, each using every core (:mod:`.node_turns`); ``threads=1``
                runs them side by side, one thread each.
            verify: check each shard file's CRC-32 against the manifest first.
            max_restarts: how often Ray restarts a dead shard actor (-1: always).
            timeout: seconds a shard may take to answer one call before it counts as down.
        """
        path = manifest_path(manifest)
        m = read_manifest(path)
        shards = ActorShards(str(path), m.n_shards, threads=threads, mmap=mmap, verify=verify,
                             max_restarts=max_restarts, num_cpus=num_cpus,
                             options=actor_options)
        self = cls(path, m, shards, timeout=timeout)
        try:
            self.info()  # every shard loaded (a missing or corrupt file raises here)
        except BaseException:
            shards.close()
            raise
        return self

    # --- properties -----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def metric(self) -> str:
        return str(self.manifest.spec["metric"])

    @property
    def n_shards(self) -> int:
        return self.manifest.n_shards

    @property
    def next_id(self) -> int:
        """The first automatic id of the next ``add(ids=None)``."""
        return self._next_id

    @property
    def shards(self) -> ShardSet:
        """The shard set (its ``kill`` is for fault drills)."""
        return self._shards

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        return (f"ShardedIndex({self.manifest.spec['kind']}, dim={self.dim}, "
                f"shards={self.n_shards}, route={self.router.kind!r}, path={str(self._path)!r})")

    # --- calling the shards -------------------------------------------------------------------
    def _scatter(self, calls: dict[int, tuple[str, tuple[Any, ...]]],
                 allow_partial: bool = False) -> dict[int, Any]:
        """Runs ``method(*args)`` on each shard; retries a shard that did not answer once."""
        s = self._shards
        done, failed = s.gather({i: s.call(i, m, *a) for i, (m, a) in calls.items()},
                                self.timeout)
        if failed:  # once more: a restarted actor answers calls queued while it restarts
            again, failed = s.gather({i: s.call(i, calls[i][0], *calls[i][1])
                                      for i in failed}, self.timeout)
            done.update(again)
        if failed and not allow_partial:
            shards = sorted(failed)
            first = str(failed[shards[0]]).strip().splitlines() or [""]
            raise ShardUnavailableError(
                f"shard(s) {shards} of {self.n_shards} did not answer, also after a retry "
                f"({type(failed[shards[0]]).__name__}: {first[0][:200]}); a search with "
                "allow_partial=True returns the other shards' results", shards)
        return done

    def _all(self, method: str, *args: Any) -> dict[int, Any]:
        return self._scatter({i: (method, args) for i in range(self.n_shards)})

    # --- search -----------------------------------------------------------------------------
    def _queries(self, queries: Any) -> np.ndarray:
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise BitgraphValueError(f"queries must be (nq, {self.dim}), got shape {q.shape}")
        return np.ascontiguousarray(q)

    def search(self, queries: Any, k: int = 10, *, ef: int | None = None,
               filter: Any = None, probe: int | None = None,
               probe_margin: float | None = None, oversample: float | None = None,
               allow_partial: bool = False) -> SearchResult:
        """The k nearest neighbours of each query over all shards, as
        :meth:`bitgraph.HNSWIndex.search`.

        With k-means routing a query can visit fewer shards: ``probe=p`` its ``p`` nearest;
        ``probe_margin=m`` those whose centroid is at most (1 + m) x as far as its nearest
        centroid (the nearest always: a query deep in one shard's region visits one shard, a
        query on a border both sides; 0.1-0.3 is a good start, larger visits more and finds
        more). Both together: the nearest ``p`` of those within the margin.
        ``filter``: one :class:`bitgraph.Filter` or one per query. ``allow_partial``: when a
        shard does not answer (also after a retry), return the others' merged results with
        ``result.partial = True`` instead of raising :class:`ShardUnavailableError`."""
        q = self._queries(queries)
        nq = q.shape[0]
        if isinstance(filter, list) and len(filter) != nq:
            raise BitgraphValueError(f"filter has {len(filter)} entries for {nq} queries")
        if type(k) is not int or k < 1:
            raise BitgraphValueError(f"k must be an integer >= 1, got {k!r}")
        visits = self.router.visits(q, probe, probe_margin)
        fj = filter_arg(filter)
        calls: dict[int, tuple[str, tuple[Any, ...]]] = {}
        rows: dict[int, np.ndarray | None] = {}
        if visits is None:
            # one copy in the object store for every shard (small batches travel inline)
            ref = self._shards.put(q) if q.nbytes > _INLINE_BYTES else q
            for i in range(self.n_shards):
                calls[i] = ("search", (ref, k, ef, fj, oversample))
                rows[i] = None
        else:
            for i in range(self.n_shards):
                r = np.flatnonzero(visits[:, i])
                if r.size == 0:
                    continue
                f_i = [fj[j] for j in r.tolist()] if isinstance(fj, list) else fj
                calls[i] = ("search", (q[r], k, ef, f_i, oversample))
                rows[i] = r
        done = self._scatter(calls, allow_partial)
        answers = [(rows[i], done[i]) for i in sorted(done)]
        return merge_results(nq, k, answers, partial=len(done) < len(calls))

    # --- writes -----------------------------------------------------------------------------
    def _ids(self, ids: Any, n: int | None) -> np.ndarray:
        arr = np.asarray(ids).reshape(-1)
        if arr.size and (arr.dtype.kind not in "iu" or int(arr.min()) < 0):
            raise BitgraphValueError("ids must be non-negative integers")
        arr = arr.astype(np.int64)
        if n is not None and arr.size != n:
            raise BitgraphValueError(f"ids has {arr.size} entries for {n} vectors")
        return arr

    def _holders(self, ids: np.ndarray) -> np.ndarray:
        """The shard holding each id (-1: none), asking only the owners when ids route."""
        holder = np.full(ids.size, -1, np.int64)
        if self.router.owner_known():
            owners = self.router.owners(ids)
            parts = {i: np.flatnonzero(owners == i) for i in range(self.n_shards)}
            parts = {i: r for i, r in parts.items() if r.size}
            found = self._scatter({i: ("contains", (ids[r],)) for i, r in parts.items()})
            for i, r in parts.items():
                holder[r[np.asarray(found[i], bool)]] = i
        else:
            found = self._all("contains", ids)
            for i in range(self.n_shards):
                holder[np.asarray(found[i], bool)] = i
        return holder

    def add(self, vectors: Any, ids: Any = None, *,
            attributes: dict[str, Any] | None = None) -> np.ndarray:
        """Adds (or replaces) items, each in the shard the router assigns; returns the ids
        (``ids=None``: numbered after the largest id used so far)."""
        x = self._queries(vectors)
        n = x.shape[0]
        ids_arr = (np.arange(self._next_id, self._next_id + n, dtype=np.int64) if ids is None
                   else self._ids(ids, n))
        if np.unique(ids_arr).size != n:
            raise BitgraphValueError("ids must be unique within one add")
        owners = self.router.owners(ids_arr, x)
        if not self.router.owner_known():  # a replaced id may now belong to another shard
            holder = self._holders(ids_arr)
            moved = (holder >= 0) & (holder != owners)
            drop = {int(i): ids_arr[moved & (holder == i)] for i in np.unique(holder[moved])}
            if drop:
                self._scatter({i: ("remove", (v,)) for i, v in drop.items()})
        calls = {}
        for i in range(self.n_shards):
            r = np.flatnonzero(owners == i)
            if r.size:
                calls[i] = ("add", (x[r], ids_arr[r], _subset(attributes, r)))
        self._scatter(calls)
        self._next_id = max(self._next_id, int(ids_arr.max()) + 1) if n else self._next_id
        return ids_arr

    def remove(self, ids: Any) -> None:
        """Removes items by id from their shards; an unknown id raises UnknownIdError and
        removes nothing."""
        ids_arr = np.unique(self._ids(ids, None))
        if ids_arr.size == 0:
            return
        holder = self._holders(ids_arr)
        if (holder < 0).any():
            missing = ids_arr[holder < 0]
            raise UnknownIdError(f"{missing.size} id(s) not in the index, e.g. {int(missing[0])}")
        self._scatter({int(i): ("remove", (ids_arr[holder == i],)) for i in np.unique(holder)})

    # --- reads --------------------------------------------------------------------------------
    def contains(self, ids: Any) -> np.ndarray:
        return self._holders(self._ids(ids, None)) >= 0

    def count(self, filter: Any = None) -> int:
        """Live items (matching ``filter`` when given) over all shards."""
        return int(sum(self._all("count", filter_arg(filter)).values()))

    def ids(self, filter: Any = None) -> np.ndarray:
        """int64: the ids of the live items (matching ``filter``), ascending."""
        parts = self._all("ids", filter_arg(filter))
        return np.sort(np.concatenate([parts[i] for i in range(self.n_shards)]))

    def _by_holder(self, ids: Any, method: str) -> tuple[np.ndarray, dict[int, Any],
                                                         dict[int, np.ndarray]]:
        ids_arr = self._ids(ids, None)
        holder = self._holders(ids_arr)
        if (holder < 0).any():
            missing = ids_arr[holder < 0]
            raise UnknownIdError(f"{missing.size} id(s) not in the index, e.g. {int(missing[0])}")
        rows = {int(i): np.flatnonzero(holder == i) for i in np.unique(holder)}
        got = self._scatter({i: (method, (ids_arr[r],)) for i, r in rows.items()})
        return ids_arr, got, rows

    def get_vectors(self, ids: Any) -> np.ndarray:
        """``(n, dim)`` float32: the stored vectors, in the order asked."""
        ids_arr, got, rows = self._by_holder(ids, "get_vectors")
        out = np.zeros((ids_arr.size, self.dim), np.float32)
        for i, r in rows.items():
            out[r] = got[i]
        return out

    def get_attributes(self, ids: Any) -> dict[str, list[Any]]:
        """``{field: [value per id]}`` (None where an item has no value)."""
        ids_arr, got, rows = self._by_holder(ids, "get_attributes")
        fields = sorted({f for g in got.values() for f in g})
        out: dict[str, list[Any]] = {f: [None] * ids_arr.size for f in fields}
        for i, r in rows.items():
            for f in fields:
                vals = got[i].get(f, [None] * r.size)
                for j, v in zip(r.tolist(), vals):
                    out[f][j] = v
        return out

    def info(self) -> list[dict[str, Any]]:
        """Per shard: count, bytes held and mapped, threads, process and incarnation."""
        got = self._all("info")
        return [got[i] for i in range(self.n_shards)]

    # --- checkpoint ---------------------------------------------------------------------------
    def save(self) -> Path:
        """Checkpoints: every shard saves the file of the next generation (atomic save), then
        the new manifest is committed and the old generation's files are deleted. If a shard
        fails, the new files are removed and the old manifest stays in force."""
        gen = self.manifest.generation + 1
        directory = self._path.parent
        try:
            entries = self._all("save", gen)
        except BaseException:
            remove_generation_files(directory, lambda g, name: g == gen)
            raise
        m = Manifest(spec=self.manifest.spec, router=self.manifest.router,
                     shards=[ShardEntry(**entries[i]) for i in range(self.n_shards)],
                     next_id=self._next_id, generation=gen, name=self.manifest.name)
        commit(directory, m)
        self.manifest = m
        return self._path

    def close(self) -> None:
        """Stops the shard actors (nothing is saved: call :meth:`save` first)."""
        self._shards.close()

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _subset(attributes: dict[str, Any] | None, rows: np.ndarray) -> dict[str, Any] | None:
    if not attributes:
        return None
    out = {}
    for f, vals in attributes.items():
        if isinstance(vals, np.ndarray):
            out[f] = vals[rows]
        else:
            seq = list(vals)
            out[f] = [seq[j] for j in rows.tolist()]
    return out
