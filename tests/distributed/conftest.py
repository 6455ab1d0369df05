"""Ray for the tests of bitgraph.distributed: a local cluster of 2 CPUs per test module (the
multi-node module starts its own simulated cluster instead). Ray-free tests (router, manifest,
merge) run without Ray; the others are skipped only when Ray is not installed."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False, object_store_memory=200 << 20)
    yield ray
    ray.shutdown()


def clustered(n: int, dim: int, seed: int = 0, centers: int = 8) -> np.ndarray:
    """Vectors around a few centres (k-means routing has structure to find)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32) * 3
    return (c[rng.integers(centers, size=n)]
            + rng.standard_normal((n, dim)).astype(np.float32)).astype(np.float32)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)]))
