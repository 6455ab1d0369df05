"""Index.get_vectors / get_attributes: what a stored item looks like, on every backend."""

import bitgraph as bg
import numpy as np
import pytest


def _data(n=120, dim=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
@pytest.mark.parametrize("storage,tol", [("float32", 0.0), ("float16", 2e-3), ("int8", 2e-2)])
def test_vectors_round_trip(backend, kind, storage, tol):
    x = _data()
    cls = bg.HNSWIndex if kind == "hnsw" else bg.FlatIndex
    index = cls(8, metric="l2", storage=storage, backend=backend)
    index.add(x)
    got = index.get_vectors([7, 0, 119])
    assert got.shape == (3, 8) and got.dtype == np.float32
    assert np.abs(got - x[[7, 0, 119]]).max() <= tol * np.abs(x).max()
    index.add(x[:1] + 1, ids=[7])  # a replaced id gives its new vector
    assert np.abs(index.get_vectors([7])[0] - (x[0] + 1)).max() <= tol * 4 + 1e-6


def test_cosine_gives_the_normalised_vector(backend):
    x = _data()
    index = bg.HNSWIndex(8, metric="cosine", backend=backend)
    index.add(x)
    got = index.get_vectors([3])[0]
    np.testing.assert_allclose(got, x[3] / np.linalg.norm(x[3]), rtol=1e-5, atol=1e-6)


def test_unknown_and_removed_ids_raise(backend):
    index = bg.FlatIndex(8, backend=backend)
    index.add(_data(10))
    index.remove([4])
    for ids in ([4], [10], [1, 99]):
        with pytest.raises(bg.UnknownIdError):
            index.get_vectors(ids)
        with pytest.raises(bg.UnknownIdError):
            index.get_attributes(ids)
    assert index.get_vectors([]).shape == (0, 8)


def test_attributes_with_missing_values(backend):
    x = _data(6)
    index = bg.HNSWIndex(8, backend=backend)
    index.add(x[:4], attributes={"a": np.arange(4), "tags": [[1], [2, 3], [], [4]]})
    index.add(x[4:], attributes={"f": [0.5, 1.5]})
    got = index.get_attributes([1, 4, 2])
    assert got == {"a": [1, None, 2], "tags": [[2, 3], [], []], "f": [None, 0.5, None]}
    assert index.get_attributes([0]) == {"a": [0], "tags": [[1]], "f": [None]}


def test_binary_index_returns_its_rerank_vectors(backend):
    x = _data(300, 16)
    binz = bg.RecurrentBinarizer(16, code_dim=16, loops=2).fit(x)
    with_vectors = bg.BinaryIndex(binz, metric="l2", rerank="memory", backend=backend)
    with_vectors.add(x)
    np.testing.assert_array_equal(with_vectors.get_vectors([5, 9]), x[[5, 9]])
    codes_only = bg.BinaryIndex(binz, rerank=None, backend=backend)
    codes_only.add(x)
    with pytest.raises(bg.BitgraphValueError, match="only codes"):
        codes_only.get_vectors([5])


def test_ids_with_and_without_filter(backend):
    x = _data(50)
    index = bg.HNSWIndex(8, backend=backend)
    index.add(x, ids=np.arange(100, 150), attributes={"a": np.arange(50) % 3})
    index.remove([100, 103])
    assert index.ids().tolist() == [i for i in range(100, 150) if i not in (100, 103)]
    want = [100 + i for i in range(50) if i % 3 == 0 and i not in (0, 3)]
    assert index.ids(bg.Filter.eq("a", 0)).tolist() == want
    assert index.ids(bg.Filter.ids([149, 7, 103])).tolist() == [149]
    assert bg.FlatIndex(8, backend=backend).ids().tolist() == []
