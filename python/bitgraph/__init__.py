"""bitgraph: fast approximate nearest-neighbour search.

>>> import bitgraph as bg
>>> index = bg.HNSWIndex(dim=128, metric="l2")
>>> ids = index.add(vectors)
>>> ids, distances = index.search(queries, k=10)
"""

from __future__ import annotations

from . import _backend
from ._version import __version__
from .binary import BinaryIndex, RecurrentBinarizer
from .errors import (
    BackendUnavailableError,
    BitgraphError,
    BitgraphTypeError,
    BitgraphValueError,
    Cancelled,
    DeviceUnavailableError,
    IndexFileError,
    IndexFileNotFoundError,
    IndexFilePermissionError,
    UnknownIdError,
)
from .filters import Filter
from .flat import FlatIndex
from .hnsw import HNSWIndex
from .ivf import IVFIndex
from .persistence import load, loads
from .planner import PlannerConfig
from .result import SearchResult


def __getattr__(name: str) -> object:
    # The client needs the optional server extra (httpx): imported on first use only.
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'bitgraph' has no attribute {name!r}")


def backend_info() -> dict[str, object]:
    """Which backend runs, with which SIMD level, whether CUDA is usable, and the threads.

    Returns a dict with keys ``backend`` ("native" | "numba"), ``simd`` ("avx512" | "avx2" |
    "generic" | "numba"), ``cuda`` (bool: ``device="cuda"`` can run here), ``cuda_device``
    (the GPU's name, or None), ``cuda_error`` (why CUDA cannot run, or None), ``threads``
    (default worker threads), ``version`` and ``available`` (backends that load here).
    Looking for a GPU imports CuPy when it is installed (``import bitgraph`` does not).
    """
    from . import _cuda
    from ._validation import default_threads

    return {
        "backend": _backend.BACKEND_NAME,
        "simd": _backend.simd_level(_backend.backend),
        **_cuda.device_info(),
        "threads": default_threads(None),
        "version": __version__,
        "available": _backend.available_backends(),
    }


__all__ = [
    "HNSWIndex",
    "FlatIndex",
    "IVFIndex",
    "RecurrentBinarizer",
    "BinaryIndex",
    "SearchResult",
    "Filter",
    "PlannerConfig",
    "load",
    "loads",
    "backend_info",
    "Client",
    "BitgraphError",
    "BitgraphValueError",
    "BitgraphTypeError",
    "UnknownIdError",
    "IndexFileError",
    "IndexFileNotFoundError",
    "IndexFilePermissionError",
    "BackendUnavailableError",
    "DeviceUnavailableError",
    "Cancelled",
    "__version__",
]
