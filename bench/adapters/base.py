"""The adapter interface every library implements (ann-benchmarks verbs).

Lifecycle used by the suite::

    algo = Adapter(metric, dim)          # metric: "cosine" | "l2"
    algo.set_threads(all_cores); algo.fit(X)          # timed build
    algo.set_threads(t); algo.set_query_arguments(ef)
    ids = algo.batch_query(Q, k)          # (nq, k) int64, -1 padding
    ids = algo.query(q, k)                # (k,) for single-query latency
    algo.nbytes()                         # index memory in bytes (method in nbytes_method)

Adapters must not keep a copy of the data beyond what the index itself holds, so that the RSS
growth measured around ``fit`` stays a fair cross-check of ``nbytes``.
"""
from __future__ import annotations

import numpy as np


class BaseANN:
    """Common state and defaults. Subclasses set ``family`` and implement the verbs."""

    family = "base"          # short library name, e.g. "hnswlib"
    is_graph = True          # False for exact baselines: ef has no effect
    is_bitgraph = False      # True for bitgraph's own indexes (the ratio column)
    nbytes_method = "unknown"
    M = 16
    ef_construction = 200

    def __init__(self, metric: str, dim: int):
        if metric not in ("cosine", "l2"):
            raise ValueError(f"metric must be 'cosine' or 'l2', got {metric!r}")
        self.metric = metric
        self.dim = int(dim)
        self.threads = 1
        self.ef = None

    # --- identification -------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.family

    def params(self) -> dict:
        """Build parameters recorded with every result row."""
        if not self.is_graph:
            return {}
        return {"M": self.M, "ef_construction": self.ef_construction}

    def version(self) -> str:
        return "?"

    def describe(self) -> str:
        """One line saying what this label measures (the legend of the printed tables)."""
        return self.name

    # --- verbs ----------------------------------------------------------------------
    def set_threads(self, threads: int) -> None:
        self.threads = int(threads)

    def fit(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def set_query_arguments(self, ef: int | None) -> None:
        self.ef = ef

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.batch_query(q.reshape(1, -1), k)[0]

    def nbytes(self) -> int:
        raise NotImplementedError

    def memory_extra(self) -> dict:
        """Other memory figures worth recording next to ``nbytes`` (JSON-friendly)."""
        return {}

    def close(self) -> None:
        """Release the index (called when the suite is done with it)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, metric={self.metric}, dim={self.dim})"


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """float32 C-contiguous copy with unit L2 rows (zero rows left as zero)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(n, 1e-30), dtype=np.float32)


def as_f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)
