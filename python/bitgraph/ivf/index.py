"""IVFIndex: an inverted-file index with 4-bit residual codes scored by the fast-scan kernels
and an exact float32 re-rank: the partitioned regime (low dimensions, batch queries) where a
graph walk pays a cache miss per hop."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._index_base import _VectorIndex
from .._rows import padded
from .._search_batches import filter_groups
from .._validation import as_ids, check_int, check_result_size, default_threads
from ..errors import BitgraphValueError
from ..persistence import register_index_kind
from ..result import SearchResult
from .partition import Partition

_PREFIX = "ivf."
#: A filter matching less than this share of the items is answered exactly over its matches
#: (cheaper than probing 1/selectivity times more lists: exact costs s * n float rows, IVF
#: about nprobe / nlist / s * n codes, which cross near s = 0.1 at the default nprobe).
EXACT_BELOW_SELECTIVITY = 0.1
#: Default lists probed: this share of nlist (glove-50 390k, 1,000 lists: 6% -> recall@10 0.955),
#: and at least enough lists for DEFAULT_PROBE_ROWS rows (small indexes: codes are cheap, and a
#: few lists of a small index hold few of a query's neighbours).
DEFAULT_PROBE_SHARE = 0.06
DEFAULT_PROBE_ROWS = 4096
#: Default candidates re-ranked exactly: max(DEFAULT_RERANK, 4 k).
DEFAULT_RERANK = 40
#: Retrain when the index has grown to this many times the rows the lists were trained on.
RETRAIN_GROWTH = 4


@register_index_kind
class IVFIndex(_VectorIndex):
    """Approximate k-NN by an inverted file: k-means lists, 4-bit residual product-quantizer
    codes scored 32 rows per instruction, and an exact float32 re-rank of the best.

    A search probes the ``nprobe`` lists nearest the query, estimates every row there from its
    code (one lookup table per query, shared by all its lists), keeps the ``rerank`` best
    estimates and re-scores them with the float32 rows held in RAM, so the results carry exact
    distances. The lists are trained automatically before the first search (or by
    :meth:`train`) on the vectors added so far, and retrained when the index has grown 4x
    since; later adds are assigned to the trained lists.

    Args:
        dim: values per vector.
        metric: "cosine" (default), "ip" or "l2".
        nlist: number of lists (default: 1.6 sqrt(n) at training, at most n / 39).
        dims_per_code: values per 4-bit code (1: one nibble per value, the most accurate; 2
            halves the codes and the scan, at lower recall before the re-rank).
        nprobe: default lists probed per query (default: 6% of nlist, and at least enough
            lists for 4,096 rows).
        rerank: default candidates re-ranked exactly (default: max(40, 4 k)).
        seed: seed of the k-means and codebook training.
        backend: "native" or "numba" (default: the process default).

    Memory: the float32 rows (4 dim bytes), a code of dim / (2 dims_per_code) bytes, a list
    number and an id per vector. Searches of one index run one batch at a time (each batch
    uses all its threads); writes wait for a running search.
    """

    _kind = "ivf"

    def __init__(self, dim: int, *, metric: str = "cosine", nlist: int | None = None,
                 dims_per_code: int = 1, nprobe: int | None = None, rerank: int | None = None,
                 seed: int = 0, backend: str | None = None) -> None:
        self._nlist_param = check_int("nlist", nlist, 1, 1 << 24, allow_none=True)
        self._dims_per_code = int(check_int("dims_per_code", dims_per_code, 1, 16))  # type: ignore[arg-type]
        self._nprobe_param = check_int("nprobe", nprobe, 1, allow_none=True)
        self._rerank_param = check_int("rerank", rerank, 1, allow_none=True)
        self._seed = int(check_int("seed", seed, 0, (1 << 63) - 1))  # type: ignore[arg-type]
        self._partition: Partition | None = None
        super().__init__(dim, metric=metric, storage="float32", backend=backend, device="cpu")
        if self._dims_per_code > dim:
            raise BitgraphValueError(f"dims_per_code {dims_per_code} exceeds dim {dim}")

    def _check_device_support(self) -> None:
        raise BitgraphValueError("IVFIndex searches on the CPU only (device='cpu')")

    def to(self, device: str) -> IVFIndex:
        """Only "cpu": the IVF scan has no GPU kernels (FlatIndex and BinaryIndex do)."""
        if device != "cpu":
            self._check_device_support()
        return self

    def _new_core(self) -> Any:
        return self._backend.FlatCore(self._dim, self._core_metric, "float32")

    def _core_from_state(self, state: dict[str, Any]) -> Any:
        return self._backend.FlatCore.from_state(self._dim, self._core_metric, "float32", state)

    # --- parameters ---------------------------------------------------------------------
    @property
    def nlist(self) -> int | None:
        """Lists of the trained partition (None before training)."""
        return None if self._partition is None else self._partition.nlist

    @property
    def is_trained(self) -> bool:
        return self._partition is not None

    def _params(self) -> dict[str, Any]:
        return {"nlist": self._nlist_param, "dims_per_code": self._dims_per_code,
                "nprobe": self._nprobe_param, "rerank": self._rerank_param, "seed": self._seed}

    def _restore_params(self, params: dict[str, Any]) -> None:
        self._nlist_param = check_int("nlist", params.get("nlist"), 1, 1 << 24, allow_none=True)
        self._dims_per_code = int(check_int("dims_per_code", params["dims_per_code"], 1, 16))  # type: ignore[arg-type]
        self._nprobe_param = check_int("nprobe", params.get("nprobe"), 1, allow_none=True)
        self._rerank_param = check_int("rerank", params.get("rerank"), 1, allow_none=True)
        self._seed = int(check_int("seed", params.get("seed", 0), 0, (1 << 63) - 1))  # type: ignore[arg-type]

    @property
    def nbytes(self) -> int:
        part = 0 if self._partition is None else self._partition.nbytes
        return super().nbytes + part

    # --- training ------------------------------------------------------------------------
    def _rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The core's float32 rows, labels and deleted flags (views: hold the write lock)."""
        state = self._core.get_state()
        vectors = np.asarray(state["vectors"]).view(np.float32).reshape(-1, self._dim)
        return vectors, np.asarray(state["labels"]), np.asarray(state["deleted"])

    def train(self, vectors: Any = None) -> None:
        """(Re)trains the lists and codebooks: on ``vectors`` when given (a representative
        sample, e.g. before adding), else on the vectors in the index; then re-encodes every
        stored vector. Searches call it by themselves when needed."""
        with self._write_lock:
            if vectors is not None:
                sample = self._prepare(vectors, "vectors")
            else:
                rows, _, deleted = self._rows()
                sample = rows[deleted[: rows.shape[0]] == 0]
            if sample.shape[0] == 0:
                raise BitgraphValueError("IVFIndex.train needs at least one vector")
            self._partition = Partition.train(sample, self._core_metric, self._nlist_param,
                                              self._dims_per_code, self._seed)
            self._generation += 1

    def _ready(self) -> Partition | None:
        """The partition, trained and holding every slot's code (hold the write lock)."""
        live = len(self)
        if live == 0:
            return None
        part = self._partition
        if part is None or (live >= RETRAIN_GROWTH * part.trained_size
                            and self._nlist_param is None):
            self.train()
            part = self._partition
            assert part is not None
        rows, _, _ = self._rows()
        if part.encoded_slots < rows.shape[0]:
            part.encode(np.ascontiguousarray(rows[part.encoded_slots:]))
        return part  # packed by the first _ivf call that needs it

    # --- search --------------------------------------------------------------------------
    def search(self, queries: Any, k: int = 10, *, nprobe: int | None = None,
               rerank: int | None = None, ef: int | None = None, filter: Any = None,
               threads: int | None = None) -> SearchResult:
        """Finds the k nearest neighbours of each query.

        Args:
            queries: ``(nq, dim)`` array-like.
            k: neighbours per query (>= 1); rows are padded with id -1 and distance +inf.
            nprobe: lists probed per query (default: the index's, else 6% of nlist and at
                least enough lists for 4,096 rows).
            rerank: candidates re-ranked with exact distances (default: the index's, else
                max(40, 4 k); raised to k).
            ef: the search breadth of the other indexes: here the lists probed when nprobe
                is not given.
            filter: a :class:`~bitgraph.Filter` for every query or one per query. A filter
                matching under 10% of the items is answered exactly over its matches; a wider
                one probes proportionally more lists. ``result.plans`` says which
                ("exact" or "ivf").
            threads: worker threads (default: all cores).
        """
        q = self._prepare(queries, "queries")
        k = int(check_int("k", k, 1))  # type: ignore[arg-type]
        check_result_size(q.shape[0], k)
        nprobe_v = check_int("nprobe", nprobe, 1, allow_none=True)
        rerank_v = check_int("rerank", rerank, 1, allow_none=True)
        ef_v = check_int("ef", ef, 1, allow_none=True)
        threads = default_threads(threads)
        with self._write_lock:
            part = self._ready()
            if part is None or q.shape[0] == 0:
                return self._empty(q.shape[0], k, filter)
            probe = nprobe_v or ef_v or self._nprobe_param or self._default_nprobe(part)
            pool = max(rerank_v or self._rerank_param or max(DEFAULT_RERANK, 4 * k), k)
            k_eff = min(k, len(self))
            if filter is None:
                ids, dists = self._ivf(part, q, k_eff, probe, pool, None, threads)
                return SearchResult(*padded(ids, self._user_distances(dists), k))
            return self._search_filtered(part, q, k, k_eff, probe, pool, filter, threads)

    def _default_nprobe(self, part: Partition) -> int:
        per_list = max(1.0, len(self) / part.nlist)
        return int(min(part.nlist, max(1, round(DEFAULT_PROBE_SHARE * part.nlist),
                                       int(np.ceil(DEFAULT_PROBE_ROWS / per_list)))))

    def _ivf(self, part: Partition, q: np.ndarray, k: int, nprobe: int, pool: int,
             allowed: np.ndarray | None, threads: int) -> tuple[np.ndarray, np.ndarray]:
        rows, labels, deleted = self._rows()
        packed = part.packed(deleted)
        if packed.max_slot >= rows.shape[0]:  # the kernel trusts the slots: never past the rows
            raise RuntimeError("IVF packing names a slot past the stored rows")
        slots, dists = self._backend.ivf_search(
            part.centroids, part.tiles, part.codebooks, packed.list_starts, packed.blocks,
            packed.row_slots, part.sq_norms, part.list_min_sq_norms, rows, allowed, q, k,
            min(nprobe, part.nlist), pool, self._core_metric, threads)
        ids = np.where(slots >= 0, labels[np.maximum(slots, 0)], -1).astype(np.int64)
        return ids, dists

    def _search_filtered(self, part: Partition, q: np.ndarray, k: int, k_eff: int,
                         nprobe: int, pool: int, filter: Any, threads: int) -> SearchResult:
        nq = q.shape[0]
        ids = np.full((nq, k), -1, dtype=np.int64)
        dists = np.full((nq, k), np.inf, dtype=np.float32)
        plans = np.full(nq, "unfiltered", dtype=object)
        live = max(1, len(self))
        for f, rows in filter_groups(filter, nq):
            sel = slice(None) if rows is None else rows
            if f is None:
                i, d = self._ivf(part, q[sel], k_eff, nprobe, pool, None, threads)
                ids[sel, :k_eff], dists[sel, :k_eff] = i, self._user_distances(d)
                continue
            bits, count = self._evaluate(f)
            if count < EXACT_BELOW_SELECTIVITY * live:
                # The float core's exact filtered scan (the planner's exact plan).
                found = super()._search(q[sel], k, None, f, threads, None)
                ids[sel], dists[sel] = found.ids, found.distances
                plans[sel] = "exact"
                continue
            wider = min(part.nlist, int(np.ceil(nprobe * live / max(count, 1))))
            i, d = self._ivf(part, q[sel], min(k_eff, count), wider, pool,
                             np.ascontiguousarray(bits, dtype=np.uint64), threads)
            width = i.shape[1]
            ids[sel, :width], dists[sel, :width] = i, self._user_distances(d)
            plans[sel] = "ivf"
        return SearchResult(ids, dists, plans.astype(str), np.zeros(nq, dtype=np.int64))

    def _empty(self, nq: int, k: int, filter: Any) -> SearchResult:
        ids = np.full((nq, k), -1, dtype=np.int64)
        dists = np.full((nq, k), np.inf, dtype=np.float32)
        if filter is None:
            return SearchResult(ids, dists)
        filter_groups(filter, nq)  # the same errors as a non-empty index
        return SearchResult(ids, dists, np.full(nq, "exact"), np.zeros(nq, dtype=np.int64))

    # --- writes that change the codes ----------------------------------------------------
    def remove(self, ids: Any) -> None:
        with self._write_lock:
            slots = self._slots_of(as_ids(ids, None)) if self._partition is not None else None
            super().remove(ids)
            if slots is not None and self._partition is not None:
                self._partition.drop(slots)

    # --- persistence ---------------------------------------------------------------------
    def _state_for_save(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._state_for_save()
        if self._partition is not None:
            part_meta, part_arrays = self._partition.state()
            meta["ivf"] = part_meta
            arrays.update({_PREFIX + k: v for k, v in part_arrays.items()})
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 backend: str | None, verify: bool = True) -> None:
        from ..errors import IndexFileError

        core_arrays = {k: v for k, v in arrays.items() if not k.startswith(_PREFIX)}
        super()._restore(meta, core_arrays, backend, verify)
        self._partition = None
        if "ivf" in meta:
            part_arrays = {k[len(_PREFIX):]: v for k, v in arrays.items() if k.startswith(_PREFIX)}
            try:
                self._partition = Partition.from_state(dict(meta["ivf"]), part_arrays, self._dim,
                                                       int(self._core.n_slots))
            except (KeyError, TypeError, ValueError) as exc:
                raise IndexFileError(f"index file has an invalid IVF partition: {exc}") from exc
