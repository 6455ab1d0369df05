"""The construction walk: the native core's ``LinearPool`` search of one level, jitted.

Graph construction (insertion and the reachability repair) walks with the same algorithm as
csrc/hnsw/build.cpp ``search_layer`` over csrc/core/topk.hpp ``LinearPool``, so that from the
same vectors, levels and insertion order both backends link the same graph: one array of at
most ``ef`` candidates sorted by distance (equal distances in insertion order) is both the
queue and the result; the walk expands the closest unexpanded candidate until none is left,
and a candidate enters only if the pool has room or it is strictly closer than the worst.
Unfiltered queries walk with it too (``graph_search.search_range``); restricted ones (a
bitset, tombstones) keep the two-heap beam search of ``graph_search.py``.

Arguments follow ``graph_search.py``. The pool is three parallel arrays of capacity >= ef:
distances ``pd``, slots ``pi`` and expanded flags ``px``.
"""
from numba import njit

from .graph_links import level_links, link_offset
from .kernels import walk_distance


@njit(cache=True, nogil=True, inline="always")
def pool_insert(pd, pi, px, size, cap, cursor, dist, slot):
    """LinearPool::insert: returns the new ``(size, cursor)``."""
    if size == cap and not (dist < pd[size - 1]):
        return size, cursor
    lo = 0
    hi = size
    while lo < hi:  # the first position whose distance is greater than dist
        mid = (lo + hi) // 2
        if pd[mid] <= dist:
            lo = mid + 1
        else:
            hi = mid
    end = size if size < cap else cap - 1  # a full pool drops its worst
    for i in range(end, lo, -1):
        pd[i] = pd[i - 1]
        pi[i] = pi[i - 1]
        px[i] = px[i - 1]
    pd[lo] = dist
    pi[lo] = slot
    px[lo] = 0
    if size < cap:
        size += 1
    if lo < cursor:
        cursor = lo
    return size, cursor


@njit(cache=True, nogil=True)
def pool_search(q, qq, views, spec, graph, entry, level, ef, tags, epoch, pd, pi, px):
    """search_layer: the ef closest slots the walk from ``entry`` meets on ``level``, sorted
    (``pd[:n]``, ``pi[:n]``); returns n. Every slot counts, tombstones included (waypoints).
    ``tags[slot] == epoch`` marks visited slots (``tags`` is one row of a visited pair)."""
    dim, storage, metric, M = spec
    arr, maxc = level_links(graph, M, level)
    tags[entry] = epoch
    size = 0
    cursor = 0
    size, cursor = pool_insert(pd, pi, px, size, ef, cursor,
                               walk_distance(q, qq, views, entry, dim, storage, metric), entry)
    while cursor < size:
        u = pi[cursor]  # pop: the closest unexpanded candidate
        px[cursor] = 1
        while cursor < size and px[cursor]:
            cursor += 1
        off = link_offset(graph, M, u, level)
        cnt = min(arr[off], maxc)
        for j in range(cnt):
            v = arr[off + 1 + j]
            if tags[v] == epoch:
                continue
            tags[v] = epoch
            d = walk_distance(q, qq, views, v, dim, storage, metric)
            size, cursor = pool_insert(pd, pi, px, size, ef, cursor, d, v)
    return size
