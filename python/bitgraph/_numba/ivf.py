"""IVF search (the native core's ``ivf_search``, csrc/ivf/ivf_search.hpp): coarse probe, one
quantized table per query, table sums over the probed lists' 4-bit codes, exact re-rank.

Same arrays, same table quantization and the same candidate rule (the ``rerank`` best
estimates by (estimate, slot)), so both backends return the same results up to float rounding
at ties.
"""
import numpy as np
from numba import njit, prange

from .kernels import IP, L2

BLOCK_ROWS = 32
CODEBOOK = 16
TABLE_TOP = 127  # kIvfTableTop in csrc/ivf/ivf_search.hpp


@njit(cache=True, nogil=True)
def _table(q, codebooks, dim, weight, lut):
    """Fills the quantized table (positions x 16) and returns (offset, 1 / scale)."""
    m, _, ds = codebooks.shape
    t = np.empty((m, CODEBOOK), dtype=np.float32)
    span = np.float32(0.0)
    offset = np.float32(0.0)
    for j in range(m):
        lo = np.float32(np.inf)
        hi = np.float32(-np.inf)
        for c in range(CODEBOOK):
            dot = np.float32(0.0)
            for d in range(ds):
                x = j * ds + d
                if x < dim:
                    dot += q[x] * codebooks[j, c, d]
            e = np.float32(-weight * dot)
            t[j, c] = e
            lo = min(lo, e)
            hi = max(hi, e)
        for c in range(CODEBOOK):
            t[j, c] -= lo
        offset += lo
        span = max(span, hi - lo)
    scale = np.float32(TABLE_TOP) / span if span > 0 else np.float32(1.0)
    lut[:] = 0
    for j in range(m):
        for c in range(CODEBOOK):
            # half up, as the native table (entries are >= 0)
            v = min(np.float32(TABLE_TOP), t[j, c] * scale + np.float32(0.5))
            lut[j, c] = np.uint8(max(np.float32(0.0), v))
    return offset, np.float32(1.0) / scale


@njit(cache=True, nogil=True)
def _distance(q, x, metric):
    acc = np.float32(0.0)
    if metric == L2:
        for t in range(q.shape[0]):
            diff = q[t] - x[t]
            acc += diff * diff
        return acc
    for t in range(q.shape[0]):
        acc += q[t] * x[t]
    return -acc


@njit(cache=True, nogil=True, parallel=True)
def _search(centroids, codebooks, list_starts, blocks, row_slots, sq_norms, vectors, allowed, has_allowed, queries, k, nprobe, rerank, metric,
            out_slots, out_dists):
    nq, dim = queries.shape
    nlist = centroids.shape[0]
    m = codebooks.shape[0]
    npos = (m + 3) // 4 * 4
    nprobe = min(nprobe, nlist)
    pool = max(rerank, k)
    weight = np.float32(2.0) if metric == L2 else np.float32(1.0)
    csq = np.zeros(nlist, dtype=np.float32)
    if metric == L2:
        for l in range(nlist):
            csq[l] = -_distance(centroids[l], centroids[l], IP)
    for qi in prange(nq):
        q = queries[qi]
        coarse = np.empty(nlist, dtype=np.float32)
        for l in range(nlist):
            coarse[l] = _distance(q, centroids[l], metric)
        near = np.argsort(coarse, kind="mergesort")[:nprobe]
        lut = np.empty((npos, CODEBOOK), dtype=np.uint8)
        offset, inv_scale = _table(q, codebooks, dim, weight, lut)
        total = 0
        for i in range(nprobe):
            total += list_starts[near[i] + 1] - list_starts[near[i]]
        est = np.empty(total, dtype=np.float32)
        cand = np.empty(total, dtype=np.int64)
        n = 0
        for i in range(nprobe):
            l = near[i]
            base = coarse[l] - csq[l] + offset if metric == L2 else coarse[l] + offset
            for r in range(list_starts[l], list_starts[l + 1]):
                slot = row_slots[r]
                if slot < 0:
                    continue
                if has_allowed and not (allowed[slot >> 6] >> np.uint64(slot & 63)) & np.uint64(1):
                    continue
                b = r // BLOCK_ROWS
                lane = r % BLOCK_ROWS
                s = 0
                for p in range(m):
                    byte = np.int64(blocks[b, p * 16 + (lane & 15)])
                    nib = byte & 15 if lane < 16 else byte >> 4
                    s += np.int64(lut[p, nib])
                e = base + np.float32(s) * inv_scale
                if metric == L2:
                    e += sq_norms[slot]
                est[n] = e
                cand[n] = slot
                n += 1
        # The pool best by (estimate, slot), as the native reservoir keeps them.
        by_slot = np.argsort(cand[:n], kind="mergesort")
        order = by_slot[np.argsort(est[:n][by_slot], kind="mergesort")][:pool]
        m_c = order.shape[0]
        exact = np.empty(m_c, dtype=np.float32)
        chosen = np.empty(m_c, dtype=np.int64)
        for j in range(m_c):
            chosen[j] = cand[order[j]]
        chosen.sort()
        for j in range(m_c):
            exact[j] = _distance(q, vectors[chosen[j]], metric)
        best = np.argsort(exact, kind="mergesort")  # ties: slot order, as native
        for j in range(k):
            if j < m_c:
                out_slots[qi, j] = chosen[best[j]]
                out_dists[qi, j] = exact[best[j]]
            else:
                out_slots[qi, j] = -1
                out_dists[qi, j] = np.inf


def ivf_search(centroids, centroid_tiles, codebooks, list_starts, blocks, row_slots, sq_norms,
               list_min_sq_norms, vectors, allowed, queries, k, nprobe, rerank, metric,
               threads):
    """Same arguments and results as the native ``ivf_search`` (centroid_tiles and
    list_min_sq_norms are accepted and unused: they only speed the native scan)."""
    del centroid_tiles, list_min_sq_norms, threads
    code = L2 if metric == "l2" else IP
    nq = queries.shape[0]
    out_slots = np.empty((nq, k), dtype=np.int64)
    out_dists = np.empty((nq, k), dtype=np.float32)
    if nq == 0:
        return out_slots, out_dists
    has_allowed = allowed is not None
    bits = allowed if has_allowed else np.zeros(1, dtype=np.uint64)
    norms = sq_norms if sq_norms is not None else np.zeros(1, dtype=np.float32)
    _search(centroids, codebooks, list_starts.astype(np.int64), blocks, row_slots, norms,
            vectors, bits, has_allowed, queries, int(k), max(1, int(nprobe)),
            max(int(rerank), int(k)), code, out_slots, out_dists)
    return out_slots, out_dists
