"""FlatIndex: exact brute-force k-NN with the same API as the graph indexes."""

from __future__ import annotations

from typing import Any

from ._index_base import _VectorIndex
from .errors import BitgraphValueError
from .persistence import register_index_kind


@register_index_kind
class FlatIndex(_VectorIndex):
    """Exact k-NN by scanning every vector (SIMD kernels, parallel over queries).

    The reference the approximate indexes are measured against, and the right choice for small
    collections. Same ``add`` / ``search`` / ``remove`` / ``save`` API as :class:`HNSWIndex`;
    ``ef`` is accepted and ignored.

    ``device="cuda"`` runs searches on an NVIDIA GPU (float32 / float16 storage; needs the
    ``bitgraph[cuda12]`` or ``bitgraph[cuda13]`` extra): the same ids as on the CPU (ties by
    insertion order), distances within float rounding, results in the array kind of the
    queries (numpy or CuPy). See :meth:`to`.
    """

    _kind = "flat"

    def __init__(self, dim: int, *, metric: str = "cosine", storage: str = "float32",
                 backend: str | None = None, device: str = "cpu") -> None:
        super().__init__(dim, metric=metric, storage=storage, backend=backend, device=device)

    def _check_device_support(self) -> None:
        if self._storage not in ("float32", "float16"):
            raise BitgraphValueError(
                f"device='cuda' supports storage 'float32' and 'float16', got "
                f"{self._storage!r}")

    def _new_core(self) -> Any:
        return self._backend.FlatCore(self._dim, self._core_metric, self._storage)

    def _core_from_state(self, state: dict[str, Any]) -> Any:
        return self._backend.FlatCore.from_state(self._dim, self._core_metric, self._storage,
                                                 state)
