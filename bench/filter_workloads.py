"""Attributes, filters and exact filtered ground truth for the filtered-search benchmark.

One attribute table is generated per dataset (so every library builds ONE index with all the
fields), then each workload point is a filter over it:

* ``label`` (uncorrelated, one filter per batch): an int field ``label_<s>`` per grid
  selectivity s, a random partition of the base into blocks of round(s * n) items;
  ``eq(label_<s>, 0)`` matches exactly round(s * n) items, independent of the vectors.
* ``range`` (uncorrelated, one filter per batch): a float field ``price`` holding a random
  permutation of (i + 0.5) / n; ``range(price, a / n, (a + m) / n)`` matches exactly m items
  (a random window; ``None`` where a bound is the end of the column).
* ``corr-pos`` / ``corr-neg`` (cluster-correlated, one filter per query): int fields
  ``cluster_k<K>`` = k-means cluster of each item for K ~ 1 / s clusters (spherical k-means
  for cosine). Per query, ``eq(cluster_k<K>, c)`` with c the query's own cluster (positive:
  its neighbours pass) or another cluster drawn with probability proportional to its size
  (negative: the passing items are elsewhere). Selectivity varies per query; the measured
  mean is reported.
* ``tags-any`` / ``tags-all`` (multi-label, one filter per batch): each item gets 1 + Poisson(2)
  tags from a 1,000-tag vocabulary with Zipf(1) frequencies; ``has_any`` over the tag (or the
  most frequent tags) whose frequency is nearest the target, ``has_all`` over the pair of
  frequent tags whose co-occurrence is nearest it. Targets that cannot be reached within a
  factor of 1.5 are left out; the measured selectivity is reported.

Filters are described by :class:`FilterSpec` (a library-neutral expression that converts to a
``bitgraph.Filter`` and evaluates to a numpy mask). Ground truth is exact: top-k among the
matching items, by numpy brute force on the subset (matmul + argpartition in chunks; bench.filtered
keeps it independent of faiss, which the exact-subset peer uses), in memory for the run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

GRID = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
WORKLOADS = ("label", "range", "corr-pos", "corr-neg", "tags-any", "tags-all")
WORKLOAD_TEXT = {
    "label": "uncorrelated label: eq(label_s, 0), one filter per batch",
    "range": "uncorrelated numeric range: range(price, lo, hi), one filter per batch",
    "corr-pos": "positively correlated: eq(cluster_kK, the query's own k-means cluster), "
                "one filter per query",
    "corr-neg": "negatively correlated: eq(cluster_kK, another cluster), one filter per query",
    "tags-any": "multi-label: has_any(tags, [..]), one filter per batch",
    "tags-all": "multi-label: has_all(tags, [a, b]), one filter per batch",
}
TAG_VOCAB = 1000
TAG_ZIPF = 1.0
TAG_MEAN_EXTRA = 2.0          # tags per item: 1 + Poisson(2)
TAG_PAIR_POOL = 60            # has_all pairs are searched among the most frequent tags
REACH = 1.5                   # a multi-label target is kept if reached within this factor


def field_label(s: float) -> str:
    return "label_" + f"{s:g}".replace(".", "p")


def field_cluster(K: int) -> str:
    return f"cluster_k{K}"


# --------------------------------------------------------------------------- filter specs

@dataclass(frozen=True)
class FilterSpec:
    """A library-neutral filter: ``op`` in eq / isin / range / has_any / has_all / ids,
    and / or / not (``args`` are the children)."""

    op: str
    field: str | None = None
    args: tuple = ()

    # constructors mirroring bitgraph.Filter
    @staticmethod
    def eq(f: str, v: int) -> "FilterSpec":
        return FilterSpec("eq", f, (int(v),))

    @staticmethod
    def isin(f: str, values) -> "FilterSpec":
        return FilterSpec("isin", f, tuple(int(v) for v in values))

    @staticmethod
    def range(f: str, lo: float | None, hi: float | None) -> "FilterSpec":
        return FilterSpec("range", f, (None if lo is None else float(lo),
                                       None if hi is None else float(hi)))

    @staticmethod
    def has_any(f: str, labels) -> "FilterSpec":
        return FilterSpec("has_any", f, tuple(int(v) for v in labels))

    @staticmethod
    def has_all(f: str, labels) -> "FilterSpec":
        return FilterSpec("has_all", f, tuple(int(v) for v in labels))

    @staticmethod
    def ids(values) -> "FilterSpec":
        return FilterSpec("ids", None, tuple(int(v) for v in values))

    def __and__(self, other: "FilterSpec") -> "FilterSpec":
        return FilterSpec("and", None, (self, other))

    def __or__(self, other: "FilterSpec") -> "FilterSpec":
        return FilterSpec("or", None, (self, other))

    def __invert__(self) -> "FilterSpec":
        return FilterSpec("not", None, (self,))

    def describe(self) -> str:
        if self.op in ("and", "or"):
            return f"({self.args[0].describe()} {'&' if self.op == 'and' else '|'} " \
                   f"{self.args[1].describe()})"
        if self.op == "not":
            return f"~{self.args[0].describe()}"
        if self.op == "ids":
            return f"ids([{len(self.args)} ids])"
        if self.op == "range":
            lo, hi = self.args
            fmt = (lambda x: "None" if x is None else f"{x:.6g}")
            return f"range({self.field}, {fmt(lo)}, {fmt(hi)})"
        vals = self.args if len(self.args) <= 6 else (*self.args[:5], f"... {len(self.args)}")
        inner = ", ".join(str(v) for v in vals)
        if self.op == "eq":
            return f"eq({self.field}, {inner})"
        return f"{self.op}({self.field}, [{inner}])"

    def mask(self, attrs: "Attributes") -> np.ndarray:
        """Bool mask over the base of the items that pass."""
        n = attrs.n
        op = self.op
        if op == "eq":
            return attrs.ints[self.field] == self.args[0]
        if op == "isin":
            return np.isin(attrs.ints[self.field], np.asarray(self.args, dtype=np.int64))
        if op == "range":
            col = attrs.floats[self.field]
            lo, hi = self.args
            m = np.ones(n, dtype=bool)
            if lo is not None:
                m &= col >= lo
            if hi is not None:
                m &= col <= hi
            return m
        if op in ("has_any", "has_all"):
            indptr, tags = attrs.tags_csr(self.field)
            hit = np.isin(tags, np.asarray(self.args, dtype=np.int64))
            item_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
            per_item = np.bincount(item_of[hit], minlength=n)    # tags are distinct per item
            need = 1 if op == "has_any" else len(set(self.args))
            return per_item >= need
        if op == "ids":
            m = np.zeros(n, dtype=bool)
            ids = np.asarray(self.args, dtype=np.int64)
            m[ids[(ids >= 0) & (ids < n)]] = True
            return m
        if op == "and":
            return self.args[0].mask(attrs) & self.args[1].mask(attrs)
        if op == "or":
            return self.args[0].mask(attrs) | self.args[1].mask(attrs)
        if op == "not":
            return ~self.args[0].mask(attrs)
        raise ValueError(f"unknown filter op {op!r}")

    def to_bitgraph(self, bg: Any) -> Any:
        """The equivalent ``bitgraph.Filter``."""
        F = bg.Filter
        op = self.op
        if op == "eq":
            return F.eq(self.field, self.args[0])
        if op == "isin":
            return F.isin(self.field, list(self.args))
        if op == "range":
            return F.range(self.field, *self.args)
        if op == "has_any":
            return F.has_any(self.field, list(self.args))
        if op == "has_all":
            return F.has_all(self.field, list(self.args))
        if op == "ids":
            return F.ids(np.asarray(self.args, dtype=np.int64))
        if op == "and":
            return self.args[0].to_bitgraph(bg) & self.args[1].to_bitgraph(bg)
        if op == "or":
            return self.args[0].to_bitgraph(bg) | self.args[1].to_bitgraph(bg)
        if op == "not":
            return ~self.args[0].to_bitgraph(bg)
        raise ValueError(f"unknown filter op {op!r}")


# --------------------------------------------------------------------------- attributes

@dataclass
class Attributes:
    """The attribute table of one base: int (categorical) and float (numeric) columns and
    multi-label CSR fields, plus the k-means centroids behind the ``cluster_k*`` fields."""

    n: int
    ints: dict[str, np.ndarray] = field(default_factory=dict)          # int64
    floats: dict[str, np.ndarray] = field(default_factory=dict)        # float64
    multi: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # indptr, tags
    centroids: dict[int, np.ndarray] = field(default_factory=dict)     # K -> (K, dim)
    info: dict = field(default_factory=dict)

    def tags_csr(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self.multi[name]

    def tags_lists(self, name: str) -> list[list[int]]:
        indptr, tags = self.multi[name]
        flat = tags.tolist()
        bounds = indptr.tolist()
        return [flat[bounds[i]:bounds[i + 1]] for i in range(self.n)]

    def bitgraph_dict(self) -> dict[str, Any]:
        """``attributes=`` for ``bitgraph.HNSWIndex.add``: int64 / float64 arrays and lists
        of int lists."""
        out: dict[str, Any] = {}
        out.update(self.ints)
        out.update(self.floats)
        for name in self.multi:
            out[name] = self.tags_lists(name)
        return out

    def describe(self) -> dict:
        return {"n": self.n, "int_fields": sorted(self.ints), "float_fields": sorted(self.floats),
                "multi_label_fields": sorted(self.multi), **self.info}


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30))


def kmeans(x: np.ndarray, K: int, metric: str, seed: int = 0, niter: int = 20,
           points_per_centroid: int = 64) -> np.ndarray:
    """(K, dim) centroids: faiss.Kmeans when faiss imports, else numpy Lloyd, on a sample of
    ``points_per_centroid * K`` rows. Cosine uses spherical k-means on normalised rows."""
    x = _normalize(x) if metric == "cosine" else np.ascontiguousarray(x, dtype=np.float32)
    K = int(min(K, len(x)))
    rng = np.random.default_rng(seed)
    sample = x if len(x) <= points_per_centroid * K else \
        x[np.sort(rng.choice(len(x), points_per_centroid * K, replace=False))]
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        km = faiss.Kmeans(x.shape[1], K, niter=niter, seed=int(seed) + 1,
                          spherical=(metric == "cosine"), verbose=False,
                          max_points_per_centroid=points_per_centroid, min_points_per_centroid=1)
        km.train(np.ascontiguousarray(sample))
        return np.ascontiguousarray(km.centroids, dtype=np.float32)
    cent = sample[rng.choice(len(sample), K, replace=False)].copy()
    for _ in range(niter):
        assign = nearest_centroid(sample, cent, metric)
        for c in range(K):
            rows = sample[assign == c]
            if len(rows):
                cent[c] = rows.mean(0)
            else:                                   # empty cluster: re-seed at a random row
                cent[c] = sample[rng.integers(len(sample))]
        if metric == "cosine":
            cent = _normalize(cent)
    return cent


def nearest_centroid(x: np.ndarray, cent: np.ndarray, metric: str, chunk: int = 8192
                     ) -> np.ndarray:
    """Index of each row's nearest centroid (inner product on normalised rows for cosine)."""
    if metric == "cosine":
        x, cent = _normalize(x), _normalize(cent)
    out = np.empty(len(x), dtype=np.int64)
    c2 = (cent.astype(np.float32) ** 2).sum(1)
    for s in range(0, len(x), chunk):
        xb = np.asarray(x[s:s + chunk], dtype=np.float32)
        ip = xb @ cent.T
        out[s:s + chunk] = (np.argmax(ip, 1) if metric == "cosine"
                            else np.argmin(c2[None] - 2 * ip, 1))
    return out


def _zipf_tags(n: int, rng: np.random.Generator, vocab: int = TAG_VOCAB
               ) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, tags) with 1 + Poisson(2) distinct tags per item, Zipf(1) frequencies."""
    counts = 1 + rng.poisson(TAG_MEAN_EXTRA, n)
    p = 1.0 / np.arange(1, vocab + 1) ** TAG_ZIPF
    p /= p.sum()
    items = np.repeat(np.arange(n, dtype=np.int64), counts)
    tags = rng.choice(vocab, size=len(items), p=p).astype(np.int64)
    key = np.unique(items * vocab + tags)                       # sorted, duplicates dropped
    items, tags = key // vocab, key % vocab
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(items, minlength=n), out=indptr[1:])
    return indptr, tags


def cluster_counts(grid: tuple[float, ...] | list[float], n: int) -> list[int]:
    """K ~ 1 / s for the correlated workloads (s = 1 is left out: no clusters to pick)."""
    ks = []
    for s in grid:
        K = int(round(1.0 / s))
        if 2 <= K <= n // 2 and K not in ks:
            ks.append(K)
    return ks


def make_attributes(base: np.ndarray, metric: str, grid=GRID, workloads=WORKLOADS,
                    seed: int = 0, log=lambda m: None) -> Attributes:
    """All attribute fields the chosen workloads need (one index build serves them all)."""
    import time
    n = len(base)
    rng = np.random.default_rng(seed)
    attrs = Attributes(n=n)
    if "label" in workloads:
        for s in grid:
            m = max(1, int(round(s * n)))
            rank = rng.permutation(n)
            attrs.ints[field_label(s)] = (rank // m).astype(np.int64)
    if "range" in workloads:
        attrs.floats["price"] = (rng.permutation(n).astype(np.float64) + 0.5) / n
    if "corr-pos" in workloads or "corr-neg" in workloads:
        t0 = time.perf_counter()
        for K in cluster_counts(grid, n):
            cent = kmeans(base, K, metric, seed=seed + K)
            attrs.centroids[K] = cent
            attrs.ints[field_cluster(K)] = nearest_centroid(base, cent, metric)
        attrs.info["kmeans_s"] = time.perf_counter() - t0
        log(f"[attrs] k-means K={cluster_counts(grid, n)} in {attrs.info['kmeans_s']:.1f} s")
    if "tags-any" in workloads or "tags-all" in workloads:
        attrs.multi["tags"] = _zipf_tags(n, rng)
        attrs.info["tags"] = {"vocab": TAG_VOCAB, "zipf": TAG_ZIPF,
                              "per_item": f"1 + Poisson({TAG_MEAN_EXTRA:g})"}
    return attrs


# --------------------------------------------------------------------------- workload points

@dataclass
class FilterPoint:
    """One (workload, target selectivity) point: the distinct filters with the sorted ids of
    the items each one passes, and, for per-query workloads, which filter each query uses
    (``qgroup``; None = one filter for the batch). Build with :meth:`from_masks` or directly
    from ``subsets``."""

    workload: str
    target: float
    specs: list[FilterSpec]
    subsets: list[np.ndarray]               # sorted int64 ids passing each filter
    n_base: int
    qgroup: np.ndarray | None = None
    gt: np.ndarray | None = None            # (nq, k) exact filtered ids, -1 padded
    _groups: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_masks(cls, workload: str, target: float, specs: list[FilterSpec],
                   masks: list[np.ndarray], qgroup: np.ndarray | None = None) -> "FilterPoint":
        return cls(workload, target, specs,
                   [np.flatnonzero(m).astype(np.int64) for m in masks], len(masks[0]),
                   qgroup=qgroup)

    @property
    def shared(self) -> bool:
        return self.qgroup is None

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(s) for s in self.subsets], dtype=np.int64)

    def matches(self, nq: int) -> np.ndarray:
        """(nq,) number of matching items per query."""
        sizes = self.sizes
        return np.full(nq, sizes[0]) if self.shared else sizes[self.qgroup[:nq]]

    def selectivity(self, nq: int) -> dict:
        s = self.matches(nq) / self.n_base
        return {"selectivity": float(s.mean()), "selectivity_min": float(s.min()),
                "selectivity_max": float(s.max()), "selectivity_median": float(np.median(s))}

    def subset(self, g: int) -> np.ndarray:
        """int64 ids of the items passing filter ``g`` (sorted)."""
        return self.subsets[g]

    def mask(self, g: int) -> np.ndarray:
        """Bool mask over the base of filter ``g`` (built on demand, not kept)."""
        m = np.zeros(self.n_base, dtype=bool)
        m[self.subsets[g]] = True
        return m

    def member(self, g: int, ids: np.ndarray) -> np.ndarray:
        """Whether each of ``ids`` (any shape; -1 and out-of-range are False) passes ``g``."""
        sub = self.subsets[g]
        if len(sub) == 0:
            return np.zeros(np.shape(ids), dtype=bool)
        pos = np.clip(np.searchsorted(sub, ids), 0, len(sub) - 1)
        return sub[pos] == ids

    def groups(self, nq: int) -> list[tuple[int, np.ndarray]]:
        """[(filter index, query indices)] for the first ``nq`` queries."""
        if nq not in self._groups:
            if self.shared:
                self._groups[nq] = [(0, np.arange(nq))]
            else:
                qg = self.qgroup[:nq]
                order = np.argsort(qg, kind="stable")
                uniq, starts = np.unique(qg[order], return_index=True)
                bounds = list(starts) + [len(order)]
                self._groups[nq] = [(int(u), order[bounds[i]:bounds[i + 1]])
                                    for i, u in enumerate(uniq)]
        return self._groups[nq]

    def spec_of(self, i: int) -> FilterSpec:
        return self.specs[0] if self.shared else self.specs[self.qgroup[i]]

    def describe(self) -> str:
        if self.shared:
            return self.specs[0].describe()
        used = len(np.unique(self.qgroup))
        return f"{self.specs[0].op}({self.specs[0].field}, <per query>) ({used} distinct)"

    def release(self) -> None:
        """Drop what only the measurement needs (the subsets stay for the rows)."""
        self._groups.clear()


def _label_points(attrs, grid):
    pts = []
    for s in grid:
        spec = FilterSpec.eq(field_label(s), 0)
        pts.append(FilterPoint.from_masks("label", s, [spec], [spec.mask(attrs)]))
    return pts


def _range_points(attrs, grid, rng):
    n = attrs.n
    pts = []
    for s in grid:
        m = max(1, int(round(s * n)))
        a = int(rng.integers(0, n - m + 1))
        lo = None if a == 0 else a / n
        hi = None if a + m == n else (a + m) / n
        spec = FilterSpec.range("price", lo, hi)
        pts.append(FilterPoint.from_masks("range", s, [spec], [spec.mask(attrs)]))
    return pts


def _corr_points(attrs, queries, metric, grid, rng, positive: bool):
    pts = []
    for s in grid:
        K = int(round(1.0 / s))
        if K not in attrs.centroids:
            continue
        name = field_cluster(K)
        labels = attrs.ints[name]
        sizes = np.bincount(labels, minlength=K).astype(np.float64)
        own = nearest_centroid(queries, attrs.centroids[K], metric)
        if positive:
            chosen = own
        else:
            chosen = np.empty_like(own)
            for i, c in enumerate(own):
                w = sizes.copy()
                w[c] = 0.0
                if w.sum() == 0:                    # every other cluster empty (tiny data)
                    w = np.ones(K)
                    w[c] = 0.0
                chosen[i] = rng.choice(K, p=w / w.sum())
        uniq, qgroup = np.unique(chosen, return_inverse=True)
        specs = [FilterSpec.eq(name, int(c)) for c in uniq]
        by_label = np.argsort(labels, kind="stable")
        starts = np.searchsorted(labels[by_label], np.arange(K + 1))
        subsets = [np.sort(by_label[starts[c]:starts[c + 1]]).astype(np.int64) for c in uniq]
        pts.append(FilterPoint("corr-pos" if positive else "corr-neg", s, specs, subsets,
                               attrs.n, qgroup=qgroup.astype(np.int64)))
    return pts


def _log_gap(a: float, b: float) -> float:
    return abs(np.log(max(a, 1e-12) / max(b, 1e-12)))


def _tags_any_points(attrs, grid):
    n = attrs.n
    indptr, tags = attrs.tags_csr("tags")
    freq = np.bincount(tags, minlength=TAG_VOCAB) / n
    order = np.argsort(-freq, kind="stable")
    item_of = np.repeat(np.arange(n), np.diff(indptr))
    pts = []
    for s in grid:
        t = int(np.argmin([_log_gap(f, s) if f > 0 else np.inf for f in freq]))
        best = ([t], freq[t])
        if _log_gap(freq[t], s) > np.log(1.1):      # try unions of the most frequent tags
            covered = np.zeros(n, dtype=bool)
            for j in range(min(len(order), 50)):
                covered[item_of[tags == order[j]]] = True
                u = covered.mean()
                if _log_gap(u, s) < _log_gap(best[1], s):
                    best = (order[:j + 1].tolist(), u)
                if u >= s:
                    break
        if _log_gap(best[1], s) > np.log(REACH):
            continue
        spec = FilterSpec.has_any("tags", best[0])
        pts.append(FilterPoint.from_masks("tags-any", s, [spec], [spec.mask(attrs)]))
    return pts


def _tags_all_points(attrs, grid):
    n = attrs.n
    indptr, tags = attrs.tags_csr("tags")
    freq = np.bincount(tags, minlength=TAG_VOCAB)
    pool = np.argsort(-freq, kind="stable")[:TAG_PAIR_POOL]
    col = {int(t): j for j, t in enumerate(pool)}
    item_of = np.repeat(np.arange(n), np.diff(indptr))
    X = np.zeros((n, len(pool)), dtype=np.float32)
    sel = np.isin(tags, pool)
    X[item_of[sel], [col[int(t)] for t in tags[sel]]] = 1.0
    co = X.T @ X                                    # co-occurrence counts (exact in float32)
    del X
    iu = np.triu_indices(len(pool), 1)
    pair_counts = co[iu]
    pts = []
    for s in grid:
        ok = pair_counts > 0
        if not ok.any():
            break
        gaps = np.where(ok, np.abs(np.log(np.maximum(pair_counts, 1) / (s * n))), np.inf)
        j = int(np.argmin(gaps))
        if gaps[j] > np.log(REACH):
            continue
        a, b = int(pool[iu[0][j]]), int(pool[iu[1][j]])
        spec = FilterSpec.has_all("tags", [a, b])
        pts.append(FilterPoint.from_masks("tags-all", s, [spec], [spec.mask(attrs)]))
    return pts


def make_points(attrs: Attributes, queries: np.ndarray, metric: str, workloads=WORKLOADS,
                grid=GRID, seed: int = 0) -> list[FilterPoint]:
    """Every (workload, selectivity) point, in workload order then decreasing selectivity."""
    rng = np.random.default_rng(seed + 7)
    pts: list[FilterPoint] = []
    grid = sorted(grid, reverse=True)
    for w in workloads:
        if w == "label":
            pts += _label_points(attrs, grid)
        elif w == "range":
            pts += _range_points(attrs, grid, rng)
        elif w == "corr-pos":
            pts += _corr_points(attrs, queries, metric, grid, rng, positive=True)
        elif w == "corr-neg":
            pts += _corr_points(attrs, queries, metric, grid, rng, positive=False)
        elif w == "tags-any":
            pts += _tags_any_points(attrs, grid)
        elif w == "tags-all":
            pts += _tags_all_points(attrs, grid)
        else:
            raise ValueError(f"unknown workload {w!r}; expected some of {WORKLOADS}")
    return pts


# --------------------------------------------------------------------------- ground truth

def prepare_vectors(x: np.ndarray, metric: str) -> np.ndarray:
    """float32 C-contiguous; unit rows for cosine (so inner product ranks like cosine)."""
    return _normalize(x) if metric == "cosine" else np.ascontiguousarray(x, dtype=np.float32)


def subset_knn(xq: np.ndarray, xs: np.ndarray, k: int, metric: str, use_faiss: bool = True
               ) -> np.ndarray:
    """Exact top-k local indices of ``xq`` among rows ``xs`` (both prepared with
    :func:`prepare_vectors`); (nq, k) int64, -1 padded when ``len(xs) < k``."""
    nq = len(xq)
    out = np.full((nq, k), -1, dtype=np.int64)
    kk = min(k, len(xs))
    if kk == 0 or nq == 0:
        return out
    faiss = None
    if use_faiss:
        try:
            import faiss
        except ImportError:
            faiss = None
    if faiss is not None:
        mt = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        _, I = faiss.knn(xq, xs, kk, metric=mt)
        out[:, :kk] = I
        return out
    sq = None if metric == "cosine" else (xs.astype(np.float32) ** 2).sum(1)
    step = max(1, int(2**25 // max(len(xs), 1)))        # ~128 MiB of float32 scores
    for s in range(0, nq, step):
        ip = xq[s:s + step] @ xs.T
        d = -ip if metric == "cosine" else sq[None, :] - 2 * ip
        if kk < len(xs):
            part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        else:
            part = np.broadcast_to(np.arange(len(xs)), (len(d), len(xs)))
        order = np.take_along_axis(d, part, 1).argsort(1, kind="stable")
        out[s:s + step, :kk] = np.take_along_axis(part, order, 1)
    return out


def filtered_ground_truth(base_p: np.ndarray, queries_p: np.ndarray, point: FilterPoint,
                          metric: str, k: int, use_faiss: bool = True) -> np.ndarray:
    """Exact top-k ids among the items matching each query's filter (vectors prepared with
    :func:`prepare_vectors`); (nq, k) int64, -1 padded when fewer than k items match."""
    nq = len(queries_p)
    gt = np.full((nq, k), -1, dtype=np.int64)
    for g, idx in point.groups(nq):
        ids = point.subset(g)
        local = subset_knn(queries_p[idx], base_p[ids], k, metric, use_faiss)
        gt[idx] = np.where(local >= 0, ids[np.maximum(local, 0)], -1)
    return gt


# --------------------------------------------------------------------------- evaluation

def _distances(base: np.ndarray, queries: np.ndarray, ids: np.ndarray, metric: str) -> np.ndarray:
    from .metrics import _true_distances
    return _true_distances(base, queries, ids, metric)


def evaluate(found: np.ndarray, point: FilterPoint, gt: np.ndarray, base: np.ndarray,
             queries: np.ndarray, metric: str, k: int, rtol: float = 1e-5) -> dict:
    """Filtered recall@k and the correctness checks of one batch (the first len(found) queries).

    recall: a returned id is a hit when it passes the query's filter, is not a repeat, and its
    exact distance is within a relative ``rtol`` of the exact g-th filtered distance,
    g = min(k, matches) (ann-benchmarks style, so ties are not held against anyone);
    recall = hits / sum of g over the queries (queries with no match are left out).
    Checks: ``nonmatching`` ids returned that fail the filter, ``short`` queries returning
    fewer than min(k, matches) ids, ``dup`` repeated ids, ``bad_id`` ids outside the base.
    """
    found = np.asarray(found)[:, :k].astype(np.int64)
    nq = len(found)
    gt = gt[:nq]
    q = queries[:nq]
    n = len(base)
    want = np.minimum(point.matches(nq), k)
    valid = (found >= 0) & (found < n)
    bad_id = int(((found >= n) | (found < -1)).sum())
    inmask = np.zeros_like(valid)
    for g, idx in point.groups(nq):
        inmask[idx] = point.member(g, found[idx]) & valid[idx]
    srt = np.sort(np.where(valid, found, -1), axis=1)
    dup_pairs = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
    dup = np.zeros_like(valid)
    for i in np.nonzero(dup_pairs.any(1))[0]:
        _, first = np.unique(found[i], return_index=True)
        dup[i] = True
        dup[i, first] = False
    gtd = np.sort(_distances(base, q, gt, metric), axis=1)                # inf where -1
    thresh = gtd[np.arange(nq), np.maximum(want - 1, 0)]
    d = _distances(base, q, np.where(valid, found, -1), metric)
    tol = rtol * np.maximum(np.abs(thresh), 1.0 if metric == "cosine" else 1e-12) + 1e-7
    hit = (d <= (thresh + tol)[:, None]) & inmask & ~dup
    hits = np.minimum(hit.sum(1), want)
    counted = want > 0
    nonmatching = valid & ~inmask
    returned = valid.sum(1)
    short = returned < want
    return {
        "recall": float(hits[counted].sum() / max(want[counted].sum(), 1)) if counted.any()
        else 1.0,
        "recall_min": float((hits[counted] / want[counted]).min()) if counted.any() else 1.0,
        "nonmatching_ids": int(nonmatching.sum()),
        "nonmatching_queries": int(nonmatching.any(1).sum()),
        "short_queries": int(short.sum()),
        "missing_results": int(np.maximum(want - returned, 0).sum()),
        "dup_ids": int(dup.sum()),
        "bad_ids": bad_id,
        "returned_mean": float(returned.mean()) if nq else 0.0,
        "complete": bool(not short.any() and not nonmatching.any() and not dup.any()
                         and bad_id == 0),
    }
