"""HNSWIndex: a hierarchical navigable small-world graph over float vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._index_base import _VectorIndex
from ._validation import INT32_MAX, check_int, check_seed
from .persistence import register_index_kind

MAX_M = 512


@register_index_kind
class HNSWIndex(_VectorIndex):
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
        backend: "native" or "numba" to override the process-wide backend choice.

    The index grows as you add; there is no capacity to declare. ``search`` takes ``ef`` per
    call (default ``max(64, k)``) and may run from many threads at once.
    """

    _kind = "hnsw"

    def __init__(self, dim: int, *, metric: str = "cosine", M: int = 16,
                 ef_construction: int = 200, storage: str = "float32", seed: int = 0,
                 backend: str | None = None) -> None:
        self._M, self._ef_construction, self._seed = check_graph_params(M, ef_construction, seed)
        super().__init__(dim, metric=metric, storage=storage, backend=backend)

    @property
    def M(self) -> int:
        """Links per node on the upper levels."""
        return self._M

    @property
    def ef_construction(self) -> int:
        """Search breadth used while building."""
        return self._ef_construction

    def _params(self) -> dict[str, Any]:
        return {"M": self._M, "ef_construction": self._ef_construction, "seed": self._seed}

    def _restore_params(self, params: dict[str, Any]) -> None:
        self._M, self._ef_construction, self._seed = saved_graph_params(params)

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
