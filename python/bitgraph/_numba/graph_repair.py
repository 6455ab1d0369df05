"""Jitted reachability repair of the level-0 graph (the numba mirror of csrc/hnsw/repair.cpp).

The neighbour heuristic can leave a node without an in-link from the part of the graph the
entry point reaches, and then no walk returns it. :func:`repair_reachability` finds those live
nodes with one traversal from the entry point and links each one in from its closest reached
node: into a free link slot of one of its nearest reached nodes, else in place of the link whose
target has the most in-links. Tombstones are waypoints, as in every walk. Argument conventions
are those of ``graph_search.py``.
"""
import numpy as np
from numba import njit

from .graph_search import link_offset, unpack_entry
from .kernels import decode_slot_into, sqnorm
from .pool import pool_search
from .visited import next_epoch

_ROUNDS = 3


@njit(cache=True, nogil=True)
def _spread(start, links0, M0, reached, stack):
    """Marks every slot reachable from ``start`` through level-0 links."""
    if reached[start]:
        return
    reached[start] = 1
    stack[0] = start
    top = 1
    while top > 0:
        top -= 1
        u = stack[top]
        off = u * (1 + M0)
        cnt = min(links0[off], M0)
        for j in range(cnt):
            v = links0[off + 1 + j]
            if not reached[v]:
                reached[v] = 1
                stack[top] = v
                top += 1


@njit(cache=True, nogil=True)
def repair_reachability(n, views, spec, graph, deleted, meta, ef, tags, epochs):
    """Links every live slot below ``n`` that the entry point cannot reach into the graph;
    returns how many were repaired."""
    dim, storage, _, M = spec
    links0 = graph[0]
    M0 = 2 * M
    entry, _ = unpack_entry(meta[0])
    if entry < 0 or n < 2:
        return 0
    ef = max(min(ef, n), M0)
    reached = np.zeros(n, dtype=np.uint8)
    stack = np.empty(n, dtype=np.int64)
    in_degree = np.zeros(n, dtype=np.int64)
    qbuf = np.empty(dim, dtype=np.float32)
    sd = np.empty(ef, dtype=np.float32)
    si = np.empty(ef, dtype=np.int32)
    sx = np.empty(ef, dtype=np.uint8)
    repaired = 0
    for _ in range(_ROUNDS):
        reached[:] = 0
        _spread(entry, links0, M0, reached, stack)
        n_lost = 0
        for i in range(n):
            if not reached[i] and not deleted[i]:
                n_lost += 1
        if n_lost == 0:
            break
        in_degree[:] = 0
        for u in range(n):
            off = u * (1 + M0)
            for j in range(min(links0[off], M0)):
                in_degree[links0[off + 1 + j]] += 1
        for u in range(n):
            if reached[u] or deleted[u]:
                continue
            decode_slot_into(views, u, dim, storage, qbuf)
            qq = sqnorm(qbuf, dim)
            # The walk from the entry point only ever meets reached nodes: its pool is the
            # candidates, closest first (the native walk, so both backends repair alike).
            epoch = next_epoch(tags, epochs, 0)
            n_res = pool_search(qbuf, qq, views, spec, graph, entry, 0, ef, tags[0], epoch,
                                sd, si, sx)
            linked = False
            for i in range(n_res):  # a free link slot in one of the closest reached nodes
                off = link_offset(graph, M, si[i], 0)
                cnt = links0[off]
                if cnt < M0:
                    links0[off + 1 + cnt] = u
                    links0[off] = cnt + 1  # count last: readers never see an unwritten entry
                    linked = True
                    break
            if not linked:  # replace the link whose target has the most in-links
                for i in range(n_res):
                    off = link_offset(graph, M, si[i], 0)
                    cnt = min(links0[off], M0)
                    best = -1
                    for j in range(cnt):
                        w = links0[off + 1 + j]
                        if in_degree[w] >= 2 and (best < 0 or
                                                  in_degree[w] > in_degree[links0[off + 1 + best]]):
                            best = j
                    if best >= 0:
                        in_degree[links0[off + 1 + best]] -= 1
                        links0[off + 1 + best] = u
                        linked = True
                        break
            if linked:
                in_degree[u] += 1
                repaired += 1
                _spread(u, links0, M0, reached, stack)
    return repaired
