"""BinaryIndex: k-NN over binary codes (flat scan or HNSW graph), re-ranked with floats."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import state_checks
from .._index_base import _VectorIndex
from .._reranking import RERANK_SECTION, RERANKS, Reranking
from .._validation import check_choice
from ..errors import BitgraphTypeError, BitgraphValueError, IndexFileError
from ..hnsw import (
    _validate_graph,
    check_graph_params,
    graph_state_dtypes,
    saved_graph_params,
)
from ..persistence import register_index_kind
from .binarizer import RecurrentBinarizer
from . import offsets as offsets_mod
from .offsets import MAX_OFFSET

GRAPHS = ("flat", "hnsw")
DISTANCES = ("sdc", "hamming", "asymmetric")
_BINZ_PREFIX = "binz."


def _use_offsets(binarizer: RecurrentBinarizer, offsets: bool | None, distance: str) -> bool:
    if offsets is not None and not isinstance(offsets, (bool, np.bool_)):
        raise BitgraphTypeError(f"offsets must be None or a bool, got {offsets!r}")
    has = binarizer.has_offsets_for(distance)
    if offsets is None:
        return offsets_mod.used_by_default(binarizer.loops, binarizer.code_dim, distance, has)
    if offsets and not has:
        raise BitgraphValueError("offsets=True needs a binarizer with code offsets (fitted by "
                                 "this bitgraph version); refit it or pass offsets=None")
    if offsets and not offsets_mod.fits_with_offsets(binarizer.loops, binarizer.code_dim,
                                                     distance):
        raise BitgraphValueError(
            f"offsets=True: {binarizer.loops} planes of {binarizer.code_dim} bits are too long "
            "for exact distances with offsets (code distances must stay below 2^23)")
    return bool(offsets)


@register_index_kind
class BinaryIndex(Reranking, _VectorIndex):
    """Approximate k-NN over the binary codes of a :class:`RecurrentBinarizer`.

    The codes (``binarizer.code_bytes`` per vector: 48 bytes for 1 bit per dimension at
    d = 384, 32x smaller than float32) are searched with the asymmetric distance (the query
    quantized to 4 bits per value against the codes' bits: four popcounts per code word) or a
    symmetric one (SDC: the weighted popcount of the code inner product; Hamming); the best
    ``oversample * k`` candidates are then re-ranked with the exact float distance.

    Args:
        binarizer: a fitted :class:`RecurrentBinarizer`; its ``dim`` is the index's.
        graph: "hnsw" (the HNSW graph built and searched over the codes) or "flat" (an exact
            scan of every code).
        M, ef_construction, seed: HNSW parameters (ignored by "flat").
        distance: "asymmetric" (the query keeps 4 bits per value, the codes their bits; real
            MiniLM embeddings, 1 bit/dim + 4x re-rank: recall@10 0.89 with SDC -> 0.97),
            "sdc" (the query binarized too, all plane pairs weighted) or "hamming" (plane
            against plane). Default: ``binarizer.distance``, the one of "asymmetric" and "sdc"
            that ranked the codes best on held-out vectors when it was fitted ("sdc" with
            ``device="cuda"``: the GPU runs the symmetric distances). Graph building compares
            stored codes with each other, by Hamming distance for "asymmetric".
        rerank: "memory" (float32 vectors in RAM), "mmap" (float32 vectors on disk, memory
            mapped: RAM holds the codes and the graph only) or None (codes only: results are
            ranked and scored by the code distance).
        metric: the float metric of the re-rank: "cosine" (default), "ip" or "l2".
        rerank_dir: directory of the temporary file of an unsaved ``rerank="mmap"`` index
            (default: the system's temporary directory). Once saved, the vectors live in
            the index file and loading maps them from there.
        offsets: add the code offsets to the code distance (see
            :mod:`bitgraph.binary.offsets`: the per-vector inner-product terms that centred
            codes lose; 4 more bytes per vector). None (default): when the codes have two
            planes or more, the binarizer has them and the code is short enough for exact
            distances with them (code distances below 2^23); True: required; False: plain
            code distances. They help where codes are fine (several planes: glove-50 4
            bits/dim codes-only recall 0.46 -> 0.73); on one plane they hurt (glove-50,
            1 bit/dim, asymmetric, 4x re-rank: 0.50 -> 0.40), hence the default.
        backend: "native" or "numba" to override the process-wide backend choice.
        device: "cpu" (default) or "cuda": with graph="flat", the code scan, the top-k and
            the float re-rank run on an NVIDIA GPU (the ``bitgraph[cuda12]`` /
            ``bitgraph[cuda13]`` extra); results equal the CPU index's and come back in the
            array kind of the queries. See :meth:`to`.

    Distances: with re-ranking, as :class:`HNSWIndex` (cosine: 1 - cos); without, the exact
    integer code distance (smaller is closer).
    """

    _kind = "binary"

    def __init__(self, binarizer: RecurrentBinarizer, *, graph: str = "hnsw", M: int = 32,
                 ef_construction: int = 200, distance: str | None = None,
                 rerank: str | None = "memory", metric: str = "cosine", seed: int = 0,
                 rerank_dir: str | None = None, offsets: bool | None = None,
                 backend: str | None = None, device: str = "cpu") -> None:
        if not isinstance(binarizer, RecurrentBinarizer):
            raise BitgraphTypeError(
                f"binarizer must be a bitgraph.RecurrentBinarizer, got {type(binarizer).__name__}")
        if not binarizer.is_fitted:
            raise BitgraphValueError("the binarizer is not fitted: call binarizer.fit(sample) first")
        self._binarizer = binarizer
        self._graph = check_choice("graph", graph, GRAPHS)
        if distance is None:  # what ranked the codes best on held-out vectors at fit time;
            # the GPU scan has the symmetric kernels only
            distance = "sdc" if device == "cuda" else binarizer.distance
        self._distance = check_choice("distance", distance, DISTANCES)
        if self._distance == "asymmetric" and binarizer.query_step is None:
            raise BitgraphValueError(
                "distance='asymmetric' needs a binarizer with a query grid (fitted by this "
                "bitgraph version): refit it, or pass distance='sdc'")
        if device == "cuda" and self._distance == "asymmetric":
            # before the device is looked for: what to change comes first
            self._check_device_support_of(self._graph, self._distance)
        self._init_rerank(rerank, rerank_dir, binarizer.dim)
        self._M, self._ef_construction, self._seed = check_graph_params(M, ef_construction, seed)
        self._offsets = _use_offsets(binarizer, offsets, self._distance)
        super().__init__(binarizer.dim, metric=metric, storage="float32", backend=backend,
                         device=device)

    def _check_device_support(self) -> None:
        self._check_device_support_of(self._graph, self._distance)

    @staticmethod
    def _check_device_support_of(graph: str, distance: str) -> None:
        if distance == "asymmetric":
            raise BitgraphValueError(
                "device='cuda' runs the symmetric code distances: build the index with "
                "distance='sdc' or 'hamming' to search it on a GPU")
        if graph != "flat":
            raise BitgraphValueError(
                f"device='cuda' runs BinaryIndex graph='flat' (the code scan); got graph="
                f"{graph!r}")

    # --- properties ----------------------------------------------------------------------------
    @property
    def binarizer(self) -> RecurrentBinarizer:
        """The binarizer that makes the codes."""
        return self._binarizer

    @property
    def graph(self) -> str:
        return self._graph

    @property
    def distance(self) -> str:
        return self._distance

    @property
    def storage(self) -> str:
        """Always "binary": the index stores codes."""
        return "binary"

    @property
    def code_bytes(self) -> int:
        return self._binarizer.code_bytes

    @property
    def offsets(self) -> bool:
        """Whether code rows carry offsets (added to the code distance)."""
        return self._offsets

    @property
    def codes(self) -> np.ndarray:
        """A copy of the stored codes, one row per slot ((n_slots, code_bytes) uint8; removed
        items keep their row). A copy: a view would dangle once an add moves the rows."""
        with self._write_lock:
            return np.array(self._core.get_state()["vectors"][:, : self.code_bytes])

    # --- cores ---------------------------------------------------------------------------------
    def _core_dim(self) -> int:
        # binary cores take the code's bits per plane (and planes, offsets): the real layout
        return self._binarizer.code_dim

    def _new_core(self) -> Any:
        planes = self._binarizer.loops
        if self._graph == "flat":
            return self._backend.FlatCore(self._core_dim(), self._distance, "binary", planes,
                                          self._offsets)
        return self._backend.HNSWCore(self._core_dim(), self._distance, "binary", self._M,
                                      self._ef_construction, self._seed, planes, self._offsets)

    def _core_from_state(self, state: dict[str, Any]) -> Any:
        planes = self._binarizer.loops
        if self._graph == "flat":
            return self._backend.FlatCore.from_state(self._core_dim(), self._distance, "binary",
                                                     state, planes, self._offsets)
        _validate_graph(state, self._M)
        return self._backend.HNSWCore.from_state(self._core_dim(), self._distance, "binary",
                                                 self._M, self._ef_construction, self._seed,
                                                 state, planes, self._offsets)

    def _params(self) -> dict[str, Any]:
        return {"graph": self._graph, "M": self._M, "ef_construction": self._ef_construction,
                "seed": self._seed, "distance": self._distance, "rerank": self._rerank_kind,
                "offsets": self._offsets}

    def _restore_params(self, params: dict[str, Any]) -> None:
        self._graph = check_choice("graph", params["graph"], GRAPHS)
        self._distance = check_choice("distance", params["distance"], DISTANCES)
        if params["rerank"] not in RERANKS:
            raise ValueError("invalid rerank")
        self._rerank_kind = params["rerank"]
        self._offsets = bool(params.get("offsets", False))  # absent before offsets existed
        self._M, self._ef_construction, self._seed = saved_graph_params(params)

    def _default_ef(self, k: int) -> int:
        return max(64, k)

    # --- add -----------------------------------------------------------------------------------
    def _encode(self, x: np.ndarray, threads: int,
                binarizer: RecurrentBinarizer | None = None, query: bool = False) -> np.ndarray:
        """Core rows (uint8) of vectors: codes (asymmetric query codes for queries of an
        asymmetric index), then the offset when the index uses them (a query binarizer
        without offsets gives 0: a per-query constant)."""
        binz = self._binarizer if binarizer is None else binarizer
        if query and self._distance == "asymmetric":
            codes = np.ascontiguousarray(binz.encode_queries(x))
        else:
            codes = np.ascontiguousarray(binz.encode(x, threads=threads))
        if not self._offsets:
            return codes
        rows = np.empty((codes.shape[0], codes.shape[1] + 4), dtype=np.uint8)
        rows[:, : codes.shape[1]] = codes
        off = (binz.offsets(x, self._distance) if binz.has_offsets_for(self._distance)
               else np.zeros(codes.shape[0], np.uint32))
        rows[:, codes.shape[1]:] = off.astype("<u4").view(np.uint8).reshape(-1, 4)
        return rows

    def _core_add(self, arr: np.ndarray, ids: np.ndarray, threads: int, callback: Any) -> None:
        codes = self._encode(arr, threads)
        self._add_rows_then(arr, int(self._core.n_slots),
                            lambda: self._core.add(codes, ids, threads, callback))

    # --- search --------------------------------------------------------------------------------
    def search(self, queries: Any, k: int = 10, *, ef: int | None = None,
               oversample: float = 4.0, filter: Any = None, threads: int | None = None,
               query_binarizer: RecurrentBinarizer | None = None) -> Any:
        """Finds the k nearest neighbours of each query.

        Args:
            queries: ``(nq, dim)`` float array-like.
            k: neighbours per query (>= 1); rows are padded with -1 / +inf.
            ef: graph search breadth (>= the candidate count; default max(64, candidates)).
            oversample: candidates per result kept from the code search and re-ranked with
                float distances (``ceil(oversample * k)``; >= 1; ignored without re-rank).
            filter: a :class:`~bitgraph.Filter` or one per query, as for HNSWIndex.
            threads: worker threads (default: all cores).
            query_binarizer: encode the queries with this binarizer instead of the index's:
                a newer model trained with ``fit(..., compatible_with=index.binarizer)``
                searching the documents the index's model encoded. Same loops and code_dim.
        """
        if query_binarizer is None:
            if self._gpu is not None:
                return self._gpu.search(queries, k, ef, filter, threads, oversample)
            return self._search(queries, k, ef, filter, threads, oversample)
        if not isinstance(query_binarizer, RecurrentBinarizer) or not query_binarizer.is_fitted:
            raise BitgraphTypeError("query_binarizer must be a fitted bitgraph.RecurrentBinarizer")
        mine = self._binarizer
        if (query_binarizer.dim, query_binarizer.loops, query_binarizer.code_dim) != (
                mine.dim, mine.loops, mine.code_dim):
            raise BitgraphValueError(
                f"query_binarizer makes other codes (dim {query_binarizer.dim}, loops "
                f"{query_binarizer.loops}, code_dim {query_binarizer.code_dim}) than the index's "
                f"(dim {mine.dim}, loops {mine.loops}, code_dim {mine.code_dim})")
        encoder = query_binarizer
        if self._gpu is not None:
            return self._gpu.search(queries, k, ef, filter, threads, oversample,
                                    lambda q, t: self._encode(q, t, encoder, query=True))
        return self._search(queries, k, ef, filter, threads, oversample,
                            lambda q, t: self._encode(q, t, encoder, query=True))

    def _direct_queries(self) -> bool:
        return False  # queries are encoded to codes first

    def _candidates(self, k: int, oversample: float | None) -> int:
        return self._rerank_candidates(k, oversample, 4.0)

    def _core_queries(self, q: np.ndarray, threads: int) -> np.ndarray:
        return self._encode(q, threads, query=True)

    def _vectors_at(self, slots: np.ndarray) -> np.ndarray:
        """The re-rank vectors (the float vectors as added; normalised for cosine): the codes
        alone do not give a vector back."""
        if self._rerank is None:
            raise BitgraphValueError(
                "this BinaryIndex keeps only codes (rerank=None): it has no vectors to return")
        return self._rerank_rows(slots)

    def _finish(self, ids: np.ndarray, dists: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
        if self._rerank is None:
            return ids[:, :k], dists[:, :k]
        return ids, self._user_distances(dists)

    # --- persistence ---------------------------------------------------------------------------
    def _state_for_save(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._state_for_save()
        binz_meta, binz_arrays = self._binarizer.get_state()
        meta["binarizer"] = binz_meta
        arrays.update({_BINZ_PREFIX + k: v for k, v in binz_arrays.items()})
        self._save_rerank(meta, arrays)
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 backend: str | None, verify: bool = True) -> None:
        try:
            binz_arrays = {k[len(_BINZ_PREFIX):]: v for k, v in arrays.items()
                           if k.startswith(_BINZ_PREFIX)}
            if verify:
                state_checks.check_finite_arrays("binarizer", binz_arrays)
            self._binarizer = RecurrentBinarizer.from_state(dict(meta["binarizer"]), binz_arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFileError(f"index file has an invalid binarizer: {exc}") from exc
        core_arrays = {k: v for k, v in arrays.items()
                       if not k.startswith(_BINZ_PREFIX) and k != RERANK_SECTION}
        super()._restore(meta, core_arrays, backend, verify)
        if self._dim != self._binarizer.dim:
            raise IndexFileError(f"index file is inconsistent: dim {self._dim}, binarizer dim "
                                 f"{self._binarizer.dim}")
        self._restore_rerank(arrays, verify)

    def _layout(self) -> dict[str, Any]:
        binz = self._binarizer
        words = (binz.code_dim + 63) // 64
        return {"rows": "codes", "planes": binz.loops, "code_dim": binz.code_dim,
                "words_per_plane": words, "offsets": self._offsets,
                "row_bytes": binz.loops * words * 8 + (4 if self._offsets else 0)}

    def _state_dtypes(self) -> dict[str, Any]:
        if self._graph == "flat":
            return {"vectors": (np.uint8, 2), "labels": (np.int64, 1), "deleted": (np.uint8, 1)}
        return graph_state_dtypes()

    def _check_values(self, state: dict[str, Any]) -> None:
        binz = self._binarizer
        if self._offsets and not binz.has_offsets:
            raise ValueError("the index uses code offsets but its binarizer has none")
        state_checks.check_code_rows(state["vectors"], binz.loops, binz.code_dim,
                                     self._offsets, MAX_OFFSET)
        state_checks.check_ids(state["labels"], state["deleted"], self._next_id)

    def __repr__(self) -> str:
        return (f"BinaryIndex(dim={self._dim}, graph={self._graph!r}, "
                f"distance={self._distance!r}, bits_per_dim={self._binarizer.bits_per_dim:g}, "
                f"rerank={self._rerank_kind!r}, metric={self._metric!r}, size={len(self)}, "
                f"{self._memory_repr()}, backend={self._backend_name!r})")
