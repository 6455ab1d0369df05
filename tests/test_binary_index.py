"""BinaryIndex: code search (flat scan and HNSW over codes) with float re-ranking, on every
backend; recall against exact search, persistence, filters and bad input."""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest

import bitgraph as bg
from bitgraph.binary import RecurrentBinarizer

from bg_testutil import BACKENDS, assert_valid_result, clustered, exact_distances, recall
from test_code_kernels import code_distances_reference

DIM = 48
N = 3000


@pytest.fixture(scope="module")
def data():
    base = clustered(N, DIM, seed=1, n_clusters=30)
    queries = clustered(60, DIM, seed=2, n_clusters=30)
    truth = np.argsort(exact_distances(base, queries, "cosine"), axis=1)[:, :10]
    return base, queries, truth


@pytest.fixture(scope="module")
def binarizers(data):
    base = data[0]
    return {loops: RecurrentBinarizer(DIM, loops=loops, learned=False, seed=3).fit(base)
            for loops in (1, 2)}


def make(binarizers, data, *, loops=2, backend=None, **kw):
    idx = bg.BinaryIndex(binarizers[loops], backend=backend, **kw)
    idx.add(data[0], threads=1)
    return idx


@pytest.mark.parametrize("graph", ["flat", "hnsw"])
@pytest.mark.parametrize("rerank", ["memory", "mmap"])
def test_reranked_recall_close_to_exact(binarizers, data, backend, graph, rerank):
    idx = make(binarizers, data, backend=backend, graph=graph, rerank=rerank, M=16)
    res = idx.search(data[1], 10, oversample=8, ef=128)
    assert_valid_result(res, 10)
    assert recall(res.ids, data[2]) >= 0.9
    # re-ranked distances are exact cosine distances of the returned ids
    full = exact_distances(data[0], data[1], "cosine")
    np.testing.assert_allclose(res.distances, np.take_along_axis(full, res.ids, 1), atol=2e-5)


@pytest.mark.parametrize("offsets", [False, True])
@pytest.mark.parametrize("graph", ["flat", "hnsw"])
@pytest.mark.parametrize("distance", ["sdc", "hamming"])
def test_without_rerank_distances_are_the_exact_code_distances(binarizers, data, backend,
                                                               distance, graph, offsets):
    """Flat: the exact code ranking; both graphs: code distance + both rows' offsets."""
    idx = make(binarizers, data, backend=backend, graph=graph, rerank=None, distance=distance,
               offsets=offsets)
    assert idx.offsets is offsets
    res = idx.search(data[1], 10, ef=200)
    binz = binarizers[2]
    codes, qcodes = binz.encode(data[0]), binz.encode(data[1])
    np.testing.assert_array_equal(idx.codes, codes)
    off_d = binz.offsets(data[0], distance).astype(np.int64) if offsets else 0
    off_q = binz.offsets(data[1], distance).astype(np.int64) if offsets else np.zeros(60, int)
    for qi in range(len(qcodes)):
        ref = code_distances_reference(qcodes[qi], codes, 2, distance) + off_d + off_q[qi]
        np.testing.assert_array_equal(ref[res.ids[qi]], res.distances[qi])
        if graph == "hnsw":
            continue
        np.testing.assert_array_equal(res.distances[qi], np.sort(ref)[:10])
        np.testing.assert_array_equal(ref[res.ids[qi]], res.distances[qi])


def test_oversampling_and_rerank_improve_recall(binarizers, data):
    plain = make(binarizers, data, graph="flat", rerank=None, loops=1)
    reranked = make(binarizers, data, graph="flat", rerank="memory", loops=1)
    r_plain = recall(plain.search(data[1], 10).ids, data[2])
    r1 = recall(reranked.search(data[1], 10, oversample=1).ids, data[2])
    r8 = recall(reranked.search(data[1], 10, oversample=8).ids, data[2])
    assert r1 >= r_plain - 1e-9  # same candidates, better order within them
    assert r8 > r1 + 0.05


def test_two_bit_sdc_ranks_better_than_one_bit(binarizers, data):
    one = make(binarizers, data, graph="flat", rerank=None, loops=1)
    two = make(binarizers, data, graph="flat", rerank=None, loops=2)
    assert recall(two.search(data[1], 10).ids, data[2]) > recall(one.search(data[1], 10).ids,
                                                                  data[2])


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both backends")
@pytest.mark.parametrize("graph", ["flat", "hnsw"])
def test_backends_agree(binarizers, data, graph):
    found = {}
    for backend in BACKENDS:
        idx = make(binarizers, data, backend=backend, graph=graph, rerank=None, M=12)
        found[backend] = idx.search(data[1], 10, ef=64)
    a, b = found["native"], found["numba"]
    if graph == "flat":  # same codes: the same code distances (ids may differ among ties)
        np.testing.assert_array_equal(a.distances, b.distances)
    else:  # the backends draw other HNSW levels, so their graphs differ slightly
        assert np.mean(a.distances == b.distances) >= 0.95
    rr = {be: make(binarizers, data, backend=be, graph=graph, rerank="memory", M=12)
          .search(data[1], 10, ef=64) for be in BACKENDS}
    # Candidates tied at the oversample cut-off may differ, so re-ranked lists agree closely
    # rather than exactly.
    assert recall(rr["native"].ids, rr["numba"].ids) >= 0.95
    assert abs(float(rr["native"].distances.mean() - rr["numba"].distances.mean())) < 2e-3


def test_rerank_memory_and_mmap_agree(binarizers, data, backend, tmp_path):
    mem = make(binarizers, data, backend=backend, graph="hnsw", rerank="memory", M=12)
    mapped = make(binarizers, data, backend=backend, graph="hnsw", rerank="mmap", M=12,
                  rerank_dir=str(tmp_path))
    a, b = mem.search(data[1], 10), mapped.search(data[1], 10)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.distances, b.distances)
    assert mapped.nbytes < mem.nbytes - N * DIM * 4 * 0.9  # floats not in RAM
    assert mapped.mapped_nbytes >= N * DIM * 4
    # The spill file lives where asked, already unlinked: nothing is left even after kill -9.
    assert os.listdir(tmp_path) == []
    if os.path.isdir("/proc/self/fd"):
        target = os.readlink(f"/proc/self/fd/{mapped._rerank._file.fileno()}")
        assert target.startswith(str(tmp_path)) and target.endswith("(deleted)"), target


def test_codes_are_the_binarizer_codes(binarizers, data, backend):
    idx = make(binarizers, data, backend=backend, graph="flat", rerank=None)
    np.testing.assert_array_equal(idx.codes, binarizers[2].encode(data[0]))
    assert idx.code_bytes == binarizers[2].code_bytes
    assert idx.storage == "binary" and idx.dim == DIM and len(idx) == N


@pytest.mark.parametrize("graph", ["flat", "hnsw"])
@pytest.mark.parametrize("rerank", ["memory", "mmap", None])
def test_save_load_round_trip(binarizers, data, backend, tmp_path, graph, rerank):
    idx = make(binarizers, data, backend=backend, graph=graph, rerank=rerank, M=12)
    before = idx.search(data[1], 10)
    path = tmp_path / "b.bg"
    idx.save(path)
    for mmap in (False, True):
        loaded = bg.load(path, mmap=mmap, backend=backend)
        assert isinstance(loaded, bg.BinaryIndex)
        assert (loaded.graph, loaded.distance, loaded.rerank) == (graph, "asymmetric", rerank)
        after = loaded.search(data[1], 10)
        np.testing.assert_array_equal(after.ids, before.ids)
        np.testing.assert_array_equal(after.distances, before.distances)
        if rerank == "mmap":
            # the floats stay on disk (mapped) even when the rest is read into memory
            from bitgraph.persistence import is_mapped

            assert is_mapped(loaded._rerank.vectors) and loaded._rerank.nbytes == 0
        # adding to a loaded index copies on write and never touches the file
        loaded.add(data[1][:5], ids=np.arange(10_000, 10_005))
        assert set(loaded.search(data[1][:5], 1).ids[:, 0]) == set(range(10_000, 10_005))
    bg.load(path, verify=True)  # the file is intact
    clone = pickle.loads(pickle.dumps(idx))
    np.testing.assert_array_equal(clone.search(data[1], 10).ids, before.ids)


def test_truncated_file_is_refused(binarizers, data, tmp_path):
    idx = make(binarizers, data, graph="flat", rerank="mmap")
    path = tmp_path / "b.bg"
    idx.save(path)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(bg.IndexFileError):
        bg.load(path)


@pytest.mark.parametrize("graph", ["flat", "hnsw"])
def test_remove_and_replace(binarizers, data, backend, graph):
    idx = make(binarizers, data, backend=backend, graph=graph, rerank="memory", M=12)
    first = idx.search(data[1], 5).ids
    gone = np.unique(first[:, 0])
    idx.remove(gone)
    assert not np.isin(idx.search(data[1], 10).ids, gone).any()
    # re-adding an id with a new vector: the new vector is what is found and re-ranked
    idx.add(data[1][:1], ids=[int(gone[0])])
    res = idx.search(data[1][:1], 1)
    assert res.ids[0, 0] == gone[0] and res.distances[0, 0] < 1e-5
    with pytest.raises(bg.UnknownIdError):
        idx.remove([10**9])


def test_filters(binarizers, data, backend):
    idx = bg.BinaryIndex(binarizers[2], graph="hnsw", M=12, backend=backend)
    labels = np.arange(N) % 7
    idx.add(data[0], attributes={"label": labels})
    res = idx.search(data[1], 10, filter=bg.Filter.eq("label", 3))
    assert (labels[res.ids] == 3).all()
    assert (res.counts == 10).all()
    truth = np.argsort(np.where(labels[None, :] == 3, exact_distances(data[0], data[1], "cosine"),
                                np.inf), axis=1)[:, :10]
    assert recall(res.ids, truth) >= 0.9
    assert idx.count(bg.Filter.eq("label", 3)) == int((labels == 3).sum())


def test_empty_and_small_index(binarizers, data, backend):
    idx = bg.BinaryIndex(binarizers[2], backend=backend)
    res = idx.search(data[1][:2], 3)
    assert (res.ids == -1).all() and np.isposinf(res.distances).all()
    idx.add(data[0][:2])
    res = idx.search(data[1][:2], 5)
    assert (res.counts == 2).all()
    assert_valid_result(res, 5)


def test_threads_search_concurrently(binarizers, data):
    idx = make(binarizers, data, graph="hnsw", rerank="mmap", M=12)
    expected = idx.search(data[1], 10).ids
    errors = []

    def worker():
        try:
            for _ in range(5):
                np.testing.assert_array_equal(idx.search(data[1], 10, threads=1).ids, expected)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_bad_arguments(binarizers, data):
    with pytest.raises(bg.BitgraphTypeError):
        bg.BinaryIndex("not a binarizer")
    with pytest.raises(bg.BitgraphValueError, match="not fitted"):
        bg.BinaryIndex(RecurrentBinarizer(DIM, learned=False))
    for kw in (dict(graph="ivf"), dict(distance="l2"), dict(rerank="disk"), dict(M=1),
               dict(metric="dot")):
        with pytest.raises(bg.BitgraphValueError):
            bg.BinaryIndex(binarizers[1], **kw)
    idx = make(binarizers, data, graph="flat")
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(bg.BitgraphValueError, match="oversample"):
            idx.search(data[1], 10, oversample=bad)
    with pytest.raises(bg.BitgraphTypeError):
        idx.search(data[1], 10, oversample="lots")
    with pytest.raises(bg.BitgraphValueError):
        idx.search(np.zeros((2, DIM + 1), np.float32), 10)
    with pytest.raises(bg.BitgraphValueError):
        idx.search(np.full((2, DIM), np.nan, np.float32), 10)
    with pytest.raises(bg.BitgraphValueError):
        idx.add(np.full((2, DIM), np.inf, np.float32))
    with pytest.raises(bg.BitgraphValueError):
        idx.search(data[1], 0)
    assert len(idx) == N  # failed adds added nothing


def test_repr_and_properties(binarizers, data):
    idx = make(binarizers, data, graph="hnsw", rerank=None, M=12)
    text = repr(idx)
    assert "BinaryIndex" in text and "hnsw" in text and "bits_per_dim=2" in text
    # asymmetric is the default for a binarizer fitted with a query grid
    assert idx.binarizer is binarizers[2] and idx.rerank is None and idx.distance == "asymmetric"


def test_query_binarizer_searches_codes_of_an_older_model(data):
    base, queries, truth = data
    old = RecurrentBinarizer(DIM, loops=2, learned=True, seed=1).fit(base[:1500])
    new = RecurrentBinarizer(DIM, loops=2, learned=True, seed=2).fit(base[1500:],
                                                                     compatible_with=old)
    idx = bg.BinaryIndex(old, graph="flat", rerank="memory")
    idx.add(base)
    same = recall(idx.search(queries, 10).ids, truth)
    cross = recall(idx.search(queries, 10, query_binarizer=new).ids, truth)
    assert cross >= same - 0.1 and cross > 0.5
    # without compatible training, a new model's codes do not line up with the old ones
    independent = RecurrentBinarizer(DIM, loops=2, learned=True, seed=2).fit(base[1500:])
    assert recall(idx.search(queries, 10, query_binarizer=independent).ids, truth) < cross - 0.2
    other = RecurrentBinarizer(DIM, loops=1, learned=False).fit(base)
    with pytest.raises(bg.BitgraphValueError, match="other codes"):
        idx.search(queries, 10, query_binarizer=other)
    with pytest.raises(bg.BitgraphTypeError):
        idx.search(queries, 10, query_binarizer="new")


@pytest.mark.parametrize("graph", ["flat", "hnsw"])
def test_offsets_with_many_planes(data, backend, graph):
    """6 one-word planes: the popcount kernels (no fast-scan) plus offsets, exact."""
    base, queries = data[0], data[1]
    binz = RecurrentBinarizer(DIM, loops=6, code_dim=64, learned=False, seed=1).fit(base)
    idx = bg.BinaryIndex(binz, graph=graph, rerank=None, backend=backend, distance="sdc")
    idx.add(base, threads=1)
    assert idx.offsets
    res = idx.search(queries, 5, ef=300)
    codes, qcodes = binz.encode(base), binz.encode(queries)
    off_d, off_q = binz.offsets(base).astype(np.int64), binz.offsets(queries).astype(np.int64)
    for qi in range(len(queries)):
        ref = code_distances_reference(qcodes[qi], codes, 6, "sdc") + off_d + off_q[qi]
        np.testing.assert_array_equal(ref[res.ids[qi]], res.distances[qi])
        if graph == "flat":
            np.testing.assert_array_equal(res.distances[qi], np.sort(ref)[:5])


def test_offsets_choice_and_persistence(binarizers, data, tmp_path):
    meta, arrays = binarizers[2].get_state()
    meta.pop("offsets")
    old_model = RecurrentBinarizer.from_state(meta, arrays)        # fitted before offsets
    assert not bg.BinaryIndex(old_model).offsets                   # default: when available
    with pytest.raises(bg.BitgraphValueError, match="offsets=True"):
        bg.BinaryIndex(old_model, offsets=True)
    with pytest.raises(bg.BitgraphTypeError):
        bg.BinaryIndex(binarizers[2], offsets="yes")
    long_code = RecurrentBinarizer(DIM, loops=8, code_dim=192, learned=False).fit(data[0])
    assert not bg.BinaryIndex(long_code, distance="sdc").offsets   # SDC values too large
    with pytest.raises(bg.BitgraphValueError, match="2\\^23"):
        bg.BinaryIndex(long_code, offsets=True, distance="sdc")
    for offsets in (False, True):
        idx = make(binarizers, data, graph="hnsw", rerank=None, offsets=offsets)
        before = idx.search(data[1], 10)
        idx.save(tmp_path / f"o{offsets}.bg")
        loaded = bg.load(tmp_path / f"o{offsets}.bg")
        assert loaded.offsets is offsets
        after = loaded.search(data[1], 10)
        np.testing.assert_array_equal(before.ids, after.ids)
        np.testing.assert_array_equal(before.distances, after.distances)


def test_rerank_dir_must_be_an_existing_directory(binarizers, tmp_path):
    binz = binarizers[2]
    for bad in (str(tmp_path / "missing"), str(tmp_path / "file.txt")):
        (tmp_path / "file.txt").write_text("x")
        with pytest.raises(bg.BitgraphValueError, match="rerank_dir"):
            bg.BinaryIndex(binz, rerank="mmap", rerank_dir=bad)
    with pytest.raises(bg.BitgraphTypeError, match="rerank_dir"):
        bg.BinaryIndex(binz, rerank="mmap", rerank_dir=3)
