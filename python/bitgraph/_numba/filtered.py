"""Filtered search for the Numba backend: filter programs, the planner and its walks.

Mirrors csrc/filter/bitset_program.cpp and csrc/hnsw/filtered_search.cpp (same plans, same
thresholds, same guarantees: only matching items, min(k, matches) results); see
bitgraph/planner.py for what each plan does.
"""
import numpy as np
from numba import njit, prange

from .._filter_ops import (OP_AND as _OP_AND, OP_NOT as _OP_NOT, OP_OR as _OP_OR,
                           OP_PREFIX_DIFF as _OP_PREFIX_DIFF, OP_SCATTER as _OP_SCATTER)
from .graph_search import (SKIP_DELETED, USE_ALLOWED, beam_search, greedy_descent,
                           level_links, unpack_entry)
from .heaps import grown, heap_drain_sorted, heap_pop, heap_push, heap_replace_top
from .kernels import slot_distance, sqnorm, walk_distance
from .visited import next_epoch

PLAN_EXACT, PLAN_ACORN, PLAN_POST_FILTER, PLAN_EXACT_FALLBACK = 1, 2, 3, 4


@njit(cache=True, nogil=True)
def popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(cache=True, nogil=True)
def _run_program(ops, entries, loads, deleted, check_deleted, n_slots, out):
    """Returns 0 on success, else an error code (1 bad range, 2 bad stack, 3 bad op)."""
    words = out.shape[0]
    depth = 0
    for i in range(ops.shape[0]):
        depth = max(depth, i + 1)
    stack = np.zeros((max(depth, 1), words), dtype=np.uint64)
    top = 0
    tail = n_slots % 64
    for i in range(ops.shape[0]):
        code, begin, end = ops[i, 0], ops[i, 1], ops[i, 2]
        if code == _OP_SCATTER:
            if begin < 0 or end < begin or end > entries.shape[0]:
                return 1
            row = stack[top]
            row[:] = 0
            for j in range(begin, end):
                s = entries[j]
                if 0 <= s < n_slots:
                    row[s >> 6] |= np.uint64(1) << np.uint64(s & 63)
            top += 1
        elif code == _OP_PREFIX_DIFF:
            if begin < 0 or begin >= loads.shape[0] or end < 0 or end >= loads.shape[0]:
                return 1
            row = stack[top]
            for w in range(words):
                row[w] = loads[begin, w] & ~loads[end, w]
            if words and tail:
                row[words - 1] &= (np.uint64(1) << np.uint64(tail)) - np.uint64(1)
            top += 1
        elif code == _OP_NOT:
            if top < 1:
                return 2
            row = stack[top - 1]
            for w in range(words):
                row[w] = ~row[w]
            if words and tail:
                row[words - 1] &= (np.uint64(1) << np.uint64(tail)) - np.uint64(1)
        elif code == _OP_AND or code == _OP_OR:
            if top < 2:
                return 2
            a, b = stack[top - 2], stack[top - 1]
            if code == _OP_AND:
                for w in range(words):
                    a[w] &= b[w]
            else:
                for w in range(words):
                    a[w] |= b[w]
            top -= 1
        else:
            return 3
    if top != 1:
        return 2
    out[:] = stack[0]
    if check_deleted:
        for s in range(n_slots):
            if deleted[s] != 0:
                out[s >> 6] &= ~(np.uint64(1) << np.uint64(s & 63))
    return 0


@njit(cache=True, nogil=True)
def count_bits(bits, words):
    c = 0
    for w in range(min(words, bits.shape[0])):
        c += popcount64(bits[w])
    return c


def evaluate_filter(ops, entries, deleted, n_deleted, n_slots, out=None, loads=None):
    """``(bitset uint64, matches)`` of a compiled filter program over live slots ``< n_slots``
    (written into ``out`` when given)."""
    from ..errors import BitgraphValueError

    ops = np.ascontiguousarray(ops, dtype=np.int64).reshape(-1, 3)
    entries = np.ascontiguousarray(entries, dtype=np.int32).reshape(-1)
    words = (n_slots + 63) // 64
    if out is None:
        out = np.zeros(words, dtype=np.uint64)
    elif out.dtype != np.uint64 or out.ndim != 1 or out.shape[0] < words:
        raise BitgraphValueError("out must be a uint64 array of the bitset size")
    out = out[:words]
    if loads is None:
        loads = np.zeros((0, words), dtype=np.uint64)
    loads = np.ascontiguousarray(loads, dtype=np.uint64)
    if loads.ndim != 2 or (loads.shape[0] and loads.shape[1] != words):
        raise BitgraphValueError("loads must be an (n, words) uint64 array of the bitset size")
    rc = _run_program(ops, entries, loads, deleted, n_deleted > 0, n_slots, out)
    if rc:
        raise BitgraphValueError(f"malformed filter program (code {rc})")
    return out, int(count_bits(out, out.shape[0]))


@njit(cache=True, nogil=True, inline="always")
def _allowed(bits, deleted, slot):
    if deleted[slot] != 0:
        return False
    w = slot >> 6
    if w >= bits.shape[0]:
        return False
    return ((bits[w] >> np.uint64(slot & 63)) & np.uint64(1)) != 0


@njit(cache=True, nogil=True)
def exact_scan(q, qq, views, spec, n_slots, deleted, bits, k, hk, hv):
    """Scores every matching live slot into the max-heap ``(hk, hv)`` of capacity k.

    Returns ``(heap size, slots scored)``.
    """
    dim, storage, metric = spec[0], spec[1], spec[2]
    n = 0
    scored = 0
    words = min(bits.shape[0], (n_slots + 63) // 64)
    for w in range(words):
        word = bits[w]
        while word != 0:
            low = word & (~word + np.uint64(1))
            word ^= low
            slot = w * 64 + int(popcount64(low - np.uint64(1)))
            if slot >= n_slots or deleted[slot] != 0:
                continue
            d = slot_distance(q, qq, views, slot, dim, storage, metric)
            scored += 1
            if n < k:
                n = heap_push(hk, hv, n, d, slot)
            elif d < hk[0]:
                heap_replace_top(hk, hv, n, d, slot)
    return n, scored


@njit(cache=True, nogil=True)
def acorn_walk(q, qq, views, spec, graph, entry, n_slots, deleted, bits, ef, n_seeds,
               budget, tags, epoch, rk, rv, ck, cv, ids):
    """Predicate-subgraph walk (see csrc/hnsw/filtered_search.cpp).

    Returns ``(finished, n_results, scored, ck, cv)``; results in the max-heap ``(rk, rv)``.
    """
    dim, storage, metric, M = spec
    arr, maxc = level_links(graph, M, 0)
    n_res = 0
    n_cand = 0
    scored = 0
    work = 0
    # Candidates to score: the entry, what the entry gathers, then seeds from the matches.
    m = 0
    tags[entry] = epoch
    if _allowed(bits, deleted, entry):
        ids[m] = entry
        m += 1
    for round_ in range(2):
        if round_ == 1:
            words = min(bits.shape[0], (n_slots + 63) // 64)
            if words > 0:
                for j in range(n_seeds):
                    for w in range(j * words // n_seeds, words):
                        word = bits[w]
                        if word == 0:
                            continue
                        low = word & (~word + np.uint64(1))
                        v = w * 64 + int(popcount64(low - np.uint64(1)))
                        if v < n_slots and tags[v] != epoch and deleted[v] == 0:
                            tags[v] = epoch
                            ids[m] = v
                            m += 1
                        break
        else:
            m = _gather(arr, maxc, M, entry, bits, deleted, tags, epoch, ids, m)
        n_res, n_cand, ck, cv = _score(q, qq, views, dim, storage, metric, ids, m, ef,
                                       rk, rv, n_res, ck, cv, n_cand)
        scored += m
        work += m
        m = 0
    while n_cand > 0:
        if n_res >= ef and -ck[0] > rk[0]:
            break
        if work > budget:
            return False, n_res, scored, ck, cv
        c = cv[0]
        n_cand = heap_pop(ck, cv, n_cand)
        m = _gather(arr, maxc, M, c, bits, deleted, tags, epoch, ids, 0)
        work += ids[ids.shape[0] - 1]  # link lists read by _gather
        n_res, n_cand, ck, cv = _score(q, qq, views, dim, storage, metric, ids, m, ef,
                                       rk, rv, n_res, ck, cv, n_cand)
        scored += m
        work += m
    return True, n_res, scored, ck, cv


@njit(cache=True, nogil=True, inline="always")
def _score(q, qq, views, dim, storage, metric, ids, m, ef, rk, rv, n_res, ck, cv, n_cand):
    """Scores ``ids[:m]`` into the result max-heap (capacity ef) and queues those admitted
    as candidates (negated keys). Returns ``(n_res, n_cand, ck, cv)``."""
    for j in range(m):
        v = ids[j]
        d = walk_distance(q, qq, views, v, dim, storage, metric)
        if n_res < ef:
            n_res = heap_push(rk, rv, n_res, d, v)
        elif d < rk[0]:
            heap_replace_top(rk, rv, n_res, d, v)
        else:
            continue
        if n_cand == ck.shape[0]:
            ck, cv = grown(ck, cv)
        n_cand = heap_push(ck, cv, n_cand, -d, v)
    return n_res, n_cand, ck, cv


@njit(cache=True, nogil=True, inline="always")
def _gather(arr, maxc, M, c, bits, deleted, tags, epoch, ids, m):
    """Appends the unvisited matching neighbours of ``c`` to ``ids[m:]``; when fewer than M
    match, looks through the non-matching ones (two hops) up to 2M. The number of link lists
    read through is left in ``ids[-1]``. Returns the new count."""
    off = c * (1 + 2 * M)
    cnt = min(arr[off], maxc)
    cap = 2 * M
    start = m
    n_failed = 0
    failed_at = ids.shape[0] - 1 - maxc  # failed neighbours parked at the end of ids
    for j in range(cnt):
        v = arr[off + 1 + j]
        if tags[v] == epoch:
            continue
        tags[v] = epoch
        if _allowed(bits, deleted, v):
            ids[m] = v
            m += 1
        else:
            ids[failed_at + n_failed] = v
            n_failed += 1
    reads = 0
    if m - start < M:
        for j in range(n_failed):
            if m - start >= cap:
                break
            off2 = ids[failed_at + j] * (1 + 2 * M)
            cnt2 = min(arr[off2], maxc)
            reads += 1
            for t in range(cnt2):
                if m - start >= cap:
                    break
                w = arr[off2 + 1 + t]
                if tags[w] != epoch and _allowed(bits, deleted, w):
                    tags[w] = epoch
                    ids[m] = w
                    m += 1
    ids[ids.shape[0] - 1] = reads
    return m


@njit(cache=True, nogil=True)
def filtered_range(queries, q0, q1, k, ef, views, spec, graph, meta, labels, n_slots, live,
                   n_deleted, deleted, bits, matches, exact_ratio, acorn_below, n_seeds,
                   tags, epochs, tag_row, out_labels, out_dists, out_plans, out_scored):
    """Planned filtered k-NN of ``queries[q0:q1]`` (see bitgraph/planner.py)."""
    dim, storage, metric, M = spec
    entry, max_level = unpack_entry(meta[0])
    rk = np.empty(ef, dtype=np.float32)
    rv = np.empty(ef, dtype=np.int32)
    sk = np.empty(ef, dtype=np.float32)
    sv = np.empty(ef, dtype=np.int32)
    ck = np.empty(2 * ef + 64, dtype=np.float32)
    cv = np.empty(2 * ef + 64, dtype=np.int32)
    ids = np.empty(4 * M + 2 * M + 2 + max(n_seeds, 1), dtype=np.int32)
    row_tags = tags[tag_row]
    want = min(k, matches)
    for qi in range(q0, q1):
        out_labels[qi, :] = -1
        out_dists[qi, :] = np.inf
        out_plans[qi] = PLAN_EXACT
        out_scored[qi] = 0
        if entry < 0 or matches == 0:
            continue
        q = queries[qi]
        qq = sqnorm(q, dim)
        exact = matches <= k or float(matches) * matches <= exact_ratio * ef * live
        n_res = 0
        if not exact:
            d0 = walk_distance(q, qq, views, entry, dim, storage, metric)
            cur, curd = greedy_descent(q, qq, views, spec, graph, entry, d0, max_level, 0)
            epoch = next_epoch(tags, epochs, tag_row)
            if matches == live and n_deleted == 0:
                out_plans[qi] = PLAN_POST_FILTER
                n_res, ck, cv = beam_search(q, qq, views, spec, graph, cur, curd, 0, ef, 0,
                                            deleted, bits, row_tags, epoch, rk, rv, ck, cv)
                finished = True
            elif matches < acorn_below * live:
                out_plans[qi] = PLAN_ACORN
                finished, n_res, scored, ck, cv = acorn_walk(
                    q, qq, views, spec, graph, cur, n_slots, deleted, bits, ef, n_seeds,
                    matches, row_tags, epoch, rk, rv, ck, cv, ids)
                out_scored[qi] += scored
            else:
                out_plans[qi] = PLAN_POST_FILTER
                n_res, ck, cv = beam_search(q, qq, views, spec, graph, cur, curd, 0, ef,
                                            SKIP_DELETED | USE_ALLOWED, deleted, bits,
                                            row_tags, epoch, rk, rv, ck, cv)
                finished = True
            if not finished or n_res < want:
                out_plans[qi] = PLAN_EXACT_FALLBACK
                exact = True
        if exact:
            n_res, scored = exact_scan(q, qq, views, spec, n_slots, deleted, bits, k, rk, rv)
            out_scored[qi] += scored
        heap_drain_sorted(rk, rv, n_res, sk, sv)
        for j in range(min(k, n_res)):
            out_labels[qi, j] = labels[sv[j]]
            out_dists[qi, j] = sk[j]


@njit(cache=True, nogil=True, parallel=True)
def filtered_parallel(queries, k, ef, views, spec, graph, meta, labels, n_slots, live,
                      n_deleted, deleted, bits, matches, exact_ratio, acorn_below, n_seeds,
                      tags, epochs, n_blocks, out_labels, out_dists, out_plans, out_scored):
    nq = queries.shape[0]
    for b in prange(n_blocks):
        filtered_range(queries, b * nq // n_blocks, (b + 1) * nq // n_blocks, k, ef, views,
                       spec, graph, meta, labels, n_slots, live, n_deleted, deleted, bits,
                       matches, exact_ratio, acorn_below, n_seeds, tags, epochs, b,
                       out_labels, out_dists, out_plans, out_scored)


@njit(cache=True, nogil=True)
def flat_filtered_range(queries, q0, q1, k, views, spec, n_slots, labels, deleted, bits,
                        out_labels, out_dists):
    """Exact filtered k-NN over the matching slots only."""
    dim = spec[0]
    hk = np.empty(k, dtype=np.float32)
    hv = np.empty(k, dtype=np.int32)
    sk = np.empty(k, dtype=np.float32)
    sv = np.empty(k, dtype=np.int32)
    for qi in range(q0, q1):
        q = queries[qi]
        n, _ = exact_scan(q, sqnorm(q, dim), views, spec, n_slots, deleted, bits, k, hk, hv)
        heap_drain_sorted(hk, hv, n, sk, sv)
        for j in range(k):
            out_labels[qi, j] = labels[sv[j]] if j < n else -1
            out_dists[qi, j] = sk[j] if j < n else np.inf


@njit(cache=True, nogil=True, parallel=True)
def flat_filtered_parallel(queries, k, views, spec, n_slots, labels, deleted, bits, n_blocks,
                           out_labels, out_dists):
    nq = queries.shape[0]
    for b in prange(n_blocks):
        flat_filtered_range(queries, b * nq // n_blocks, (b + 1) * nq // n_blocks, k, views,
                            spec, n_slots, labels, deleted, bits, out_labels, out_dists)


def grouped_search(search_group, queries, k, allowed, counts, offsets, dim):
    """Runs ``search_group(queries, bits, matches, outputs)`` per filter group of a core's
    ``search_filtered`` (group g: queries ``offsets[g]:offsets[g+1]`` with bitset row g) and
    returns ``(labels, dists, plan codes, nodes scored)`` for all queries."""
    from ..errors import BitgraphValueError

    queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, dim)
    nq, k = queries.shape[0], int(k)
    allowed = np.ascontiguousarray(allowed, dtype=np.uint64)
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    n_f = allowed.shape[0] if allowed.ndim == 2 else -1
    if (n_f < 0 or counts.shape[0] != n_f or offsets.shape[0] != n_f + 1 or offsets[0] != 0
            or offsets[-1] != nq or (np.diff(offsets) < 0).any()):
        raise BitgraphValueError("allowed/counts/offsets do not describe filter groups of the queries")
    out = (np.full((nq, k), -1, dtype=np.int64), np.full((nq, k), np.inf, dtype=np.float32),
           np.ones(nq, dtype=np.int8), np.zeros(nq, dtype=np.int64))
    for g in range(n_f):
        q0, q1 = int(offsets[g]), int(offsets[g + 1])
        if q1 > q0:
            bits = allowed[g]
            matches = int(counts[g]) if counts[g] >= 0 else int(count_bits(bits, bits.shape[0]))
            search_group(queries[q0:q1], bits, matches, tuple(o[q0:q1] for o in out))
    return out


def padded_bits(bits, n_slots):
    """``bits`` extended with zero words to cover ``n_slots`` (a short bitset allows nothing
    beyond its end)."""
    words = (n_slots + 63) // 64
    if bits.shape[0] < words:
        bits = np.concatenate([bits, np.zeros(words - bits.shape[0], np.uint64)])
    return np.ascontiguousarray(bits)
