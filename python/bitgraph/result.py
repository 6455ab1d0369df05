"""The object every search returns."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """

    ids: np.ndarray
    distances: np.ndarray
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", (self.ids >= 0).sum(axis=1).astype(np.int64))

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.ids, self.distances))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> np.ndarray:
        return (self.ids, self.distances)[i]

    def __repr__(self) -> str:
        nq, k = self.ids.shape
        return f"SearchResult(queries={nq}, k={k}, found={int(self.counts.sum())})"
