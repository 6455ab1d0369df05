"""Device copies of an index's rows and the tiled exact scans over them.

:class:`FloatScan` (FlatIndex, float32 / float16 storage) and :class:`CodeScan` (BinaryIndex
graph="flat": SDC / Hamming codes, optional float re-rank vectors) hold what the CPU core
holds, in device memory: the rows (appended as the index grows, never re-uploaded whole),
the slot -> id labels, and a bitset of live slots. They know nothing of index classes: the
index layer (bitgraph._device) hands them the core's state arrays.

Results follow the CPU exactly: keys order by (distance, slot) like the CPU's ``closer``
(csrc/core/topk.hpp), rows with fewer than k results are padded with id -1 and +inf, and
every float distance returned comes from the direct kernel (distances.cu), not the GEMM.

Float exactness. The GEMM's |x|^2 - 2<q,x> + |q|^2 only picks ``k + margin`` candidates;
they are re-scored directly and sorted. That is exact unless an item outside the candidates
could beat the k-th re-scored distance: its GEMM distance is at least the last candidate's
(g_last), and each of the two computations is within ``b = (dim + 2) u (|q| + max|x|)^2`` of
the true value (u the unit roundoff: 2^-24, or 2^-11 if CUPY_TF32=1 lets cuBLAS use TF32),
so a query is certain when g_last - 2b > d_k. Queries that are not are redone with four
times the candidates (up to all rows, which is exact by construction).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import BitgraphValueError
from . import kernels, plan

EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_LOW = np.uint64(0xFFFFFFFF)
_NULL = np.uint64(0)  # a null pointer kernel argument
_GROW = 1.5


def unit_roundoff() -> float:
    """Rounding unit of the GEMM's products (TF32 when CuPy is told to use it)."""
    return 2.0 ** -11 if os.environ.get("CUPY_TF32", "0").strip() == "1" else 2.0 ** -24


def live_bits(deleted: np.ndarray, n: int) -> np.ndarray:
    """uint64 words with bit s set for each live slot s < n (the kernels' allow bitset)."""
    live = np.asarray(deleted[:n]) == 0
    return pad_bits(np.packbits(live, bitorder="little"), n)


def pad_bits(bits: np.ndarray, n: int) -> np.ndarray:
    """A slot bitset (uint8 bytes or uint64 words, possibly shorter) as exactly
    ceil(n / 64) uint64 words, missing words zero (those slots are not allowed)."""
    raw = np.ascontiguousarray(bits).view(np.uint8).reshape(-1)
    words = max(1, -(-n // 64))
    out = np.zeros(words * 8, dtype=np.uint8)
    m = min(raw.size, out.size)
    out[:m] = raw[:m]
    return out.view(np.uint64)


def keys_to_results(cp: Any, keys: Any, labels: Any) -> tuple[Any, Any]:
    """(ids int64, distances float32) of result keys: labels of the slots, -1 / +inf for
    empty keys."""
    empty = keys == EMPTY
    slots = cp.where(empty, 0, keys & _LOW).astype(cp.int64)
    ids = cp.where(empty, -1, labels[slots])
    return ids, cp.where(empty, cp.float32(np.inf), key_distances(cp, keys))


def key_distances(cp: Any, keys: Any) -> Any:
    """The float32 distances held in the high halves of keys (bg_unorder_float)."""
    hi = (keys >> np.uint64(32)).astype(cp.uint32)
    sign = np.uint32(0x80000000)
    bits = cp.where((hi & sign) != 0, hi & np.uint32(0x7FFFFFFF), ~hi).astype(cp.uint32)
    return bits.view(cp.float32)


def key_slots(cp: Any, keys: Any) -> Any:
    """int64 slots of keys, -1 for empty keys (the candidate lists of distances.cu)."""
    return cp.where(keys == EMPTY, -1, (keys & _LOW).astype(cp.int64))


class _Rows:
    """A device array that grows along one axis with amortised copies (like std::vector)."""

    def __init__(self, cp: Any, width: int, dtype: Any, axis: int = 0) -> None:
        self.cp, self.width, self.dtype, self.axis = cp, width, dtype, axis
        self.data = self._alloc(0)
        self.n = 0

    def _alloc(self, cap: int) -> Any:
        shape = (cap, self.width) if self.axis == 0 else (self.width, cap)
        if self.width == 0:
            shape = (cap,)
        return self.cp.empty(shape, dtype=self.dtype)

    @property
    def capacity(self) -> int:
        return int(self.data.shape[self.axis if self.width else 0])

    def extend(self, host: Any, first: int) -> None:
        """Stores rows (host numpy or device CuPy) as rows [first, first + len(host))
        (first <= current size)."""
        last = first + int(host.shape[0])
        if last > self.capacity:
            grown = self._alloc(max(last, int(self.capacity * _GROW), 1024))
            if self.n:
                if self.width and self.axis == 1:
                    grown[:, : self.n] = self.data[:, : self.n]
                else:
                    grown[: self.n] = self.data[: self.n]
            self.data = grown
        if host.shape[0]:
            dev = (host if isinstance(host, self.cp.ndarray)
                   else self.cp.asarray(np.ascontiguousarray(host)))
            if self.width and self.axis == 1:
                self.data[:, first:last] = dev.T
            else:
                self.data[first:last] = dev
        self.n = last


class _Base:
    """Labels and live slots: what both scans keep beside their rows."""

    def __init__(self, cp: Any, budget: int) -> None:
        self.cp = cp
        self.budget = int(budget)
        self.n = 0
        self.labels = cp.empty(0, dtype=cp.int64)
        self.live = cp.asarray(live_bits(np.zeros(0, np.uint8), 0))

    def _sync_slots(self, labels: np.ndarray, deleted: np.ndarray, n: int) -> None:
        cp = self.cp
        self.labels = cp.asarray(np.ascontiguousarray(labels[:n], dtype=np.int64))
        self.live = cp.asarray(live_bits(deleted, n))
        self.n = n

    def allow_bits(self, bits: np.ndarray | None) -> Any:
        """The device bitset of a filter's slots (None: every live slot)."""
        if bits is None:
            return self.live
        return self.cp.asarray(pad_bits(bits, self.n))

    def _select(self, nq: int, kc: int, widen: int, tile_scores: Any, allow: Any,
                row_terms: Any = None, query_terms: Any = None, scale: float = 1.0) -> Any:
        """The kc best keys (sorted) of each of nq queries over every row: ``tile_scores(b0,
        nb, t0, nt, out)`` writes the (nb, nt) tile of raw scores of queries [b0, b0 + nb)
        against rows [t0, t0 + nt); ``row_terms`` / ``query_terms`` (device float32, over all
        rows / queries) and ``scale`` make them distances (see select.cu)."""
        cp = self.cp
        p = plan.plan_scan(self.n, nq, kc, widen_bytes=widen, budget=self.budget)
        kc = p.kc
        out = cp.empty((nq, kc), dtype=cp.uint64)
        small = p.select == "small"
        fn = kernels.kernel("bg_select_small" if small else "bg_select_radix")
        scratch = cp.empty(p.query_block * p.tile_rows, dtype=cp.float32)
        for b0 in range(0, nq, p.query_block):
            nb = min(p.query_block, nq - b0)
            best = cp.full((nb, kc), EMPTY, dtype=cp.uint64)
            if not small:
                other = cp.empty_like(best)
                thresholds = cp.full(nb, EMPTY, dtype=cp.uint64)
            q_terms = _NULL if query_terms is None else query_terms[b0:b0 + nb]
            for t0 in range(0, self.n, p.tile_rows):
                nt = min(p.tile_rows, self.n - t0)
                tile = scratch[: nb * nt].reshape(nb, nt)
                tile_scores(b0, nb, t0, nt, tile)
                r_terms = _NULL if row_terms is None else row_terms[t0:t0 + nt]
                common = (tile, np.int64(nt), np.int32(nb), np.int32(nt), np.uint32(t0),
                          np.float32(scale), r_terms, q_terms, allow)
                if small:
                    fn((nb,), (p.threads,), common + (best, np.int32(kc),
                                                      np.int32(p.shared_keys)),
                       shared_mem=8 * p.shared_keys)
                else:
                    fn((nb,), (p.threads,), common + (best, other, thresholds, np.int32(kc)))
                    best, other = other, best
            out[b0:b0 + nb] = best if small else cp.sort(best, axis=1)
        return out

    def _distances(self, base: Any, half: bool, dim: int, queries: Any, slots: Any,
                   l2: bool) -> Any:
        """Sorted keys of the exact float distances of each query's candidate slots."""
        cp = self.cp
        nq, nc = slots.shape
        out = cp.empty((nq, nc), dtype=cp.uint64)
        if nq * nc:
            fn = kernels.kernel("bg_candidate_distances_f16" if half
                                else "bg_candidate_distances_f32")
            threads = 256
            blocks = -(-nq * nc * 32 // threads)
            fn((blocks,), (threads,), (base, np.int32(dim), queries, np.int64(dim),
                                       cp.ascontiguousarray(slots), np.int32(nq),
                                       np.int32(nc), np.int32(1 if l2 else 0), out))
        return cp.sort(out, axis=1)


class FloatScan(_Base):
    """Exact k-NN over float32 / float16 rows on the device (FlatIndex)."""

    def __init__(self, cp: Any, dim: int, storage: str, metric: str,
                 budget: int = plan.DEFAULT_BUDGET) -> None:
        if storage not in ("float32", "float16"):
            raise BitgraphValueError(
                f"device='cuda' supports storage 'float32' and 'float16', got {storage!r} "
                "(int8 rows carry a per-row scale the GPU kernels do not read)")
        if metric not in ("l2", "ip"):
            raise BitgraphValueError(f"the core metric must be 'l2' or 'ip', got {metric!r}")
        super().__init__(cp, budget)
        self.dim, self.storage, self.metric = int(dim), storage, metric
        self.half = storage == "float16"
        self.rows = _Rows(cp, self.dim, cp.float16 if self.half else cp.float32)
        self.sqnorms = _Rows(cp, 0, cp.float32)
        self.max_norm = 0.0

    @property
    def nbytes(self) -> int:
        return int(self.rows.data.nbytes + self.sqnorms.data.nbytes + self.labels.nbytes
                   + self.live.nbytes)

    def sync(self, rows: np.ndarray, labels: np.ndarray, deleted: np.ndarray, n: int) -> None:
        """Brings the device copy to the core's ``n`` slots (rows are append-only: only rows
        past the device's count are uploaded; labels and live slots are refreshed)."""
        cp = self.cp
        first = min(self.rows.n, n)
        new = np.asarray(rows[first:n]).view(np.float16 if self.half else np.float32)
        self.rows.extend(new.reshape(-1, self.dim), first)
        norms = cp.empty(n - first, dtype=cp.float32)
        if n > first:
            fn = kernels.kernel("bg_row_sqnorms_f16" if self.half else "bg_row_sqnorms_f32")
            fn((-(-(n - first) * 32 // 256),), (256,),
               (self.rows.data[first:n], np.int32(self.dim), np.int64(n - first), norms))
        self.sqnorms.extend(norms, first)
        if n:
            self.max_norm = float(cp.sqrt(self.sqnorms.data[:n].max()))
        self._sync_slots(labels, deleted, n)

    def search(self, queries: Any, k: int, allow: Any) -> tuple[Any, Any]:
        """(ids, distances) ``(nq, k)`` of checked float32 device queries; ``allow`` from
        :meth:`allow_bits`. Core distances (ip: -<q, x>; the caller adds 1 for cosine)."""
        cp = self.cp
        nq = int(queries.shape[0])
        ids = cp.full((nq, k), -1, dtype=cp.int64)
        dists = cp.full((nq, k), np.inf, dtype=cp.float32)
        if self.n == 0 or nq == 0:
            return ids, dists
        kk = min(k, self.n)
        kc = min(self.n, kk + plan.candidate_margin(kk))
        qnorm = cp.sqrt(cp.einsum("ij,ij->i", queries, queries))
        pending = cp.arange(nq)
        while pending.size:
            q = cp.ascontiguousarray(queries[pending])
            keys = self._gemm_select(q, kc, allow)
            exact = self._distances(self.rows.data, self.half, self.dim, q,
                                    key_slots(cp, keys), self.metric == "l2")
            if kc >= self.n:
                sure = cp.ones(pending.size, dtype=bool)
            else:
                last = keys[:, kc - 1]
                bound = ((self.dim + 2) * unit_roundoff()
                         * (qnorm[pending] + cp.float32(self.max_norm)) ** 2)
                sure = (last == EMPTY) | (key_distances(cp, last)
                                          > key_distances(cp, exact[:, kk - 1]) + 2 * bound)
            done = pending[sure]
            i, d = keys_to_results(cp, exact[sure][:, :kk], self.labels)
            ids[done, :kk] = i
            dists[done, :kk] = d
            pending = pending[~sure]
            kc = min(self.n, 4 * kc)
        return ids, dists

    def _gemm_select(self, q: Any, kc: int, allow: Any) -> Any:
        cp = self.cp
        rows = self.rows.data

        def scores(b0: int, nb: int, t0: int, nt: int, out: Any) -> None:
            x = rows[t0:t0 + nt]
            if self.half:
                x = x.astype(cp.float32)  # fp16 stays fp16 in HBM; one tile widened at a time
            cp.matmul(q[b0:b0 + nb], x.T, out=out)

        l2 = self.metric == "l2"
        qterms = cp.einsum("ij,ij->i", q, q) if l2 else None
        return self._select(int(q.shape[0]), kc, 4 * self.dim if self.half else 0, scores,
                            allow, self.sqnorms.data if l2 else None, qterms,
                            -2.0 if l2 else -1.0)


class CodeScan(_Base):
    """Exact SDC / Hamming k-NN over binary codes on the device (BinaryIndex graph="flat"),
    with the float re-rank of the candidates when the index keeps re-rank vectors."""

    def __init__(self, cp: Any, planes: int, words: int, offsets: bool, distance: str,
                 dim: int, rerank: bool, budget: int = plan.DEFAULT_BUDGET) -> None:
        if distance not in ("sdc", "hamming"):
            raise BitgraphValueError(f"distance must be 'sdc' or 'hamming', got {distance!r}")
        self.query_block = plan.code_query_block(planes, words)
        super().__init__(cp, budget)
        self.planes, self.words, self.offsets = int(planes), int(words), bool(offsets)
        self.distance, self.dim = distance, int(dim)
        self.code_words = self.planes * self.words
        self.codes = _Rows(cp, self.code_words, cp.uint64, axis=1)  # word-major (codes.cu)
        self.row_offsets = _Rows(cp, 0, cp.uint32) if offsets else None
        self.vectors = _Rows(cp, self.dim, cp.float32) if rerank else None

    @property
    def nbytes(self) -> int:
        parts = [self.codes, self.row_offsets, self.vectors]
        return int(sum(p.data.nbytes for p in parts if p is not None) + self.labels.nbytes
                   + self.live.nbytes)

    def sync(self, rows: np.ndarray, labels: np.ndarray, deleted: np.ndarray, n: int,
             vectors: np.ndarray | None) -> None:
        """As FloatScan.sync, for code rows (and the float re-rank vectors, same slots)."""
        first = min(self.codes.n, n)
        code_bytes = 8 * self.code_words
        new = np.asarray(rows[first:n])
        codes = np.ascontiguousarray(new[:, :code_bytes]).view("<u8")
        self.codes.extend(codes.reshape(-1, self.code_words), first)
        if self.row_offsets is not None:
            off = np.ascontiguousarray(new[:, code_bytes:code_bytes + 4]).view("<u4")
            self.row_offsets.extend(off.reshape(-1), first)
        if self.vectors is not None and vectors is not None:
            self.vectors.extend(np.asarray(vectors[first:n], dtype=np.float32), first)
        self._sync_slots(labels, deleted, n)

    def select(self, query_codes: Any, query_offsets: Any, kk: int, allow: Any) -> Any:
        """Sorted keys of the ``kk`` closest codes of each query (``(nq, code_words)``
        uint64 device codes, and their uint32 offsets for offset layouts)."""
        cp = self.cp
        nq = int(query_codes.shape[0])
        if self.n == 0:
            return cp.full((nq, kk), EMPTY, dtype=cp.uint64)
        fn = kernels.kernel("bg_code_distances")
        codes = self.codes.data
        offsets = self.row_offsets.data if self.row_offsets is not None else _NULL
        qb = self.query_block

        def scores(b0: int, nb: int, t0: int, nt: int, out: Any) -> None:
            qo = _NULL if self.row_offsets is None else query_offsets[b0:b0 + nb]
            grid = (-(-nt // 256), -(-nb // qb))
            fn(grid, (256,), (codes, np.int64(codes.shape[1]), offsets, np.int32(self.planes),
                              np.int32(self.words), np.int32(self.distance == "sdc"),
                              query_codes[b0:b0 + nb], qo, np.int32(nb), np.int32(qb),
                              np.uint32(t0), np.int32(nt), out, np.int64(nt)),
               shared_mem=8 * qb * self.code_words)

        keys = self._select(nq, kk, 0, scores, allow)
        if keys.shape[1] < kk:
            pad = cp.full((nq, kk - keys.shape[1]), EMPTY, dtype=cp.uint64)
            keys = cp.concatenate([keys, pad], axis=1)
        return keys

    def rerank(self, queries: Any, keys: Any, k: int, l2: bool) -> Any:
        """Sorted keys of the k closest candidates by exact float32 distance to the re-rank
        vectors (ties by slot, like csrc/binary/rerank.cpp)."""
        exact = self._distances(self.vectors.data, False, self.dim,
                                self.cp.ascontiguousarray(queries), key_slots(self.cp, keys),
                                l2)
        return exact[:, :k]
