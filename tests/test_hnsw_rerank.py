"""HNSWIndex over compact rows (int8, float16) re-ranked with float32 vectors (rerank=...).

The graph is walked on the compact rows; the best candidates are re-scored with the exact
vectors kept in RAM or memory-mapped, so results and distances are float32 ones. Every backend
runs these tests (the ``backend`` fixture).
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import bitgraph as bg
from bg_testutil import clustered, exact_distances, recall

DIM = 24


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered(1500, DIM, seed=1), clustered(40, DIM, seed=2)


def exact_topk(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = exact_distances(x, q, metric)
    ids = np.argsort(d, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(d, ids, 1)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
@pytest.mark.parametrize("storage", ["int8", "float16"])
@pytest.mark.parametrize("rerank", ["memory", "mmap"])
def test_exhaustive_walk_reranked_is_exact(backend, data, metric, storage, rerank):
    # ef = n: the walk's pool holds every node, so the re-ranked top k is the exact top k
    x, q = data
    ix = bg.HNSWIndex(DIM, metric=metric, storage=storage, rerank=rerank, backend=backend)
    ix.add(x)
    res = ix.search(q, k=10, ef=len(x))
    ids, dists = exact_topk(x, q, metric, 10)
    np.testing.assert_array_equal(res.ids, ids)
    np.testing.assert_allclose(res.distances, dists, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_rerank_distances_are_float32_ones_and_recall_rises(backend, data, metric):
    x, q = data
    plain = bg.HNSWIndex(DIM, metric=metric, storage="int8", backend=backend)
    reranked = bg.HNSWIndex(DIM, metric=metric, storage="int8", rerank="memory",
                            backend=backend)
    plain.add(x)
    reranked.add(x)
    truth, _ = exact_topk(x, q, metric, 10)
    res = reranked.search(q, k=10, ef=48)
    # every returned distance is the exact float distance of that id
    exact = np.take_along_axis(exact_distances(x, q, metric), res.ids, 1)
    np.testing.assert_allclose(res.distances, exact, rtol=1e-4, atol=1e-4)
    assert recall(res.ids, truth) >= recall(plain.search(q, k=10, ef=48).ids, truth)
    # the same walk: oversample 1 keeps the compact order's top k, re-scored
    one = reranked.search(q, k=10, ef=48, oversample=1.0)
    assert recall(one.ids, truth) <= recall(res.ids, truth) + 1e-9


def test_filters_and_removals_with_rerank(backend, data):
    x, q = data
    ix = bg.HNSWIndex(DIM, metric="l2", storage="int8", rerank="memory", backend=backend)
    ix.add(x, attributes={"parity": np.arange(len(x)) % 2})
    ix.remove(np.arange(0, 200))
    res = ix.search(q, k=10, ef=len(x), filter=bg.Filter.eq("parity", 0))
    keep = np.array([i for i in range(len(x)) if i >= 200 and i % 2 == 0])
    ids, _ = exact_topk(x[keep], q, "l2", 10)
    np.testing.assert_array_equal(res.ids, keep[ids])


@pytest.mark.parametrize("rerank", ["memory", "mmap"])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_and_pickle_keep_the_vectors(backend, data, tmp_path, rerank, mmap):
    x, q = data
    ix = bg.HNSWIndex(DIM, metric="cosine", storage="int8", rerank=rerank, backend=backend)
    ix.add(x)
    want = ix.search(q, k=10, ef=64)
    path = tmp_path / "ix.bg"
    ix.save(path)
    back = bg.load(path, mmap=mmap, backend=backend)
    assert back.rerank == rerank and back.storage == "int8"
    got = back.search(q, k=10, ef=64)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.distances, want.distances)
    back.add(x[:5] + 0.01)  # a loaded index keeps growing (its rows are copied, not written)
    assert len(back) == len(x) + 5
    again = pickle.loads(pickle.dumps(ix))
    np.testing.assert_array_equal(again.search(q, k=10, ef=64).ids, want.ids)


def test_vectors_and_memory_figures(backend, data):
    x, _ = data
    mem = bg.HNSWIndex(DIM, metric="l2", storage="int8", rerank="memory", backend=backend)
    mapped = bg.HNSWIndex(DIM, metric="l2", storage="int8", rerank="mmap", backend=backend)
    plain = bg.HNSWIndex(DIM, metric="l2", storage="int8", backend=backend)
    for ix in (mem, mapped, plain):
        ix.add(x)
    # get_vectors gives the exact rows, not the int8 ones
    np.testing.assert_array_equal(mem.get_vectors([3, 7]), x[[3, 7]])
    np.testing.assert_array_equal(mapped.get_vectors([3, 7]), x[[3, 7]])
    assert mem.nbytes >= plain.nbytes + x.nbytes
    assert mapped.nbytes < plain.nbytes + x.nbytes // 2
    assert mapped.mapped_nbytes >= x.nbytes


def test_bad_arguments_raise_clear_errors(backend):
    with pytest.raises(bg.BitgraphValueError, match="compact storage"):
        bg.HNSWIndex(DIM, rerank="memory", backend=backend)
    with pytest.raises(bg.BitgraphValueError, match="rerank must be"):
        bg.HNSWIndex(DIM, storage="int8", rerank="disk", backend=backend)
    ix = bg.HNSWIndex(DIM, storage="int8", rerank="memory", backend=backend)
    ix.add(np.random.default_rng(0).standard_normal((50, DIM)).astype(np.float32))
    with pytest.raises(bg.BitgraphValueError, match="oversample"):
        ix.search(np.zeros((1, DIM), np.float32) + 1, k=5, oversample=0.5)
    with pytest.raises(bg.BitgraphValueError, match="oversample"):
        bg.HNSWIndex(DIM, backend=backend).search(np.ones((1, DIM), np.float32), k=1,
                                                   oversample=0)
