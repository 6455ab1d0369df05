"""SearchResult: unpacks as (ids, distances), exposes ids/distances/counts, is immutable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import bitgraph as bg


@pytest.fixture
def result():
    ids = np.array([[4, 2, -1], [7, -1, -1], [-1, -1, -1]], dtype=np.int64)
    d = np.array([[0.5, 1.5, np.inf], [0.0, np.inf, np.inf], [np.inf] * 3], dtype=np.float32)
    return bg.SearchResult(ids, d)


def test_unpacking_and_fields(result):
    ids, distances = result
    assert ids is result.ids and distances is result.distances
    assert len(result) == 2
    assert result[0] is result.ids and result[1] is result.distances
    assert result[-1] is result.distances
    with pytest.raises(IndexError):
        result[2]
    assert [a is b for a, b in zip(result, (result.ids, result.distances))] == [True, True]
    a, b = tuple(result)
    assert a is result.ids and b is result.distances


def test_counts(result):
    assert result.counts.tolist() == [2, 1, 0]
    assert result.counts.dtype == np.int64


def test_repr(result):
    assert repr(result) == "SearchResult(queries=3, k=3, found=3)"


def test_frozen(result):
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ids = np.zeros((3, 3), dtype=np.int64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.counts = np.zeros(3)
    with pytest.raises(TypeError):
        bg.SearchResult(result.ids, result.distances, counts=np.zeros(3))  # derived, not passed


def test_from_a_search(backend):
    rng = np.random.default_rng(0)
    index = bg.HNSWIndex(4, metric="l2", backend=backend)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    index.add(x, ids=[10, 11, 12, 13, 14])
    res = index.search(x[:2], k=7)
    assert isinstance(res, bg.SearchResult)
    ids, dist = res
    assert ids.shape == dist.shape == (2, 7)
    assert ids[:, 0].tolist() == [10, 11] and (dist[:, 0] == 0).all()
    assert res.counts.tolist() == [5, 5]
    assert repr(res) == "SearchResult(queries=2, k=7, found=10)"
