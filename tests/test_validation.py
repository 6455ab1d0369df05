"""Input rules of api.md: conversion of array-likes, and errors that are BitgraphError
subclasses of ValueError/TypeError naming the expected and the actual value."""

from __future__ import annotations

import numpy as np
import pytest

import bitgraph as bg

DIM = 8


@pytest.fixture(params=["hnsw", "flat"])
def make_index(request, backend):
    """A factory of empty indexes of both kinds on the current backend."""

    def make(dim=DIM, **kwargs):
        if request.param == "hnsw":
            return bg.HNSWIndex(dim, backend=backend, M=8, ef_construction=40, **kwargs)
        return bg.FlatIndex(dim, backend=backend, **kwargs)

    return make


@pytest.fixture
def filled(make_index):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, DIM)).astype(np.float32)
    index = make_index(metric="l2")
    index.add(x)
    return index, x


def _same(a, b):
    return np.array_equal(a.ids, b.ids) and np.allclose(a.distances, b.distances, rtol=1e-6)


# --- accepted inputs ---------------------------------------------------------------------------

def test_array_likes_are_converted(filled):
    index, x = filled
    ref = index.search(x[:5], k=3)
    variants = {
        "list": x[:5].tolist(),
        "tuple": tuple(map(tuple, x[:5].tolist())),
        "float64": x[:5].astype(np.float64),
        "fortran": np.asfortranarray(x[:5]),
        "strided": np.repeat(x[:5], 2, axis=0)[::2],
        "column slice": np.concatenate([x[:5], x[:5]], axis=1)[:, :DIM],
    }
    for name, q in variants.items():
        if name in ("fortran", "strided", "column slice"):
            assert not q.flags.c_contiguous
        assert _same(index.search(q, k=3), ref), name


def test_integer_and_half_inputs(make_index):
    index = make_index(metric="l2")
    ints = np.arange(40 * DIM, dtype=np.int64).reshape(40, DIM) % 7
    index.add(ints)
    res = index.search(ints[:3].astype(np.float16), k=1)
    assert (res.distances[:, 0] == 0).all()
    res = index.search(ints[:3].tolist(), k=1)
    assert (res.distances[:, 0] == 0).all()


def test_one_vector_is_one_row(filled):
    index, x = filled
    res = index.search(x[3], k=4)
    assert res.ids.shape == (1, 4) and res.ids[0, 0] == 3
    assert _same(res, index.search(x[3:4], k=4))
    new = index.add(x[0] + 1.0)
    assert new.shape == (1,) and len(index) == 101


def test_input_arrays_are_not_modified(make_index):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, DIM)).astype(np.float32)
    q = rng.normal(size=(5, DIM)).astype(np.float32)
    ids = np.arange(50, dtype=np.int64) * 2
    copies = (x.copy(), q.copy(), ids.copy())
    index = make_index(metric="cosine")  # cosine normalises: must do it on a copy
    index.add(x, ids=ids)
    index.search(q, k=3)
    index.remove(ids[:5])
    assert all(np.array_equal(a, b) for a, b in zip((x, q, ids), copies))


# --- errors: vectors and queries ------------------------------------------------------------------

def test_wrong_dimension_names_both_values(make_index):
    index = make_index()
    with pytest.raises(bg.BitgraphValueError) as err:
        index.add(np.ones((3, DIM + 2)))
    assert str(DIM) in str(err.value) and str(DIM + 2) in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, bg.BitgraphError)
    index.add(np.ones((3, DIM)))
    with pytest.raises(bg.BitgraphValueError, match=f"dimension {DIM - 1}, expected {DIM}"):
        index.search(np.ones((2, DIM - 1)), k=1)
    with pytest.raises(bg.BitgraphValueError):
        index.search(np.ones(DIM + 1), k=1)  # a single vector of the wrong length


@pytest.mark.parametrize("shape", [(2, 3, DIM), ()])
def test_wrong_ndim(make_index, shape):
    index = make_index()
    with pytest.raises(bg.BitgraphValueError, match="2-d|dimension"):
        index.add(np.ones(shape))
    with pytest.raises(bg.BitgraphValueError, match="2-d|dimension"):
        index.search(np.ones(shape), k=1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_rejected(make_index, bad):
    index = make_index(metric="l2")
    x = np.ones((10, DIM), dtype=np.float32)
    x[7, 3] = bad
    with pytest.raises(bg.BitgraphValueError, match="NaN or infinity.*row 7"):
        index.add(x)
    assert len(index) == 0
    index.add(np.ones((2, DIM)))
    with pytest.raises(bg.BitgraphValueError, match="NaN or infinity"):
        index.search(x, k=1)


def test_float64_overflowing_float32_rejected(make_index):
    index = make_index(metric="l2")
    with pytest.raises(bg.BitgraphValueError, match="beyond the float32 range"):
        index.add(np.full((2, DIM), 1e300))
    with pytest.raises(bg.BitgraphValueError, match="NaN or infinity"):
        index.add(np.full((2, DIM), np.inf))
    assert len(index) == 0


def test_float16_storage_range(make_index):
    """float16 rows cannot hold |x| > 65504: such vectors are refused instead of stored as
    infinity (which gave inf and NaN distances)."""
    index = make_index(metric="ip", storage="float16")
    x = np.ones((4, DIM), dtype=np.float32)
    x[2, 5] = 1e5
    with pytest.raises(bg.BitgraphValueError, match="row 2.*float16"):
        index.add(x)
    assert len(index) == 0
    x[2, 5] = 60000.0  # representable
    index.add(x)
    res = index.search(x, k=4)
    assert np.isfinite(res.distances).all() and (res.counts == 4).all()
    # queries are not stored: large query values are fine
    assert np.isfinite(index.search(np.full(DIM, 1e6), k=2).distances).all()
    # cosine normalises first, and int8/float32 have no such limit
    for metric, storage in (("cosine", "float16"), ("l2", "int8"), ("l2", "float32")):
        other = make_index(metric=metric, storage=storage)
        other.add(np.full((2, DIM), 1e5))
        assert len(other) == 2


@pytest.mark.parametrize("bad", ["abc", [["a"] * DIM], [[1 + 2j] * DIM], [[1.0] * DIM, [2.0]],
                                 None, object()])
def test_non_numeric_vectors_are_type_errors(make_index, bad):
    index = make_index()
    with pytest.raises((bg.BitgraphTypeError, bg.BitgraphValueError)) as err:
        index.add(bad)
    assert isinstance(err.value, bg.BitgraphError)
    assert len(index) == 0


def test_complex_is_a_type_error(make_index):
    index = make_index()
    with pytest.raises(bg.BitgraphTypeError, match="complex"):
        index.add(np.ones((2, DIM), dtype=np.complex64))


def test_empty_inputs(make_index):
    index = make_index()
    with pytest.raises(bg.BitgraphValueError, match="empty"):
        index.add(np.zeros((0, DIM)))
    with pytest.raises(bg.BitgraphValueError, match="empty"):
        index.add([])
    index.add(np.ones((3, DIM)))
    with pytest.raises(bg.BitgraphValueError, match="empty"):
        index.search(np.zeros((0, DIM)), k=1)
    assert len(index) == 3


def test_cosine_is_scale_free_at_extreme_magnitudes(make_index):
    """cosine normalises each row without overflowing (1e20) or underflowing (1e-25) the
    squared norm: the answers are those of the same directions at unit scale."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, DIM)).astype(np.float32)
    scales = np.where(np.arange(60) % 3 == 0, 1e20, np.where(np.arange(60) % 3 == 1, 1e-25, 1.0))
    plain, extreme = make_index(metric="cosine"), make_index(metric="cosine")
    plain.add(x)
    extreme.add(x * scales[:, None].astype(np.float32))
    q = x[:10] * np.float32(1e19)
    a, b = plain.search(x[:10], k=5), extreme.search(q, k=5)
    assert np.array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.distances, b.distances, atol=1e-5)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_l2_ip_values_that_would_overflow_distances(make_index, metric):
    """Squared distances / dot products of ~1e19 values are inf in float32: refused, for both
    vectors and queries, instead of ranked as ties."""
    index = make_index(metric=metric)
    big = np.ones((3, DIM), dtype=np.float32)
    big[1, 2] = 1e19
    with pytest.raises(bg.BitgraphValueError, match="row 1.*overflow"):
        index.add(big)
    assert len(index) == 0
    index.add(np.ones((3, DIM)) * 1e15)  # large but safe
    with pytest.raises(bg.BitgraphValueError, match="queries row 1.*overflow"):
        index.search(big, k=1)
    assert np.isfinite(index.search(np.ones(DIM) * 1e15, k=3).distances).all()


def test_cosine_zero_vector(make_index):
    index = make_index(metric="cosine")
    x = np.ones((4, DIM))
    x[1] = 0
    with pytest.raises(bg.BitgraphValueError, match="row 1.*zeros"):
        index.add(x)
    assert len(index) == 0


# --- errors: k, ef, threads ----------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one(filled, k):
    index, x = filled
    with pytest.raises(bg.BitgraphValueError, match=f"k must be >= 1, got {k}"):
        index.search(x[:2], k=k)


@pytest.mark.parametrize("k", [2.0, "3", None, True])
def test_k_of_wrong_type(filled, k):
    index, x = filled
    with pytest.raises(bg.BitgraphTypeError, match="k must be an int"):
        index.search(x[:2], k=k)


def test_numpy_integers_accepted_as_k_and_ef(filled):
    index, x = filled
    a = index.search(x[:3], k=np.int32(4), ef=np.int64(30), threads=np.uint8(1))
    assert a.ids.shape == (3, 4)


@pytest.mark.parametrize("name, value, exc", [
    ("ef", 0, bg.BitgraphValueError), ("ef", -5, bg.BitgraphValueError),
    ("ef", 1.5, bg.BitgraphTypeError), ("threads", 0, bg.BitgraphValueError),
    ("threads", -1, bg.BitgraphValueError), ("threads", "2", bg.BitgraphTypeError),
])
def test_bad_search_options(filled, name, value, exc):
    index, x = filled
    with pytest.raises(exc, match=name):
        index.search(x[:2], k=1, **{name: value})


def test_bad_add_threads(make_index):
    index = make_index()
    with pytest.raises(bg.BitgraphValueError, match="threads"):
        index.add(np.ones((2, DIM)), threads=0)
    assert len(index) == 0


# --- results ---------------------------------------------------------------------------------------

def test_k_larger_than_index_pads(make_index):
    index = make_index(metric="ip")
    index.add(np.eye(DIM)[:3])
    res = index.search(np.ones((2, DIM)), k=6)
    assert res.ids.shape == (2, 6) and res.ids.dtype == np.int64
    assert res.distances.dtype == np.float32
    assert (res.ids[:, 3:] == -1).all() and np.isposinf(res.distances[:, 3:]).all()
    assert (np.sort(res.ids[:, :3], axis=1) == [0, 1, 2]).all()
    assert res.counts.tolist() == [3, 3]


def test_search_on_empty_index(make_index):
    index = make_index()
    res = index.search(np.ones((4, DIM)), k=3)
    assert res.ids.shape == (4, 3) and (res.ids == -1).all()
    assert np.isposinf(res.distances).all() and res.distances.dtype == np.float32
    assert res.counts.tolist() == [0, 0, 0, 0]


# --- ids -------------------------------------------------------------------------------------------

def test_duplicate_ids_in_one_add(make_index):
    index = make_index()
    with pytest.raises(bg.BitgraphValueError, match="duplicates, e.g. 4"):
        index.add(np.ones((3, DIM)), ids=[4, 9, 4])
    assert len(index) == 0


@pytest.mark.parametrize("ids", [[1.0, 2.0, 3.0], ["a", "b", "c"], [True, False, True]])
def test_ids_of_the_wrong_kind(make_index, ids):
    index = make_index()
    with pytest.raises(bg.BitgraphTypeError, match="ids must be integers"):
        index.add(np.ones((3, DIM)), ids=ids)
    assert len(index) == 0


def test_ids_wrong_count_shape_or_range(make_index):
    index = make_index()
    x = np.ones((3, DIM))
    with pytest.raises(bg.BitgraphValueError, match="2 entries, expected 3"):
        index.add(x, ids=[1, 2])
    with pytest.raises(bg.BitgraphValueError, match="1-d"):
        index.add(x, ids=[[1, 2, 3]])
    with pytest.raises(bg.BitgraphValueError, match=">= 0"):
        index.add(x, ids=[1, -1, 2])
    with pytest.raises(bg.BitgraphValueError, match="int64"):
        index.add(x, ids=np.array([1, 2, 2**63], dtype=np.uint64))
    assert len(index) == 0


def test_id_types_accepted(make_index):
    index = make_index(metric="l2")
    x = np.arange(4 * DIM, dtype=np.float32).reshape(4, DIM)
    out = index.add(x, ids=np.array([7, 8, 9, 2**40], dtype=np.uint64))
    assert out.dtype == np.int64 and out.tolist() == [7, 8, 9, 2**40]
    assert index.search(x[3], k=1).ids[0, 0] == 2**40
    index.add(x[:1] + 1, ids=np.int16(3))  # a scalar id for a single vector
    assert 3 in index and len(index) == 5


def test_remove_unknown_ids(filled):
    index, _ = filled
    with pytest.raises(bg.UnknownIdError, match="1 id.*e.g. 555"):
        index.remove([3, 555])
    assert len(index) == 100 and 3 in index
    with pytest.raises(bg.BitgraphTypeError):
        index.remove([1.5])
    with pytest.raises(bg.BitgraphValueError):
        index.remove([-3])


def test_contains(filled):
    index, _ = filled
    assert 5 in index and np.int64(99) in index
    assert 100 not in index and -1 not in index and "x" not in index and 2.5 not in index


# --- constructor arguments -----------------------------------------------------------------------

@pytest.mark.parametrize("cls", [bg.HNSWIndex, bg.FlatIndex])
def test_bad_metric_and_storage(cls, backend):
    with pytest.raises(bg.BitgraphValueError, match="metric must be one of 'l2', 'ip', 'cosine', got 'euclid'"):
        cls(DIM, metric="euclid", backend=backend)
    with pytest.raises(bg.BitgraphValueError, match="storage must be one of .*got 'int4'"):
        cls(DIM, storage="int4", backend=backend)
    with pytest.raises(bg.BitgraphValueError, match="metric"):
        cls(DIM, metric="L2", backend=backend)  # names are case-sensitive
    with pytest.raises(bg.BitgraphValueError, match="metric"):
        cls(DIM, metric=None, backend=backend)


@pytest.mark.parametrize("cls", [bg.HNSWIndex, bg.FlatIndex])
@pytest.mark.parametrize("dim, exc", [(0, bg.BitgraphValueError), (-4, bg.BitgraphValueError),
                                      (2.5, bg.BitgraphTypeError), ("8", bg.BitgraphTypeError)])
def test_bad_dim(cls, backend, dim, exc):
    with pytest.raises(exc, match="dim"):
        cls(dim, backend=backend)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"M": 1}, bg.BitgraphValueError, "M must be >= 2, got 1"),
    ({"M": 0}, bg.BitgraphValueError, "M must be >= 2"),
    ({"M": 513}, bg.BitgraphValueError, "M must be <= 512, got 513"),
    ({"M": 16.0}, bg.BitgraphTypeError, "M must be an int"),
    ({"ef_construction": 0}, bg.BitgraphValueError, "ef_construction must be >= 1"),
    ({"ef_construction": "200"}, bg.BitgraphTypeError, "ef_construction"),
    ({"seed": -1}, bg.BitgraphValueError, "seed"),
])
def test_bad_hnsw_parameters(backend, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        bg.HNSWIndex(DIM, backend=backend, **kwargs)


def test_extreme_valid_parameters(backend):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    # measured self-recall@1: M=2/ef_c=10 -> 0.98, M=64/ef_c=500 -> 1.0 (both backends)
    for kwargs, expected in (({"M": 2, "ef_construction": 10}, 0.9),
                             ({"M": 64, "ef_construction": 500}, 1.0),
                             ({"M": 2, "ef_construction": 1}, 0.3)):
        index = bg.HNSWIndex(3, metric="l2", backend=backend, **kwargs)
        index.add(x, threads=1)
        res = index.search(x, k=1, ef=200)
        assert (res.counts == 1).all()
        assert (res.ids[:, 0] == np.arange(200)).mean() >= expected, kwargs


def test_unknown_backend_name():
    with pytest.raises(bg.BackendUnavailableError, match="must be one of"):
        bg.HNSWIndex(DIM, backend="gpu")
    with pytest.raises(bg.BackendUnavailableError, match="cuda"):
        bg.FlatIndex(DIM, backend="cuda")


# --- numbers out of range: a typed error, or clamped to their natural bound ---------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    ({"dim": 2**40}, bg.BitgraphValueError, "dim must be <= 1048576"),
    ({"seed": 2**64}, bg.BitgraphValueError, "seed must be <= 18446744073709551615"),
    ({"ef_construction": 2**31}, bg.BitgraphValueError, "ef_construction must be <= 2147483647"),
    ({"M": 2**70}, bg.BitgraphValueError, "M must be <= 512"),
    ({"M": True}, bg.BitgraphTypeError, "M must be an int"),
])
def test_huge_constructor_numbers_are_typed_errors(backend, kwargs, exc, match):
    args = {"dim": DIM, **kwargs}
    with pytest.raises(exc, match=match):
        bg.HNSWIndex(args.pop("dim"), backend=backend, **args)


def test_largest_seed_is_accepted(backend):
    index = bg.HNSWIndex(DIM, seed=2**64 - 1, backend=backend)
    index.add(np.eye(DIM))
    assert len(index) == DIM


@pytest.mark.parametrize("k", [2**31, 2**63, 10**30])
def test_k_beyond_the_index_is_padded_without_allocating(filled, k):
    index, x = filled
    if k * 2 > 2**28:  # two queries' results would pass the per-call limit
        with pytest.raises(bg.BitgraphValueError, match="smaller k or split the batch"):
            index.search(x[:2], k=k)
    res = index.search(x[:1], k=1000)  # 10x the index: padded, every item once
    assert res.ids.shape == (1, 1000) and res.counts[0] == len(index)
    assert sorted(res.ids[0, :100].tolist()) == list(range(100))
    assert (res.ids[0, 100:] == -1).all() and np.isinf(res.distances[0, 100:]).all()


def test_huge_ef_and_threads_are_clamped(filled):
    index, x = filled
    ref = index.search(x[:5], k=3, ef=100)
    for kwargs in ({"ef": 2**62}, {"threads": 2**31}, {"threads": 10**30}):
        assert _same(index.search(x[:5], k=3, ef=kwargs.get("ef", 100),
                                  threads=kwargs.get("threads")), ref), kwargs
    index.add(x[:3] + 1, threads=2**40)  # an add too
    with pytest.raises(bg.BitgraphValueError, match="threads must be >= 1"):
        index.search(x[:1], threads=0)
    with pytest.raises(bg.BitgraphTypeError, match="threads"):
        index.search(x[:1], threads=2.0)


_LIMITED = """
import resource, sys
import numpy as np
import bitgraph as bg
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
x = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
index = bg.HNSWIndex(8, metric="l2", ef_construction=2**31 - 1, backend=sys.argv[1])
index.add(x)
assert (index.search(x, k=1).ids[:, 0] == np.arange(20)).all()
res = index.search(x[:1], k=2**25, ef=2**40, threads=2**20)
assert res.ids.shape == (1, 2**25) and res.counts[0] == 20
print("ok")
"""


def test_huge_numbers_do_not_allocate(backend):
    """Under a 3 GiB address-space limit: ef_construction = 2^31 - 1 used to size a pool of
    16 GiB per thread, k, ef and threads must likewise stay bounded by the index."""
    import subprocess
    import sys

    limit = 3 << 30 if backend == "native" else 6 << 30  # numba's JIT maps more
    out = subprocess.run([sys.executable, "-c", _LIMITED, backend, str(limit)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_automatic_ids_stop_at_the_int64_limit(make_index):
    index = make_index()
    x = np.random.default_rng(0).normal(size=(3, DIM)).astype(np.float32)
    index.add(x[:1], ids=[2**63 - 1])
    with pytest.raises(bg.BitgraphValueError, match="no automatic ids left"):
        index.add(x[1:])
    assert len(index) == 1
    index.add(x[1:], ids=[0, 1])  # explicit ids still work
    assert len(index) == 3


@pytest.mark.parametrize("bad", [2**63, 2**64 - 1, 2**70, -1])
def test_ids_beyond_int64_are_typed_errors(make_index, bad):
    index = make_index()
    with pytest.raises(bg.BitgraphError):
        index.add(np.ones((1, DIM)), ids=[bad])
    with pytest.raises(bg.BitgraphError):
        index.remove([bad])
    assert bad not in index and len(index) == 0


@pytest.mark.parametrize("value", [3, None, "abc", {"a": 1}, 2.5])
def test_attribute_values_that_are_not_sequences(make_index, value):
    index = make_index()
    with pytest.raises(bg.BitgraphTypeError, match="attribute 'cat'"):
        index.add(np.ones((2, DIM)), attributes={"cat": value})
    assert len(index) == 0


def test_tag_labels_beyond_int64_are_refused(make_index):
    index = make_index()
    with pytest.raises(bg.BitgraphValueError, match="beyond int64"):
        index.add(np.ones((1, DIM)), attributes={"tags": [[2**64 - 1]]})
    with pytest.raises(bg.BitgraphError):
        index.add(np.ones((1, DIM)), attributes={"tags": [[2**70]]})
    assert len(index) == 0


def test_cosine_normalisation_does_not_depend_on_the_batch(backend):
    """A row normalises to the same bits alone or beside rows that need peak scaling (the fuzz
    suite found float16 rows that differed in the last bit by batch)."""
    from bitgraph._validation import normalized

    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, DIM)).astype(np.float32)
    mixed = x.copy()
    mixed[7] *= np.float32(1e25)  # squared norm beyond float32
    mixed[9] *= np.float32(1e-25)  # and below
    alone = normalized(x, "x")
    together = normalized(mixed, "x")
    keep = [i for i in range(50) if i not in (7, 9)]
    assert np.array_equal(alone[keep], together[keep])
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-6)
    a = bg.HNSWIndex(DIM, storage="float16", backend=backend)
    b = bg.HNSWIndex(DIM, storage="float16", backend=backend)
    a.add(x[keep])
    b.add(mixed, ids=np.arange(50))
    b.remove([7, 9])
    ra, rb = a.search(x[:5], k=3), b.search(x[:5], k=3)
    assert np.array_equal(ra.distances, rb.distances)
