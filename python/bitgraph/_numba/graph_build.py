"""Jitted HNSW insertion (hnswlib's addPoint, single-threaded).

Argument conventions (``views``, ``spec``, ``graph``, ``meta``) are those of
``graph_search.py``. The caller has already written each new slot's row, level, upper-arena
offset and zeroed links; :func:`insert_slots` links the slots into the graph in order.

Distances between two stored nodes (neighbour selection) decode one row to float32 and use it
as the query against the other, like the native backend; new nodes are also inserted with
their decoded stored row as the query, so the graph is built over what searches will see.
"""
import numpy as np
from numba import njit

from .graph_search import (beam_search, greedy_descent, level_links, link_offset,
                           pack_entry, unpack_entry)
from .heaps import heap_drain_sorted
from .kernels import decode_slot_into, sqnorm, walk_distance
from .visited import next_epoch


@njit(cache=True, nogil=True)
def select_neighbors(sd, si, n, m, views, spec, buf):
    """hnswlib's getNeighborsByHeuristic2 over candidates sorted by distance to the base.

    Keeps a candidate only if no already kept neighbour is strictly closer to it than the base
    is, which spreads links over directions instead of piling them into one cluster. Kept
    entries are compacted to the front of ``sd``/``si`` (still ascending); returns how many.
    """
    if n < m:
        return n
    dim, storage, metric, _ = spec
    kept = 0
    for a in range(n):
        if kept >= m:
            break
        good = True
        if kept > 0:
            decode_slot_into(views, si[a], dim, storage, buf)
            bq = sqnorm(buf, dim)
            for b in range(kept):
                if walk_distance(buf, bq, views, si[b], dim, storage, metric) < sd[a]:
                    good = False
                    break
        if good:
            sd[kept] = sd[a]
            si[kept] = si[a]
            kept += 1
    return kept


@njit(cache=True, nogil=True)
def _sort_pairs(keys, vals, n):
    """Insertion sort of ``keys[:n]`` ascending, moving ``vals`` along (n <= 2M+1: small)."""
    for i in range(1, n):
        k = keys[i]
        v = vals[i]
        j = i - 1
        while j >= 0 and keys[j] > k:
            keys[j + 1] = keys[j]
            vals[j + 1] = vals[j]
            j -= 1
        keys[j + 1] = k
        vals[j + 1] = v


@njit(cache=True, nogil=True)
def add_backlink(node, new, level, views, spec, graph, nd, ni, buf):
    """Links ``node -> new`` at ``level``; an overfull list is re-pruned by the heuristic."""
    dim, storage, metric, M = spec
    arr, maxc = level_links(graph, M, level)
    off = link_offset(graph, M, node, level)
    cnt = arr[off]
    if cnt < maxc:
        arr[off + 1 + cnt] = new
        arr[off] = cnt + 1  # count last: a concurrent reader never sees an unwritten entry
        return
    decode_slot_into(views, node, dim, storage, buf)
    bq = sqnorm(buf, dim)
    nd[0] = walk_distance(buf, bq, views, new, dim, storage, metric)
    ni[0] = new
    for j in range(cnt):
        nb = arr[off + 1 + j]
        ni[j + 1] = nb
        nd[j + 1] = walk_distance(buf, bq, views, nb, dim, storage, metric)
    _sort_pairs(nd, ni, cnt + 1)
    m = select_neighbors(nd, ni, cnt + 1, maxc, views, spec, buf)
    for j in range(m):
        arr[off + 1 + j] = ni[j]
    arr[off] = m


@njit(cache=True, nogil=True)
def connect_new(slot, level, sd, si, n, views, spec, graph, buf):
    """Links a new slot to its selected neighbours (the first ``m`` of ``si``, returned).

    As in hnswlib the new node keeps at most M links on every level (level 0 lists fill up to
    2M through later back-links). The back-links are added by the caller once every level of
    the new node has its own links (see :func:`insert_slots`).
    """
    M = spec[3]
    m = select_neighbors(sd, si, n, M, views, spec, buf)
    arr, _ = level_links(graph, M, level)
    off = link_offset(graph, M, slot, level)
    for j in range(m):
        arr[off + 1 + j] = si[j]
    arr[off] = m
    return m


@njit(cache=True, nogil=True)
def insert_slots(first, last, views, spec, graph, levels, deleted, meta, ef, tags, epochs):
    """Inserts slots ``first .. last-1`` into the graph, in order.

    ``ef`` is the construction beam width; ``tags``/``epochs`` a visited pair (row 0 is used).
    Construction treats every slot, tombstones included, as a possible neighbour (hnswlib):
    tombstones stay in the graph as waypoints.
    """
    dim, storage, metric, M = spec
    ef = max(ef, M)
    qbuf = np.empty(dim, dtype=np.float32)
    buf = np.empty(dim, dtype=np.float32)
    rk = np.empty(ef, dtype=np.float32)
    rv = np.empty(ef, dtype=np.int32)
    sd = np.empty(ef, dtype=np.float32)
    si = np.empty(ef, dtype=np.int32)
    ck = np.empty(2 * ef + 64, dtype=np.float32)
    cv = np.empty(2 * ef + 64, dtype=np.int32)
    nd = np.empty(2 * M + 1, dtype=np.float32)
    ni = np.empty(2 * M + 1, dtype=np.int32)
    chosen = np.empty((1, M), dtype=np.int32)  # per level: the new slot's links
    n_chosen = np.zeros(1, dtype=np.int64)
    no_filter = np.empty(0, dtype=np.uint64)
    row_tags = tags[0]
    for slot in range(first, last):
        decode_slot_into(views, slot, dim, storage, qbuf)
        qq = sqnorm(qbuf, dim)
        level = levels[slot]
        entry, max_level = unpack_entry(meta[0])
        if entry < 0:
            meta[0] = pack_entry(slot, level)
            continue
        cur = entry
        curd = walk_distance(qbuf, qq, views, cur, dim, storage, metric)
        if level < max_level:
            cur, curd = greedy_descent(qbuf, qq, views, spec, graph, cur, curd, max_level, level)
        top = min(level, max_level)
        if chosen.shape[0] < top + 1:
            chosen = np.empty((top + 1, M), dtype=np.int32)
            n_chosen = np.zeros(top + 1, dtype=np.int64)
        for lev in range(top, -1, -1):
            epoch = next_epoch(tags, epochs, 0)
            n_res, ck, cv = beam_search(qbuf, qq, views, spec, graph, cur, curd, lev, ef,
                                        0, deleted, no_filter, row_tags, epoch, rk, rv, ck, cv)
            heap_drain_sorted(rk, rv, n_res, sd, si)
            m = connect_new(slot, lev, sd, si, n_res, views, spec, graph, buf)
            chosen[lev, :m] = si[:m]
            n_chosen[lev] = m
            cur, curd = si[0], sd[0]  # the closest candidate is always kept, first
        # Back-links only once the slot has its own links on every level: until then nothing
        # leads to it, so a concurrent search never walks into a node whose lower levels are
        # still empty (it would stop there with one result). Sequential builds are unchanged.
        for lev in range(top, -1, -1):
            for j in range(n_chosen[lev]):
                add_backlink(chosen[lev, j], slot, lev, views, spec, graph, nd, ni, buf)
        if level > max_level:
            meta[0] = pack_entry(slot, level)
