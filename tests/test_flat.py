"""FlatIndex: exact brute force, checked against numpy on every backend (native and numba
giving the same results: test_backends_agree.py)."""

from __future__ import annotations

import numpy as np
import pytest

import bitgraph as bg

from bg_testutil import (METRICS, STORAGES, assert_ids_match_distances, assert_same_neighbours,
                         assert_valid_result, reference_distances, reference_search)

K = 10


def _tolerances(metric: str, storage: str) -> dict[str, float]:
    # int8 l2 is |q|^2 - 2<q,x> + |x|^2 in float32: absolute error grows with the norms.
    if storage == "int8" and metric == "l2":
        return {"rtol": 1e-5, "atol": 2e-3}
    return {"rtol": 1e-5, "atol": 1e-5}


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("metric", METRICS)
def test_exact_against_numpy(backend, data, metric, storage):
    x, q = data
    index = bg.FlatIndex(x.shape[1], metric=metric, storage=storage, backend=backend)
    index.add(x)
    res = index.search(q, k=K)
    assert_valid_result(res, K, known_ids=np.arange(len(x)))
    assert (res.counts == K).all()
    ref_ids, ref_d = reference_search(x, q, K, metric, storage)
    tol = _tolerances(metric, storage)
    # the k smallest distances are found, each returned id really is at its distance, and
    # the ids equal numpy's except where near-ties may be ordered either way
    np.testing.assert_allclose(res.distances, ref_d, **tol)
    assert_ids_match_distances(res.ids, res.distances, reference_distances(x, q, metric, storage),
                               **tol)
    assert_same_neighbours(res.ids, res.distances, ref_ids, ref_d, **tol)


@pytest.mark.parametrize("metric", METRICS)
def test_float32_distances_are_the_metric_definition(backend, small, metric):
    """l2 -> squared euclidean, ip -> -<q,x>, cosine -> 1 - cos (api.md), on raw vectors."""
    x, q = small
    index = bg.FlatIndex(x.shape[1], metric=metric, backend=backend)
    index.add(x)
    ids, d = index.search(q, k=5)
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    got = []
    for qi, row in enumerate(ids):
        for j in row:
            v, w = q64[qi], x64[j]
            if metric == "l2":
                got.append(((v - w) ** 2).sum())
            elif metric == "ip":
                got.append(-(v @ w))
            else:
                got.append(1 - v @ w / np.linalg.norm(v) / np.linalg.norm(w))
    np.testing.assert_allclose(d.ravel(), got, rtol=1e-5, atol=1e-5)


def test_ids_are_returned_not_positions(backend, small):
    x, q = small
    ids = np.arange(len(x), dtype=np.int64)[::-1] * 1000 + 7
    index = bg.FlatIndex(x.shape[1], metric="l2", backend=backend)
    assert np.array_equal(index.add(x, ids=ids), ids)
    res = index.search(q, k=5)
    ref_ids, _ = reference_search(x, q, 5, "l2", ids=ids)
    assert np.array_equal(res.ids, ref_ids)


def test_k_larger_than_index_pads(backend, small):
    x, q = small
    index = bg.FlatIndex(x.shape[1], metric="l2", backend=backend)
    index.add(x[:7])
    res = index.search(q, k=12)
    assert_valid_result(res, 12, known_ids=np.arange(7))
    assert (res.counts == 7).all()
    assert (res.ids[:, 7:] == -1).all() and np.isposinf(res.distances[:, 7:]).all()
    assert all(set(row[:7]) == set(range(7)) for row in res.ids)


def test_k_equal_to_size_returns_everything_sorted(backend, small):
    x, q = small
    index = bg.FlatIndex(x.shape[1], metric="cosine", backend=backend)
    index.add(x[:50])
    res = index.search(q, k=50)
    assert (res.counts == 50).all()
    assert all(sorted(row) == list(range(50)) for row in res.ids)
    assert (np.diff(res.distances, axis=1) >= 0).all()


def test_remove_and_replace(backend, small):
    x, q = small
    index = bg.FlatIndex(x.shape[1], metric="l2", backend=backend)
    index.add(x)
    gone = np.arange(0, len(x), 3)
    index.remove(gone)
    assert len(index) == len(x) - len(gone)
    keep = np.setdiff1d(np.arange(len(x)), gone)
    res = index.search(q, k=10)
    ref_ids, ref_d = reference_search(x[keep], q, 10, "l2", ids=keep)
    assert not np.isin(res.ids, gone).any()
    np.testing.assert_allclose(res.distances, ref_d, rtol=1e-5, atol=1e-5)
    assert_same_neighbours(res.ids, res.distances, ref_ids, ref_d)
    # re-adding an id replaces its vector: id 1 now sits exactly on query 0
    index.add(q[:1], ids=[1])
    assert len(index) == len(keep)
    ids, d = index.search(q[:1], k=3)
    assert ids[0, 0] == 1 and d[0, 0] == 0.0
    assert 1 not in ids[0, 1:]


def test_ef_is_ignored_and_threads_do_not_change_results(backend, data):
    x, q = data
    index = bg.FlatIndex(x.shape[1], metric="ip", backend=backend)
    index.add(x)
    base = index.search(q, k=K, threads=1)
    for kwargs in ({"ef": 1}, {"ef": 5000}, {"threads": 2}, {"threads": 7}):
        other = index.search(q, k=K, **kwargs)
        assert np.array_equal(base.ids, other.ids), kwargs
        assert np.array_equal(base.distances, other.distances), kwargs


def test_incremental_adds_equal_one_add(backend, data):
    x, q = data
    one = bg.FlatIndex(x.shape[1], metric="l2", backend=backend)
    one.add(x)
    parts = bg.FlatIndex(x.shape[1], metric="l2", backend=backend)
    for chunk in np.array_split(np.arange(len(x)), 7):
        parts.add(x[chunk])
    assert len(parts) == len(x)
    a, b = one.search(q, k=K), parts.search(q, k=K)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances)


def test_properties_and_repr(backend):
    index = bg.FlatIndex(8, metric="ip", storage="float16", backend=backend)
    assert (index.dim, index.metric, index.storage, index.backend) == (8, "ip", "float16", backend)
    assert len(index) == 0
    empty = index.nbytes
    index.add(np.ones((100, 8)))
    assert index.nbytes > empty and index.nbytes >= 100 * 8 * 2
    r = repr(index)
    assert r.startswith("FlatIndex(") and "dim=8" in r and "'ip'" in r and "'float16'" in r
    assert "size=100" in r and backend in r


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("metric", METRICS)
def test_a_query_gets_the_same_answer_alone_and_in_a_batch(backend, data, metric, storage):
    """Batches take another scan path (transposed tiles) than single queries; the answers,
    distances included, must not depend on the batch a query came in."""
    x, q = data
    index = bg.FlatIndex(x.shape[1], metric=metric, storage=storage, backend=backend)
    index.add(x)
    batch = index.search(q[:64], k=K, threads=1)
    for i in (0, 17, 63):
        alone = index.search(q[i:i + 1], k=K, threads=1)
        assert np.array_equal(alone.ids[0], batch.ids[i])
        assert np.array_equal(alone.distances[0], batch.distances[i])
