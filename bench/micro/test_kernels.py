"""Distance / encode kernel micro-benchmarks (pytest-benchmark), native vs numba vs numpy.

* ``test_distances``: ``distances(query, rows, dim, metric, storage)`` over ``n`` encoded rows:
  "cache" = 2,048 rows (compute bound), "dram" = 200,000 rows (bandwidth bound). GB/s counts
  the encoded row bytes read per call.
* ``test_numpy_matvec``: the reference ``rows @ q`` on a float32 matrix of the same shape.
* ``test_encode_rows``: ``encode_rows(vectors, storage)``; GB/s counts float32 input bytes.

Every benchmark first checks the kernel against numpy on the decoded rows, so a fast but wrong
kernel fails instead of posting a figure.
"""
from __future__ import annotations

import numpy as np
import pytest

from kernel_helpers import gbps, make_data

DIM = 128
SIZES = {"cache": 2_048, "dram": 200_000}
STORAGES = ["float32", "float16", "int8"]
METRICS = ["l2", "ip"]


def _reference(q: np.ndarray, decoded: np.ndarray, metric: str) -> np.ndarray:
    ip = decoded.astype(np.float64) @ q.astype(np.float64)
    if metric == "ip":
        return -ip
    return (decoded.astype(np.float64) ** 2).sum(1) - 2 * ip + float(q.astype(np.float64) @ q)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("metric", METRICS)
def test_distances(benchmark, kernels, metric, storage, size):
    x, q = make_data(SIZES[size], DIM)
    rows = kernels.encode_rows(x, storage)
    got = kernels.distances(q, rows, DIM, metric, storage)          # also JIT warm-up
    want = _reference(q, kernels.decode_rows(rows, DIM, storage), metric)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    benchmark.group = f"distances-{size}-{metric}"
    benchmark(kernels.distances, q, rows, DIM, metric, storage)
    gbps(benchmark, rows.nbytes)


@pytest.mark.parametrize("size", list(SIZES))
def test_numpy_matvec(benchmark, size):
    x, q = make_data(SIZES[size], DIM)
    benchmark.group = f"distances-{size}-ip"
    out = benchmark(np.matmul, x, q)
    assert out.shape == (SIZES[size],)
    gbps(benchmark, x.nbytes)


@pytest.mark.parametrize("storage", STORAGES)
def test_encode_rows(benchmark, kernels, storage):
    x, _ = make_data(SIZES["dram"], DIM)
    rows = kernels.encode_rows(x, storage)                          # JIT warm-up
    back = kernels.decode_rows(rows, DIM, storage)
    tol = {"float32": 0.0, "float16": 1e-2, "int8": 0.02 * np.abs(x).max()}[storage]
    np.testing.assert_allclose(back, x, rtol=1e-2 if tol else 0, atol=tol)
    benchmark.group = "encode"
    benchmark(kernels.encode_rows, x, storage)
    gbps(benchmark, x.nbytes)
