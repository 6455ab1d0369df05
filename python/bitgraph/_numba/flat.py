"""FlatCore: exact k-NN by brute force over the encoded rows (docs/backend-contract.md).

Each query scans every slot with a bounded max-heap of the k best admissible rows (a partial
sort: O(n log k) at worst, nearly O(n) in practice), parallel over blocks of queries.
"""
import numpy as np
from numba import njit, prange

from .graph_search import SKIP_DELETED, USE_ALLOWED, is_admissible
from .heaps import heap_drain_sorted, heap_push, heap_replace_top
from .kernels import (check_storage_metric, core_units, encode_rows, metric_code, slot_distance, sqnorm,
                      storage_code)
from .parallel import clamp_threads, run_parallel
from .filtered import (flat_filtered_parallel, flat_filtered_range,
                       grouped_search, padded_bits)
from .slots import SlotCore, normalize_allowed


@njit(cache=True, nogil=True)
def flat_search_range(queries, q0, q1, k, views, spec, n_slots, labels, filt, deleted,
                      allowed, out_labels, out_dists):
    """Exact k-NN of ``queries[q0:q1]`` over slots ``0 .. n_slots-1``; pads with -1 / +inf."""
    dim, storage, metric = spec
    hk = np.empty(k, dtype=np.float32)
    hv = np.empty(k, dtype=np.int32)
    sk = np.empty(k, dtype=np.float32)
    sv = np.empty(k, dtype=np.int32)
    for qi in range(q0, q1):
        q = queries[qi]
        qq = sqnorm(q, dim)
        n = 0
        for slot in range(n_slots):
            if filt != 0 and not is_admissible(slot, filt, deleted, allowed):
                continue
            d = slot_distance(q, qq, views, slot, dim, storage, metric)
            if n < k:
                n = heap_push(hk, hv, n, d, slot)
            elif d < hk[0]:
                heap_replace_top(hk, hv, n, d, slot)
        heap_drain_sorted(hk, hv, n, sk, sv)
        for j in range(k):
            if j < n:
                out_labels[qi, j] = labels[sv[j]]
                out_dists[qi, j] = sk[j]
            else:
                out_labels[qi, j] = -1
                out_dists[qi, j] = np.inf


@njit(cache=True, nogil=True, parallel=True)
def flat_search_parallel(queries, k, views, spec, n_slots, labels, filt, deleted, allowed,
                         n_blocks, out_labels, out_dists):
    """:func:`flat_search_range` over ``n_blocks`` contiguous query blocks in parallel."""
    nq = queries.shape[0]
    for b in prange(n_blocks):
        flat_search_range(queries, b * nq // n_blocks, (b + 1) * nq // n_blocks, k, views, spec,
                          n_slots, labels, filt, deleted, allowed, out_labels, out_dists)


class FlatCore(SlotCore):
    """Exact index over the same storage rows as :class:`HNSWCore`."""

    def __init__(self, dim, metric, storage="float32", planes=1, offsets=False):
        dim = core_units(dim, storage, planes, offsets)
        check_storage_metric(storage, metric, dim, planes)
        self.metric = metric
        self.planes = int(planes)
        self._spec = (int(dim), storage_code(storage), metric_code(metric, planes))
        super().__init__(dim, storage)

    def add(self, vectors, labels, threads=1, callback=None):
        """Appends ``vectors`` under ``labels`` (a known label is replaced); returns the count.

        Encoding is the only work, so the callback is called once, at the end.
        """
        vectors = self._rows_in(vectors, "vectors")
        labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
        rows = encode_rows(vectors, self.storage)
        with self._write_lock:
            first = self._n_slots
            last = first + len(rows)
            self._reserve(last)
            arr = self._arr
            arr["rows"][first:last] = rows
            arr["labels"][first:last] = labels
            self._assign_slots(labels, first)
            self._n_slots = last
        if callback is not None:
            callback(len(rows))
        return len(rows)

    def search(self, queries, k, ef=None, threads=1, allowed=None):
        """Exact k nearest live (and allowed) items: ``(labels (nq,k), dists (nq,k))``.

        ``ef`` is accepted for API parity and ignored.
        """
        queries = self._rows_in(queries)
        nq, k = queries.shape[0], int(k)
        # n_slots first: it only grows after the arrays holding those slots are published.
        n_slots = self._n_slots
        arr = self._arr
        out_labels = np.full((nq, k), -1, dtype=np.int64)
        out_dists = np.full((nq, k), np.inf, dtype=np.float32)
        if nq == 0 or n_slots == 0:
            return out_labels, out_dists
        bits, use_allowed = normalize_allowed(allowed)
        filt = (SKIP_DELETED if self._n_deleted else 0) | (USE_ALLOWED if use_allowed else 0)
        # k beyond n_slots only adds padding; keep the heap small.
        kk = min(k, n_slots)
        res_l = out_labels if kk == k else np.empty((nq, kk), dtype=np.int64)
        res_d = out_dists if kk == k else np.empty((nq, kk), dtype=np.float32)
        args = (arr["views"], self._spec, n_slots, arr["labels"], filt, arr["deleted"], bits)
        threads = clamp_threads(threads, nq)
        if threads == 1:
            flat_search_range(queries, 0, nq, kk, *args, res_l, res_d)
        else:
            run_parallel(flat_search_parallel, threads, queries, kk, *args, threads,
                         res_l, res_d)
        if kk != k:
            out_labels[:, :kk] = res_l
            out_dists[:, :kk] = res_d
        return out_labels, out_dists

    def search_filtered(self, queries, k, ef, threads, allowed, counts, offsets,
                        exact_ratio=7.0, exact_ratio_batched=1000.0, acorn_below=0.05,
                        seeds=8):
        """Exact filtered k-NN of queries grouped by filter: ``(labels, dists, plan codes
        (all exact), nodes scored)``."""
        def search_group(q, bits, matches, out):
            n_slots = self._n_slots
            arr = self._arr
            out[3][:] = matches
            if n_slots == 0:
                return
            args = (arr["views"], self._spec, n_slots, arr["labels"], arr["deleted"],
                    padded_bits(bits, n_slots))
            t = clamp_threads(threads, q.shape[0])
            if t == 1:
                flat_filtered_range(q, 0, q.shape[0], int(k), *args, out[0], out[1])
            else:
                run_parallel(flat_filtered_parallel, t, q, int(k), *args, t, out[0], out[1])

        rows = self._rows_in(queries)  # asymmetric query rows are wider than stored rows
        return grouped_search(search_group, rows, k, allowed, counts, offsets, rows.shape[1])

    @property
    def nbytes(self):
        """Bytes of the arrays held in memory (capacity included, memory maps excluded)."""
        return self._arrays_nbytes()

    def get_state(self):
        """``{"vectors", "labels", "deleted"}``; views valid until the next add/remove."""
        with self._write_lock:
            state = self._slot_state()
            state["vectors"] = state.pop("rows")
            return state

    @classmethod
    def from_state(cls, dim, metric, storage, state, planes=1, offsets=False):
        """A core over the arrays of ``state`` (adopted without copying; copy-on-write)."""
        core = cls(dim, metric, storage, planes, offsets)
        labels = np.ascontiguousarray(state["labels"], dtype=np.int64).reshape(-1)
        n = labels.shape[0]
        arrays = {"labels": labels,
                  "rows": np.ascontiguousarray(state["vectors"], dtype=np.uint8)
                  .reshape(n, core.row_bytes),
                  "deleted": np.ascontiguousarray(state["deleted"], dtype=np.uint8).reshape(n)}
        core._adopt(arrays, n)
        return core
