"""Fixtures for the kernel micro-benchmarks (bench/micro).

Run:  pytest bench/micro --benchmark-only [--benchmark-json out.json]
Kernels come from ``bitgraph._core`` (native) and ``bitgraph._numba`` (JIT); a backend that
does not import is skipped, so this suite also runs on a machine with only one of them.
"""
from __future__ import annotations

import pytest

from kernel_helpers import BACKENDS, load_kernels


@pytest.fixture(params=BACKENDS, ids=["native", "numba"])
def kernels(request):
    """The kernel module of one backend (skipped when that backend does not import)."""
    return load_kernels(request.param)
