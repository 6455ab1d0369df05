"""The one search call of the numba cores (the mirror of csrc/filter/search_request.hpp and
the bindings' query_with).

``core.query(queries, k, ef, threads, check, filters, planner, rerank)`` answers a whole
search: evaluates the compiled filters into bitsets, groups the queries by filter, lets the
core walk or scan each group, finishes short walks exactly, pads the rows to k, and with a
re-rank stage keeps the k closest candidates by exact float distance. The numba backend
has no one-pass query check (``QUERY_CHECKS`` is False): the API layer checks the values
first and passes ``check=0``; any other check returns None (take the careful path).
"""

from __future__ import annotations

import numpy as np

from .._rows import padded
from .._filter_ops import OP_NOT, OP_SCATTER
from .rerank import rerank as rerank_rows

# The planner settings that answer every query with the exact scan of its matches.
EXACT_PLAN = (1e300, 1e300, 0.0, 0)


def query(core, queries, k, ef, threads, check=0, filters=None, planner=None, rerank=None):
    if check:
        return None
    found = _search(core, queries, k, ef, threads, filters, planner)
    if rerank is None:
        return found
    return _reranked(core, found, rerank, threads)


def _reranked(core, found, rerank, threads):
    """The k closest of each query's candidates by exact float distance (the re-rank stage)."""
    rq, vectors, k, metric = rerank
    ids = found[0]
    slots = np.asarray(core.slots_of(ids.reshape(-1)), dtype=np.int64).reshape(ids.shape)
    slots[ids < 0] = -1
    out = rerank_rows(rq, vectors, slots, ids, int(k), metric, threads)
    return out + tuple(found[2:])


def _search(core, queries, k, ef, threads, filters, planner):
    q = core._query_rows(queries)
    nq = q.shape[0]
    n_slots = int(core.n_slots)
    kk = max(1, min(k, n_slots))
    ef = min(max(ef, kk), max(kk, n_slots))
    if filters is None or len(filters[1]) <= 1:
        ids, dists = core.search(q, kk, ef, threads, None)
        _complete_short(core, q, ids, dists, None, ef, threads)
        if filters is None:
            return padded(ids, dists, k)
        return padded(ids, dists, k) + (np.zeros(nq, np.int8), np.zeros(nq, np.int64))
    ops, op_offsets, entries, loads, limit, filter_of = filters
    n_filters = len(op_offsets) - 1
    words = (min(limit, n_slots) + 63) // 64
    bits = np.zeros((n_filters, words), dtype=np.uint64)
    counts = core.evaluate_filters(ops, op_offsets, entries, limit, bits, loads)
    planner = tuple(planner) if planner is not None else ()
    if filter_of is None:
        offsets = np.array([0, nq], dtype=np.int64)
        ids, dists, plans, scored = core.search_filtered(q, kk, ef, threads, bits, counts,
                                                         offsets, *planner)
        return padded(ids, dists, k) + (plans, scored)
    filter_of = np.asarray(filter_of)
    ids = np.full((nq, kk), -1, dtype=np.int64)
    dists = np.full((nq, kk), np.inf, dtype=np.float32)
    plans = np.zeros(nq, dtype=np.int8)
    scored = np.zeros(nq, dtype=np.int64)
    order = np.argsort(filter_of[filter_of >= 0], kind="stable")
    order = np.flatnonzero(filter_of >= 0)[order]
    if order.size:
        offsets = np.searchsorted(filter_of[order], np.arange(n_filters + 1)).astype(np.int64)
        offsets[-1] = order.size
        found = core.search_filtered(q[order], kk, ef, threads, bits, counts, offsets, *planner)
        ids[order], dists[order], plans[order], scored[order] = found
    none = np.flatnonzero(filter_of < 0)
    if none.size:
        ids[none], dists[none] = core.search(q[none], kk, ef, threads, None)
        _complete_short(core, q, ids, dists, none, ef, threads)
    return padded(ids, dists, k) + (plans, scored)


def _complete_short(core, q, ids, dists, rows, ef, threads):
    """Finishes exactly, in place, the unfiltered queries whose walk found fewer than
    min(k, live items) results (see run_search's complete_short)."""
    want = min(ids.shape[1], int(core.size))
    if want == 0:
        return
    short = ids[:, want - 1] < 0
    if rows is not None:
        mask = np.zeros_like(short)
        mask[rows] = True
        short &= mask
    if not short.any():
        return
    where = np.flatnonzero(short)
    ops = np.array([[OP_SCATTER, 0, 0], [OP_NOT, 0, 0]], dtype=np.int64)
    n_slots = int(core.n_slots)
    bits, count = core.evaluate_filter(ops, np.zeros(0, np.int32), n_slots, None,
                                       np.zeros((0, (n_slots + 63) // 64), np.uint64))
    found = core.search_filtered(
        q[where], ids.shape[1], ef, threads, np.asarray(bits)[None, :],
        np.array([int(count)], dtype=np.int64), np.array([0, where.size], dtype=np.int64),
        *EXACT_PLAN)
    ids[where], dists[where] = found[0], found[1]
