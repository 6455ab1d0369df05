"""Jitted HNSW insertion, the same algorithm as the native core (csrc/hnsw/build.cpp).

Argument conventions (``views``, ``spec``, ``graph``, ``meta``) are those of
``graph_search.py``. The caller has already written each new slot's row, level, upper-arena
offset and zeroed links; :func:`insert_slots` links the slots into the graph in order.

From the same vectors, seed and add calls a single-threaded build links the same graph as the
native one (tests/test_backend_parity.py): the same levels (:func:`draw_levels`), the same walk
(:mod:`.pool`), the same neighbour heuristic, tie order and back-link pruning.

Distances between two stored nodes (neighbour selection) decode one row to float32 and use it
as the query against the other, like the native backend; new nodes are also inserted with
their decoded stored row as the query, so the graph is built over what searches will see.
"""
import math

import numpy as np
from numba import njit

from .graph_search import greedy_descent, level_links, link_offset, pack_entry, unpack_entry
from .kernels import decode_slot_into, sqnorm, walk_distance
from .pool import pool_search
from .visited import next_epoch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True)
def draw_levels(state, n, level_mult, out):
    """The native level draw: for each of ``n`` new slots, in insertion order,
    ``u = ((splitmix64(state) >> 11) + 1) * 2^-53`` (uniform in (0, 1]) and
    ``level = int(-log(u) * level_mult)`` into ``out[:n]``. ``state`` (uint64[1]) advances by one
    splitmix64 step per slot and carries over to the next add, as the native ``rng_state_``.
    ``u >= 2^-53`` bounds a level by 53 (M = 2), so no cap is needed."""
    s = state[0]
    for i in range(n):
        s = s + _GOLDEN  # uint64: wraps modulo 2^64 like the C++
        z = s
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        u = np.float64((z >> np.uint64(11)) + np.uint64(1)) * (1.0 / 9007199254740992.0)
        out[i] = np.int32(-math.log(u) * level_mult)  # libm log, as std::log
    state[0] = s


@njit(cache=True, nogil=True)
def select_neighbors(sd, si, n, m, views, spec, buf):
    """The native select_neighbors (hnswlib's heuristic) over candidates sorted by distance to
    the base: keeps a candidate only if no already kept neighbour is strictly closer to it than
    the base is, which spreads links over directions instead of piling them into one cluster.
    At most ``m`` candidates are left as they are. Kept entries are compacted to the front of
    ``sd``/``si`` (still in order); returns how many.
    """
    if n <= m:
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
    """Insertion sort of ``(keys, vals)[:n]`` by key, then val (the native ``Closer``)."""
    for i in range(1, n):
        k = keys[i]
        v = vals[i]
        j = i - 1
        while j >= 0 and (keys[j] > k or (keys[j] == k and vals[j] > v)):
            keys[j + 1] = keys[j]
            vals[j + 1] = vals[j]
            j -= 1
        keys[j + 1] = k
        vals[j + 1] = v


@njit(cache=True, nogil=True)
def add_backlink(node, new, dist, level, views, spec, graph, nd, ni, buf):
    """The native link_back: links ``node -> new`` at ``level`` (``dist``: their distance, as
    the new node's walk measured it) unless the link exists; a full list is re-selected by the
    heuristic among its old neighbours and ``new``, seen from ``node``."""
    dim, storage, metric, M = spec
    arr, maxc = level_links(graph, M, level)
    off = link_offset(graph, M, node, level)
    cnt = arr[off]
    for j in range(cnt):
        if arr[off + 1 + j] == new:
            return
    if cnt < maxc:
        arr[off + 1 + cnt] = new
        arr[off] = cnt + 1  # count last: a concurrent reader never sees an unwritten entry
        return
    decode_slot_into(views, node, dim, storage, buf)
    bq = sqnorm(buf, dim)
    nd[0] = dist
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
def own_links(M, level):
    """How many links a new slot selects for itself at ``level`` (the native
    ``Graph::own_links``): M + M // 2 at level 0, M above."""
    return M + M // 2 if level == 0 else M


@njit(cache=True, nogil=True)
def connect_new(slot, level, sd, si, n, views, spec, graph, buf):
    """Links a new slot to its selected neighbours (the first ``m`` of ``si``, returned).

    The new node keeps at most :func:`own_links` links (level 0 lists fill up to 2M through
    later back-links). The back-links are added by the caller once every level of the new node
    has its own links (see :func:`insert_slots`).
    """
    M = spec[3]
    m = select_neighbors(sd, si, n, own_links(M, level), views, spec, buf)
    arr, _ = level_links(graph, M, level)
    off = link_offset(graph, M, slot, level)
    for j in range(m):
        arr[off + 1 + j] = si[j]
    arr[off] = m
    return m


@njit(cache=True, nogil=True)
def insert_slots(first, last, views, spec, graph, levels, meta, ef, tags, epochs):
    """Inserts slots ``first .. last-1`` into the graph, in order (the native ``insert``).

    ``ef`` is the construction pool size (ef_construction clamped to the slots of the add, as
    the native core); ``tags``/``epochs`` a visited pair (row 0 is used). Construction treats
    every slot, tombstones included, as a possible neighbour: tombstones stay in the graph as
    waypoints.
    """
    dim, storage, metric, M = spec
    qbuf = np.empty(dim, dtype=np.float32)
    buf = np.empty(dim, dtype=np.float32)
    sd = np.empty(ef, dtype=np.float32)
    si = np.empty(ef, dtype=np.int32)
    sx = np.empty(ef, dtype=np.uint8)
    nd = np.empty(2 * M + 1, dtype=np.float32)
    ni = np.empty(2 * M + 1, dtype=np.int32)
    own0 = own_links(M, 0)  # the most links a new slot selects on any level
    chosen = np.empty((1, own0), dtype=np.int32)  # per level: the new slot's links
    chosen_d = np.empty((1, own0), dtype=np.float32)  # and their distances to it
    n_chosen = np.zeros(1, dtype=np.int64)
    row_tags = tags[0]
    for slot in range(first, last):
        level = levels[slot]
        entry, _ = unpack_entry(meta[0])
        if entry < 0:
            meta[0] = pack_entry(slot, level)
            continue
        # The entry's own level bounds the walk, as in the native core.
        ep_level = levels[entry]
        decode_slot_into(views, slot, dim, storage, qbuf)
        qq = sqnorm(qbuf, dim)
        cur = entry
        if level < ep_level:
            curd = walk_distance(qbuf, qq, views, cur, dim, storage, metric)
            cur, curd = greedy_descent(qbuf, qq, views, spec, graph, cur, curd, ep_level, level)
        top = min(level, ep_level)
        if chosen.shape[0] < top + 1:
            chosen = np.empty((top + 1, own0), dtype=np.int32)
            chosen_d = np.empty((top + 1, own0), dtype=np.float32)
            n_chosen = np.zeros(top + 1, dtype=np.int64)
        for lev in range(top, -1, -1):
            epoch = next_epoch(tags, epochs, 0)
            n_res = pool_search(qbuf, qq, views, spec, graph, cur, lev, ef, row_tags, epoch,
                                sd, si, sx)
            cur = si[0]  # the closest candidate: the next level's walk starts there
            m = connect_new(slot, lev, sd, si, n_res, views, spec, graph, buf)
            chosen[lev, :m] = si[:m]
            chosen_d[lev, :m] = sd[:m]
            n_chosen[lev] = m
        # Back-links only once the slot has its own links on every level: until then nothing
        # leads to it, so a concurrent search never walks into a node whose lower levels are
        # still empty (it would stop there with one result). Sequential builds are unchanged.
        for lev in range(top, -1, -1):
            for j in range(n_chosen[lev]):
                add_backlink(chosen[lev, j], slot, chosen_d[lev, j], lev, views, spec, graph,
                             nd, ni, buf)
        if level > ep_level:
            meta[0] = pack_entry(slot, level)
