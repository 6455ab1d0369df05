"""Merging the shards' answers into one :class:`bitgraph.SearchResult` (pure numpy).

Every shard returns its k best per query; the merged row is the k best of their union, ordered
by (distance, id): equal distances by ascending id, padding (id -1, distance +inf) last. Ids are
user ids, unique across shards, so nothing is deduplicated.
"""

from __future__ import annotations

import numpy as np

from ..result import SearchResult

_PAD_KEY = np.iinfo(np.int64).max


def merge_rows(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """(nq, k) ids and distances from per-shard (nq, k_i) ids and distances."""
    ids = np.concatenate([p[0] for p in parts], axis=1)
    dists = np.concatenate([p[1] for p in parts], axis=1).astype(np.float32, copy=False)
    if ids.shape[1] == 0:
        nq = ids.shape[0]
        return np.full((nq, k), -1, np.int64), np.full((nq, k), np.inf, np.float32)
    key = np.where(ids < 0, _PAD_KEY, ids)
    order = np.lexsort((key, dists), axis=1)[:, :k]
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_d = np.take_along_axis(dists, order, axis=1)
    if out_ids.shape[1] < k:
        pad = k - out_ids.shape[1]
        out_ids = np.pad(out_ids, ((0, 0), (0, pad)), constant_values=-1)
        out_d = np.pad(out_d, ((0, 0), (0, pad)), constant_values=np.inf)
    return np.ascontiguousarray(out_ids), np.ascontiguousarray(out_d)


def merge_results(nq: int, k: int, answers: list[tuple[np.ndarray | None, tuple]],
                  partial: bool) -> SearchResult:
    """The merged result of ``answers``: per shard (rows it answered, or None for every query;
    its (ids, distances, plans, visited)). ``plans``: the plan every visited shard used, or
    their distinct plans joined by "+"; ``visited``: summed over shards."""
    parts = []
    with_plans = any(a[1][2] is not None for a in answers)
    plan_sets: list[set[str]] = [set() for _ in range(nq)] if with_plans else []
    visited = np.zeros(nq, np.int64) if with_plans else None
    for rows, (ids, dists, plans, vis) in answers:
        if rows is None:
            parts.append((ids, dists))
        else:  # a probed shard answered only some queries
            full_i = np.full((nq, ids.shape[1]), -1, np.int64)
            full_d = np.full((nq, ids.shape[1]), np.inf, np.float32)
            full_i[rows], full_d[rows] = ids, dists
            parts.append((full_i, full_d))
        if with_plans and plans is not None:
            where = np.arange(nq) if rows is None else rows
            for r, p in zip(where.tolist(), plans.tolist()):
                plan_sets[r].add(p)
            np.add.at(visited, where, vis)
    if parts:
        out_ids, out_d = merge_rows(parts, k)
    else:
        out_ids, out_d = np.full((nq, k), -1, np.int64), np.full((nq, k), np.inf, np.float32)
    plans_out = (np.array(["+".join(sorted(s)) for s in plan_sets], dtype=object)
                 if with_plans else None)
    return SearchResult(out_ids, out_d, plans_out, visited, partial=partial)
