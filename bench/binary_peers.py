"""The indexes of the binary-index benchmark (bench.binary), each called as a user would.

Every runner: ``build(ctx, threads)`` once (timed, all cores), then ``search(Q, k, point,
threads)`` per sweep point (timed) returning ``(nq, k_search)`` int64 ids. A *point* is a dict:
``{"ef": int | None, "oversample": float | None, "k_search": int}``; ``oversample`` None means
no re-rank (the top ``k_search`` straight from the codes).

bitgraph:
* ``bg-bin-<graph>-<distance>-<rerank>``: ``bitgraph.BinaryIndex(binz, graph=flat|hnsw,
  distance=sdc|hamming|asymmetric, rerank=memory|mmap|None, M=16, ef_construction=200)``; ``search(Q, k,
  ef=, oversample=, threads=)`` (query encoding, code search and re-rank all inside, timed).
* ``bitgraph-f32``: the float ``HNSWIndex`` (M=16, efC=200), the suite's own adapter.

faiss, on the SAME codes (``BinaryIndex.codes`` of the bitgraph flat index; queries encoded
with the same binarizer inside the timing, as bitgraph does):
* ``faiss-binflat`` / ``faiss-binhnsw`` (``IndexBinaryFlat`` / ``IndexBinaryHNSW``, M=16,
  efConstruction=200): Hamming over the whole code row (= bitgraph ``distance="hamming"``).
  ``...+rr``: their top ``oversample*k`` re-ranked with exact float distances in numpy
  (``rerank_numpy``: gather + batched matmul, chunks of queries over ``threads`` Python threads);
  the parts (query encode, code search, re-rank) are timed separately and kept in each row.
* ``faiss-rabitq`` (``IndexRaBitQ``, 1 bit/dim + 8 B of factors, default ``qb``) and
  ``faiss-rabitq+rr`` (``IndexRefineFlat`` over it, ``k_factor = oversample``, floats in RAM);
  ``faiss-hnswrabitq(+rr)``: ``IndexHNSWRaBitQ`` (1 bit, L2 on normalised vectors, which ranks
  as cosine; efConstruction=200). Only where the installed faiss has them.
* ``faiss-sq8`` (``IndexScalarQuantizer(QT_8bit)``, exact scan) and ``faiss-hnswsq``
  (``IndexHNSWSQ(QT_8bit, M=16)``, efConstruction=200).
faiss cosine = inner product on L2-normalised vectors. Memory: ``len(serialize_index)`` plus
the float vectors a numpy re-rank holds (``rerank_bytes``).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .adapters.base import normalize_rows

M = 16
EF_CONSTRUCTION = 200


# --------------------------------------------------------------------------- shared state

@dataclass
class Context:
    """What the runners share: data, the binarizer, its codes, and builds used twice."""

    base: np.ndarray                 # (n, d) float32 as loaded
    metric: str                      # "cosine" | "l2"
    binz: Any = None                 # fitted bitgraph.RecurrentBinarizer (None: no binary)
    binz_params: dict = field(default_factory=dict)
    codes: np.ndarray | None = None  # (n, code_bytes) uint8, the bitgraph flat index's codes
    cache: dict = field(default_factory=dict)
    _prepped: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    @property
    def prepped(self) -> np.ndarray:
        """Base as faiss / numpy re-rank see it (L2-normalised for cosine)."""
        if self._prepped is None:
            self._prepped = prep(self.base, self.metric)
        return self._prepped

    def encode(self, x: np.ndarray, threads: int | None = None) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        if threads is not None:
            try:
                return np.ascontiguousarray(self.binz.encode(x, threads=threads))
            except TypeError:                      # an encode without threads=
                pass
        return np.ascontiguousarray(self.binz.encode(x))

    def get_codes(self) -> np.ndarray:
        if self.codes is None:
            self.codes = self.encode(self.base)
        return self.codes


def prep(x: np.ndarray, metric: str) -> np.ndarray:
    return normalize_rows(x) if metric == "cosine" else np.ascontiguousarray(x, np.float32)


def rerank_numpy(base: np.ndarray, Q: np.ndarray, cand: np.ndarray, k: int, metric: str,
                 threads: int = 1, chunk: int = 64) -> np.ndarray:
    """Exact float re-rank of candidate ids ``cand`` (nq, c; -1 = none): the best ``k`` by
    inner product (cosine, rows of ``base`` / ``Q`` already normalised) or L2."""
    cand = np.asarray(cand, dtype=np.int64)
    nq, c = cand.shape
    k = min(k, c)
    out = np.empty((nq, k), dtype=np.int64)

    def work(s: int) -> None:
        ids = cand[s:s + chunk]
        V = base[np.maximum(ids, 0)]                               # (b, c, d)
        q = Q[s:s + chunk]
        score = np.matmul(V, q[:, :, None])[:, :, 0]              # inner product
        if metric == "l2":
            score = 2 * score - np.einsum("bcd,bcd->bc", V, V)     # -|v|^2 + 2<v,q> (+ const)
        score[ids < 0] = -np.inf
        part = np.argpartition(-score, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(score, part, 1), axis=1, kind="stable")
        out[s:s + chunk] = np.take_along_axis(ids, np.take_along_axis(part, order, 1), 1)

    starts = range(0, nq, chunk)
    if threads <= 1 or nq <= chunk:
        for s in starts:
            work(s)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(work, starts))
    return out


# --------------------------------------------------------------------------- runners

class Runner:
    name = "?"
    family = "?"
    is_bitgraph = False
    is_graph = False
    nbytes_method = "?"
    rerank: str | None = None          # "memory" | "mmap" | "numpy" | "faiss-refine" | None

    def __init__(self, ctx: Context, efs: list[int], oversamples: list[float],
                 hnsw_oversamples: list[float], scan_ks: tuple[int, ...] = (10, 40)):
        self.ctx = ctx
        self.efs, self.oversamples = list(efs), list(oversamples)
        self.hnsw_oversamples = list(hnsw_oversamples)
        self.scan_ks = tuple(scan_ks)
        self.parts: dict[str, float] = {}      # seconds of the last search, per part
        self.shared_build = False

    # points of the sweep
    def points(self, k: int) -> list[dict]:
        efs = self.efs if self.is_graph else [None]
        if self.rerank is None:
            ks = [k] if self.is_graph else sorted(set([k, *self.scan_ks]))
            return [{"ef": ef, "oversample": None, "k_search": kk} for ef in efs for kk in ks]
        oss = self.hnsw_oversamples if self.is_graph else self.oversamples
        return [{"ef": ef, "oversample": float(o), "k_search": k} for ef in efs for o in oss]

    def version(self) -> str:
        return "?"

    def params(self) -> dict:
        return {"M": M, "ef_construction": EF_CONSTRUCTION} if self.is_graph else {}

    def build(self, threads: int) -> None:
        raise NotImplementedError

    def search(self, Q: np.ndarray, k: int, point: dict, threads: int) -> np.ndarray:
        raise NotImplementedError

    def nbytes(self) -> int:
        raise NotImplementedError

    def rerank_bytes(self) -> int:
        """Float bytes held in RAM for re-ranking beyond ``nbytes`` (numpy re-rank peers)."""
        return 0

    def close(self) -> None:
        pass


# ----- bitgraph

def bitgraph_version() -> str:
    import bitgraph
    try:
        info = bitgraph.backend_info()
        return f"{info.get('version', '?')} ({info.get('backend')}, {info.get('simd')})"
    except Exception:
        return getattr(bitgraph, "__version__", "?")


class BitgraphBinary(Runner):
    is_bitgraph = True
    nbytes_method = "bitgraph BinaryIndex.nbytes (memory-mapped floats excluded)"

    def __init__(self, ctx, efs, oversamples, hnsw_oversamples, graph="flat", distance="sdc",
                 rerank="memory", **kw):
        super().__init__(ctx, efs, oversamples, hnsw_oversamples, **kw)
        import bitgraph
        if not hasattr(bitgraph, "BinaryIndex"):
            raise ImportError("this bitgraph has no BinaryIndex")
        self.bg = bitgraph
        self.graph, self.distance, self.rerank = graph, distance, rerank
        self.is_graph = graph == "hnsw"
        self.name = f"bg-bin-{graph}-{distance}-{rerank or 'norr'}"
        self.family = "bitgraph-binary"
        self.index = None

    def version(self):
        return bitgraph_version()

    def params(self):
        return {**super().params(), "graph": self.graph, "distance": self.distance,
                "rerank": self.rerank, **self.ctx.binz_params}

    def build(self, threads):
        self.index = self.bg.BinaryIndex(self.ctx.binz, graph=self.graph, M=M,
                                         ef_construction=EF_CONSTRUCTION,
                                         distance=self.distance, rerank=self.rerank,
                                         metric=self.ctx.metric)
        self.index.add(np.ascontiguousarray(self.ctx.base, np.float32), threads=threads)

    def search(self, Q, k, point, threads):
        kw = {}
        if point["ef"] is not None:
            kw["ef"] = int(point["ef"])
        if point["oversample"] is not None:
            kw["oversample"] = float(point["oversample"])
        res = self.index.search(Q, point["k_search"], threads=threads, **kw)
        return np.asarray(res.ids, dtype=np.int64)

    def nbytes(self):
        return int(self.index.nbytes)

    def close(self):
        self.index = None


class BitgraphFloatHNSW(Runner):
    """bitgraph.HNSWIndex float32 (the suite adapter ``bitgraph-f32``)."""

    name = "bitgraph-f32"
    family = "bitgraph"
    is_bitgraph = True
    is_graph = True
    nbytes_method = "bitgraph index.nbytes"
    rerank = None

    def __init__(self, ctx, efs, oversamples, hnsw_oversamples, **kw):
        super().__init__(ctx, efs, oversamples, hnsw_oversamples, **kw)
        from .adapters import make_adapter
        self.adapter = make_adapter("bitgraph-f32", ctx.metric, ctx.dim)

    def version(self):
        return self.adapter.version()

    def params(self):
        return self.adapter.params()

    def build(self, threads):
        self.adapter.set_threads(threads)
        self.adapter.fit(self.ctx.base)

    def search(self, Q, k, point, threads):
        self.adapter.set_threads(threads)
        self.adapter.set_query_arguments(point["ef"])
        return np.asarray(self.adapter.batch_query(Q, point["k_search"]), dtype=np.int64)

    def nbytes(self):
        return self.adapter.nbytes()

    def close(self):
        self.adapter.close()


# ----- faiss

class _Faiss(Runner):
    nbytes_method = "faiss serialize_index"

    def __init__(self, ctx, efs, oversamples, hnsw_oversamples, **kw):
        super().__init__(ctx, efs, oversamples, hnsw_oversamples, **kw)
        import faiss
        self.faiss = faiss
        self.index = None

    def version(self):
        return self.faiss.__version__

    def _shared(self, key, make, threads):
        """Build ``make()`` once per context (a second runner on the same build records
        ``shared_build`` and the first one's build time)."""
        if key in self.ctx.cache:
            self.shared_build = True
            return self.ctx.cache[key]
        self.faiss.omp_set_num_threads(threads)
        obj = make()
        self.ctx.cache[key] = obj
        return obj

    def nbytes(self):
        return int(self.faiss.serialize_index(self.index).size)

    def close(self):
        self.index = None


class _FaissBinary(_Faiss):
    """faiss binary index on the bitgraph codes; numpy float re-rank when ``rerank``."""

    def __init__(self, ctx, efs, oversamples, hnsw_oversamples, rerank=False, **kw):
        super().__init__(ctx, efs, oversamples, hnsw_oversamples, **kw)
        if ctx.binz is None:
            raise ImportError("needs a bitgraph RecurrentBinarizer for the codes")
        self.rerank = "numpy" if rerank else None
        self.name = self.base_name + ("+rr" if rerank else "")
        self.family = self.base_name

    def nbytes(self):
        return int(self.faiss.serialize_index_binary(self.index).size)

    def rerank_bytes(self):
        return int(self.ctx.prepped.nbytes) if self.rerank else 0

    def search(self, Q, k, point, threads):
        faiss = self.faiss
        faiss.omp_set_num_threads(threads)
        t0 = time.perf_counter()
        qc = self.ctx.encode(Q, threads)
        t1 = time.perf_counter()
        self._set_ef(point["ef"])
        os_ = point["oversample"]
        kc = point["k_search"] if os_ is None else max(point["k_search"],
                                                       int(np.ceil(os_ * point["k_search"])))
        _, I = self.index.search(qc, kc)
        t2 = time.perf_counter()
        self.parts = {"encode_s": t1 - t0, "code_search_s": t2 - t1}
        if os_ is None:
            return I.astype(np.int64)
        ids = rerank_numpy(self.ctx.prepped, prep(Q, self.ctx.metric), I, point["k_search"],
                           self.ctx.metric, threads)
        self.parts["rerank_s"] = time.perf_counter() - t2
        return ids

    def _set_ef(self, ef):
        pass


class FaissBinaryFlat(_FaissBinary):
    base_name = "faiss-binflat"
    is_graph = False

    def build(self, threads):
        codes = self.ctx.get_codes()

        def make():
            idx = self.faiss.IndexBinaryFlat(8 * codes.shape[1])
            idx.add(codes)
            return idx
        self.index = self._shared("binflat", make, threads)


class FaissBinaryHNSW(_FaissBinary):
    base_name = "faiss-binhnsw"
    is_graph = True

    def build(self, threads):
        codes = self.ctx.get_codes()

        def make():
            idx = self.faiss.IndexBinaryHNSW(8 * codes.shape[1], M)
            idx.hnsw.efConstruction = EF_CONSTRUCTION
            idx.add(codes)
            return idx
        self.index = self._shared("binhnsw", make, threads)

    def _set_ef(self, ef):
        self.index.hnsw.efSearch = int(ef)


class _FaissFloatCodes(_Faiss):
    """faiss indexes that quantise the float vectors themselves (RaBitQ, SQ8)."""

    def search(self, Q, k, point, threads):
        faiss = self.faiss
        faiss.omp_set_num_threads(threads)
        idx = self.index
        if point["oversample"] is not None:
            idx.k_factor = float(point["oversample"])
        if point["ef"] is not None:
            self._hnsw().efSearch = int(point["ef"])
        _, I = idx.search(prep(Q, self.ctx.metric), point["k_search"])
        return I.astype(np.int64)

    def _hnsw(self):
        base = self.index
        if isinstance(base, self.faiss.IndexRefine):
            base = self.faiss.downcast_index(base.base_index)
        return base.hnsw


class FaissRaBitQ(_FaissFloatCodes):
    base_name = "faiss-rabitq"
    is_graph = False

    def __init__(self, ctx, efs, oversamples, hnsw_oversamples, rerank=False, **kw):
        super().__init__(ctx, efs, oversamples, hnsw_oversamples, **kw)
        if not hasattr(self.faiss, "IndexRaBitQ"):
            raise ImportError(f"faiss {self.faiss.__version__} has no IndexRaBitQ")
        self.rerank = "faiss-refine" if rerank else None
        self.name = self.base_name + ("+rr" if rerank else "")
        self.family = self.base_name

    def _make_base(self):
        mt = (self.faiss.METRIC_INNER_PRODUCT if self.ctx.metric == "cosine"
              else self.faiss.METRIC_L2)
        return self.faiss.IndexRaBitQ(self.ctx.dim, mt)

    def params(self):
        return {**super().params(), "nb_bits": 1, "refine": self.rerank}

    def build(self, threads):
        X = self.ctx.prepped

        def make():
            base = self._make_base()
            refine = self.faiss.IndexRefineFlat(base)   # must wrap before add
            refine.train(X)
            refine.add(X)
            return refine, base                         # keep the Python ref of the base
        refine, self._base = self._shared(self.base_name, make, threads)
        self.refine = refine
        self.index = refine if self.rerank else self.faiss.downcast_index(refine.base_index)

    def search(self, Q, k, point, threads):
        if self.rerank is None:
            self.faiss.omp_set_num_threads(threads)
            if point["ef"] is not None:
                self.index.hnsw.efSearch = int(point["ef"])
            _, I = self.index.search(prep(Q, self.ctx.metric), point["k_search"])
            return I.astype(np.int64)
        return super().search(Q, k, point, threads)

    def nbytes(self):
        return int(self.faiss.serialize_index(self.index).size)


class FaissHNSWRaBitQ(FaissRaBitQ):
    base_name = "faiss-hnswrabitq"
    is_graph = True

    def __init__(self, ctx, efs, oversamples, hnsw_oversamples, rerank=False, **kw):
        super().__init__(ctx, efs, oversamples, hnsw_oversamples, rerank=rerank, **kw)
        if not hasattr(self.faiss, "IndexHNSWRaBitQ"):
            raise ImportError(f"faiss {self.faiss.__version__} has no IndexHNSWRaBitQ")

    def _make_base(self):
        # faiss 1.15: (d, M, nb_bits), L2 only; on normalised vectors L2 ranks as cosine
        idx = self.faiss.IndexHNSWRaBitQ(self.ctx.dim, M, 1)
        idx.hnsw.efConstruction = EF_CONSTRUCTION
        return idx

    def params(self):
        return {"M": M, "ef_construction": EF_CONSTRUCTION, "nb_bits": 1,
                "refine": self.rerank, "metric": "L2 on normalised vectors"}


class FaissSQ8(_FaissFloatCodes):
    name = family = "faiss-sq8"
    is_graph = False

    def build(self, threads):
        faiss = self.faiss
        mt = faiss.METRIC_INNER_PRODUCT if self.ctx.metric == "cosine" else faiss.METRIC_L2
        self.faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexScalarQuantizer(self.ctx.dim, faiss.ScalarQuantizer.QT_8bit, mt)
        self.index.train(self.ctx.prepped)
        self.index.add(self.ctx.prepped)

    def params(self):
        return {"qtype": "QT_8bit"}


class FaissHNSWSQ(_FaissFloatCodes):
    name = family = "faiss-hnswsq"
    is_graph = True

    def build(self, threads):
        faiss = self.faiss
        mt = faiss.METRIC_INNER_PRODUCT if self.ctx.metric == "cosine" else faiss.METRIC_L2
        self.faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexHNSWSQ(self.ctx.dim, faiss.ScalarQuantizer.QT_8bit, M, mt)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.train(self.ctx.prepped)
        self.index.add(self.ctx.prepped)

    def _hnsw(self):
        return self.index.hnsw

    def params(self):
        return {**super().params(), "qtype": "QT_8bit"}


# --------------------------------------------------------------------------- registry

def _bg(graph, distance, rerank):
    return lambda ctx, *a, **kw: BitgraphBinary(ctx, *a, graph=graph, distance=distance,
                                                rerank=rerank, **kw)


def _rr(cls, rerank):
    return lambda ctx, *a, **kw: cls(ctx, *a, rerank=rerank, **kw)


LIBS: dict[str, Any] = {
    # bitgraph binary flat: the scan (no re-rank) and the two re-rank stores
    "bg-bin-flat-sdc-norr": _bg("flat", "sdc", None),
    "bg-bin-flat-hamming-norr": _bg("flat", "hamming", None),
    "bg-bin-flat-sdc-memory": _bg("flat", "sdc", "memory"),
    "bg-bin-flat-hamming-memory": _bg("flat", "hamming", "memory"),
    "bg-bin-flat-sdc-mmap": _bg("flat", "sdc", "mmap"),
    "bg-bin-flat-hamming-mmap": _bg("flat", "hamming", "mmap"),
    # the asymmetric distance (4-bit queries; BinaryIndex's default)
    "bg-bin-flat-asymmetric-norr": _bg("flat", "asymmetric", None),
    "bg-bin-flat-asymmetric-memory": _bg("flat", "asymmetric", "memory"),
    "bg-bin-flat-asymmetric-mmap": _bg("flat", "asymmetric", "mmap"),
    "bg-bin-hnsw-asymmetric-memory": _bg("hnsw", "asymmetric", "memory"),
    "bg-bin-hnsw-asymmetric-mmap": _bg("hnsw", "asymmetric", "mmap"),
    # bitgraph binary HNSW
    "bg-bin-hnsw-sdc-memory": _bg("hnsw", "sdc", "memory"),
    "bg-bin-hnsw-sdc-mmap": _bg("hnsw", "sdc", "mmap"),
    "bg-bin-hnsw-hamming-memory": _bg("hnsw", "hamming", "memory"),
    "bg-bin-hnsw-sdc-norr": _bg("hnsw", "sdc", None),
    # bitgraph float
    "bitgraph-f32": BitgraphFloatHNSW,
    # faiss on the same codes
    "faiss-binflat": _rr(FaissBinaryFlat, False),
    "faiss-binflat+rr": _rr(FaissBinaryFlat, True),
    "faiss-binhnsw": _rr(FaissBinaryHNSW, False),
    "faiss-binhnsw+rr": _rr(FaissBinaryHNSW, True),
    # faiss quantisers of the floats
    "faiss-rabitq": _rr(FaissRaBitQ, False),
    "faiss-rabitq+rr": _rr(FaissRaBitQ, True),
    "faiss-hnswrabitq": _rr(FaissHNSWRaBitQ, False),
    "faiss-hnswrabitq+rr": _rr(FaissHNSWRaBitQ, True),
    "faiss-sq8": FaissSQ8,
    "faiss-hnswsq": FaissHNSWSQ,
}
# "all": everything but the two opt-in HNSW variants (hamming graph, no re-rank)
OPT_IN = {"bg-bin-hnsw-hamming-memory", "bg-bin-hnsw-sdc-norr"}
DEFAULT_LIBS = [n for n in LIBS if n not in OPT_IN]
FLOAT_HNSW = "bitgraph-f32"
SCAN_PAIRS = [("bg-bin-flat-sdc-norr", "faiss-binflat"),
              ("bg-bin-flat-hamming-norr", "faiss-binflat")]
BINARY_HNSW = ["bg-bin-hnsw-sdc-mmap", "bg-bin-hnsw-sdc-memory", "bg-bin-hnsw-hamming-memory",
               "bg-bin-hnsw-asymmetric-memory", "bg-bin-hnsw-asymmetric-mmap"]


def needs_binarizer(name: str) -> bool:
    return name.startswith("bg-bin") or name.startswith("faiss-bin")


def make_runner(name: str, ctx: Context, efs, oversamples, hnsw_oversamples,
                scan_ks=(10, 40)) -> Runner:
    if name not in LIBS:
        raise ValueError(f"unknown library {name!r}; expected some of {sorted(LIBS)}")
    return LIBS[name](ctx, efs, oversamples, hnsw_oversamples, scan_ks=scan_ks)


def available(name: str, ctx: Context) -> tuple[bool, str]:
    """(True, "") if ``name`` can run here, else (False, reason)."""
    try:
        make_runner(name, ctx, [10], [1.0], [1.0])
        return True, ""
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"
