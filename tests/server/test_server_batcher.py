"""The search batcher: coalescing, no wait when idle, a bounded queue, errors to every caller."""

from __future__ import annotations

import threading
import time

import bitgraph as bg
import numpy as np
import pytest
from bitgraph.server.batcher import SearchBatcher
from bitgraph.server.errors import ApiError


class FakeIndex:
    """search() answers each query with its own first value; records the batch sizes."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.delay, self.fail = delay, fail

    def search(self, queries, k, ef, filters, oversample, threads=None):
        self.batches.append(len(queries))
        time.sleep(self.delay)
        if self.fail:
            raise bg.BitgraphValueError("bad query")
        ids = np.repeat(queries[:, :1].astype(np.int64), k, axis=1)
        return bg.SearchResult(ids, np.zeros(ids.shape, np.float32))


def test_concurrent_queries_are_coalesced_and_answered_right():
    index = FakeIndex(delay=0.02)
    b = SearchBatcher(index.search, max_batch=64, max_wait_s=0)
    futures = [b.submit(np.array([i, 0], np.float32), 3, None, None, None) for i in range(100)]
    for i, f in enumerate(futures):
        ids, _ = f.result(5)
        assert ids.tolist() == [i] * 3
    b.stop()
    assert sum(index.batches) == 100 and max(index.batches) > 1 and max(index.batches) <= 64


def test_groups_by_k_and_ef():
    index = FakeIndex(delay=0.01)
    b = SearchBatcher(index.search)
    fs = [b.submit(np.array([i], np.float32), 1 + i % 2, None, None, None) for i in range(20)]
    for i, f in enumerate(fs):
        assert f.result(5)[0].tolist() == [i] * (1 + i % 2)
    b.stop()


def test_a_lone_query_does_not_wait():
    index = FakeIndex()
    b = SearchBatcher(index.search, max_wait_s=0.5)  # a long wait, never used when idle
    t0 = time.perf_counter()
    with b.arriving() as a:
        f = a.submit(np.array([1.0]), 1, None, None, None)
    f.result(5)
    assert time.perf_counter() - t0 < 0.25
    b.stop()


def test_waits_for_requests_on_their_way():
    index = FakeIndex()
    b = SearchBatcher(index.search, max_wait_s=0.5)
    first, second = b.arriving(), b.arriving()
    first.__enter__(), second.__enter__()
    f1 = first.submit(np.array([1.0]), 1, None, None, None)
    time.sleep(0.05)
    f2 = second.submit(np.array([2.0]), 1, None, None, None)
    assert f1.result(5)[0].tolist() == [1] and f2.result(5)[0].tolist() == [2]
    assert index.batches == [2]  # the worker waited for the second
    b.stop()


def test_full_queue_answers_429_and_errors_reach_every_caller():
    gate = threading.Event()
    b = SearchBatcher(lambda *a, **k: gate.wait(5) and FakeIndex(fail=True).search(*a, **k),
                      max_batch=2, max_queue=3)
    fs = [b.submit(np.array([1.0]), 1, None, None, None)]
    deadline = time.monotonic() + 10
    while b.depth and time.monotonic() < deadline:  # until the worker holds the first batch
        time.sleep(0.001)
    fs += [b.submit(np.array([1.0]), 1, None, None, None) for _ in range(3)]
    with pytest.raises(ApiError) as e:
        b.submit(np.array([1.0]), 1, None, None, None)
    assert e.value.status == 429 and e.value.headers["Retry-After"]
    gate.set()
    for f in fs:
        with pytest.raises(bg.BitgraphValueError):
            f.result(5)
    b.stop()
    with pytest.raises(ApiError) as e:
        b.submit(np.array([1.0]), 1, None, None, None)
    assert e.value.status == 503
