"""What HNSWIndex and FlatIndex share: ids, validation, search results, persistence, pickling.

Subclasses say how to make their core (``_new_core`` / ``_core_from_state``) and which extra
parameters they save (``_params``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any, Callable

import numpy as np

from . import _backend, _device, persistence, state_checks
from ._heap import release_free_heap
from .attributes import AttributeStore
from ._version import __version__
from .filters import Filter
from .planner import PlannerConfig, plan_names
from ._validation import (
    INT32_MAX,
    INT64_MAX,
    METRICS,
    STORAGES,
    as_ids,
    as_matrix,
    check_choice,
    check_dim,
    check_float16_range,
    check_int,
    check_result_size,
    checked_magnitude,
    default_threads,
    is_private_copy,
    next_ids,
    normalized,
)
from .errors import BitgraphTypeError, IndexFileError, UnknownIdError
from .result import SearchResult
from ._rows import padded
from ._search_batches import checked_filter, chunks, filter_groups

_PROGRESS_MIN_ITEMS = 1  # a bar is shown whenever progress=True
_FAST_K = 1 << 28  # k and ef above this take the careful path (its errors and clamps)


def _positions(rows: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Where the query rows of one filter sit in a chunk's concatenated rows."""
    order = np.argsort(within, kind="stable")
    return order[np.searchsorted(within[order], rows)]


class _VectorIndex(ABC):
    """Common base of the float-vector indexes (not public)."""

    _kind = ""

    def __init__(self, dim: int, *, metric: str, storage: str, backend: str | None,
                 device: str | None = None) -> None:
        device = _device.check_device(device)  # before any work: a missing GPU raises here
        self._dim = check_dim(dim)
        self._metric = check_choice("metric", metric, METRICS)
        self._storage = check_choice("storage", storage, STORAGES)
        self._backend: ModuleType = _backend.get_backend(backend)
        self._backend_name = backend or _backend.BACKEND_NAME
        self._backend_choice = backend  # None: the process default (kept by pickling)
        self._core_metric = "l2" if metric == "l2" else "ip"
        self._next_id = 0
        # add/remove/save are serialised here; search takes no Python lock (the cores are safe
        # to search while one writer runs).
        self._write_lock = threading.RLock()
        self._core = self._new_core()
        self._init_query_check()
        self._state_mapped = False  # whether the core's adopted arrays are a memory map
        self._init_attributes(AttributeStore())
        self._generation = 0  # bumped by every add / remove: when a device copy is stale
        self._gpu: _device.DeviceSearch | None = None
        if device != "cpu":
            self.to(device)

    def _init_query_check(self) -> None:
        """What the core's one-pass query check does for this metric (-1: the backend has
        none, so every search takes the careful path in Python)."""
        self._cores = default_threads(None)
        if not getattr(self._backend, "QUERY_CHECKS", False) or not self._direct_queries():
            self._query_check = -1
        else:
            self._query_check = 2 if self._metric == "cosine" else 1

    def _direct_queries(self) -> bool:
        """Whether the core takes the user's float queries as they are (BinaryIndex encodes
        them first)."""
        return True

    def _init_attributes(self, store: AttributeStore) -> None:
        self._attributes = store
        self._attr_lock = threading.Lock()  # short: appends and filter compilation
        self._planner = PlannerConfig()

    # --- devices -------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """Where searches run: "cpu", or "cuda" (see :meth:`to`)."""
        return "cpu" if self._gpu is None else "cuda"

    def to(self, device: str) -> _VectorIndex:
        """Moves searches to ``device`` ("cpu" or "cuda") and returns the index itself.

        "cuda" copies the rows to the GPU (DeviceUnavailableError where none can run); the
        index keeps its CPU state, so add / remove / save / load work unchanged and the
        device copy follows them. "cpu" frees the device copy. Saved files are the same on
        either device (``bg.load(path).to("cuda")``).
        """
        name = _device.check_device(device)
        if name == "cpu":
            self._gpu = None
        elif self._gpu is None:
            self._check_device_support()
            gpu = _device.DeviceSearch(self)
            gpu.sync()
            self._gpu = gpu
        return self

    def _check_device_support(self) -> None:
        """Hook: raise BitgraphValueError if this index cannot search on a GPU."""

    @property
    def planner(self) -> PlannerConfig:
        """Thresholds of the filtered-search planner (:class:`bitgraph.PlannerConfig`)."""
        return self._planner

    @planner.setter
    def planner(self, config: PlannerConfig) -> None:
        if not isinstance(config, PlannerConfig):
            raise BitgraphTypeError(
                f"planner must be a bitgraph.PlannerConfig, got {type(config).__name__}")
        self._planner = config

    # --- subclass hooks --------------------------------------------------------------------
    @abstractmethod
    def _new_core(self) -> Any:
        """A fresh, empty core of this index kind on the chosen backend."""

    @abstractmethod
    def _core_from_state(self, state: dict[str, Any]) -> Any:
        """A core adopting saved arrays (possibly read-only memory maps)."""

    def _params(self) -> dict[str, Any]:
        return {}

    def _default_ef(self, k: int) -> int:
        return k

    # --- properties --------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of values per vector."""
        return self._dim

    @property
    def metric(self) -> str:
        """"l2", "ip" or "cosine"."""
        return self._metric

    @property
    def storage(self) -> str:
        """How vectors are stored: "float32", "float16" or "int8"."""
        return self._storage

    @property
    def backend(self) -> str:
        """The backend this index runs on ("native" or "numba")."""
        return self._backend_name

    @property
    def nbytes(self) -> int:
        """Bytes of memory the index holds: vectors, graph, ids and attributes, with the
        capacity reserved for further adds (see :meth:`reserve`, :meth:`shrink_to_fit`).
        Memory-mapped data is not held (the OS pages it in and out): see
        :attr:`mapped_nbytes`."""
        core = int(self._core.nbytes)
        if not self._state_mapped:
            core += int(self._core.borrowed_nbytes)  # a loaded file's arrays, read into RAM
        return core + self._attributes.nbytes

    @property
    def mapped_nbytes(self) -> int:
        """Bytes of the index still memory-mapped from its file (``bg.load(..., mmap=True)``;
        the first add or remove copies what it changes into memory)."""
        core = int(self._core.borrowed_nbytes) if self._state_mapped else 0
        return core + self._attributes.mapped_nbytes

    def reserve(self, n: int) -> None:
        """Makes room for ``n`` items in total, so adding up to that many allocates nothing
        more and leaves no slack (like hnswlib's ``max_elements``, but only a hint: the index
        still grows past it). Copies a memory-mapped index into memory."""
        n = int(check_int("n", n, 0, INT32_MAX - 1))  # type: ignore[arg-type]
        with self._write_lock:
            self._core.reserve(n)
            with self._attr_lock:
                self._attributes.reserve(n)
            self._reserve_extra(n)

    def shrink_to_fit(self) -> None:
        """Gives back the capacity reserved for further adds (growth keeps at most ~3% of
        slack; ``save`` also gives back what it can for free)."""
        with self._write_lock:
            self._core.shrink_to_fit()
            with self._attr_lock:
                self._attributes.shrink()
            self._shrink_extra()

    def _reserve_extra(self, n: int) -> None:
        """Hook: reserve what the subclass keeps beside the core."""

    def _shrink_extra(self) -> None:
        """Hook: shrink what the subclass keeps beside the core."""

    def __len__(self) -> int:
        return int(self._core.size)

    def __contains__(self, item: Any) -> bool:
        try:
            ids = as_ids(item, None)
        except (TypeError, ValueError):
            return False
        return bool(self._core.contains(ids).all())

    # --- prepare -----------------------------------------------------------------------------
    def _prepare(self, x: Any, what: str) -> np.ndarray:
        # The metric's own pass over the values (norms for cosine, min / max for l2 and ip)
        # is also the finiteness check.
        arr = as_matrix(x, self._dim, what, check_finite=False)
        if self._metric == "cosine":
            return normalized(arr, what, inplace=is_private_copy(arr, x))
        return checked_magnitude(arr, what)

    # --- add -----------------------------------------------------------------------------------
    @property
    def attribute_fields(self) -> dict[str, str]:
        """Attribute fields stored with the items: name -> "int", "float" or "tags"."""
        return self._attributes.fields

    def add(self, vectors: Any, ids: Any = None, *, attributes: dict[str, Any] | None = None,
            threads: int | None = None, progress: bool = False) -> np.ndarray:
        """Adds vectors, returning their ids.

        Args:
            vectors: ``(n, dim)`` array-like of real numbers (converted to float32 once; for
                cosine, L2-normalised once here).
            ids: ``n`` unique non-negative integers, or None to number the vectors after the
                largest id used so far. An id already in the index is replaced (its old vector
                is never returned again).
            attributes: optional ``{field: values}`` for filtered search, one value per vector:
                an int array (categories, int ranges), a float array (numeric ranges) or a list
                of int lists (multi-label tags). A field's kind is fixed by its first add.
                Items added without a field have it missing (never matched); a re-added id
                without the field keeps its previous value.
            threads: worker threads (default: all cores).
            progress: show a tqdm progress bar.

        Returns:
            The int64 ids of the added vectors.

        Ctrl-C (or a cancelled progress bar) stops a long add: the items inserted so far stay
        in the index, the rest are not added, and KeyboardInterrupt is raised.
        """
        arr = self._prepare(vectors, "vectors")
        try:
            return self._add_prepared(arr, ids, attributes, threads, progress)
        finally:
            batch_bytes = arr.nbytes
            del arr  # the prepared copy goes first, then the heap gives free memory back
            release_free_heap(batch_bytes)

    def _add_prepared(self, arr: np.ndarray, ids: Any, attributes: dict[str, Any] | None,
                      threads: int | None, progress: bool) -> np.ndarray:
        if self._storage == "float16":
            check_float16_range(arr, "vectors")
        n = arr.shape[0]
        threads = default_threads(threads)
        with self._write_lock:
            if ids is None:
                ids_arr = next_ids(self._next_id, n)
            else:
                ids_arr = as_ids(ids, n)
            parsed = self._attributes.parse(attributes, n)
            replaced = (np.asarray(self._core.slots_of(ids_arr), dtype=np.int64)
                        if self._attributes.fields else None)
            callback, close = self._progress(n, progress)
            try:
                self._core_add(arr, ids_arr, threads, callback)
            finally:
                close()
                # Also after Ctrl-C: every slot the core created gets its attribute row.
                with self._attr_lock:
                    self._attributes.append(parsed, int(self._core.n_slots), replaced)
                # Also after Ctrl-C/cancel: the items inserted so far keep their ids, which
                # later automatic ids must not reuse (that would silently replace them).
                self._next_id = max(self._next_id, int(ids_arr.max()) + 1)
                self._generation += 1
        return ids_arr

    def _core_add(self, arr: np.ndarray, ids: np.ndarray, threads: int, callback: Any) -> None:
        """Hands prepared vectors to the core (BinaryIndex encodes them first)."""
        self._core.add(arr, ids, threads, callback)

    def _progress(self, total: int, enabled: bool) -> tuple[Callable[[int], bool] | None,
                                                           Callable[[], None]]:
        if not enabled:
            return None, lambda: None
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"bitgraph {self._kind} add", unit="vec")

        def update(done: int) -> bool:
            bar.update(done - bar.n)
            return True

        return update, bar.close

    # --- search --------------------------------------------------------------------------------
    def search(self, queries: Any, k: int = 10, *, ef: int | None = None,
               filter: Filter | list[Filter | None] | None = None,
               threads: int | None = None) -> SearchResult:
        """Finds the k nearest neighbours of each query.

        Args:
            queries: ``(nq, dim)`` array-like (one vector of ``dim`` values is one query).
            k: neighbours per query (>= 1). When fewer exist, rows are padded with id -1 and
                distance +inf.
            ef: search breadth for graph indexes (>= 1; raised to k; larger is more accurate
                and slower). Ignored by exact indexes.
            filter: a :class:`~bitgraph.Filter` for every query, or a list with one Filter
                (or None) per query. Only matching items are returned; a query gets
                ``min(k, matches)`` results. The plan used per query is in ``result.plans``.
            threads: worker threads for the batch (default: all cores).

        Returns:
            A :class:`SearchResult` (unpacks as ``ids, distances``).

        Safe to call from many threads at once, also while another thread adds or removes.
        """
        if self._gpu is not None:
            return self._gpu.search(queries, k, ef, filter, threads)
        # The common call (an array of queries, plain ints, no filter) goes straight to the
        # core, which checks the values (or normalises them) in the same pass and returns None
        # for anything the careful path below must explain or handle.
        if (filter is None and self._query_check >= 0 and type(k) is int and 0 < k <= _FAST_K
                and (ef is None or (type(ef) is int and 0 < ef <= _FAST_K))
                and (threads is None or (type(threads) is int and threads > 0))):
            found = self._core.query(
                queries, k, self._default_ef(k) if ef is None else ef,
                self._cores if threads is None or threads > self._cores else threads,
                self._query_check, None, None)
            if found is not None:  # (cosine: check 2 also made the distances 1 - cos)
                return SearchResult(found[0], found[1])
        return self._search(queries, k, ef, filter, threads, None)

    def _search(self, queries: Any, k: int, ef: int | None, filter: Any, threads: int | None,
                oversample: float | None,
                core_queries: Callable[[np.ndarray, int], np.ndarray] | None = None
                ) -> SearchResult:
        """search() with every check in Python, and the hooks subclasses use: the core answers
        ``_candidates(k)`` candidates per query for ``_core_queries(q)``, re-ranks them to k in
        the same call when ``_rerank_request`` says so, and ``_finish`` makes the final k. The core's one ``query`` call evaluates the filters, plans per query,
        walks or scans, finishes short walks exactly and pads (docs/backend-contract.md)."""
        q = self._prepare(queries, "queries")
        k = int(check_int("k", k, 1))  # type: ignore[arg-type]
        nq = q.shape[0]
        check_result_size(nq, k)
        # Natural bounds: no query has more results or candidates than the index has slots,
        # so the cores work with at most that many and the rows are padded to k at the end
        # (k=2**31 must not allocate gigabytes); the pool never needs more than every slot.
        n_slots = int(self._core.n_slots)
        k_eff = min(k, max(1, n_slots))
        kk = min(self._candidates(k_eff, oversample), max(1, n_slots))
        ef_val = check_int("ef", ef, 1, allow_none=True)
        ef_val = max(self._default_ef(kk) if ef_val is None else ef_val, kk)
        ef_val = min(ef_val, max(kk, n_slots))
        threads = default_threads(threads)
        qc = (core_queries or self._core_queries)(q, threads)
        if filter is None:
            ids, dists = self._core.query(qc, kk, ef_val, threads, 0, None, None,
                                          self._rerank_request(q, k_eff))
            return SearchResult(*padded(*self._finish(ids, dists, k_eff), k))
        groups = filter_groups(filter, nq)
        filtered = [(f, rows) for f, rows in groups if f is not None]
        per_call = self._filters_per_call()
        planner = self.planner.args()
        if len(filtered) <= per_call:
            # One core call for the whole batch: every distinct filter, queries named by filter.
            ids, dists, codes, visited = self._query_filtered(qc, q, kk, k_eff, ef_val, threads,
                                                              groups, planner)
        else:
            # Many distinct filters over a large index: their bitsets would not fit at once, so
            # one call per chunk of filters, with the queries of that chunk.
            width = k_eff if self._rerank_request(q[:0], k_eff) is not None else kk
            ids = np.full((nq, width), -1, dtype=np.int64)
            dists = np.full((nq, width), np.inf, dtype=np.float32)
            codes = np.zeros(nq, dtype=np.int8)
            visited = np.zeros(nq, dtype=np.int64)
            for f, rows in groups:
                if f is None:  # the queries of a per-query list without a filter
                    ids[rows], dists[rows] = self._core.query(
                        qc[rows], kk, ef_val, threads, 0, None, None,
                        self._rerank_request(q[rows], k_eff))
            for chunk in chunks(filtered, per_call):
                rows = np.concatenate([r for _, r in chunk])
                part = [(f, _positions(r, rows)) for f, r in chunk]
                i, d, c, v = self._query_filtered(qc[rows], q[rows], kk, k_eff, ef_val, threads,
                                                  part, planner)
                ids[rows], dists[rows], codes[rows], visited[rows] = i, d, c, v
        names = plan_names(codes)
        names[codes == 0] = "unfiltered"
        return SearchResult(*padded(*self._finish(ids, dists, k_eff), k), names, visited)

    def _query_filtered(self, qc: np.ndarray, q: np.ndarray, kk: int, k: int, ef: int,
                        threads: int, groups: list[tuple[Filter | None, np.ndarray | None]],
                        planner: tuple[float, float, float, int]) -> tuple[np.ndarray, ...]:
        """One core call for queries grouped by filter (rows None: every query): kk
        candidates each, re-ranked to k when the index re-ranks."""
        filtered = [(f, rows) for f, rows in groups if f is not None]
        with self._attr_lock:
            limit = len(self._attributes)
            ops, op_offsets, entries, loads = self._attributes.compile_many(
                [f for f, _ in filtered], self._slots_of)
        filter_of = None
        if len(groups) > 1 or groups[0][1] is not None:
            filter_of = np.full(qc.shape[0], -1, dtype=np.int32)
            for i, (_, rows) in enumerate(filtered):
                filter_of[slice(None) if rows is None else rows] = i
        return self._core.query(qc, kk, ef, threads, 0,
                                (ops, op_offsets, entries, loads, limit, filter_of), planner,
                                self._rerank_request(q, k))

    # --- search hooks (identity for float indexes) ----------------------------------------------
    def _candidates(self, k: int, oversample: float | None) -> int:
        """Candidates the core returns per query."""
        return k

    def _core_queries(self, q: np.ndarray, threads: int) -> np.ndarray:
        """The queries as the core takes them."""
        return q

    def _rerank_request(self, q: np.ndarray, k: int) -> tuple[Any, ...] | None:
        """The core's re-rank stage for the float queries ``q`` (None: the core's candidates
        are the results)."""
        return None

    def _finish(self, ids: np.ndarray, dists: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """The final k results (and user distances) from what the core returned."""
        return ids, self._user_distances(dists)

    def _filters_per_call(self) -> int:
        """Distinct filters compiled and evaluated per core call. A filter holds a bitset
        (n/8 bytes) and, while it is compiled, up to n int32 slot entries (4n bytes), so a
        chunk stays under ~128 MiB whatever the filters' selectivity."""
        n = max(1, int(self._core.n_slots))
        return max(1, (128 << 20) // (4 * n + 8 * ((n + 63) // 64)))

    def _user_distances(self, dists: np.ndarray) -> np.ndarray:
        if self._metric == "cosine":
            return dists + np.float32(1.0)  # the core returns -<q,x> on normalised vectors
        return dists

    def _evaluate(self, filt: Filter) -> tuple[np.ndarray, int]:
        """The filter as a bitset over slots (live matching items) and its match count."""
        with self._attr_lock:
            limit = len(self._attributes)
            ops, entries, loads = self._attributes.compile(filt, self._slots_of)
        bits, count = self._core.evaluate_filter(ops, entries, limit, None, loads)
        return bits, int(count)

    def _slots_of(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self._core.slots_of(ids), dtype=np.int64)

    def count(self, filter: Filter | None = None) -> int:
        """Number of live items matching ``filter`` (all items when None)."""
        if filter is None:
            return len(self)
        return self._evaluate(checked_filter(filter))[1]

    # --- look-up -------------------------------------------------------------------------------
    def _live_slots(self, ids: Any) -> np.ndarray:
        ids_arr = as_ids(ids, None)
        slots = self._slots_of(ids_arr)
        missing = slots < 0
        if missing.any():
            raise UnknownIdError(
                f"{int(missing.sum())} id(s) not in the index, e.g. {int(ids_arr[missing][0])}")
        return slots

    def get_vectors(self, ids: Any) -> np.ndarray:
        """``(n, dim)`` float32: the stored vectors of ``ids``, in that order.

        They are what the index holds: L2-normalised for cosine, rounded to float16 or int8
        for those storages. Raises UnknownIdError if an id is not in the index.
        """
        with self._write_lock:  # rows do not move while they are copied
            slots = self._live_slots(ids)
            return self._vectors_at(slots)

    def _vectors_at(self, slots: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(self._core.get_state()["vectors"][slots])
        return np.asarray(self._backend.decode_rows(rows, self._dim, self._storage),
                          dtype=np.float32).reshape(len(slots), self._dim)

    def contains(self, ids: Any) -> np.ndarray:
        """bool ``(n,)``: whether each id is a live item of the index."""
        ids_arr = as_ids(ids, None)
        return np.asarray(self._core.contains(ids_arr), dtype=bool).reshape(-1)

    def ids(self, filter: Filter | None = None) -> np.ndarray:
        """int64: the ids of the live items (those matching ``filter`` when given), ascending."""
        with self._write_lock:
            state = self._core.get_state()
            labels, deleted = state["labels"], state["deleted"]
            if filter is None:
                found = labels[deleted == 0]
            else:
                bits, _ = self._evaluate(checked_filter(filter))
                flags = np.unpackbits(np.asarray(bits, dtype=np.uint64).view(np.uint8),
                                      bitorder="little")[: labels.shape[0]]
                found = labels[: flags.shape[0]][flags.astype(bool)]
            return np.sort(np.asarray(found, dtype=np.int64))

    def get_attributes(self, ids: Any) -> dict[str, list[Any]]:
        """``{field: [value per id]}`` for every attribute field: an int, a float or a list of
        ints (tags); None where the item has no value. Raises UnknownIdError if an id is not
        in the index."""
        with self._write_lock:
            slots = self._live_slots(ids)
            with self._attr_lock:
                return self._attributes.values_of(slots)

    # --- remove --------------------------------------------------------------------------------
    def remove(self, ids: Any) -> None:
        """Removes items by id. Removed ids are never returned by later searches.

        Raises UnknownIdError (a KeyError and ValueError) if any id is not in the index; in
        that case nothing is removed.
        """
        ids_arr = as_ids(ids, None)
        if ids_arr.size == 0:
            return
        with self._write_lock:
            missing = ~self._core.contains(ids_arr).astype(bool)
            if missing.any():
                raise UnknownIdError(
                    f"{int(missing.sum())} id(s) not in the index, e.g. {int(ids_arr[missing][0])}"
                )
            self._core.remove(ids_arr)
            self._generation += 1

    # --- persistence ---------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {"kind": self._kind, "dim": self._dim, "metric": self._metric,
                "storage": self._storage, "next_id": self._next_id,
                "bitgraph_version": __version__, "params": self._params(),
                "planner": dataclasses.asdict(self._planner), "layout": self._layout()}

    def _layout(self) -> dict[str, Any]:
        """What a stored row is (recorded in the file header, checked on load)."""
        width = {"float32": 4 * self._dim, "float16": 2 * self._dim,
                 "int8": self._dim + 8}[self._storage]
        return {"rows": self._storage, "dim": self._dim, "row_bytes": width}

    def _state_for_save(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = dict(self._core.get_state())
        scalars = {k: int(v) for k, v in state.items() if not isinstance(v, np.ndarray)}
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        with self._attr_lock:
            fields, attr_arrays = self._attributes.state()
        arrays.update(attr_arrays)
        meta = dict(self._meta(), scalars=scalars)
        if fields:
            meta["attributes"] = fields
        return meta, arrays

    def save(self, path: str | os.PathLike[str]) -> None:
        """Saves the index to ``path`` atomically (temporary file, fsync, rename).

        Load it with :func:`bitgraph.load`, optionally memory-mapped.
        """
        with self._write_lock:  # no add may move the arrays while they are written
            meta, arrays = self._state_for_save()
            persistence.save_atomic(path, meta, arrays)
            del arrays  # views into the core: gone before its buffers may move
            self._core.release_free_slack()

    @classmethod
    def _from_saved(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    backend: str | None = None, verify: bool = True) -> "_VectorIndex":
        obj = cls.__new__(cls)
        obj._restore(meta, arrays, backend, verify)
        return obj

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 backend: str | None, verify: bool = True) -> None:
        try:
            self._dim = check_dim(meta["dim"])
            self._metric = check_choice("metric", meta["metric"], METRICS)
            self._storage = check_choice("storage", meta["storage"], STORAGES)
            self._next_id = int(check_int("next_id", meta["next_id"], 0,  # type: ignore[arg-type]
                                          INT64_MAX + 1))
            self._restore_params(dict(meta["params"]))
            state: dict[str, Any] = {k: v for k, v in arrays.items() if not k.startswith("attr.")}
            # scalars are slots and levels (entry_point, max_level): -1 .. 2^31 - 1
            state.update({str(k): check_int(str(k), v, -1, INT32_MAX)
                          for k, v in dict(meta.get("scalars", {})).items()})
            fields = {str(k): str(v) for k, v in dict(meta.get("attributes", {})).items()}
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise IndexFileError(f"index file has invalid metadata: {exc}") from exc
        self._backend = _backend.get_backend(backend)
        self._backend_name = backend or _backend.BACKEND_NAME
        self._backend_choice = backend
        self._core_metric = "l2" if self._metric == "l2" else "ip"
        self._write_lock = threading.RLock()
        try:
            state_checks.check_state_arrays(state, self._state_dtypes())
            if verify:
                self._check_values(state)
            self._core = self._core_from_state(state)
            self._init_query_check()
            self._state_mapped = persistence.is_mapped(state["vectors"])
            attributes = AttributeStore.from_state(fields, arrays, int(self._core.n_slots))
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFileError(f"index file is inconsistent: {exc}") from exc
        self._init_attributes(attributes)
        self._generation = 0
        self._gpu = None  # a loaded index searches on the CPU until .to("cuda")
        layout = meta.get("layout")  # absent in files of versions before it was recorded
        if layout is not None and dict(layout) != self._layout():
            raise IndexFileError(f"index file's row layout {dict(layout)} does not match its "
                                 f"parameters ({self._layout()})")
        planner = meta.get("planner")  # absent in files of versions before it was saved
        if planner is not None:
            try:
                self._planner = PlannerConfig(**dict(planner))
            except (TypeError, ValueError) as exc:
                raise IndexFileError(f"index file has invalid planner settings: {exc}") from exc

    def _state_dtypes(self) -> dict[str, Any]:
        """The arrays a saved core must have: name -> (dtype, number of dimensions)."""
        return {"vectors": (np.uint8, 2), "labels": (np.int64, 1), "deleted": (np.uint8, 1)}

    def _check_values(self, state: dict[str, Any]) -> None:
        """Values a file can hold but ``add`` never stores (see :mod:`bitgraph.state_checks`)."""
        rows = state["vectors"]
        width = {"float32": 4 * self._dim, "float16": 2 * self._dim,
                 "int8": self._dim + 8}[self._storage]
        if rows.ndim != 2 or rows.shape[1] != width:
            raise ValueError(f"stored rows have shape {rows.shape}, expected (n, {width})")
        state_checks.check_storage_rows(rows, self._storage, self._dim, self._metric)
        state_checks.check_ids(state["labels"], state["deleted"], self._next_id)

    def _restore_params(self, params: dict[str, Any]) -> None:
        pass

    def __reduce__(self) -> tuple[Any, ...]:
        with self._write_lock:
            meta, arrays = self._state_for_save()
            blob = persistence.index_bytes(meta, arrays)
        # An explicitly chosen backend survives pickling; the default stays the default of
        # the unpickling process (which may lack the native extension).
        return (persistence.loads, (blob, self._backend_choice))

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self._params().items() if k != "seed")
        extra = f", {extra}" if extra else ""
        return (f"{type(self).__name__}(dim={self._dim}, metric={self._metric!r}, "
                f"storage={self._storage!r}{extra}, size={len(self)}, "
                f"{self._memory_repr()}, backend={self._backend_name!r})")

    def _memory_repr(self) -> str:
        mapped = self.mapped_nbytes
        held = f"nbytes={_human_bytes(self.nbytes)}"
        return held if not mapped else f"{held} (+{_human_bytes(mapped)} memory-mapped)"


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover
