"""Which shard owns an item, and which shards a query visits.

* :class:`HashRouter`: shard = splitmix64(id) mod n. A fixed 64-bit mix of the int64 id (not
  Python's ``hash()``, which is salted per process for strings and the identity for ints), so
  every process, node and version routes an id to the same shard and consecutive ids spread
  evenly. Every query visits every shard.
* :class:`KMeansRouter`: k-means centroids (one per shard) trained on a sample; an item goes to
  its nearest centroid, and a query can visit only its ``probe`` nearest shards (the IVF idea
  at the scale of machines), or only the shards whose centroid is about as near as its nearest
  one (``probe_margin``: SPANN's query-aware pruning, Chen et al., NeurIPS 2021), so a query
  deep inside one shard's region visits one shard and a query on a border visits both sides.
  Removing an id must ask the shards who holds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import RoutingError

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def stable_hash(ids: np.ndarray) -> np.ndarray:
    """splitmix64 of int64 ids, as uint64 (the same everywhere, every run)."""
    z = np.asarray(ids, dtype=np.int64).view(np.uint64) + _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _prepared(x: np.ndarray, metric: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, np.float32(1e-30))
    return x


def _closeness(x: np.ndarray, centroids: np.ndarray, metric: str) -> np.ndarray:
    """(n, c) scores, larger is nearer: -squared l2 for l2, the inner product otherwise."""
    dots = x @ centroids.T
    if metric == "l2":
        return 2 * dots - (centroids * centroids).sum(axis=1)[None, :]
    return dots


class HashRouter:
    kind = "hash"

    def __init__(self, n_shards: int) -> None:
        if n_shards < 1:
            raise RoutingError(f"n_shards must be >= 1, got {n_shards}")
        self.n_shards = int(n_shards)

    def owners(self, ids: np.ndarray, vectors: np.ndarray | None = None) -> np.ndarray:
        return (stable_hash(ids) % np.uint64(self.n_shards)).astype(np.int64)

    def owner_known(self) -> bool:
        """Whether an id alone tells its shard."""
        return True

    def check(self, probe: int | None = None, margin: float | None = None) -> None:
        """Raises RoutingError unless ``probe`` / ``margin`` are valid here (they need k-means)."""
        _check_probe(probe, margin)
        if (probe is not None and probe < self.n_shards) or margin is not None:
            raise RoutingError("probe and probe_margin need k-means routing "
                               "(build_sharded(route='kmeans')): with hash routing every shard "
                               "holds a random part, so every query visits every shard")

    def visits(self, queries: np.ndarray, probe: int | None = None,
               margin: float | None = None) -> np.ndarray | None:
        """None: every query visits every shard."""
        self.check(probe, margin)
        return None

    def to_json(self) -> dict[str, Any]:
        return {"kind": "hash", "n_shards": self.n_shards, "hash": "splitmix64"}


class KMeansRouter:
    kind = "kmeans"

    def __init__(self, centroids: np.ndarray, metric: str) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.metric = metric
        self.n_shards = int(self.centroids.shape[0])

    @classmethod
    def train(cls, sample: np.ndarray, n_shards: int, metric: str, *, iters: int = 20,
              seed: int = 0) -> KMeansRouter:
        """Lloyd's k-means (k-means++ seeding; spherical for cosine / ip) on ``sample``."""
        x = _prepared(sample, metric)
        if x.shape[0] < n_shards:
            raise RoutingError(f"k-means routing needs at least n_shards = {n_shards} sample "
                               f"vectors, got {x.shape[0]}")
        rng = np.random.default_rng(seed)
        cent = x[[int(rng.integers(x.shape[0]))]]
        d2 = ((x - cent[0]) ** 2).sum(axis=1)
        for _ in range(1, n_shards):
            p = d2 / d2.sum() if d2.sum() > 0 else None
            c = x[int(rng.choice(x.shape[0], p=p))]
            cent = np.vstack([cent, c])
            d2 = np.minimum(d2, ((x - c) ** 2).sum(axis=1))
        for _ in range(iters):
            assign = np.argmax(_closeness(x, cent, "l2"), axis=1)
            new = cent.copy()
            for j in range(n_shards):
                members = x[assign == j]
                if members.shape[0]:
                    new[j] = members.mean(axis=0)
            if metric != "l2":  # spherical: centroids on the sphere
                new /= np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-30)
            if np.allclose(new, cent):
                break
            cent = new
        return cls(cent.astype(np.float32), metric)

    def owners(self, ids: np.ndarray, vectors: np.ndarray | None = None) -> np.ndarray:
        if vectors is None:
            raise RoutingError("k-means routing places items by vector")
        return np.argmax(_closeness(_prepared(vectors, self.metric), self.centroids,
                                    self.metric), axis=1).astype(np.int64)

    def owner_known(self) -> bool:
        return False

    def centroid_distances(self, queries: np.ndarray) -> np.ndarray:
        """(nq, n_shards) distances from each query to each centroid, >= 0: Euclidean for
        l2, 1 - cosine otherwise (an inner-product query is compared by direction, as the
        spherical centroids were trained)."""
        x = _prepared(queries, self.metric)
        if self.metric == "l2":
            sq = (x * x).sum(axis=1, keepdims=True) - _closeness(x, self.centroids, "l2")
            return np.sqrt(np.maximum(sq, 0.0))
        if self.metric != "cosine":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-30))
        return np.maximum(1.0 - _closeness(x, self.centroids, self.metric), 0.0)

    def check(self, probe: int | None = None, margin: float | None = None) -> None:
        """Raises RoutingError unless ``probe`` / ``margin`` are valid."""
        _check_probe(probe, margin)

    def visits(self, queries: np.ndarray, probe: int | None = None,
               margin: float | None = None) -> np.ndarray | None:
        """(nq, n_shards) bool: the shards each query visits, or None when every query visits
        every shard. ``probe``: at most this many, the nearest first; ``margin``: only shards
        whose centroid distance is at most (1 + margin) x the nearest one's (the nearest
        shard always). Both together: the nearest ``probe`` of those within the margin."""
        self.check(probe, margin)
        cap = self.n_shards if probe is None else min(probe, self.n_shards)
        if margin is None and cap >= self.n_shards:
            return None
        dist = self.centroid_distances(queries)
        order = np.argsort(dist, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(self.n_shards)[None, :], axis=1)
        visit = rank < cap
        if margin is not None:
            nearest = np.take_along_axis(dist, order[:, :1], axis=1)
            visit &= (dist <= nearest * (1.0 + margin)) | (rank == 0)
        return visit

    def to_json(self) -> dict[str, Any]:
        return {"kind": "kmeans", "n_shards": self.n_shards, "metric": self.metric,
                "centroids": self.centroids.astype(np.float64).tolist()}


def _check_probe(probe: int | None, margin: float | None) -> None:
    if probe is not None and (isinstance(probe, bool) or not isinstance(probe, int | np.integer)
                              or probe < 1):
        raise RoutingError(f"probe must be an integer >= 1, got {probe!r}")
    if margin is not None and (isinstance(margin, bool)
                               or not isinstance(margin, int | float | np.floating | np.integer)
                               or not np.isfinite(margin) or margin < 0):
        raise RoutingError(f"probe_margin must be a finite number >= 0, got {margin!r}")


def router_from_json(data: dict[str, Any]) -> HashRouter | KMeansRouter:
    kind = data.get("kind")
    if kind == "hash":
        return HashRouter(int(data["n_shards"]))
    if kind == "kmeans":
        return KMeansRouter(np.asarray(data["centroids"], dtype=np.float32), str(data["metric"]))
    raise RoutingError(f"unknown router kind {kind!r} (expected 'hash' or 'kmeans')")
