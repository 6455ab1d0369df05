"""Shared fixtures: every API test runs once per available backend (native, numba).

Data are small and seeded so the whole suite runs in a few minutes on two cores and every
recall number is reproducible (graph builds in recall tests use ``threads=1``, which makes
both backends deterministic).
"""

from __future__ import annotations

import os
import tempfile

import pytest

try:  # keep hypothesis' cache (.hypothesis/) out of the checkout
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "bitgraph-tests-hypothesis"))
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass

import bitgraph as bg
from bitgraph import _backend

from bg_testutil import BACKENDS, clustered


def pytest_report_header(config):  # noqa: ARG001 - pytest hook signature
    info = bg.backend_info()
    return f"bitgraph {info['version']}: backends {BACKENDS}, default {info['backend']}, simd {info['simd']}"


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Name of a backend ("native" | "numba"); pass it as ``backend=`` to an index."""
    return request.param


@pytest.fixture(params=BACKENDS)
def core_module(request):
    """The backend module itself (``bitgraph._core`` or ``bitgraph._numba``)."""
    return _backend.get_backend(request.param)


@pytest.fixture(scope="session")
def native_module():
    if "native" not in BACKENDS:
        pytest.skip("the native extension is not built")
    return _backend.get_backend("native")


@pytest.fixture(scope="session")
def numba_module():
    if "numba" not in BACKENDS:
        pytest.skip("numba is not installed")
    return _backend.get_backend("numba")


def _read_only_pair(n: int, n_queries: int, dim: int, seed: int):
    """Clustered base and queries (seeds ``seed`` and ``seed + 1``), both made read-only."""
    x = clustered(n, dim, seed=seed)
    q = clustered(n_queries, dim, seed=seed + 1)
    x.setflags(write=False)
    q.setflags(write=False)
    return x, q


@pytest.fixture(scope="session")
def data():
    """(base, queries): 3000 x 32 clustered Gaussian float32 base, 200 queries (read-only, so
    a library that wrote into its input would fail)."""
    return _read_only_pair(3000, 200, 32, seed=0)


@pytest.fixture(scope="session")
def small():
    """(base, queries): 500 x 16 clustered base, 30 queries (read-only)."""
    return _read_only_pair(500, 30, 16, seed=2)


@pytest.fixture(scope="session")
def built_hnsw(data):
    """get(backend, metric, storage) -> an HNSWIndex over ``data`` (default M/ef_construction,
    threads=1: deterministic), built once per session. Tests must only search it."""
    cache = {}

    def get(backend, metric, storage="float32"):
        key = (backend, metric, storage)
        if key not in cache:
            x, _ = data
            index = bg.HNSWIndex(x.shape[1], metric=metric, storage=storage, backend=backend)
            index.add(x, threads=1)
            cache[key] = index
        return cache[key]

    return get
