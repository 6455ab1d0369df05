"""Jitted HNSW graph walks: greedy descent, beam search, and batched k-NN queries.

Conventions shared with ``graph_build.py``:

- ``views``: the row view tuple from :func:`kernels.row_views`;
- ``spec``: ``(dim, storage_code, metric_code, M)``;
- ``graph``: ``(links0_flat, upper, upper_off)``: level-0 rows of ``1 + 2M`` int32 flattened,
  the upper-level arena (docs/backend-contract.md) and each slot's offset into it;
- ``meta``: one int64 packing the entry point and the top level (see :func:`pack_entry`), so
  a search that runs during an insertion reads both from one atomic 64-bit load.

Small helpers called per visited node are ``inline="always"``: a real call passes every array
of a tuple argument field by field, which cost more than the work itself (measured ~30% of
search time).

Nothing here bounds-checks (numba does not); the cores validate loaded graphs instead, and
neighbour counts are clamped so a count read mid-update cannot leave a row.
"""
import numpy as np
from numba import njit, prange

from .heaps import grown, heap_drain_sorted, heap_pop, heap_push, heap_replace_top
from .kernels import sqnorm, walk_distance
from .graph_links import level_links, link_offset  # noqa: F401  (re-exported)
from .pool import pool_search
from .visited import next_epoch

# Bits of the ``filt`` argument: which slots a beam search may put into its result set.
SKIP_DELETED = 1
USE_ALLOWED = 2

_LEVEL_BITS = 128  # meta = (entry + 1) * 128 + (max_level + 1); levels never reach 127


@njit(cache=True, nogil=True)
def pack_entry(entry, max_level):
    """Packs the entry point and top level into one int64 (0 = empty graph)."""
    return (entry + 1) * _LEVEL_BITS + (max_level + 1)


@njit(cache=True, nogil=True)
def unpack_entry(packed):
    """Inverse of :func:`pack_entry`: ``(entry, max_level)``, ``(-1, -1)`` when empty."""
    return packed // _LEVEL_BITS - 1, packed % _LEVEL_BITS - 1


@njit(cache=True, nogil=True, inline="always")
def is_admissible(slot, filt, deleted, allowed):
    """Whether ``slot`` may enter a result set under the ``filt`` flags."""
    if (filt & SKIP_DELETED) and deleted[slot] != 0:
        return False
    if filt & USE_ALLOWED:
        w = slot >> 6
        if w >= allowed.shape[0]:
            return False
        return ((allowed[w] >> np.uint64(slot & 63)) & np.uint64(1)) != 0
    return True


@njit(cache=True, nogil=True)
def greedy_descent(q, qq, views, spec, graph, cur, curd, top_level, stop_level):
    """Greedy walk from ``cur`` down levels ``top_level .. stop_level+1``; returns (slot, dist)."""
    dim, storage, metric, M = spec
    for level in range(top_level, stop_level, -1):
        arr, maxc = level_links(graph, M, level)
        changed = True
        while changed:
            changed = False
            off = link_offset(graph, M, cur, level)
            cnt = min(arr[off], maxc)
            for j in range(cnt):
                nb = arr[off + 1 + j]
                d = walk_distance(q, qq, views, nb, dim, storage, metric)
                if d < curd:
                    curd = d
                    cur = nb
                    changed = True
    return cur, curd


@njit(cache=True, nogil=True)
def beam_search(q, qq, views, spec, graph, entry, entry_d, level, ef,
                filt, deleted, allowed, tags, epoch, rk, rv, ck, cv):
    """hnswlib's ef-bounded best-first search on one level.

    Every reachable slot may be traversed, but only admissible ones enter the result max-heap
    ``(rk, rv)`` (capacity >= ef); its worst distance bounds which candidates are expanded.
    ``(ck, cv)`` is the candidate queue (negated keys), grown on demand, returned for reuse.
    Returns ``(n_results, ck, cv)``.
    """
    dim, storage, metric, M = spec
    tags[entry] = epoch
    n_res = 0
    bound = np.float32(np.inf)
    if is_admissible(entry, filt, deleted, allowed):
        rk[0] = entry_d
        rv[0] = entry
        n_res = 1
        bound = entry_d
    ck[0] = -entry_d
    cv[0] = entry
    n_cand = 1
    arr, maxc = level_links(graph, M, level)
    while n_cand > 0:
        # Stop when the closest unexpanded candidate is worse than a full result set.
        if -ck[0] > bound and n_res >= ef:
            break
        c = cv[0]
        n_cand = heap_pop(ck, cv, n_cand)
        off = link_offset(graph, M, c, level)
        cnt = min(arr[off], maxc)
        for j in range(cnt):
            nb = arr[off + 1 + j]
            if tags[nb] == epoch:
                continue
            tags[nb] = epoch
            d = walk_distance(q, qq, views, nb, dim, storage, metric)
            if n_res < ef or d < bound:
                if n_cand == ck.shape[0]:
                    ck, cv = grown(ck, cv)
                n_cand = heap_push(ck, cv, n_cand, -d, nb)
                if is_admissible(nb, filt, deleted, allowed):
                    if n_res < ef:
                        n_res = heap_push(rk, rv, n_res, d, nb)
                    else:
                        heap_replace_top(rk, rv, n_res, d, nb)
                    bound = rk[0]
    return n_res, ck, cv


@njit(cache=True, nogil=True)
def search_range(queries, q0, q1, k, ef, views, spec, graph, meta, labels,
                 filt, deleted, allowed, tags, epochs, tag_row, out_labels, out_dists):
    """k-NN search of ``queries[q0:q1]`` writing ``out_*[q0:q1]`` (padded with -1 / +inf).

    Uses row ``tag_row`` of the visited tags; scratch heaps are allocated once per range.
    """
    dim = spec[0]
    entry, max_level = unpack_entry(meta[0])
    pd = np.empty(ef, dtype=np.float32)  # the unfiltered walk's pool (native search_layer)
    pi = np.empty(ef, dtype=np.int32)
    px = np.empty(ef, dtype=np.uint8)
    rk = np.empty(ef, dtype=np.float32)
    rv = np.empty(ef, dtype=np.int32)
    sk = np.empty(ef, dtype=np.float32)
    sv = np.empty(ef, dtype=np.int32)
    ck = np.empty(2 * ef + 64, dtype=np.float32)
    cv = np.empty(2 * ef + 64, dtype=np.int32)
    row_tags = tags[tag_row]
    for qi in range(q0, q1):
        out_labels[qi, :] = -1
        out_dists[qi, :] = np.inf
        if entry < 0:
            continue
        q = queries[qi]
        qq = sqnorm(q, dim)
        d0 = walk_distance(q, qq, views, entry, dim, spec[1], spec[2])
        cur, curd = greedy_descent(q, qq, views, spec, graph, entry, d0, max_level, 0)
        epoch = next_epoch(tags, epochs, tag_row)
        if filt == 0:
            # Nothing restricts the results: the native core's pool walk, so both backends
            # answer a query over the same graph with the same results, ties included.
            n_res = pool_search(q, qq, views, spec, graph, cur, 0, ef, row_tags, epoch,
                                pd, pi, px)
            for j in range(min(k, n_res)):
                out_labels[qi, j] = labels[pi[j]]
                out_dists[qi, j] = pd[j]
            continue
        n_res, ck, cv = beam_search(q, qq, views, spec, graph, cur, curd, 0, ef,
                                    filt, deleted, allowed, row_tags, epoch, rk, rv, ck, cv)
        heap_drain_sorted(rk, rv, n_res, sk, sv)
        for j in range(min(k, n_res)):
            out_labels[qi, j] = labels[sv[j]]
            out_dists[qi, j] = sk[j]


@njit(cache=True, nogil=True, parallel=True)
def search_parallel(queries, k, ef, views, spec, graph, meta, labels, filt, deleted,
                    allowed, tags, epochs, n_blocks, out_labels, out_dists):
    """:func:`search_range` over ``n_blocks`` contiguous query blocks in parallel.

    Block ``b`` uses visited-tag row ``b`` (``tags`` has at least ``n_blocks`` rows).
    """
    nq = queries.shape[0]
    for b in prange(n_blocks):
        search_range(queries, b * nq // n_blocks, (b + 1) * nq // n_blocks, k, ef,
                     views, spec, graph, meta, labels, filt, deleted, allowed,
                     tags, epochs, b, out_labels, out_dists)
