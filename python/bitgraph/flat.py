"""FlatIndex: exact brute-force k-NN with the same API as the graph indexes."""

from __future__ import annotations

from typing import Any

from ._index_base import _VectorIndex
from .persistence import register_index_kind


@register_index_kind
class FlatIndex(_VectorIndex):
    """Exact k-NN by scanning every vector (SIMD kernels, parallel over queries).

    The reference the approximate indexes are measured against, and the right choice for small
    collections. Same ``add`` / ``search`` / ``remove`` / ``save`` API as :class:`HNSWIndex`;
    ``ef`` is accepted and ignored.
    """

    _kind = "flat"

    def __init__(self, dim: int, *, metric: str = "cosine", storage: str = "float32",
                 backend: str | None = None) -> None:
        super().__init__(dim, metric=metric, storage=storage, backend=backend)

    def _new_core(self) -> Any:
        return self._backend.FlatCore(self._dim, self._core_metric, self._storage)

    def _core_from_state(self, state: dict[str, Any]) -> Any:
        return self._backend.FlatCore.from_state(self._dim, self._core_metric, self._storage,
                                                 state)
