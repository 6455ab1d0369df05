"""Numba JIT backend of bitgraph: the fallback when the native extension is unavailable.

Implements docs/backend-contract.md with the same storage bytes and graph layout as the
native core, so files saved by either backend load in the other.
"""
from .codes import binary_distances
from .encode import binary_encode
from .flat import FlatCore
from .hnsw import HNSWCore
from .kernels import decode_rows, distances, encode_rows
from .rerank import rerank

SIMD_LEVEL = "numba"

__all__ = ["rerank", "binary_distances", "binary_encode", "HNSWCore", "FlatCore", "encode_rows", "decode_rows", "distances", "SIMD_LEVEL"]
