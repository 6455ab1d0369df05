"""faiss peers: IndexHNSWFlat (M=16, efConstruction=200) and exact IndexFlatIP / IndexFlatL2.

Cosine is inner product on L2-normalised vectors (METRIC_INNER_PRODUCT); the adapter
normalises both base and queries. Threads: ``faiss.omp_set_num_threads`` before every call
(it is process-global, so the suite re-applies it each time this adapter runs).
Memory: ``len(faiss.serialize_index(index))``, the serialized size; for these two index types
it equals the vectors plus the graph links (the in-memory layout has no extra payload beyond
small per-level offset tables).
"""
from __future__ import annotations

import numpy as np

from .base import BaseANN, as_f32, normalize_rows


class _FaissBase(BaseANN):
    def __init__(self, metric: str, dim: int):
        super().__init__(metric, dim)
        import faiss
        self._faiss = faiss
        self.index = None

    def version(self) -> str:
        return self._faiss.__version__

    def _prep(self, x: np.ndarray) -> np.ndarray:
        return normalize_rows(x) if self.metric == "cosine" else as_f32(x)

    def set_threads(self, threads: int) -> None:
        super().set_threads(threads)
        self._faiss.omp_set_num_threads(self.threads)

    def fit(self, X: np.ndarray) -> None:
        self.index = self._make_index()
        self._faiss.omp_set_num_threads(self.threads)
        self.index.add(self._prep(X))

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        self._faiss.omp_set_num_threads(self.threads)
        _, ids = self.index.search(self._prep(Q), k)
        return ids

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        _, ids = self.index.search(self._prep(q.reshape(1, -1)), k)
        return ids[0]

    nbytes_method = "faiss serialize_index"

    def nbytes(self) -> int:
        return int(self._faiss.serialize_index(self.index).size)

    def close(self) -> None:
        self.index = None


class FaissHNSW(_FaissBase):
    """faiss.IndexHNSWFlat; ef -> hnsw.efSearch."""

    family = "faiss-hnsw"

    def describe(self) -> str:
        return ("faiss IndexHNSWFlat, float32 vectors"
                + (" (cosine: inner product on normalised vectors)" if self.metric == "cosine"
                   else ""))

    def _make_index(self):
        faiss = self._faiss
        mt = faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2
        index = faiss.IndexHNSWFlat(self.dim, self.M, mt)
        index.hnsw.efConstruction = self.ef_construction
        return index

    def set_query_arguments(self, ef):
        super().set_query_arguments(ef)
        self.index.hnsw.efSearch = int(ef)


class FaissFlat(_FaissBase):
    """Exact baseline: faiss.IndexFlatIP (cosine, on normalised rows) / IndexFlatL2."""

    family = "faiss-flat"
    is_graph = False

    def describe(self) -> str:
        kind = "IndexFlatIP on normalised vectors" if self.metric == "cosine" else "IndexFlatL2"
        return f"faiss {kind}: exact brute-force scan (one point, no ef)"

    def _make_index(self):
        faiss = self._faiss
        if self.metric == "cosine":
            return faiss.IndexFlatIP(self.dim)
        return faiss.IndexFlatL2(self.dim)
