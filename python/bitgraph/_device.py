"""``device="cuda"``: an index's device copy and its searches (the index side of the seam).

The CPU core stays the one source of truth: adds, removes, attributes, filters, save / load
and pickling work on it exactly as on the CPU. A device index also keeps a copy of the rows
on the GPU (:mod:`bitgraph._cuda.scan`), brought up to date before a search when the index
changed (appended rows only; labels and the live-slot bitset are refreshed), and answers
``search`` there. Filters are evaluated into a slot bitset on the host, as for the CPU scan,
and the device scan skips the rows outside it.

What runs on the device: FlatIndex (float32 / float16 storage, every metric) and BinaryIndex
with graph="flat" (SDC / Hamming scan, float re-rank). Other indexes refuse device="cuda"
with a clear error; a machine without a usable GPU raises DeviceUnavailableError. Nothing
falls back to the CPU silently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _cuda
from ._cuda import arrays
from ._search_batches import checked_filter, filter_groups
from ._validation import check_int, check_result_size, default_threads
from .errors import BitgraphTypeError, BitgraphValueError
from .result import SearchResult

DEVICES = ("cpu", "cuda")


def check_device(device: Any) -> str:
    """"cpu" or "cuda" ("cuda:0" is "cuda": one device, the current one); "cuda" only where
    a device can run (DeviceUnavailableError naming what is missing otherwise)."""
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        raise BitgraphTypeError(f"device must be 'cpu' or 'cuda', got {device!r}")
    name = device.strip().lower()
    if name == "cuda:0":
        name = "cuda"
    if name not in DEVICES:
        raise BitgraphValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if name == "cuda":
        _cuda.require("device='cuda'")
    return name


class DeviceSearch:
    """The device copy of one index and the searches it answers (see the module docstring).

    ``index`` is a FlatIndex or a BinaryIndex(graph="flat"); its private hooks used here:
    ``_core`` (get_state, n_slots), ``_write_lock``, ``_generation`` (bumped by add/remove),
    ``_prepare`` (CPU query checks), ``_evaluate`` (filter -> slot bitset), ``_metric``.
    """

    def __init__(self, index: Any) -> None:
        self.cp = _cuda.require("device='cuda'")
        from ._cuda import scan

        self._index = index
        self._lock = threading.Lock()
        self._synced: tuple[int, int] | None = None  # (id of the core, generation)
        self._binary = hasattr(index, "_binarizer")
        core_metric = "l2" if index._metric == "l2" else "ip"
        if self._binary:
            binz = index._binarizer
            self.scan: Any = scan.CodeScan(self.cp, binz.loops, binz.words_per_plane,
                                           index._offsets, index._distance, index._dim,
                                           index._rerank is not None)
        else:
            self.scan = scan.FloatScan(self.cp, index._dim, index._storage, core_metric)
        self._l2 = core_metric == "l2"

    @property
    def nbytes(self) -> int:
        """Device memory held by the copy."""
        return self.scan.nbytes

    def sync(self) -> None:
        """Uploads what changed in the index since the last search."""
        idx = self._index
        with idx._write_lock:
            now = (id(idx._core), idx._generation)
            if now == self._synced:
                return
            with self._lock:
                state = idx._core.get_state()
                n = int(idx._core.n_slots)
                if self._synced is not None and self._synced[0] != now[0]:
                    self.__init__(idx)  # a new core (not expected): start over
                if self._binary:
                    vectors = idx._rerank.vectors if idx._rerank is not None else None
                    self.scan.sync(state["vectors"], state["labels"], state["deleted"], n,
                                   vectors)
                else:
                    self.scan.sync(state["vectors"], state["labels"], state["deleted"], n)
                self._synced = now

    # --- search --------------------------------------------------------------------------------
    def search(self, queries: Any, k: Any, ef: Any, filter: Any, threads: Any,
               oversample: float | None = None,
               encoder: Callable[[np.ndarray, int], np.ndarray] | None = None) -> SearchResult:
        """The index's ``search`` on the device: same arguments, checks and results (in the
        array kind of ``queries``); ``ef`` and ``threads`` are checked and unused."""
        cp, idx = self.cp, self._index
        k = int(check_int("k", k, 1))  # type: ignore[arg-type]
        check_int("ef", ef, 1, allow_none=True)
        threads = default_threads(threads)
        kind = arrays.output_kind(queries)
        if kind == "numpy":
            host = idx._prepare(queries, "queries")
            q = cp.asarray(host)
        else:
            host = None
            q = arrays.device_queries(cp, queries, idx._dim, idx._metric)
        nq = int(q.shape[0])
        check_result_size(nq, k)
        self.sync()
        n = self.scan.n
        k_eff = min(k, max(1, n))
        plans = visited = None
        if filter is None:
            ids, dists = self._answer(q, host, k_eff, None, oversample, encoder, threads)
        else:
            groups = filter_groups(filter, nq)
            ids = cp.full((nq, k_eff), -1, dtype=cp.int64)
            dists = cp.full((nq, k_eff), np.inf, dtype=cp.float32)
            scored = np.zeros(nq, dtype=np.int64)
            for f, rows in groups:
                sel = slice(None) if rows is None else cp.asarray(rows)
                hrows = slice(None) if rows is None else rows
                if f is None:
                    bits, count = None, len(idx)
                else:
                    bits, count = idx._evaluate(checked_filter(f))
                    bits = np.asarray(bits)
                allow = self.scan.allow_bits(bits)
                i, d = self._answer(q[sel], None if host is None else host[hrows], k_eff, allow,
                                    oversample, encoder, threads)
                ids[sel], dists[sel] = i, d
                scored[hrows] = count
            plans = np.full(nq, "exact", dtype="<U14")  # every device plan is the exact scan
            visited = scored
        if k > k_eff:
            ids = cp.concatenate([ids, cp.full((nq, k - k_eff), -1, dtype=cp.int64)], axis=1)
            dists = cp.concatenate([dists, cp.full((nq, k - k_eff), np.inf, cp.float32)],
                                   axis=1)
        return SearchResult(arrays.to_kind(ids, kind), arrays.to_kind(dists, kind), plans,
                            visited)

    def _answer(self, q: Any, host: np.ndarray | None, k: int, allow: Any,
                oversample: float | None, encoder: Any, threads: int) -> tuple[Any, Any]:
        cp, idx = self.cp, self._index
        if allow is None:
            allow = self.scan.live
        if not self._binary:
            ids, dists = self.scan.search(q, k, allow)
        else:
            ids, dists = self._binary_answer(q, host, k, allow, oversample, encoder, threads)
            if idx._rerank is None:
                return ids, dists
        if idx._metric == "cosine":
            dists = cp.where(ids >= 0, dists + cp.float32(1.0), dists)
        return ids, dists

    def _binary_answer(self, q: Any, host: np.ndarray | None, k: int, allow: Any,
                       oversample: float | None, encoder: Any,
                       threads: int) -> tuple[Any, Any]:
        """Code scan (+ float re-rank) of checked queries. Numpy queries are encoded by the
        CPU encoder the index's codes came from (the same bits, so results equal the CPU
        index's exactly); device queries are encoded on the device (codes equal except where
        a value sits within rounding of a sign change)."""
        from ._cuda import encode as dev_encode
        from ._cuda import scan

        cp, idx = self.cp, self._index
        n = self.scan.n
        kk = min(idx._candidates(k, oversample), max(1, n))
        binz = idx._binarizer
        if host is not None or encoder is not None:
            rows = (encoder or idx._encode)(host if host is not None else q.get(), threads)
            rows = np.ascontiguousarray(rows)
            cb = binz.code_bytes
            qcodes = cp.asarray(np.ascontiguousarray(rows[:, :cb]).view("<u8"))
            qoff = (cp.asarray(np.ascontiguousarray(rows[:, cb:cb + 4]).view("<u4").reshape(-1))
                    if idx._offsets else None)
        else:
            qcodes = dev_encode.encode_words(cp, q, binz.normalize, binz.params)
            qoff = None
            if idx._offsets:
                if binz.has_offsets:
                    u = binz._offsets[idx._distance]
                    qoff = dev_encode.code_offsets(cp, q, binz.normalize, binz.params["mean"],
                                                   u["unit"], u["half"])
                else:
                    qoff = cp.zeros(q.shape[0], dtype=cp.uint32)
        keys = self.scan.select(qcodes, qoff, kk, allow)
        if idx._rerank is not None:
            keys = self.scan.rerank(q, keys, k, self._l2)
        else:
            keys = keys[:, :k]
        return scan.keys_to_results(cp, keys, self.scan.labels)
