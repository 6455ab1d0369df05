"""Searching from many Python threads, also while another thread adds or removes.

What is guaranteed (api.md, _index_base.py, csrc/hnsw/hnsw_index.hpp, _numba/slots.py):

* ``search`` may run from any number of threads at once. Searches do not change the index, so
  concurrent searches return exactly what the same searches return one after another.
* ``add``, ``remove`` and ``save`` are serialised by a per-index lock; two threads adding at
  once both succeed, as if one ran after the other.
* A search that overlaps an ``add`` sees the items whose insertion finished and possibly some
  still being linked: its result is always well formed (k columns, -1/+inf padding at the end,
  distances ascending, no duplicate ids), every id in it was added at some point, and each
  distance is the true distance of that id's vector. Recall during the add is not guaranteed;
  after ``add`` returns, every search sees all the new items.
* A search that overlaps a ``remove`` may or may not return the items being removed; once
  ``remove`` has returned, they never come back.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import bitgraph as bg

from bg_testutil import assert_valid_result, clustered, recall, reference_distances

K = 5


def _run_readers_beside(writer, reader, n_readers, *, writer_timeout, reader_timeout):
    """Starts ``n_readers`` threads running ``reader(seed)`` and one running ``writer()``;
    waits for the writer, then for the readers (they stop once the writer is done)."""
    readers = [threading.Thread(target=reader, args=(s,)) for s in range(n_readers)]
    w = threading.Thread(target=writer)
    for t in readers:
        t.start()
    w.start()
    w.join(timeout=writer_timeout)
    for t in readers:
        t.join(timeout=reader_timeout)


def _make(kind, backend, dim, metric="l2"):
    if kind == "hnsw":
        return bg.HNSWIndex(dim, metric=metric, M=8, ef_construction=60, backend=backend)
    return bg.FlatIndex(dim, metric=metric, backend=backend)


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_parallel_searches_equal_serial(backend, data, kind):
    x, q = data
    index = _make(kind, backend, x.shape[1])
    index.add(x)
    serial = index.search(q, k=K, ef=40, threads=1)
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(48):
        rows = np.sort(rng.choice(len(q), size=int(rng.integers(1, 60)), replace=False))
        jobs.append((rows, 1 + i % 3))  # 1, 2 or 3 worker threads per call

    def run(job):
        rows, threads = job
        return index.search(q[rows], k=K, ef=40, threads=threads)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, jobs))
    for (rows, _), res in zip(jobs, results):
        assert np.array_equal(res.ids, serial.ids[rows])
        assert np.array_equal(res.distances, serial.distances[rows])


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_search_while_adding(backend, kind):
    dim = 16
    x = clustered(4000, dim, seed=21)
    q = clustered(40, dim, seed=22)
    ids = np.arange(len(x), dtype=np.int64) * 7 + 3  # ids are not slot numbers
    index = _make(kind, backend, dim)
    index.add(x[:500], ids=ids[:500])
    full_d = reference_distances(x, q, "l2")  # (nq, n) true distances by position
    position = {int(i): p for p, i in enumerate(ids)}
    done = threading.Event()
    errors: list[BaseException] = []
    seen_sizes = []

    def writer():
        try:
            for chunk in np.array_split(np.arange(500, len(x)), 10):
                index.add(x[chunk], ids=ids[chunk], threads=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    def reader(seed):
        rng = np.random.default_rng(seed)
        try:
            while not done.is_set():
                rows = rng.choice(len(q), size=8, replace=False)
                res = index.search(q[rows], k=K, ef=32, threads=int(rng.integers(1, 3)))
                assert_valid_result(res, K, known_ids=ids)
                assert (res.counts == K).all()  # at least 500 items were always there
                real = res.ids >= 0
                # each distance is the true distance of that id's vector (no torn reads)
                pos = np.array([position[i] for i in res.ids[real].tolist()])
                expected = full_d[rows[np.nonzero(real)[0]], pos]
                np.testing.assert_allclose(res.distances[real], expected, rtol=1e-4, atol=1e-4)
                seen_sizes.append(len(index))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    _run_readers_beside(writer, reader, 3, writer_timeout=120, reader_timeout=120)
    assert not errors, errors[0]
    assert seen_sizes, "the readers never ran"
    assert len(index) == len(x)
    # once add has returned, everything is visible
    res = index.search(x[-50:], k=1, ef=64)
    assert recall(res.ids, ids[-50:, None]) >= 0.95


def test_search_while_removing(backend):
    dim = 16
    x = clustered(2000, dim, seed=23)
    q = clustered(30, dim, seed=24)
    index = _make("hnsw", backend, dim)
    index.add(x, threads=1)
    batches = np.array_split(np.random.default_rng(1).permutation(len(x))[:1000], 20)
    removed_before: list[set] = []  # ids whose remove() had returned before a search began
    errors: list[BaseException] = []
    done = threading.Event()
    finished: set[int] = set()

    def writer():
        try:
            for b in batches:
                index.remove(b)
                finished.update(b.tolist())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    def reader():
        try:
            while not done.is_set():
                gone = set(finished)
                res = index.search(q, k=K, ef=32)
                assert_valid_result(res, K, known_ids=np.arange(len(x)))
                assert not (set(res.ids[res.ids >= 0].tolist()) & gone)
                removed_before.append(gone)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert len(index) == 1000
    all_gone = np.concatenate(batches)
    res = index.search(np.concatenate([q, x[all_gone[:50]]]), k=20, ef=64)
    assert not np.isin(res.ids, all_gone).any()


def test_concurrent_adds_are_serialised(backend):
    dim = 8
    x = clustered(1200, dim, seed=25)
    index = _make("hnsw", backend, dim)
    parts = np.array_split(np.arange(len(x)), 6)
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda p: index.add(x[p], ids=p, threads=1), parts))
    assert len(index) == len(x)
    res = index.search(x, k=1, ef=64)
    assert (res.ids[:, 0] == np.arange(len(x))).mean() >= 0.98


def test_automatic_ids_from_many_threads_are_unique(backend):
    dim = 8
    x = clustered(600, dim, seed=26)
    index = _make("flat", backend, dim)
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda p: index.add(x[p]), np.array_split(np.arange(600), 12)))
    all_ids = np.concatenate(got)
    assert np.array_equal(np.sort(all_ids), np.arange(600))
    assert len(index) == 600


def test_save_while_adding(tmp_path, backend):
    """save holds the write lock: each file is a consistent snapshot of whole add calls."""
    dim = 8
    x = clustered(1500, dim, seed=27)
    index = _make("hnsw", backend, dim)
    index.add(x[:100])
    chunks = np.array_split(np.arange(100, 1500), 7)
    done = threading.Event()

    def writer():
        try:
            for c in chunks:
                index.add(x[c], ids=c, threads=1)
        finally:
            done.set()

    t = threading.Thread(target=writer)
    t.start()
    sizes = []
    i = 0
    while not done.is_set() or i == 0:
        path = tmp_path / f"snap{i}.bg"
        index.save(path)
        loaded = bg.load(path, backend=backend)
        sizes.append(len(loaded))
        res = loaded.search(x[:5], k=1)
        assert res.ids[:, 0].tolist() == [0, 1, 2, 3, 4]
        i += 1
    t.join()
    boundaries = {100 + sum(len(c) for c in chunks[:j]) for j in range(len(chunks) + 1)}
    assert set(sizes) <= boundaries, sizes


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_search_while_memory_moves(tmp_path, backend, kind):
    """Adds that grow buffers past 1 MiB (mappings grown with mremap), saves (which give back
    free slack), shrink_to_fit and reserve, all while other threads search."""
    dim = 24
    x = clustered(14_000, dim, seed=31)  # 1.3 MB of vectors
    q = clustered(30, dim, seed=32)
    index = _make(kind, backend, dim)
    index.add(x[:1000], threads=1)
    full_d = reference_distances(x, q, "l2")
    done = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            for i, chunk in enumerate(np.array_split(np.arange(1000, len(x)), 8)):
                index.add(x[chunk], ids=chunk, threads=1)
                if i % 3 == 0:
                    index.save(tmp_path / "x.bg")
                elif i % 3 == 1:
                    index.shrink_to_fit()
                else:
                    index.reserve(len(index) + 3000)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    def reader(seed):
        rng = np.random.default_rng(seed)
        try:
            while not done.is_set():
                rows = rng.choice(len(q), size=6, replace=False)
                res = index.search(q[rows], k=K, ef=24, threads=int(rng.integers(1, 3)))
                assert_valid_result(res, K, known_ids=np.arange(len(x)))
                real = res.ids >= 0
                expected = full_d[rows[np.nonzero(real)[0]], res.ids[real]]
                np.testing.assert_allclose(res.distances[real], expected, rtol=1e-4, atol=1e-4)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    _run_readers_beside(writer, reader, 2, writer_timeout=300, reader_timeout=60)
    assert not errors, errors[0]
    assert len(index) == len(x)
    assert len(bg.load(tmp_path / "x.bg", backend=backend)) > 1000


_FORKED: dict = {}


def _search_in_forked_child(_: int) -> np.ndarray:
    index, queries = _FORKED["index"], _FORKED["queries"]
    return index.search(queries, 5, ef=32, threads=2).ids


def test_multithreaded_search_in_a_forked_child():
    """multiprocessing's fork start method copies the process without the native core's pool
    workers (and maybe with a pool mutex held): a multi-threaded search in the child must still
    finish, on a pool of its own, with the parent's answers."""
    import multiprocessing as mp
    import warnings

    if "fork" not in mp.get_all_start_methods() or bg.backend_info()["backend"] != "native":
        pytest.skip("needs fork() and the native backend")
    x = clustered(3000, 16, seed=5)
    index = bg.HNSWIndex(16, metric="l2")
    index.add(x, threads=2)
    queries = x[:64]
    expect = index.search(queries, 5, ef=32, threads=2).ids  # the parent's pool is running
    _FORKED.update(index=index, queries=queries)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            with mp.get_context("fork").Pool(1) as pool:
                got = pool.apply_async(_search_in_forked_child, (0,)).get(timeout=120)
    finally:
        _FORKED.clear()
    assert np.array_equal(got, expect)


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_searches_start_no_threads():
    """The core's pool is started once: searches from many Python threads, each asking for
    many threads, add no OS threads beyond those Python threads (no thread per call, no
    oversubscription)."""
    if not os.path.isdir("/proc/self/task") or bg.backend_info()["backend"] != "native":
        pytest.skip("needs /proc and the native backend")
    x = clustered(4000, 16, seed=6)
    index = bg.HNSWIndex(16, metric="l2")
    index.add(x, threads=2)
    index.search(x[:256], 5, threads=8)  # the pool is running from here on
    callers = 6
    started = threading.Barrier(callers + 1)
    stop = threading.Event()
    peak = [0]

    def search_loop() -> None:
        started.wait()
        while not stop.is_set():
            index.search(x[:256], 5, threads=8)

    workers = [threading.Thread(target=search_loop) for _ in range(callers)]
    for t in workers:
        t.start()
    baseline = _os_threads()  # the pool's workers and the callers, all started
    started.wait()
    try:
        for _ in range(200):
            peak[0] = max(peak[0], _os_threads())
    finally:
        stop.set()
        for t in workers:
            t.join()
    assert peak[0] <= baseline, (peak[0], baseline)


def test_thread_pool_resizes():
    if bg.backend_info()["backend"] != "native":
        pytest.skip("the thread pool is the native core's")
    from bitgraph import _core

    x = clustered(2000, 16, seed=7)
    index = bg.HNSWIndex(16, metric="l2")
    index.add(x, threads=2)
    expect = index.search(x[:100], 5, ef=32, threads=1).ids
    try:
        _core.set_thread_pool_size(3)
        assert _core.thread_pool_size() == 3
        assert np.array_equal(index.search(x[:100], 5, ef=32, threads=4).ids, expect)
        _core.set_thread_pool_size(1)
        assert _core.thread_pool_size() == 1
        assert np.array_equal(index.search(x[:100], 5, ef=32, threads=4).ids, expect)
    finally:
        _core.set_thread_pool_size(0)
    assert _core.thread_pool_size() == max(0, len(os.sched_getaffinity(0)) - 1)
