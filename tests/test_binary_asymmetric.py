"""The asymmetric code distance (4-bit queries against the codes' bits) on every backend:
kernels against the numpy reference and the literal XOR + popcount definition, the query
grid, BinaryIndex results against brute force, recall against SDC, ``bits=`` layouts,
persistence and files of older versions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import bitgraph as bg
import bitgraph._numba as numba_backend
from bitgraph.binary import RecurrentBinarizer
from bitgraph.binary import reference as R

from bg_testutil import clustered, exact_distances, recall

DIM = 64
N = 2000


@pytest.fixture(scope="module")
def data():
    base = clustered(N, DIM, seed=11, n_clusters=20)
    queries = clustered(50, DIM, seed=12, n_clusters=20)
    truth = np.argsort(exact_distances(base, queries, "cosine"), axis=1)[:, :10]
    return base, queries, truth


@pytest.fixture(scope="module")
def binarizers(data):
    return {bits: RecurrentBinarizer(DIM, bits=bits, learned=False, seed=5).fit(data[0])
            for bits in (1, 2)}


def native_levels():
    import bitgraph._core as core

    return [lvl for lvl in ("generic", "avx2", "avx512") if core.code_level_supported(lvl)]


@pytest.mark.parametrize("planes,code_dim", [(1, 64), (1, 100), (2, 384), (3, 130), (5, 64)])
def test_kernels_equal_the_reference(planes, code_dim):
    import bitgraph._core as core

    rng = np.random.default_rng(planes * 1000 + code_dim)
    codes = R.pack_planes(rng.random((40, planes, code_dim)) < 0.5)
    levels = rng.integers(0, 2 ** R.QUERY_BITS, (3, planes, code_dim)).astype(np.uint8)
    queries = R.pack_query_levels(levels)
    assert queries.shape[1] == R.QUERY_BITS * codes.shape[1]
    np.testing.assert_array_equal(R.unpack_query_levels(queries, planes, code_dim), levels)
    ref = R.asymmetric_matrix(queries, codes, planes, code_dim)
    # the closed form equals the literal XOR + popcount definition ...
    np.testing.assert_array_equal(R.binary_distances(queries[0], codes, planes, "asymmetric"),
                                  ref[0])
    # ... and the per-dimension one: d ? 2^B - 1 - u : u
    d = R.unpack_planes(codes, planes, code_dim)
    per_dim = np.where(d[None], 2 ** R.QUERY_BITS - 1 - levels[:, None].astype(np.int64),
                       levels[:, None].astype(np.int64))
    np.testing.assert_array_equal(per_dim.sum(axis=(2, 3)), ref)
    for qi in range(len(queries)):
        for level in native_levels():
            got = core.binary_distances(queries[qi], codes, planes, "asymmetric", level)
            np.testing.assert_array_equal(got, ref[qi], err_msg=level)
        got = numba_backend.binary_distances(queries[qi], codes, planes, "asymmetric")
        np.testing.assert_array_equal(got, ref[qi])


def test_query_grid_rounds_to_the_nearest_centre():
    step = 0.5
    v = np.array([[[-100.0, -3.9, -0.01, 0.0, 0.24, 0.26, 3.74, 100.0]]])
    u = R.query_levels(v, step)
    # centres (u + 1/2 - 8) * step: -3.75 ... 3.75; values beyond clip to the ends
    np.testing.assert_array_equal(u[0, 0], [0, 0, 7, 8, 8, 8, 15, 15])
    centres = (u.astype(float) + 0.5 - 8) * step
    inside = np.abs(v) < 3.75
    assert (np.abs(centres - v)[inside] <= step / 2 + 1e-12).all()


def test_binarizer_bits_choose_the_layout():
    assert (RecurrentBinarizer(384, bits=1).loops, RecurrentBinarizer(384, bits=1).code_dim) == (1, 384)
    b2 = RecurrentBinarizer(384, bits=2)
    assert (b2.loops, b2.code_dim, b2.bits_per_dim) == (2, 384, 2.0)
    half = RecurrentBinarizer(384, bits=0.5)
    assert (half.loops, half.code_dim) == (1, 192)
    for bad in (0, -1, 1.5, 9, float("nan"), True, "1"):
        with pytest.raises(bg.BitgraphValueError, match="bits"):
            RecurrentBinarizer(384, bits=bad)
    with pytest.raises(bg.BitgraphValueError, match="not both"):
        RecurrentBinarizer(384, bits=1, loops=2)


def test_encode_queries_shape_and_errors(binarizers, data):
    b = binarizers[1]
    q = b.encode_queries(data[1])
    assert q.dtype == np.uint8 and q.shape == (len(data[1]), b.query_code_bytes)
    assert b.query_code_bytes == R.QUERY_BITS * b.code_bytes
    assert b.query_step > 0
    with pytest.raises(bg.BitgraphValueError, match="before fit"):
        RecurrentBinarizer(DIM, bits=1).encode_queries(data[1])
    with pytest.raises(bg.BitgraphValueError):
        b.encode_queries(np.ones((2, DIM + 1), np.float32))


@pytest.mark.parametrize("offsets", [False, True])
@pytest.mark.parametrize("graph", ["flat", "hnsw"])
def test_codes_only_distances_are_exact(binarizers, data, backend, graph, offsets):
    base, queries = data[0], data[1]
    b = binarizers[2]
    idx = bg.BinaryIndex(b, graph=graph, rerank=None, offsets=offsets, backend=backend, M=12)
    assert idx.distance == "asymmetric" and idx.offsets is offsets
    idx.add(base, threads=1)
    res = idx.search(queries, 5, ef=400)
    ref = R.asymmetric_matrix(b.encode_queries(queries), b.encode(base), b.loops, b.code_dim)
    if offsets:
        ref = (ref + b.offsets(base, "asymmetric").astype(np.int64)[None, :]
               + b.offsets(queries, "asymmetric").astype(np.int64)[:, None])
    np.testing.assert_array_equal(np.take_along_axis(ref, res.ids, 1), res.distances)
    if graph == "flat":
        np.testing.assert_array_equal(res.distances, np.sort(ref, axis=1)[:, :5])
    else:  # a wide beam over 2,000 codes finds the exact code neighbours
        assert (res.distances[:, 0] == ref.min(axis=1)).mean() >= 0.95


def test_backends_agree(binarizers, data):
    """Same codes, same graph: equal code distances (ids may differ only among ties)."""
    b = binarizers[1]
    out = {}
    for backend in ("native", "numba"):
        for graph in ("flat", "hnsw"):
            idx = bg.BinaryIndex(b, graph=graph, backend=backend, M=12, seed=1, rerank=None)
            idx.add(data[0], threads=1)
            out[backend, graph] = idx.search(data[1], 10, threads=1)
    for graph in ("flat", "hnsw"):
        a, b2 = out["native", graph], out["numba", graph]
        np.testing.assert_array_equal(a.distances, b2.distances)
        for qi in range(len(a.ids)):  # 1-bit codes tie often: compare below the k-th distance
            below = a.distances[qi] < a.distances[qi, -1]
            assert set(a.ids[qi][below]) == set(b2.ids[qi][below])


@pytest.mark.parametrize("bits", [1, 2])
def test_reranked_recall_beats_sdc(binarizers, data, backend, bits):
    """The point of the asymmetric distance: the same codes, a finer query, better ranking."""
    base, queries, truth = data
    got = {}
    for distance in ("asymmetric", "sdc"):
        idx = bg.BinaryIndex(binarizers[bits], graph="flat", distance=distance, backend=backend)
        idx.add(base)
        res = idx.search(queries, 10, oversample=4)
        full = exact_distances(base, queries, "cosine")
        np.testing.assert_allclose(res.distances, np.take_along_axis(full, res.ids, 1),
                                   atol=2e-5)
        got[distance] = recall(res.ids, truth)
    assert got["asymmetric"] >= got["sdc"] + 0.02, got
    assert got["asymmetric"] >= (0.7 if bits == 1 else 0.95), got


def test_filters_and_removal(binarizers, data, backend):
    base, queries = data[0], data[1]
    idx = bg.BinaryIndex(binarizers[1], graph="hnsw", M=12, backend=backend)
    labels = np.arange(N) % 5
    idx.add(base, attributes={"label": labels})
    idx.remove(np.arange(0, N, 10))
    res = idx.search(queries, 10, filter=bg.Filter.eq("label", 2))
    assert (labels[res.ids] == 2).all() and (res.ids % 10 != 0).all()
    per_query = [bg.Filter.eq("label", i % 5) for i in range(len(queries))]
    res = idx.search(queries, 10, filter=per_query)
    assert all((labels[r] == i % 5).all() for i, r in enumerate(res.ids))


@pytest.mark.parametrize("graph", ["flat", "hnsw"])
def test_save_load_pickle(binarizers, data, backend, tmp_path, graph):
    idx = bg.BinaryIndex(binarizers[2], graph=graph, backend=backend, M=12)
    idx.add(data[0])
    before = idx.search(data[1], 10)
    idx.save(tmp_path / "a.bg")
    for mmap in (False, True):
        loaded = bg.load(tmp_path / "a.bg", mmap=mmap, backend=backend)
        assert loaded.distance == "asymmetric"
        assert loaded.binarizer.query_step == binarizers[2].query_step
        after = loaded.search(data[1], 10)
        np.testing.assert_array_equal(before.ids, after.ids)
    after = pickle.loads(pickle.dumps(idx)).search(data[1], 10)
    np.testing.assert_array_equal(before.ids, after.ids)


def test_binarizer_of_an_older_version(binarizers, data, tmp_path):
    """A binarizer file without a query grid loads, defaults to SDC, and says what to do."""
    meta, arrays = binarizers[1].get_state()
    for key in ("query_step", "distance", "bits"):
        meta.pop(key)
    meta["offsets"].pop("asymmetric")
    old = RecurrentBinarizer.from_state(meta, arrays)
    assert old.query_step is None and not old.has_offsets_for("asymmetric")
    assert bg.BinaryIndex(old).distance == "sdc"
    with pytest.raises(bg.BitgraphValueError, match="refit"):
        bg.BinaryIndex(old, distance="asymmetric")
    with pytest.raises(bg.BitgraphValueError, match="refit"):
        old.encode_queries(data[1])
    binarizers[1].save(tmp_path / "b.bgb")
    assert RecurrentBinarizer.load(tmp_path / "b.bgb").query_step == binarizers[1].query_step


def test_query_binarizer_and_device_errors(binarizers, data):
    idx = bg.BinaryIndex(binarizers[1], graph="flat")
    idx.add(data[0])
    same = idx.search(data[1], 10, query_binarizer=binarizers[1])
    np.testing.assert_array_equal(same.ids, idx.search(data[1], 10).ids)
    with pytest.raises(bg.BitgraphValueError, match="symmetric code distances"):
        bg.BinaryIndex(binarizers[1], graph="flat", device="cuda", distance="asymmetric")


def test_offsets_default_needs_two_planes(binarizers):
    """One plane: offsets off by default (they hurt there); two: on; asked for: honoured."""
    assert not bg.BinaryIndex(binarizers[1]).offsets
    assert bg.BinaryIndex(binarizers[2]).offsets
    assert bg.BinaryIndex(binarizers[1], offsets=True).offsets
    assert not bg.BinaryIndex(binarizers[2], offsets=False).offsets


@pytest.mark.parametrize("loops", [3, 4, 5])
def test_flat_scan_exact_for_more_planes(data, backend, loops):
    """3-4 planes: the lookup-table (fast-scan) kernel; 5: the popcount kernels."""
    base, queries = data[0][:700], data[1][:10]
    b = RecurrentBinarizer(DIM, loops=loops, code_dim=40, learned=False, seed=4).fit(base)
    idx = bg.BinaryIndex(b, graph="flat", rerank=None, distance="asymmetric", offsets=False,
                         backend=backend)
    idx.add(base)
    res = idx.search(queries, 7)
    ref = R.asymmetric_matrix(b.encode_queries(queries), b.encode(base), loops, 40)
    np.testing.assert_array_equal(res.distances, np.sort(ref, axis=1)[:, :7])
