"""IVFIndex (bitgraph.ivf): the same API tests on every backend, exactness when every list is
probed, recall at the defaults, filters, writes, persistence, bad input, and the packing and
training building blocks against their definitions."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import bitgraph as bg
import numpy as np
import pytest
from bg_testutil import (
    assert_same_neighbours,
    assert_valid_result,
    clustered,
    recall,
    reference_search,
)
from bitgraph.ivf import layout, training
from bitgraph.ivf.partition import auto_nlist

METRICS = ["l2", "ip", "cosine"]
EVERYTHING = 1 << 20  # nprobe / rerank above any list or row count here: an exact search


@pytest.fixture(scope="module")
def ivf_data():
    """4,000 x 24 clustered base and 100 queries from the same clusters."""
    return clustered(4000, 24, seed=7), clustered(100, 24, seed=8)


def _index(backend, metric, x, **kw):
    index = bg.IVFIndex(x.shape[1], metric=metric, backend=backend, **kw)
    index.add(x)
    return index


# --- building blocks ------------------------------------------------------------------------


def test_pack_lists_matches_the_block_layout():
    rng = np.random.default_rng(0)
    n, m, nlist = 150, 7, 5
    lists = rng.integers(0, nlist, n).astype(np.int32)
    codes = rng.integers(0, 16, (n, m)).astype(np.uint8)
    live = rng.random(n) > 0.2
    packed = layout.pack_lists(lists, codes, live, nlist)
    npos = layout.positions(m)
    starts = packed.list_starts.astype(np.int64)
    assert (starts % 32 == 0).all() and starts[-1] == packed.row_slots.shape[0]
    seen = set()
    for pos, slot in enumerate(packed.row_slots):
        if slot < 0:
            continue
        seen.add(int(slot))
        lst = int(np.searchsorted(starts, pos, side="right") - 1)
        assert lists[slot] == lst  # each row in its own list
        block, lane = divmod(pos, 32)
        for p in range(npos):
            byte = packed.blocks[block, 16 * p + lane % 16]
            nibble = byte & 15 if lane < 16 else byte >> 4
            assert nibble == (codes[slot, p] if p < m else 0)
    assert seen == set(np.flatnonzero(live).tolist())  # every live slot once, no removed one


def test_centroid_tiles_transpose():
    c = np.arange(35 * 3, dtype=np.float32).reshape(35, 3)
    tiles = layout.centroid_tiles(c)
    assert tiles.shape == (3, 3, 16)
    for row in range(48):
        want = c[row] if row < 35 else np.zeros(3)
        np.testing.assert_array_equal(tiles[row // 16, :, row % 16], want)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_assign_is_the_nearest_centroid(metric):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    c = rng.standard_normal((20, 8)).astype(np.float32)
    got = training.assign(x, c, metric)
    if metric == "l2":
        want = np.argmin(((x[:, None] - c[None]) ** 2).sum(-1), axis=1)
    else:
        want = np.argmax(x @ c.T, axis=1)
    np.testing.assert_array_equal(got, want)


def test_kmeans_codebooks_and_encoding():
    x = clustered(2000, 6, seed=3, n_clusters=8)
    c = training.kmeans(x, 8, "l2", seed=0)
    assert c.shape == (8, 6) and np.isfinite(c).all()
    labels = training.assign(x, c, "l2")
    assert np.bincount(labels, minlength=8).min() > 0  # no empty list
    books = training.train_codebooks(x - c[labels], 2)
    assert books.shape == (3, 16, 2)
    codes = training.encode(x[:50], books)
    parts = x[:50].reshape(50, 3, 2)
    want = np.argmin(((parts[:, :, None, :] - books[None]) ** 2).sum(-1), axis=2)
    np.testing.assert_array_equal(codes, want)
    decoded = training.decode(codes, books, 6)
    assert decoded.shape == (50, 6)
    # A 4-bit code of 2 values reconstructs better than the mean does.
    err = ((x[:50] - decoded) ** 2).sum()
    assert err < ((x[:50] - x.mean(0)) ** 2).sum()


def test_auto_nlist():
    assert auto_nlist(1) == 1 and auto_nlist(38) == 1
    assert auto_nlist(390_000) == 999  # 1.6 sqrt(n)
    assert auto_nlist(1000) == 25  # at most n / 39


# --- the same API on every backend ----------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_probing_everything_is_exact(backend, metric, ivf_data):
    x, q = ivf_data
    index = _index(backend, metric, x)
    res = index.search(q, 10, nprobe=EVERYTHING, rerank=EVERYTHING)
    assert_valid_result(res, 10)
    ids, d = reference_search(x, q, 10, metric)
    assert_same_neighbours(res.ids, res.distances, ids, d, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", METRICS)
def test_default_search_recall(backend, metric, ivf_data):
    x, q = ivf_data
    index = _index(backend, metric, x)
    truth, _ = reference_search(x, q, 10, metric)
    # A small index: the default probes enough lists for 4,096 rows, i.e. all of them.
    default = index.search(q, 10)
    assert_valid_result(default, 10)
    assert recall(default.ids, truth) >= 0.95
    # Part of the lists: recall grows with the lists probed and the candidates re-ranked.
    found = [recall(index.search(q, 10, nprobe=p, rerank=r).ids, truth)
             for p, r in ((index.nlist // 8, 40), (index.nlist // 4, 40),
                          (index.nlist // 2, 200))]
    assert found[0] >= 0.5 and found[0] <= found[1] + 0.01 <= found[2] + 0.02
    assert found[2] >= 0.95


@pytest.mark.parametrize("metric", METRICS)
def test_backends_agree(metric, ivf_data):
    from bitgraph._backend import available_backends

    if len(available_backends()) < 2:
        pytest.skip("needs both the native and the numba backend")
    x, q = ivf_data
    native = _index("native", metric, x).search(q, 10, nprobe=6, rerank=30)
    numba = _index("numba", metric, x).search(q, 10, nprobe=6, rerank=30)
    # Same training (numpy), same tables, same candidate rule: only float rounding differs.
    assert_same_neighbours(native.ids, native.distances, numba.ids, numba.distances,
                           rtol=1e-4, atol=1e-4, max_differing_rows=0.03)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_backends_agree_with_filters_and_removed_rows(metric, ivf_data):
    # The native scan bounds a query's nearest list by the admissible rows only (a histogram
    # of their table sums): a filter or removed rows that it counted would cut true candidates.
    from bitgraph._backend import available_backends

    if len(available_backends()) < 2:
        pytest.skip("needs both the native and the numba backend")
    x, q = ivf_data
    cat = (np.arange(len(x)) % 2).astype(np.int64)
    gone = np.arange(0, len(x), 7)
    results = []
    for backend in ("native", "numba"):
        # 10 lists of ~400 rows: the nearest list's admissible rows outnumber the re-rank pool.
        index = bg.IVFIndex(x.shape[1], metric=metric, nlist=10, backend=backend)
        index.add(x, attributes={"cat": cat})
        index.search(q[:1], 1)  # packs the lists: the removals below are holes in them
        index.remove(gone)
        results.append(index.search(q, 10, nprobe=2, rerank=30, filter=bg.Filter.eq("cat", 0)))
    native, numba = results
    assert set(native.plans) == {"ivf"}
    kept = native.ids[native.ids >= 0]
    assert (cat[kept] == 0).all() and not np.isin(kept, gone).any()
    assert_same_neighbours(native.ids, native.distances, numba.ids, numba.distances,
                           rtol=1e-4, atol=1e-4, max_differing_rows=0.03)


_LEVEL_SEARCH = """
import sys
import numpy as np
import bitgraph as bg
sys.path.insert(0, {tests!r})
from bg_testutil import clustered
x, q = clustered(4000, 24, seed=7), clustered(100, 24, seed=8)
index = bg.IVFIndex(24, metric="ip", nlist=10, backend="native")
index.add(x)
res = index.search(q, 10, nprobe=3, rerank=30)
np.save({out!r}, np.stack([res.ids.astype(np.float64), res.distances.astype(np.float64)]))
"""


@pytest.mark.parametrize("level", ["generic", "avx2"])
def test_lower_simd_levels_agree(level, tmp_path):
    """The scan, its candidate masks and the tables at a lower instruction-set level
    (BITGRAPH_SIMD caps it) find what the level this CPU picks finds."""
    from bitgraph._backend import available_backends

    if "native" not in available_backends():
        pytest.skip("needs the native backend")
    from bitgraph import _core

    if not _core.simd_level_supported(level):
        pytest.skip(f"{level} not supported on this CPU/build")
    runs = {}
    for name, cap in (("default", None), (level, level)):
        env = dict(os.environ, BITGRAPH_BACKEND="native")
        env.pop("BITGRAPH_SIMD", None)
        if cap:
            env["BITGRAPH_SIMD"] = cap
        out = str(tmp_path / f"{name}.npy")
        code = _LEVEL_SEARCH.format(tests=str(Path(__file__).parent), out=out)
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        runs[name] = np.load(out)
    (ids_a, d_a), (ids_b, d_b) = runs["default"], runs[level]
    assert_same_neighbours(ids_a.astype(np.int64), d_a, ids_b.astype(np.int64), d_b,
                           rtol=1e-4, atol=1e-4, max_differing_rows=0.03)


def test_threads_do_not_change_results(backend, ivf_data):
    x, q = ivf_data
    index = _index(backend, "l2", x)
    one = index.search(q, 10, threads=1)
    two = index.search(q, 10, threads=2)
    np.testing.assert_array_equal(one.ids, two.ids)
    np.testing.assert_array_equal(one.distances, two.distances)


def test_ids_k_beyond_size_and_empty(backend):
    index = bg.IVFIndex(4, metric="l2", backend=backend)
    empty = index.search(np.zeros((2, 4)), 3)
    assert (empty.ids == -1).all() and np.isposinf(empty.distances).all()
    x = np.arange(20, dtype=np.float32).reshape(5, 4)
    index.add(x, ids=[10, 11, 12, 13, 14])
    res = index.search(x[:1], 8, nprobe=EVERYTHING)
    assert_valid_result(res, 8)
    assert res.ids[0, 0] == 10 and res.distances[0, 0] == 0
    assert sorted(res.ids[0, :5].tolist()) == [10, 11, 12, 13, 14] and (res.ids[0, 5:] == -1).all()


def test_remove_replace_and_add_after_training(backend, ivf_data):
    x, q = ivf_data
    index = _index(backend, "l2", x)
    before = index.search(q, 10, nprobe=EVERYTHING, rerank=EVERYTHING)
    gone = np.unique(before.ids[:, 0])
    index.remove(gone)
    after = index.search(q, 10, nprobe=EVERYTHING, rerank=EVERYTHING)
    assert not np.isin(after.ids, gone).any()
    keep = np.setdiff1d(np.arange(len(x)), gone)
    ids, d = reference_search(x[keep], q, 10, "l2", ids=keep)
    assert_same_neighbours(after.ids, after.distances, ids, d, rtol=1e-4, atol=1e-4)
    # Re-adding an id replaces its vector; new ids after training join the trained lists.
    index.add(q[:1], ids=[int(keep[0])])
    index.add(q[1:2] + 0.001, ids=[10_000])
    res = index.search(q[:2], 1, nprobe=EVERYTHING)
    assert res.ids[0, 0] == keep[0] and res.ids[1, 0] == 10_000
    np.testing.assert_allclose(index.get_vectors([int(keep[0])]), q[:1], rtol=1e-6)
    assert len(index) == len(x) - len(gone) + 1


def test_retrains_after_growth(backend):
    x = clustered(4000, 8, seed=4)
    index = bg.IVFIndex(8, metric="l2", backend=backend)
    index.add(x[:200])
    index.search(x[:1], 1)
    small_lists = index.nlist
    index.add(x[200:])  # 20x the rows the lists were trained on
    index.search(x[:1], 1)
    assert index.nlist > small_lists
    explicit = bg.IVFIndex(8, metric="l2", nlist=7, backend=backend)
    explicit.add(x)
    explicit.train()
    assert explicit.nlist == 7


def test_train_on_a_sample_before_adding(backend, ivf_data):
    x, q = ivf_data
    index = bg.IVFIndex(24, metric="cosine", nlist=20, backend=backend)
    index.train(x[:1000])
    assert index.is_trained and index.nlist == 20 and len(index) == 0
    index.add(x)
    res = index.search(q, 5, nprobe=EVERYTHING, rerank=EVERYTHING)
    ids, d = reference_search(x, q, 5, "cosine")
    assert_same_neighbours(res.ids, res.distances, ids, d, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("share", [0.05, 0.5])
def test_filtered_search(backend, ivf_data, share):
    x, q = ivf_data
    n = len(x)
    cat = (np.arange(n) % int(round(1 / share))).astype(np.int64)
    index = bg.IVFIndex(24, metric="l2", backend=backend)
    index.add(x, attributes={"cat": cat})
    f = bg.Filter.eq("cat", 0)
    res = index.search(q, 10, filter=f, nprobe=EVERYTHING, rerank=EVERYTHING)
    allowed = np.flatnonzero(cat == 0)
    assert np.isin(res.ids[res.ids >= 0], allowed).all()
    ids, d = reference_search(x[allowed], q, 10, "l2", ids=allowed)
    assert_same_neighbours(res.ids, res.distances, ids, d, rtol=1e-4, atol=1e-4)
    assert set(res.plans) == {"exact" if share < 0.1 else "ivf"}
    # Per-query filters: each query gets only its own filter's items.
    per = [bg.Filter.eq("cat", i % 2) if i % 3 else None for i in range(len(q))]
    mixed = index.search(q, 5, filter=per)
    for i, row in enumerate(mixed.ids):
        if i % 3:
            assert (cat[row[row >= 0]] == i % 2).all()
        else:
            assert mixed.plans[i] == "unfiltered"


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_and_pickle(backend, ivf_data, tmp_path, mmap):
    x, q = ivf_data
    index = _index(backend, "cosine", x[:3000], nprobe=5)
    index.remove([0, 1, 2])
    want = index.search(q, 10)
    path = tmp_path / "ivf.bg"
    index.save(path)
    loaded = bg.load(path, mmap=mmap)
    assert isinstance(loaded, bg.IVFIndex) and loaded.nlist == index.nlist
    got = loaded.search(q, 10)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.distances, want.distances, rtol=1e-6)
    clone = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(clone.search(q, 10).ids, want.ids)
    # The loaded index keeps working: adds join its trained lists.
    loaded.add(x[3000:])
    assert len(loaded) == len(x) - 3
    assert loaded.search(q, 10, nprobe=EVERYTHING, rerank=EVERYTHING).ids.shape == (100, 10)


def test_untrained_index_saves(backend, tmp_path):
    index = bg.IVFIndex(4, metric="l2", backend=backend)
    index.add(np.eye(4, dtype=np.float32))
    index.save(tmp_path / "u.bg")
    loaded = bg.load(tmp_path / "u.bg")
    assert not loaded.is_trained
    assert loaded.search(np.eye(4, dtype=np.float32), 1).ids[:, 0].tolist() == [0, 1, 2, 3]


def test_bad_input(backend, ivf_data):
    x, q = ivf_data
    index = _index(backend, "l2", x[:500])
    with pytest.raises(bg.BitgraphValueError):
        index.search(q[:, :5], 3)
    bad = q[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(bg.BitgraphValueError):
        index.search(bad, 3)
    for kwargs in ({"nprobe": 0}, {"rerank": 0}, {"ef": -1}):
        with pytest.raises(bg.BitgraphValueError):
            index.search(q, 3, **kwargs)
    with pytest.raises((bg.BitgraphValueError, bg.BitgraphTypeError)):
        index.search(q, 0)
    with pytest.raises(bg.BitgraphValueError):
        bg.IVFIndex(4, nlist=0)
    with pytest.raises(bg.BitgraphValueError):
        bg.IVFIndex(4, dims_per_code=8)
    with pytest.raises(bg.BitgraphValueError):
        index.to("cuda")
    with pytest.raises(bg.BitgraphValueError):
        bg.IVFIndex(4).train(np.zeros((0, 4), dtype=np.float32))


def test_corrupt_partition_is_a_file_error(backend, ivf_data, tmp_path):
    from bitgraph import persistence

    x, _ = ivf_data
    index = _index(backend, "l2", x[:500])
    index.search(x[:1], 1)  # trains and encodes every row
    meta, arrays = index._state_for_save()
    arrays["ivf.lists"] = arrays["ivf.lists"].copy()
    arrays["ivf.lists"][0] = 10_000  # a list that does not exist
    persistence.save_atomic(tmp_path / "bad.bg", meta, arrays)
    with pytest.raises(bg.IndexFileError):
        bg.load(tmp_path / "bad.bg")
