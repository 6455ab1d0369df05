"""Exact float re-ranking of code-search candidates (the native core's ``rerank``)."""
import numpy as np
from numba import njit, prange

from .kernels import IP, L2


@njit(cache=True, nogil=True, parallel=True)
def _rerank(queries, vectors, slots, labels, k, metric, out_labels, out_dists):
    nq, n_cand = slots.shape
    n_vec, dim = vectors.shape
    for i in prange(nq):
        order = np.argsort(slots[i], kind="mergesort")  # slot order: mapped pages in sequence
        cand = np.empty(n_cand, dtype=np.int64)
        lab = np.empty(n_cand, dtype=np.int64)
        m = 0
        last = -1
        for j in order:
            s = slots[i, j]
            if s < 0 or s >= n_vec or s == last:
                continue
            last = s
            cand[m] = s
            lab[m] = labels[i, j]
            m += 1
        d = np.empty(m, dtype=np.float32)
        for j in range(m):
            acc = np.float32(0.0)
            x = vectors[cand[j]]
            if metric == L2:
                for t in range(dim):
                    diff = queries[i, t] - x[t]
                    acc += diff * diff
                d[j] = acc
            else:
                for t in range(dim):
                    acc += queries[i, t] * x[t]
                d[j] = -acc
        best = np.argsort(d, kind="mergesort")  # stable: ties keep slot order, as native
        for j in range(k):
            if j < m:
                out_labels[i, j] = lab[best[j]]
                out_dists[i, j] = d[best[j]]
            else:
                out_labels[i, j] = -1
                out_dists[i, j] = np.inf


def rerank(queries, vectors, slots, labels, k, metric, threads=1):
    """The k closest of each query's candidate slots by exact float32 distance."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.dtype != np.float32 or not vectors.flags.c_contiguous:
        raise ValueError("vectors must be a C-contiguous 2-d float32 array")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    slots = np.ascontiguousarray(slots, dtype=np.int64)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if queries.ndim != 2 or queries.shape[1] != vectors.shape[1]:
        raise ValueError(f"queries must be a 2-d array with {vectors.shape[1]} columns")
    if slots.shape != labels.shape or slots.ndim != 2 or slots.shape[0] != queries.shape[0]:
        raise ValueError("slots and labels must be (nq, candidates) int64 arrays")
    if k < 1:
        raise ValueError("k must be >= 1")
    nq = queries.shape[0]
    out_labels = np.empty((nq, k), dtype=np.int64)
    out_dists = np.empty((nq, k), dtype=np.float32)
    _rerank(queries, vectors, slots, labels, int(k), L2 if metric == "l2" else IP,
            out_labels, out_dists)
    return out_labels, out_dists
