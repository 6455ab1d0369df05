"""Recall and latency statistics.

recall@k follows ann-benchmarks: a returned id counts as a hit when its true distance to the
query is within a small tolerance of the k-th exact distance. Ties (duplicate vectors, common in
GloVe) are therefore not held against whichever library happens to return the other copy.
Distances are recomputed here in float64 from the base vectors for returned and exact ids alike.
"""
from __future__ import annotations

import numpy as np


def _true_distances(base: np.ndarray, queries: np.ndarray, ids: np.ndarray, metric: str
                    ) -> np.ndarray:
    """(nq, m) float64 distances of base[ids] to each query; +inf where ids < 0."""
    valid = ids >= 0
    rows = base[np.where(valid, ids, 0)].astype(np.float64)        # (nq, m, dim)
    q = queries.astype(np.float64)[:, None, :]
    if metric == "cosine":
        rn = np.linalg.norm(rows, axis=2)
        qn = np.linalg.norm(q, axis=2)
        d = 1.0 - (rows * q).sum(2) / np.maximum(rn * qn, 1e-300)
    elif metric == "l2":
        d = ((rows - q) ** 2).sum(2)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return np.where(valid, d, np.inf)


def recall_at_k(found: np.ndarray, gt: np.ndarray, base: np.ndarray, queries: np.ndarray,
                metric: str, k: int = 10, rtol: float = 1e-5, chunk: int = 2048) -> float:
    """Mean recall@k of ``found`` (nq, >=k ids, -1 padding) against exact ids ``gt``."""
    found = np.asarray(found)[:, :k].astype(np.int64)
    hits = 0
    for s in range(0, len(found), chunk):
        f, g, q = found[s:s + chunk], gt[s:s + chunk, :max(2 * k, k)], queries[s:s + chunk]
        thresh = np.sort(_true_distances(base, q, g, metric), axis=1)[:, k - 1]
        d = _true_distances(base, q, f, metric)
        # duplicates in a result list must not count twice
        dup = np.zeros_like(f, dtype=bool)
        srt = np.sort(f, axis=1)
        has_dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        if has_dup.any():
            for i in np.nonzero(has_dup.any(1))[0]:
                _, first = np.unique(f[i], return_index=True)
                dup[i] = True
                dup[i, first] = False
        tol = rtol * np.maximum(np.abs(thresh), 1.0 if metric == "cosine" else 1e-12) + 1e-7
        hits += int(((d <= (thresh + tol)[:, None]) & ~dup & (f >= 0)).sum())
    return hits / (len(found) * k)


def id_recall_at_k(found: np.ndarray, gt: np.ndarray, k: int = 10) -> float:
    """Plain id-overlap recall@k (for cross-checking the distance-based one)."""
    found = np.asarray(found)[:, :k]
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k
                          for a, b in zip(found, gt[:, :k])]))


def latency_stats(seconds: list[float] | np.ndarray) -> dict:
    """p50 / p99 / mean of per-query latencies, in microseconds."""
    us = np.asarray(seconds, dtype=np.float64) * 1e6
    return {"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean()), "n": int(len(us))}
