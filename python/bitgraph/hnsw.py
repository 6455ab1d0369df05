"""HNSWIndex: a hierarchical navigable small-world graph over float vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._index_base import _VectorIndex
from ._reranking import RERANK_SECTION, Reranking, checked_rerank
from ._validation import INT32_MAX, check_dim, check_int, check_number, check_seed
from .errors import BitgraphValueError
from .persistence import register_index_kind

MAX_M = 512
DEFAULT_OVERSAMPLE = 2.0  # re-ranked candidates per result (see HNSWIndex.search)


@register_index_kind
class HNSWIndex(Reranking, _VectorIndex):
    """Approximate k-NN search with an HNSW graph.

    Args:
        dim: number of values per vector.
        metric: "cosine" (default; vectors are normalised once at add time), "ip" (inner
            product) or "l2" (squared euclidean).
        M: links per node on the upper levels (2*M on the bottom level). 16 is a good default;
            larger helps high-dimensional data at the cost of memory and build time.
        ef_construction: search breadth while building (larger: better graph, slower build).
        storage: "float32", "float16" (half the memory, recall within ~0.005) or "int8"
            (a quarter, per-vector scaled).
        seed: seed of the level generator.
        rerank: with a compact ``storage`` ("int8" or "float16"): keep the float32 vectors
            too, "memory" (in RAM) or "mmap" (on disk, memory-mapped), and re-score the
            walk's best candidates with them, so the graph is walked on compact rows while
            results and distances are exact float32 ones. None (default): the stored rows
            are all there is.
        rerank_dir: directory of the temporary file of an unsaved ``rerank="mmap"`` index
            (default: the system's temporary directory).
        backend: "native" or "numba" to override the process-wide backend choice.

    The index grows as you add; there is no capacity to declare. ``search`` takes ``ef`` per
    call (default ``max(64, k)``) and may run from many threads at once.
    """

    _kind = "hnsw"

    def __init__(self, dim: int, *, metric: str = "cosine", M: int = 16,
                 ef_construction: int = 200, storage: str = "float32", seed: int = 0,
                 rerank: str | None = None, rerank_dir: str | None = None,
                 backend: str | None = None) -> None:
        self._M, self._ef_construction, self._seed = check_graph_params(M, ef_construction, seed)
        if checked_rerank(rerank) is not None and storage == "float32":
            raise BitgraphValueError(
                "rerank needs a compact storage ('int8' or 'float16'): float32 rows are "
                "already the exact vectors")
        self._init_rerank(rerank, rerank_dir, check_dim(dim))
        super().__init__(dim, metric=metric, storage=storage, backend=backend)

    @property
    def M(self) -> int:
        """Links per node on the upper levels."""
        return self._M

    @property
    def ef_construction(self) -> int:
        """Search breadth used while building."""
        return self._ef_construction

    def search(self, queries: Any, k: int = 10, *, ef: int | None = None,
               oversample: float | None = None, filter: Any = None,
               threads: int | None = None) -> Any:
        """Finds the k nearest neighbours of each query.

        Args:
            queries: ``(nq, dim)`` array-like (one vector of ``dim`` values is one query).
            k: neighbours per query (>= 1). When fewer exist, rows are padded with id -1 and
                distance +inf.
            ef: search breadth (>= 1; raised to the candidate count; default max(64, k)).
            oversample: with ``rerank``: candidates of the walk re-scored with the float32
                vectors per result (``ceil(oversample * k)``, >= 1; ef is raised to it;
                default 2).
                Measured on glove-50 100k and MiniLM 384-d 60k embeddings (int8, 1 thread):
                2 reaches the recall of re-scoring the whole ef pool at 5-20% more QPS; 1
                loses 0.004-0.015 recall. Ignored without re-rank.
            filter: a :class:`~bitgraph.Filter` for every query, or a list with one Filter
                (or None) per query. Only matching items are returned; a query gets
                ``min(k, matches)`` results. The plan used per query is in ``result.plans``.
            threads: worker threads for the batch (default: all cores).

        Returns:
            A :class:`SearchResult` (unpacks as ``ids, distances``).

        Safe to call from many threads at once, also while another thread adds or removes.
        """
        if self._rerank is None:
            if oversample is not None:
                check_number("oversample", oversample, 1.0)
            return super().search(queries, k, ef=ef, filter=filter, threads=threads)
        return self._search(queries, k, ef, filter, threads, oversample)

    def _candidates(self, k: int, oversample: float | None) -> int:
        return self._rerank_candidates(k, oversample, DEFAULT_OVERSAMPLE)

    def _direct_queries(self) -> bool:
        return self._rerank_kind is None  # re-ranked searches need the float queries as well

    def _core_add(self, arr: np.ndarray, ids: np.ndarray, threads: int, callback: Any) -> None:
        self._add_rows_then(arr, int(self._core.n_slots),
                            lambda: self._core.add(arr, ids, threads, callback))

    def _vectors_at(self, slots: np.ndarray) -> np.ndarray:
        if self._rerank is not None:
            return self._rerank_rows(slots)  # the exact rows, not the compact ones
        return super()._vectors_at(slots)

    def _params(self) -> dict[str, Any]:
        params = {"M": self._M, "ef_construction": self._ef_construction, "seed": self._seed}
        if self._rerank_kind is not None:  # absent: files stay readable by older versions
            params["rerank"] = self._rerank_kind
        return params

    def _restore_params(self, params: dict[str, Any]) -> None:
        self._M, self._ef_construction, self._seed = saved_graph_params(params)
        self._rerank_kind = checked_rerank(params.get("rerank"))

    def _state_for_save(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._state_for_save()
        self._save_rerank(meta, arrays)
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 backend: str | None, verify: bool = True) -> None:
        core_arrays = {k: v for k, v in arrays.items() if k != RERANK_SECTION}
        super()._restore(meta, core_arrays, backend, verify)
        self._restore_rerank(arrays, verify)

    def _default_ef(self, k: int) -> int:
        return max(64, k)

    def _state_dtypes(self) -> dict[str, Any]:
        return graph_state_dtypes()

    def _new_core(self) -> Any:
        return self._backend.HNSWCore(self._dim, self._core_metric, self._storage, self._M,
                                      self._ef_construction, self._seed)

    def _core_from_state(self, state: dict[str, Any]) -> Any:
        _validate_graph(state, self._M)
        return self._backend.HNSWCore.from_state(self._dim, self._core_metric, self._storage,
                                                 self._M, self._ef_construction, self._seed,
                                                 state)


def graph_state_dtypes() -> dict[str, Any]:
    """The sections of a saved HNSW core: name -> (dtype, number of dimensions)."""
    return {"vectors": (np.uint8, 2), "links0": (np.int32, 2), "levels": (np.int32, 1),
            "upper": (np.int32, 1), "labels": (np.int64, 1), "deleted": (np.uint8, 1)}


def check_graph_params(M: Any, ef_construction: Any, seed: Any) -> tuple[int, int, int]:
    """(M, ef_construction, seed) checked: M in 2..512, ef_construction in 1..2^31-1 (it is
    clamped to the index size where it is used), seed in 0..2^64-1."""
    M = int(check_int("M", M, 2, MAX_M))  # type: ignore[arg-type]
    efc = int(check_int("ef_construction", ef_construction, 1, INT32_MAX))  # type: ignore[arg-type]
    return M, efc, check_seed(seed)


def saved_graph_params(params: dict[str, Any]) -> tuple[int, int, int]:
    """(M, ef_construction, seed) of a saved index, checked (ValueError when out of range)."""
    return check_graph_params(params["M"], params["ef_construction"], params["seed"])


def _validate_graph(state: dict[str, Any], M: int) -> None:
    """Backend-neutral checks that no link of a loaded graph can point outside the index."""
    links0 = state["links0"]
    levels = state["levels"]
    n = levels.shape[0]
    if links0.ndim != 2 or links0.shape != (n, 1 + 2 * M):
        raise ValueError(f"links0 has shape {links0.shape}, expected ({n}, {1 + 2 * M})")
    if n == 0:  # an empty graph: no entry point, no levels (a walk would start from them)
        if int(state.get("entry_point", 0)) != -1 or int(state.get("max_level", 0)) != -1:
            raise ValueError("an empty graph must have entry point -1 and max level -1")
        return
    if levels.min() < 0 or levels.max() > 64:
        raise ValueError("levels out of range")
    counts = links0[:, 0]
    if counts.min() < 0 or counts.max() > 2 * M:
        raise ValueError("level-0 link counts out of range")
    used = np.arange(2 * M)[None, :] < counts[:, None]
    targets = links0[:, 1:][used]
    if targets.size and (targets.min() < 0 or targets.max() >= n):
        raise ValueError("level-0 links point outside the index")
    upper = state["upper"]
    if upper.ndim != 1 or upper.shape[0] != int(levels.astype(np.int64).sum()) * (1 + M):
        raise ValueError("upper-level links have the wrong size")
    if upper.size:
        blocks = upper.reshape(-1, 1 + M)
        ucounts = blocks[:, 0]
        if ucounts.min() < 0 or ucounts.max() > M:
            raise ValueError("upper link counts out of range")
        uused = np.arange(M)[None, :] < ucounts[:, None]
        utargets = blocks[:, 1:][uused]
        if utargets.size and (utargets.min() < 0 or utargets.max() >= n):
            raise ValueError("upper links point outside the index")
        # A link on level l must lead to a node that has level l: a walk reads the target's
        # level-l block next (past the end of the arena for a node without one).
        per_node = levels.astype(np.int64)
        first = np.repeat(np.cumsum(per_node) - per_node, per_node)  # each block's node start
        block_level = np.arange(blocks.shape[0]) - first + 1
        link_level = np.broadcast_to(block_level[:, None], uused.shape)[uused]
        if utargets.size and (levels[utargets] < link_level).any():
            raise ValueError("upper links lead to nodes without that level")
    ep = int(state.get("entry_point", -1))
    if not (0 <= ep < n) or int(levels[ep]) != int(state.get("max_level", -2)):
        raise ValueError("entry point is invalid")
