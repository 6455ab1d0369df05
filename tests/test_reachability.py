"""No item may be unreachable: the build repairs nodes the entry point cannot reach, and a
search whose walk comes back short finishes exactly, so k >= live items returns every one."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

import bitgraph as bg

METRICS = ("l2", "ip", "cosine")


def unreached_live(index) -> int:
    """Live slots that no level-0 walk from the entry point can reach."""
    state = index._core.get_state()
    links0, deleted, entry = state["links0"], state["deleted"], int(state["entry_point"])
    seen = np.zeros(links0.shape[0], dtype=bool)
    seen[entry] = True
    todo = deque([entry])
    while todo:
        u = todo.popleft()
        for v in links0[u, 1:1 + links0[u, 0]]:
            if not seen[v]:
                seen[v] = True
                todo.append(v)
    return int((~seen & (deleted == 0)).sum())


def hard_data(n=1500, dim=128, seed=0):
    """Gaussian directions with log-normal norms: before the repair, an l2 graph over 1,500 of
    them reached ~60% of its nodes, an ip graph ~95% (ef_construction 40)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)) * rng.lognormal(0.0, 0.5, (n, 1))
    return x.astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
def test_every_live_node_is_reachable_after_add(backend, metric):
    x = hard_data()
    index = bg.HNSWIndex(x.shape[1], metric=metric, ef_construction=40, backend=backend)
    index.add(x, threads=1)
    assert unreached_live(index) == 0


def test_chunked_adds_and_removes_stay_reachable(backend):
    x = hard_data(2000, 64, seed=1)
    index = bg.HNSWIndex(64, metric="l2", M=6, ef_construction=20, backend=backend)
    for start in range(0, len(x), 250):
        index.add(x[start:start + 250], threads=1)
    index.remove(np.arange(0, 2000, 3))
    index.add(x[:300] * 1.5, ids=np.arange(300), threads=1)  # replaces, some were removed
    assert unreached_live(index) == 0


def _kinds(backend, dim, metric, x):
    binz = bg.RecurrentBinarizer(dim, loops=2, learned=False).fit(x)
    return {
        "hnsw-float32": bg.HNSWIndex(dim, metric=metric, M=4, ef_construction=8, backend=backend),
        "hnsw-int8": bg.HNSWIndex(dim, metric=metric, M=4, ef_construction=8, storage="int8",
                                  backend=backend),
        "flat": bg.FlatIndex(dim, metric=metric, backend=backend),
        "binary-hnsw": bg.BinaryIndex(binz, graph="hnsw", M=4, ef_construction=8,
                                      metric=metric, backend=backend),
        "binary-hnsw-codes": bg.BinaryIndex(binz, graph="hnsw", M=4, ef_construction=8,
                                            rerank=None, metric=metric, backend=backend),
        "binary-flat": bg.BinaryIndex(binz, graph="flat", metric=metric, backend=backend),
    }


@pytest.mark.parametrize("metric", METRICS)
def test_k_at_least_live_items_returns_every_live_item(backend, metric):
    x = hard_data(600, 24, seed=2)
    for name, index in _kinds(backend, 24, metric, x).items():
        index.add(x, threads=1)
        index.remove(np.arange(0, 600, 7))
        live = sorted(set(range(600)) - set(range(0, 600, 7)))
        for k in (len(live), len(live) + 13):
            res = index.search(x[:20], k=k, ef=16)
            assert (res.counts == len(live)).all(), (name, k, res.counts.min())
            for row in res.ids:
                assert sorted(row[row >= 0].tolist()) == live, name
        # per-query lists with unfiltered rows take the same guarantee
        res = index.search(x[:2], k=len(live), ef=16, filter=[None, bg.Filter.ids(live[:5])])
        assert res.counts.tolist() == [len(live), 5], name
