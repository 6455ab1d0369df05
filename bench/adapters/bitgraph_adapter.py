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
    rerank: str | None = None
    backend: str | None = None

    @property
    def name(self) -> str:
        suffix = {"float32": "f32", "float16": "f16", "int8": "i8"}.get(self.storage,
                                                                        self.storage)
        suffix += {"memory": "r", "mmap": "rm"}.get(self.rerank or "", "")
        prefix = f"bitgraph-{self.backend}" if self.backend else "bitgraph"
        return f"{prefix}-{suffix}"

    family = "bitgraph"

    def describe(self) -> str:
        what = {"float32": "vectors stored as float32",
                "float16": "vectors stored as float16 (half the memory of float32)",
                "int8": "vectors stored as int8 (a quarter of float32)"}[self.storage]
        backend = f", {self.backend} backend" if self.backend else ""
        rerank = {"memory": ", the best 2k of the walk re-ranked with float32 vectors in RAM",
                  "mmap": ", the best 2k of the walk re-ranked with float32 vectors memory-mapped"
                  }.get(self.rerank or "", "")
        return f"bitgraph HNSWIndex, {what}{rerank}{backend}"

    def params(self) -> dict:
        extra = {"backend": self.backend} if self.backend else {}
        if self.rerank:
            extra["rerank"] = self.rerank
        return {**super().params(), "storage": self.storage, **extra}

    def _make_index(self):
        return self._bg.HNSWIndex(self.dim, metric=self.metric, M=self.M,
                                  ef_construction=self.ef_construction, storage=self.storage,
                                  rerank=self.rerank, backend=self.backend)


class BitgraphHNSWF16(BitgraphHNSW):
    storage = "float16"


class BitgraphHNSWI8(BitgraphHNSW):
    storage = "int8"


class BitgraphHNSWI8Rerank(BitgraphHNSW):
    """int8 walk, float32 re-rank of its best 2k (vectors in RAM)."""

    storage = "int8"
    rerank = "memory"


class BitgraphHNSWI8RerankMmap(BitgraphHNSW):
    """int8 walk, float32 re-rank of its best 2k (vectors memory-mapped)."""

    storage = "int8"
    rerank = "mmap"


class BitgraphNumbaHNSW(BitgraphHNSW):
    """The Numba fallback backend, to report its speed beside the native one."""

    backend = "numba"


class BitgraphFlat(_BitgraphBase):
    """Exact baseline: bitgraph.FlatIndex."""

    family = "bitgraph-flat"
    is_graph = False

    def describe(self) -> str:
        return "bitgraph FlatIndex: exact brute-force scan (one point, no ef)"

    def _make_index(self):
        return self._bg.FlatIndex(self.dim, metric=self.metric)

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(as_f32(Q), k=k, threads=self.threads)
        return np.asarray(ids)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(q.reshape(1, -1), k=k, threads=self.threads)
        return np.asarray(ids)[0]


class BitgraphBinaryHNSW(_BitgraphBase):
    """bitgraph.BinaryIndex: an HNSW graph over ``bits`` bits per dimension of recurrent binary
    codes (SDC), the best ``oversample * k`` re-ranked with float vectors memory-mapped from
    disk. Build time includes fitting the binarizer (on up to ``fit_sample`` vectors)."""

    family = "bitgraph-binary"
    # 4 bits per dimension and 16x oversampling: low-dimensional GloVe (the default data)
    # needs both to pass recall 0.9 (2 bits: 0.56 at 4x, 0.84 at 20x on the flat scan).
    bits = 4
    learned = False
    oversample = 16.0
    fit_sample = 50_000
    nbytes_method = "bitgraph index.nbytes (codes + graph + ids; mapped floats excluded)"

    @property
    def name(self) -> str:
        return f"bitgraph-bin{self.bits}"

    def describe(self) -> str:
        how = ("learned" if self.learned
               else "fixed, not learned: centre + random rotation + sign")
        return (f"bitgraph BinaryIndex: HNSW graph over binary codes, {self.bits} bits per "
                f"dimension ({self.bits} residual planes of {self.dim} bits, {how}); the "
                f"best {self.oversample:g} x k by code distance re-ranked with float32 vectors "
                f"memory-mapped from disk (an ef below {self.oversample:g} x k acts as "
                f"{self.oversample:g} x k)")

    def params(self) -> dict:
        return {**super().params(), "bits_per_dim": self.bits, "learned": self.learned,
                "oversample": self.oversample, "rerank": "mmap"}

    def fit(self, X: np.ndarray) -> None:
        X = as_f32(X)
        sample = X[np.random.default_rng(0).permutation(len(X))[: self.fit_sample]]
        binz = self._bg.RecurrentBinarizer(self.dim, loops=self.bits, learned=self.learned,
                                           normalize=self.metric != "l2")
        binz.fit(sample)
        self.index = self._bg.BinaryIndex(binz, graph="hnsw", M=self.M,
                                          ef_construction=self.ef_construction,
                                          rerank="mmap", metric=self.metric)
        self.index.add(X, threads=self.threads)

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(as_f32(Q), k=k, ef=self.ef, oversample=self.oversample,
                                   threads=self.threads)
        return np.asarray(ids)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(q.reshape(1, -1), k=k, ef=self.ef,
                                   oversample=self.oversample, threads=self.threads)
        return np.asarray(ids)[0]


class BitgraphIVF(_BitgraphBase):
    """bitgraph.IVFIndex: k-means lists (1.6 sqrt(n)), 4-bit residual codes (one per value)
    scored with the fast-scan kernels, float32 re-rank in RAM.

    ef -> search breadth: ``nprobe = ef`` lists and ``rerank = clip(0.4 ef, 40, 250)``
    candidates, chosen (as ScaNN's adapter's mapping was) from a grid on glove-50 390k, 999
    lists, 1 thread, 5,000 queries: past 40 candidates recall is bounded by the lists probed,
    not by the re-rank (nprobe 128: re-rank 80 -> 0.9895, 1,000 -> 0.9897), and each re-ranked
    row is a cache miss (nprobe 96: re-rank 80 at 11.9k QPS, 128 at 9.5k). The Pareto-best
    pairs near 0.99 re-rank about 0.4 x the lists probed (144 / 60: 0.9911 at 11.1k QPS;
    160 / 40: 0.9899 at 11.8k; 128 / 128, the old clip(ef, 40, 250): 0.9897 at 9.0k)."""

    family = "bitgraph-ivf"
    is_graph = True  # not a graph, but ef is its search breadth: the suite sweeps it
    rerank_per_ef, rerank_min, rerank_max = 0.4, 40, 250

    def describe(self) -> str:
        nlist = self.index.nlist if self.index is not None else None
        lists = f"{nlist} lists" if nlist else "1.6 sqrt(n) lists"
        return (f"bitgraph IVFIndex: {lists}, 4-bit residual codes per value scored by "
                f"fast-scan, float32 re-rank of clip({self.rerank_per_ef} x ef, "
                f"{self.rerank_min}, {self.rerank_max}) in RAM; ef = lists probed")

    def params(self) -> dict:
        return {**super().params(), "nlist": self.index.nlist if self.index else None,
                "rerank": [self.rerank_min, self.rerank_max],
                "rerank_per_ef": self.rerank_per_ef}

    def _make_index(self):
        return self._bg.IVFIndex(self.dim, metric=self.metric)

    def fit(self, X: np.ndarray) -> None:
        super().fit(X)
        self.index.train()  # the lists are part of the build, not of the first search

    def _rerank(self) -> int:
        wanted = round(self.rerank_per_ef * (self.ef or 1))
        return int(min(max(wanted, self.rerank_min), self.rerank_max))

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(as_f32(Q), k=k, nprobe=self.ef, rerank=self._rerank(),
                                   threads=self.threads)
        return np.asarray(ids)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.search(q.reshape(1, -1), k=k, nprobe=self.ef,
                                   rerank=self._rerank(), threads=self.threads)
        return np.asarray(ids)[0]
