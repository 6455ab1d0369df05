"""Numba JIT backend of bitgraph: the fallback when the native extension is unavailable.

Implements docs/backend-contract.md with the same storage bytes and graph layout as the
native core, so files saved by either backend load in the other.
"""
from pathlib import Path as _Path

from ._cache import drop_stale_cache as _drop_stale_cache

_drop_stale_cache(_Path(__file__).resolve().parent)  # before any cached function is loaded

from .codes import binary_distances  # noqa: E402
from .encode import binary_encode  # noqa: E402
from .flat import FlatCore  # noqa: E402
from .hnsw import HNSWCore  # noqa: E402
from .ivf import ivf_search  # noqa: E402
from .kernels import decode_rows, distances, encode_rows  # noqa: E402
from .rerank import rerank  # noqa: E402

# No one-pass query check in the cores: the API layer checks query values before each call.
QUERY_CHECKS = False

SIMD_LEVEL = "numba"

__all__ = ["rerank", "ivf_search", "binary_distances", "binary_encode", "HNSWCore", "FlatCore", "encode_rows", "decode_rows", "distances", "SIMD_LEVEL"]
