"""Memory the indexes hold: bounded growth slack, reserve / shrink_to_fit, and nbytes /
mapped_nbytes that say what is really held (sizes, not speed: RSS lives in bench/)."""

from __future__ import annotations

import numpy as np
import pytest

import bitgraph as bg

N, DIM = 12_000, 48  # rows of 192 bytes: 2.3 MB of vectors, above the doubling threshold
# Buffers below 1 MiB still double (their slack is cheap): at most ~1 MiB over all of them.
SMALL = 1 << 20


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(0).standard_normal((N, DIM)).astype(np.float32)


def _make(kind, backend):
    if kind == "hnsw":
        return bg.HNSWIndex(DIM, metric="l2", M=8, ef_construction=8, backend=backend)
    return bg.FlatIndex(DIM, metric="l2", backend=backend)


def _add_in_chunks(index, x, chunk):
    for start in range(0, len(x), chunk):
        index.add(x[start:start + chunk], threads=1)


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_chunked_adds_hold_little_more_than_one_add(backend, vectors, kind):
    """Doubling buffers held up to 2x after a streaming ingest (61,678 x 384 in chunks of
    5,000: 210 MB for 101 MiB of data; here chunks of 700 doubled to 22,400 rows for 12,000);
    growth now keeps the slack of large buffers within ~3%."""
    one = _make(kind, backend)
    one.add(vectors, threads=1)
    chunked = _make(kind, backend)
    _add_in_chunks(chunked, vectors, 700)
    assert chunked.nbytes <= 1.04 * one.nbytes + SMALL, (chunked.nbytes, one.nbytes)
    before = chunked.search(vectors[:50], k=5)
    chunked.shrink_to_fit()
    assert chunked.nbytes <= 1.01 * one.nbytes + SMALL
    after = chunked.search(vectors[:50], k=5)  # the same index after shrinking
    assert np.array_equal(before.ids, after.ids)
    assert np.array_equal(before.distances, after.distances)


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_reserve_then_add_allocates_nothing_more(backend, vectors, kind):
    index = _make(kind, backend)
    index.add(vectors[:10], threads=1)
    index.reserve(N)
    reserved = index.nbytes
    _add_in_chunks(index, vectors[10:], 1000)
    # the level-0 arrays were reserved exactly; upper levels get their expected share
    assert index.nbytes <= 1.01 * reserved, (index.nbytes, reserved)
    one = _make(kind, backend)
    one.add(vectors, threads=1)
    assert index.nbytes <= 1.02 * one.nbytes + SMALL
    with pytest.raises(bg.BitgraphValueError):
        index.reserve(2**40)
    with pytest.raises(bg.BitgraphTypeError):
        index.reserve(1.5)


def test_save_gives_back_free_slack(tmp_path, vectors):
    index = _make("flat", "native")
    _add_in_chunks(index, vectors, 700)
    before = index.nbytes
    index.save(tmp_path / "x.bg")
    one = _make("flat", "native")
    one.add(vectors)
    assert index.nbytes <= before and index.nbytes <= 1.01 * one.nbytes + SMALL
    index.add(vectors[:5])  # and grows again
    assert len(index) == N + 5


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_nbytes_of_loaded_indexes(tmp_path, backend, vectors, kind):
    index = _make(kind, backend)
    index.add(vectors[:4000], threads=1)
    index.shrink_to_fit()
    index.save(tmp_path / "x.bg")
    vector_bytes = 4000 * DIM * 4
    read = bg.load(tmp_path / "x.bg", backend=backend)
    assert read.nbytes >= vector_bytes and read.mapped_nbytes == 0  # read into RAM: held
    mapped = bg.load(tmp_path / "x.bg", mmap=True, backend=backend)
    assert mapped.nbytes < vector_bytes / 4 and mapped.mapped_nbytes >= vector_bytes
    assert "memory-mapped" in repr(mapped) and "memory-mapped" not in repr(read)
    mapped.add(vectors[4000:4010], threads=1)  # the first add copies the mapped arrays
    assert mapped.mapped_nbytes == 0 and mapped.nbytes >= vector_bytes


def test_binary_index_memory(backend, vectors, tmp_path):
    binz = bg.RecurrentBinarizer(DIM, loops=2, learned=False).fit(vectors[:2000])
    index = bg.BinaryIndex(binz, graph="flat", rerank="memory", backend=backend)
    _add_in_chunks(index, vectors, 1500)
    floats = N * DIM * 4
    assert floats <= index.nbytes <= 1.05 * (floats + N * (binz.code_bytes + 4 + 9)) + (1 << 20)
    index.reserve(N + 2000)
    index.shrink_to_fit()
    assert index.nbytes <= 1.01 * (floats + N * (binz.code_bytes + 4 + 9)) + (1 << 20)
    mapped = bg.BinaryIndex(binz, graph="flat", rerank="mmap", backend=backend)
    mapped.add(vectors[:3000])
    assert mapped.mapped_nbytes >= 3000 * DIM * 4 > mapped.nbytes


def test_attributes_grow_with_bounded_slack(backend, vectors):
    index = _make("flat", backend)
    for start in range(0, N, 500):
        stop = min(N, start + 500)
        index.add(vectors[start:stop], attributes={"cat": np.arange(start, stop)})
    held = index._attributes.nbytes
    assert held <= 1.05 * N * 8 + (1 << 20), held
