"""HNSWCore: the numba backend's HNSW index (docs/backend-contract.md).

Python here only manages memory, labels, levels and progress; the graph work runs in the
jitted functions of ``graph_build.py`` (insertion, one thread) and ``graph_search.py``
(queries, parallel over query blocks).

Concurrency: searches may run from many threads at once, also during an add or remove (they
see the items whose insertion finished and possibly some still being linked). add and remove
are serialised by a lock.
"""
import math

import numpy as np

from ..errors import Cancelled
from .._growth import grown_capacity
from .graph_build import draw_levels, insert_slots
from .graph_repair import repair_reachability
from .graph_search import (SKIP_DELETED, USE_ALLOWED, pack_entry, search_parallel,
                           search_range, unpack_entry)
from .kernels import check_storage_metric, core_units, encode_rows, metric_code, storage_code
from .parallel import clamp_threads, run_parallel
from .filtered import (filtered_parallel, filtered_range, grouped_search,
                       padded_bits)
from .slots import SlotCore, normalize_allowed
from .visited import VisitedPool

# Items inserted per jitted call; the progress callback (and Ctrl-C) is served in between.
_CHUNK = 1000
# A loaded graph's levels are at most this (the native core's bound; packed into 7 bits by
# graph_search.pack_entry). Drawn levels never exceed 53 (see graph_build.draw_levels).
_MAX_LEVEL = 64


class HNSWCore(SlotCore):
    """Hierarchical navigable small-world graph over encoded rows (hnswlib's algorithm, built
    exactly as the native core builds it: see graph_build.py)."""

    def __init__(self, dim, metric, storage, M, ef_construction, seed, planes=1, offsets=False):
        dim = core_units(dim, storage, planes, offsets)
        check_storage_metric(storage, metric, dim, planes)
        self.metric = metric
        self.planes = int(planes)
        self.M = int(M)
        self.M0 = 2 * self.M
        self.ef_construction = int(ef_construction)
        self.seed = int(seed)
        self._spec = (int(dim), storage_code(storage), metric_code(metric, planes), self.M)
        self._level_mult = 1.0 / math.log(float(self.M))
        # The native core's level generator: one splitmix64 state, seeded by seed, advanced
        # once per added item across all adds.
        self._rng_state = np.array([self.seed], dtype=np.uint64)
        self._upper_len = 0
        self._since_repair = 0
        self._visited = VisitedPool()
        super().__init__(dim, storage)
        self._arr["upper"] = np.zeros(0, dtype=np.int32)
        self._arr["meta"] = np.zeros(1, dtype=np.int64)  # packed (entry point, max level)

    def _extra_slot_arrays(self):
        return {"links0": (np.int32, (1 + self.M0,)),
                "levels": (np.int32, ()),
                "upper_off": (np.int64, ())}  # derived: offset of each slot's upper blocks

    def _copy_extras(self, old, new):
        new["upper"] = np.array(old["upper"], dtype=np.int32)
        new["meta"] = np.array(old["meta"], dtype=np.int64)

    def _reserve_upper(self, total, exact=False):
        """Makes the upper-level arena hold ``total`` int32 (bounded growth; exactly that
        with ``exact``)."""
        have = self._arr["upper"].shape[0]
        if total > have:
            self._resize_upper(total if exact else grown_capacity(have, total, 4))

    def _resize_upper(self, size):
        upper = self._arr["upper"]
        grown = np.zeros(max(size, self._upper_len), dtype=np.int32)
        grown[:self._upper_len] = upper[:self._upper_len]
        # A new dict with its own copies: searches holding the old one keep an entry point
        # and arena that agree with each other (see SlotCore._allocate).
        arr = dict(self._arr)
        arr["upper"] = grown
        arr["meta"] = self._arr["meta"].copy()
        self._arr = arr

    def reserve(self, n_slots):
        """Room for ``n_slots`` slots without slack; the upper levels get 1.5x their expected
        share (1/(M-1) blocks per node), a margin for the random spread."""
        with self._write_lock:
            super().reserve(n_slots)
            extra = max(0, int(n_slots) - self._n_slots)
            blocks = 3 * extra // (2 * (self.M - 1)) + 16
            self._reserve_upper(self._upper_len + blocks * (1 + self.M), exact=True)

    def _shrink_extras(self):
        if self._owned and self._arr["upper"].shape[0] > self._upper_len:
            self._resize_upper(self._upper_len)

    @staticmethod
    def _graph(arr):
        return (arr["links0"].reshape(-1), arr["upper"], arr["upper_off"])

    # ---- add ----------------------------------------------------------------------------------

    def _draw_levels(self, n):
        """Levels of ``n`` new items, drawn as the native core draws them."""
        levels = np.empty(n, dtype=np.int32)
        draw_levels(self._rng_state, n, self._level_mult, levels)
        return levels

    def add(self, vectors, labels, threads=1, callback=None):
        """Inserts ``vectors`` under ``labels``; returns how many were inserted.

        Insertion is sequential (``threads`` is accepted for API parity). ``callback(done)``
        runs every ``_CHUNK`` items; returning False stops, keeping the items inserted so far,
        and raises :class:`bitgraph.Cancelled` when items were left out (as the native core).
        """
        vectors = self._rows_in(vectors, "vectors")
        labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
        rows = encode_rows(vectors, self.storage)
        done = 0
        with self._write_lock:
            # As the native core: every level of the add is drawn first (a cancelled add
            # still advances the generator by all of them), and the construction pool is
            # ef_construction clamped to the slots the whole add makes.
            levels = self._draw_levels(len(rows))
            ef = min(self.ef_construction, self._n_slots + len(rows))
            while done < len(rows):
                count = min(_CHUNK, len(rows) - done)
                self._add_chunk(rows[done:done + count], labels[done:done + count],
                                levels[done:done + count], ef)
                done += count
                if callback is not None and not callback(done):
                    break
            # Amortised reachability repair (see csrc/hnsw/build.cpp): once the graph grew by
            # 1/32 since the last one.
            self._since_repair += done
            if self._since_repair * 32 >= self._n_slots:
                self._repair()
                self._since_repair = 0
        if done < len(rows):
            raise Cancelled("the operation was cancelled by its progress callback")
        return done

    def _add_chunk(self, rows, labels, levels, ef):
        first = self._n_slots
        last = first + len(rows)
        sizes = levels.astype(np.int64) * (1 + self.M)
        self._reserve(last)
        self._reserve_upper(self._upper_len + int(sizes.sum()))
        arr = self._arr
        arr["rows"][first:last] = rows
        arr["labels"][first:last] = labels
        arr["levels"][first:last] = levels
        arr["upper_off"][first:last] = self._upper_len + np.cumsum(sizes) - sizes
        tags, epochs = self._visited.acquire(1, self.capacity)
        # Until insert_slots runs, nothing above is committed (the next add overwrites it).
        # Once it has run the graph links the new slots, so the bookkeeping must follow even
        # if Ctrl-C raises KeyboardInterrupt the moment the jitted call returns.
        try:
            insert_slots(first, last, arr["views"], self._spec, self._graph(arr), arr["levels"],
                         arr["meta"], ef, tags, epochs)
        finally:
            self._upper_len += int(sizes.sum())
            self._n_slots = last
            self._assign_slots(labels, first)
            self._visited.release((tags, epochs))

    def _repair(self):
        arr = self._arr
        tags, epochs = self._visited.acquire(1, self.capacity)
        try:
            return repair_reachability(self._n_slots, arr["views"], self._spec, self._graph(arr),
                                       arr["deleted"], arr["meta"], self.ef_construction, tags,
                                       epochs)
        finally:
            self._visited.release((tags, epochs))

    # ---- search -------------------------------------------------------------------------------

    def search(self, queries, k, ef, threads=1, allowed=None):
        """k nearest live (and allowed) items per query: ``(labels (nq,k), dists (nq,k))``."""
        queries = self._rows_in(queries)
        nq, k = queries.shape[0], int(k)
        # n_slots first: it only grows after the arrays holding those slots are published.
        n_slots = self._n_slots
        arr = self._arr  # one snapshot for the whole call
        out_labels = np.full((nq, k), -1, dtype=np.int64)
        out_dists = np.full((nq, k), np.inf, dtype=np.float32)
        if nq == 0 or n_slots == 0:
            return out_labels, out_dists
        # The result set never holds more than n_slots items, so a larger ef only costs memory.
        ef = max(1, min(max(int(ef), k), n_slots))
        bits, use_allowed = normalize_allowed(allowed)
        filt = (SKIP_DELETED if self._n_deleted else 0) | (USE_ALLOWED if use_allowed else 0)
        threads = clamp_threads(threads, nq)
        tags, epochs = self._visited.acquire(threads, arr["rows"].shape[0])
        args = (arr["views"], self._spec, self._graph(arr), arr["meta"], arr["labels"], filt,
                arr["deleted"], bits, tags, epochs)
        try:
            if threads == 1:
                search_range(queries, 0, nq, k, ef, *args, 0, out_labels, out_dists)
            else:
                run_parallel(search_parallel, threads, queries, k, ef, *args, threads,
                             out_labels, out_dists)
        finally:
            self._visited.release((tags, epochs))
        return out_labels, out_dists

    def search_filtered(self, queries, k, ef, threads, allowed, counts, offsets,
                        exact_ratio=7.0, exact_ratio_batched=1000.0, acorn_below=0.05,
                        seeds=8):
        """Planned filtered k-NN of queries grouped by filter (see the native core):
        ``(labels, dists, plan codes int8, nodes scored int64)``."""
        def search_group(q, bits, matches, out):
            n_slots = self._n_slots  # read first: it only grows after its arrays are published
            arr = self._arr
            nq = q.shape[0]
            if n_slots == 0:
                return
            kk = int(k)
            ef_g = max(1, min(max(int(ef), kk), n_slots))
            per_query = exact_ratio
            # Same plan choice as the native core (which scans shared-filter groups with tiles).
            if nq >= 8 and self.storage != "int8":
                per_query = max(exact_ratio, exact_ratio_batched)
            t = clamp_threads(threads, nq)
            tags, epochs = self._visited.acquire(t, arr["rows"].shape[0])
            args = (arr["views"], self._spec, self._graph(arr), arr["meta"], arr["labels"],
                    n_slots, n_slots - self._n_deleted, self._n_deleted, arr["deleted"],
                    padded_bits(bits, n_slots), matches, float(per_query), float(acorn_below),
                    int(seeds), tags, epochs)
            try:
                if t == 1:
                    filtered_range(q, 0, nq, kk, ef_g, *args, 0, *out)
                else:
                    run_parallel(filtered_parallel, t, q, kk, ef_g, *args, t, *out)
            finally:
                self._visited.release((tags, epochs))

        rows = self._rows_in(queries)  # asymmetric query rows are wider than stored rows
        return grouped_search(search_group, rows, k, allowed, counts, offsets, rows.shape[1])

    # ---- state --------------------------------------------------------------------------------

    @property
    def nbytes(self):
        """Bytes of the arrays held in memory (capacity included, memory maps excluded)."""
        return self._arrays_nbytes() + self._visited.nbytes

    def get_state(self):
        """The contract's state dict; arrays are views valid until the next add/remove."""
        with self._write_lock:
            state = self._slot_state()
            del state["upper_off"]
            state["vectors"] = state.pop("rows")
            state["upper"] = self._arr["upper"][:self._upper_len]
            entry, max_level = unpack_entry(self._arr["meta"][0])
            state["entry_point"] = int(entry)
            state["max_level"] = int(max_level)
            return state

    @classmethod
    def from_state(cls, dim, metric, storage, M, ef_construction, seed, state, planes=1,
                   offsets=False):
        """A core over the arrays of ``state`` (adopted without copying; copy-on-write)."""
        core = cls(dim, metric, storage, M, ef_construction, seed, planes, offsets)
        arrays = _checked_state(core, state)
        n = arrays["labels"].shape[0]
        core._adopt(arrays, n, ("links0", "levels", "upper"))
        sizes = arrays["levels"].astype(np.int64) * (1 + core.M)
        core._arr["upper_off"] = np.cumsum(sizes) - sizes
        core._arr["meta"] = np.array([pack_entry(int(state["entry_point"]),
                                                 int(state["max_level"]))], dtype=np.int64)
        core._upper_len = arrays["upper"].shape[0]
        # The level generator restarts from the seed, as the native core's does on load.
        return core


def _checked_state(core, state):
    """Normalises and validates the arrays of a saved graph (jitted code never bounds-checks,
    so a corrupt file must fail here, not crash the process)."""
    def arr(name, dtype):
        return np.ascontiguousarray(state[name], dtype=dtype)

    labels = arr("labels", np.int64).reshape(-1)
    n = labels.shape[0]
    out = {"labels": labels,
           "rows": arr("vectors", np.uint8).reshape(n, core.row_bytes),
           "deleted": arr("deleted", np.uint8).reshape(n),
           "links0": arr("links0", np.int32).reshape(n, 1 + core.M0),
           "levels": arr("levels", np.int32).reshape(n),
           "upper": arr("upper", np.int32).reshape(-1)}
    levels = out["levels"]
    if n and (levels.min() < 0 or levels.max() > _MAX_LEVEL):
        raise ValueError("corrupt HNSW state: level out of range")
    if out["upper"].shape[0] != int(levels.astype(np.int64).sum()) * (1 + core.M):
        raise ValueError(f"corrupt HNSW state: upper has {out['upper'].shape[0]} values, "
                         f"levels need {int(levels.sum()) * (1 + core.M)}")
    _check_links(out["links0"], core.M0, n)
    _check_links(out["upper"].reshape(-1, 1 + core.M), core.M, n)
    entry, max_level = int(state["entry_point"]), int(state["max_level"])
    if n == 0:
        ok = entry == -1
    else:
        # Searches descend from max_level at the entry point: it is the entry's level (the
        # native core's rule).
        ok = 0 <= entry < n and max_level == levels[entry]
    if not ok:
        raise ValueError(f"corrupt HNSW state: entry point {entry}, max level {max_level}")
    return out


def _check_links(blocks, max_count, n):
    """Each row: count in [0, max_count], then that many slots in [0, n)."""
    if blocks.shape[0] == 0:
        return
    counts = blocks[:, 0]
    if counts.min() < 0 or counts.max() > max_count:
        raise ValueError("corrupt HNSW state: neighbour count out of range")
    used = np.arange(max_count)[None, :] < counts[:, None]
    ids = blocks[:, 1:][used]
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError("corrupt HNSW state: neighbour slot out of range")
