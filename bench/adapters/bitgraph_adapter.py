"""bitgraph: ``HNSWIndex(dim, metric=..., M=16, ef_construction=200, storage=...)`` with
float32 / float16 storage, and the exact ``FlatIndex``.

Threads: ``threads=`` on every ``add``/``search`` call (search parameters are per call).
Memory: ``index.nbytes`` (the library's account of the memory the index holds).
``search`` returns a SearchResult that unpacks as ``(ids, distances)``.
"""
from __future__ import annotations

import numpy as np

from .base import BaseANN, as_f32


class _BitgraphBase(BaseANN):
    is_bitgraph = True
    nbytes_method = "bitgraph index.nbytes"

    def __init__(self, metric: str, dim: int):
        super().__init__(metric, dim)
        import bitgraph
        self._bg = bitgraph
        self.index = None

    def version(self) -> str:
        try:
            info = self._bg.backend_info()
            forced = getattr(self, "backend", None)
            if forced and forced != info.get("backend"):  # not the process default
                return f"{info.get('version', '?')} ({forced})"
            return f"{info.get('version', '?')} ({info.get('backend')}, {info.get('simd')})"
        except Exception:
            return getattr(self._bg, "__version__", "?")

    def fit(self, X: np.ndarray) -> None:
        self.index = self._make_index()
        self.index.add(as_f32(X), threads=self.threads)

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(as_f32(Q), k=k, ef=self.ef, threads=self.threads)
        return np.asarray(ids)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(q.reshape(1, -1), k=k, ef=self.ef, threads=self.threads)
        return np.asarray(ids)[0]

    def nbytes(self) -> int:
        return int(self.index.nbytes)

    def close(self) -> None:
        self.index = None


class BitgraphHNSW(_BitgraphBase):
    """bitgraph.HNSWIndex with the given storage ("float32" | "float16" | "int8") on the
    backend bitgraph picks (``backend = None``) or a forced one."""

    storage = "float32"
    backend: str | None = None

    @property
    def name(self) -> str:
        suffix = {"float32": "f32", "float16": "f16", "int8": "i8"}.get(self.storage,
                                                                        self.storage)
        prefix = f"bitgraph-{self.backend}" if self.backend else "bitgraph"
        return f"{prefix}-{suffix}"

    family = "bitgraph"

    def params(self) -> dict:
        extra = {"backend": self.backend} if self.backend else {}
        return {**super().params(), "storage": self.storage, **extra}

    def _make_index(self):
        return self._bg.HNSWIndex(self.dim, metric=self.metric, M=self.M,
                                  ef_construction=self.ef_construction, storage=self.storage,
                                  backend=self.backend)


class BitgraphHNSWF16(BitgraphHNSW):
    storage = "float16"


class BitgraphHNSWI8(BitgraphHNSW):
    storage = "int8"


class BitgraphNumbaHNSW(BitgraphHNSW):
    """The Numba fallback backend, to report its speed beside the native one."""

    backend = "numba"


class BitgraphFlat(_BitgraphBase):
    """Exact baseline: bitgraph.FlatIndex."""

    family = "bitgraph-flat"
    is_graph = False

    def _make_index(self):
        return self._bg.FlatIndex(self.dim, metric=self.metric)

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(as_f32(Q), k=k, threads=self.threads)
        return np.asarray(ids)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(q.reshape(1, -1), k=k, threads=self.threads)
        return np.asarray(ids)[0]
