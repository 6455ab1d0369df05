"""Result rows padded to k (a low module: the API layer and the numba cores both pad)."""

from __future__ import annotations

import numpy as np


def padded(ids: np.ndarray, dists: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows widened to k columns with -1 / +inf (searches work with at most n_slots)."""
    if ids.shape[1] >= k:
        return ids, dists
    out_ids = np.full((ids.shape[0], k), -1, dtype=np.int64)
    out_d = np.full((ids.shape[0], k), np.inf, dtype=np.float32)
    out_ids[:, : ids.shape[1]] = ids
    out_d[:, : ids.shape[1]] = dists
    return out_ids, out_d
