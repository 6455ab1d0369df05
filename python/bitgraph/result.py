"""The object every search returns."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

import numpy as np


@dataclass(frozen=True)
class SearchResult:
    """k nearest neighbours of each query.

    Unpacks as ``ids, distances = result``.

    Attributes:
        ids: ``(nq, k)`` int64, ``-1`` where fewer than k results exist.
        distances: ``(nq, k)`` float32, ``+inf`` where padded. Smaller is closer:
            l2 -> squared euclidean, ip -> ``-<q, x>``, cosine -> ``1 - cos(q, x)``.
        counts: ``(nq,)`` number of real results per query.
        plans: with a filter, ``(nq,)`` str: how each query was answered ("exact", "acorn",
            "post-filter", "exact-fallback"; see :mod:`bitgraph.planner`); else None.
        visited: with a filter, ``(nq,)`` int64: nodes scored (distance computations) per
            query; else None.
        payloads: from a served collection asked ``with_payload=True``: per query a list of
            k payloads (the JSON object stored with each point, None where none or padded);
            else None.
        partial: True when some shards of a sharded index did not answer and the search was
            asked ``allow_partial=True`` (:mod:`bitgraph.distributed`): the rows hold the best
            results of the shards that answered. Always False for a single index.
    """

    ids: np.ndarray
    distances: np.ndarray
    plans: np.ndarray | None = None
    visited: np.ndarray | None = None
    payloads: list[list[object]] | None = None
    partial: bool = False

    @functools.cached_property
    def counts(self) -> np.ndarray:
        """``(nq,)`` int64: real results per query (computed on first use: a one-query call
        that never reads it does not pay for it)."""
        return (self.ids >= 0).sum(axis=1).astype(np.int64)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.ids, self.distances))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> np.ndarray:
        return (self.ids, self.distances)[i]

    def __repr__(self) -> str:
        nq, k = self.ids.shape
        return f"SearchResult(queries={nq}, k={k}, found={int(self.counts.sum())})"
