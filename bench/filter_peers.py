"""The libraries of the filtered-search benchmark, each as the user would call it.

Every runner: ``build(base, attrs, threads)`` once (M = 16, ef_construction = 200 for the
graphs), then per workload point ``prepare(point)`` (untimed: the filter objects a user holds)
and ``search(state, Q, k, ef, threads)`` (timed) returning :class:`LibResult`.

* ``bitgraph-f32``: ``bitgraph.HNSWIndex`` (float32) built with every attribute field;
  ``search(filter=Filter | [Filter per query])``. Filter evaluation happens inside search
  (timed). ``res.visited`` / ``res.plans`` are recorded.
* ``bitgraph-flat``: ``bitgraph.FlatIndex`` with the same attributes and filters (exact).
* ``hnswlib``: ``knn_query(Q, k, filter=callable, num_threads=T)``; the callable is a
  ``set.__contains__`` (subsets under n/16 items) or a ``bytearray.__getitem__`` over the base
  (measured as fast as or faster than a numpy bool-array lookup). Per-query filters: one call per
  group of queries sharing a filter. hnswlib raises when a query finds fewer than k results;
  the batch is then retried one query at a time and a query that still raises counts as
  returning nothing (``errors``), all inside the timing.
* ``faiss-hnsw``: ``IndexHNSWFlat`` + ``SearchParametersHNSW(sel=IDSelectorBitmap(bits),
  efSearch=ef)`` (bits packed before the clock); per-query filters grouped like hnswlib;
  ``visited`` = faiss ``hnsw_stats.ndis`` per query.
* ``exact-subset``: brute force on the passing items: gather their vectors (timed) and
  ``faiss.knn`` (numpy matmul + argpartition without faiss); the id list is prepared untimed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .filter_workloads import Attributes, FilterPoint, prepare_vectors, subset_knn

M = 16
EF_CONSTRUCTION = 200


@dataclass
class LibResult:
    ids: np.ndarray                               # (nq, k) int64, -1 padded
    visited: np.ndarray | float | None = None     # per query, or a mean, or unknown
    plans: np.ndarray | None = None               # per query plan names (bitgraph)
    errors: int = 0                               # queries whose call raised (hnswlib)


class FilteredLib:
    name = "?"
    family = "?"
    is_bitgraph = False
    is_graph = True
    visited_method: str | None = None

    def __init__(self, metric: str, dim: int):
        if metric not in ("cosine", "l2"):
            raise ValueError(f"metric must be 'cosine' or 'l2', got {metric!r}")
        self.metric, self.dim = metric, int(dim)

    def version(self) -> str:
        return "?"

    def params(self) -> dict:
        return {"M": M, "ef_construction": EF_CONSTRUCTION} if self.is_graph else {}

    def build(self, base: np.ndarray, attrs: Attributes, threads: int) -> None:
        raise NotImplementedError

    def prepare(self, point: FilterPoint) -> Any:
        return point

    def search(self, state: Any, Q: np.ndarray, k: int, ef: int | None, threads: int
               ) -> LibResult:
        raise NotImplementedError

    def close(self) -> None:
        pass

    @staticmethod
    def _filled(nq: int, k: int) -> np.ndarray:
        return np.full((nq, k), -1, dtype=np.int64)


# --------------------------------------------------------------------------- bitgraph

class BitgraphFiltered(FilteredLib):
    name = family = "bitgraph-f32"
    is_bitgraph = True
    visited_method = "bitgraph SearchResult.visited"

    def __init__(self, metric, dim):
        super().__init__(metric, dim)
        import bitgraph
        if not hasattr(bitgraph, "Filter"):
            raise ImportError("this bitgraph build has no bitgraph.Filter (filtered search)")
        self.bg = bitgraph
        self.index = None

    def version(self) -> str:
        try:
            info = self.bg.backend_info()
            return f"{info.get('version', '?')} ({info.get('backend')}, {info.get('simd')})"
        except Exception:
            return getattr(self.bg, "__version__", "?")

    def _make(self):
        return self.bg.HNSWIndex(self.dim, metric=self.metric, M=M,
                                 ef_construction=EF_CONSTRUCTION)

    def build(self, base, attrs, threads):
        self.index = self._make()
        self.index.add(np.ascontiguousarray(base, dtype=np.float32),
                       attributes=attrs.bitgraph_dict(), threads=threads)

    def prepare(self, point):
        filters = [spec.to_bitgraph(self.bg) for spec in point.specs]
        per_query = None if point.shared else [filters[g] for g in point.qgroup]
        return {"point": point, "filters": filters, "per_query": per_query}

    def _search(self, Q, k, ef, f, threads):
        return self.index.search(Q, k=k, ef=ef, filter=f, threads=threads)

    def search(self, state, Q, k, ef, threads):
        nq = len(Q)
        f = state["filters"][0] if state["per_query"] is None else state["per_query"][:nq]
        res = self._search(Q, k, ef, f, threads)
        plans = getattr(res, "plans", None)
        visited = getattr(res, "visited", None)
        return LibResult(np.asarray(res.ids, dtype=np.int64),
                         None if visited is None else np.asarray(visited, dtype=np.int64),
                         None if plans is None else np.asarray(plans).astype(str))

    def close(self):
        self.index = None


class BitgraphFlatFiltered(BitgraphFiltered):
    name = family = "bitgraph-flat"
    is_graph = False

    def _make(self):
        return self.bg.FlatIndex(self.dim, metric=self.metric)

    def _search(self, Q, k, ef, f, threads):
        return self.index.search(Q, k=k, filter=f, threads=threads)


# --------------------------------------------------------------------------- hnswlib

class HnswlibFiltered(FilteredLib):
    name = family = "hnswlib"
    SET_BELOW = 1 / 16          # subsets smaller than n/16 use a Python set, else a bytearray

    def __init__(self, metric, dim):
        super().__init__(metric, dim)
        import hnswlib
        self.hnswlib = hnswlib
        self.index = None

    def version(self) -> str:
        return getattr(self.hnswlib, "__version__", "0.8")

    def build(self, base, attrs, threads):
        from .adapters.hnswlib_adapter import Hnswlib
        a = Hnswlib(self.metric, self.dim)          # the suite's own build (same parameters)
        a.set_threads(threads)
        a.fit(base)
        self.index = a.index

    def prepare(self, point):
        fns = []
        n = point.n_base
        for g, ids in enumerate(point.subsets):
            if len(ids) < n * self.SET_BELOW:
                fns.append(set(ids.tolist()).__contains__)
            else:
                fns.append(bytearray(point.mask(g).view(np.uint8).tobytes()).__getitem__)
        return {"point": point, "fns": fns}

    def search(self, state, Q, k, ef, threads):
        point: FilterPoint = state["point"]
        nq = len(Q)
        out = self._filled(nq, k)
        self.index.set_ef(int(ef))
        errors = 0
        for g, idx in point.groups(nq):
            fn = state["fns"][g]
            try:
                labels, _ = self.index.knn_query(Q[idx], k=k, num_threads=threads, filter=fn)
                out[idx] = labels
            except RuntimeError:                    # some query found fewer than k
                for i in idx:
                    try:
                        labels, _ = self.index.knn_query(Q[i:i + 1], k=k, num_threads=1,
                                                         filter=fn)
                        out[i] = labels[0]
                    except RuntimeError:
                        errors += 1
        return LibResult(out, errors=errors)

    def close(self):
        self.index = None


# --------------------------------------------------------------------------- faiss

class FaissHNSWFiltered(FilteredLib):
    name = family = "faiss-hnsw"
    visited_method = "faiss hnsw_stats.ndis"

    def __init__(self, metric, dim):
        super().__init__(metric, dim)
        import faiss
        self.faiss = faiss
        self.index = None

    def version(self) -> str:
        return self.faiss.__version__

    def build(self, base, attrs, threads):
        from .adapters.faiss_adapter import FaissHNSW
        a = FaissHNSW(self.metric, self.dim)        # the suite's own build (same parameters)
        a.set_threads(threads)
        a.fit(base)
        self.index = a.index

    def prepare(self, point):
        faiss = self.faiss
        keep, params = [], []
        for g in range(len(point.subsets)):
            bits = np.packbits(point.mask(g), bitorder="little")
            sel = faiss.IDSelectorBitmap(bits)      # keeps a reference to bits
            p = faiss.SearchParametersHNSW()
            p.sel = sel
            keep.append((bits, sel))
            params.append(p)
        return {"point": point, "params": params, "keep": keep}

    def search(self, state, Q, k, ef, threads):
        faiss = self.faiss
        point: FilterPoint = state["point"]
        nq = len(Q)
        out = self._filled(nq, k)
        faiss.omp_set_num_threads(threads)
        Qp = prepare_vectors(Q, self.metric)
        stats = getattr(faiss.cvar, "hnsw_stats", None)
        if stats is not None:
            stats.reset()
        for g, idx in point.groups(nq):
            p = state["params"][g]
            p.efSearch = int(ef)
            _, I = self.index.search(Qp[idx], k, params=p)
            out[idx] = I
        visited = float(stats.ndis) / max(nq, 1) if stats is not None else None
        return LibResult(out, visited=visited)

    def close(self):
        self.index = None


# --------------------------------------------------------------------------- exact subset

class ExactSubset(FilteredLib):
    """Brute force over the passing items (gather + exact top-k), the floor any planner's
    exact path should meet."""

    name = family = "exact-subset"
    is_graph = False

    def __init__(self, metric, dim):
        super().__init__(metric, dim)
        try:
            self.faiss = importlib.import_module("faiss")
        except ImportError:
            self.faiss = None
        self.base = None

    def version(self) -> str:
        return f"faiss.knn {self.faiss.__version__}" if self.faiss else f"numpy {np.__version__}"

    def build(self, base, attrs, threads):
        self.base = prepare_vectors(base, self.metric)   # the user's own copy of the vectors

    def prepare(self, point):
        return {"point": point, "subsets": point.subsets}

    def search(self, state, Q, k, ef, threads):
        point: FilterPoint = state["point"]
        nq = len(Q)
        out = self._filled(nq, k)
        if self.faiss is not None:
            self.faiss.omp_set_num_threads(threads)
        Qp = prepare_vectors(Q, self.metric)
        for g, idx in point.groups(nq):
            ids = state["subsets"][g]
            xs = self.base[ids]                      # the gather is part of the cost
            local = subset_knn(Qp[idx], xs, k, self.metric, use_faiss=self.faiss is not None)
            out[idx] = np.where(local >= 0, ids[np.maximum(local, 0)], -1)
        return LibResult(out)

    def close(self):
        self.base = None


LIBS: dict[str, type[FilteredLib]] = {
    "bitgraph-f32": BitgraphFiltered,
    "bitgraph-flat": BitgraphFlatFiltered,
    "hnswlib": HnswlibFiltered,
    "faiss-hnsw": FaissHNSWFiltered,
    "exact-subset": ExactSubset,
}
DEFAULT_LIBS = ["bitgraph-f32", "bitgraph-flat", "hnswlib", "faiss-hnsw", "exact-subset"]
GRAPH_PEERS = ("hnswlib", "faiss-hnsw")
BITGRAPH_MAIN = "bitgraph-f32"
EXACT_PEER = "exact-subset"


def make_lib(name: str, metric: str, dim: int) -> FilteredLib:
    if name not in LIBS:
        raise ValueError(f"unknown library {name!r}; expected some of {sorted(LIBS)}")
    return LIBS[name](metric, dim)


def available(name: str) -> tuple[bool, str]:
    """(True, "") if ``name`` can run here, else (False, reason)."""
    try:
        make_lib(name, "l2", 4)
        return True, ""
    except Exception as e:        # ImportError, or a broken install: skip, the others run
        return False, f"{type(e).__name__}: {e}"
