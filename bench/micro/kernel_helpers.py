"""Helpers for the kernel micro-benchmarks: load a backend's kernels, make data, GB/s."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

BACKENDS = ["bitgraph._core", "bitgraph._numba"]
KERNELS = ("encode_rows", "decode_rows", "distances")


def load_kernels(module_name: str):
    """The module exposing the kernel functions (the package itself or its ``.kernels``)."""
    mod = pytest.importorskip(module_name)
    if all(hasattr(mod, f) for f in KERNELS):
        return mod
    try:
        sub = importlib.import_module(module_name + ".kernels")
    except ImportError:
        pytest.skip(f"{module_name} has no kernel functions {KERNELS}")
    if not all(hasattr(sub, f) for f in KERNELS):
        pytest.skip(f"{module_name}.kernels lacks one of {KERNELS}")
    return sub


def gbps(benchmark, nbytes: int) -> None:
    """Record bytes touched per call and GB/s (from the mean time) in extra_info."""
    benchmark.extra_info["bytes"] = int(nbytes)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["GB/s"] = round(nbytes / stats.stats.mean / 1e9, 3)


def make_data(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim), dtype=np.float32),
            rng.standard_normal(dim, dtype=np.float32))
