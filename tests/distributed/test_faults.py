"""Faults: a shard actor killed in the middle of a search loop, and a shard that stays down."""

from __future__ import annotations

import threading
import time

import bitgraph as bg
import numpy as np
import pytest

ray = pytest.importorskip("ray")
from bitgraph.distributed import ShardedIndex, ShardUnavailableError, build_sharded

N, DIM = 4000, 16


@pytest.fixture(scope="module")
def built(ray_local, tmp_path_factory):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    ids = np.arange(N, dtype=np.int64) * 5
    path = build_sharded((ids, x), tmp_path_factory.mktemp("faults"), 3,
                         index={"kind": "flat", "metric": "l2"})
    exact = bg.FlatIndex(DIM, metric="l2")
    exact.add(x, ids)
    q = rng.standard_normal((64, DIM)).astype(np.float32)
    return path, exact, q


def test_a_killed_shard_gives_no_wrong_result_and_recovers_within_seconds(built):
    path, exact, q = built
    want = exact.search(q, 10)
    with ShardedIndex.open(path, timeout=30) as sharded:
        before = {i["shard"]: i["incarnation"] for i in sharded.info()}
        results, errors, stop = [], [], threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    results.append((time.monotonic(), sharded.search(q, 10)))
                except ShardUnavailableError as exc:  # allowed; a wrong answer is not
                    errors.append((time.monotonic(), exc))

        worker = threading.Thread(target=loop)
        worker.start()
        time.sleep(0.5)
        killed_at = time.monotonic()
        sharded.shards.kill(1)  # Ray restarts it from its file
        time.sleep(4.0)
        stop.set()
        worker.join(60)
        assert not worker.is_alive()
        for _, res in results:
            assert not res.partial
            assert np.array_equal(res.ids, want.ids)
            assert np.array_equal(res.distances, want.distances)
        after = [t for t, _ in results if t > killed_at]
        assert after, f"no search answered after the kill ({len(errors)} errors)"
        assert after[0] - killed_at < 5.0, "recovery took longer than 5 s"
        now = {i["shard"]: i["incarnation"] for i in sharded.info()}
        assert now[1] != before[1] and now[0] == before[0]  # shard 1 restarted, alone


def test_a_shard_that_stays_down_fails_clearly_or_answers_partially(built):
    path, exact, q = built
    with ShardedIndex.open(path, timeout=10) as sharded:
        lost = sharded.ids()
        sharded.shards.kill(2, restart=False)
        with pytest.raises(ShardUnavailableError, match=r"shard\(s\) \[2\] of 3") as info:
            sharded.search(q, 10)
        assert info.value.shards == [2]
        res = sharded.search(q, 10, allow_partial=True)
        assert res.partial is True
        # the answer of the shards that answered, exactly: shard 2's items are missing
        alive = np.setdiff1d(lost, _ids_of_shard(path, 2))
        ref = bg.FlatIndex(DIM, metric="l2")
        ref.add(exact.get_vectors(alive), alive)
        assert np.array_equal(res.ids, ref.search(q, 10).ids)


def _ids_of_shard(path, shard: int) -> np.ndarray:
    from bitgraph.distributed import read_manifest

    m = read_manifest(path)
    return bg.load(path.parent / m.shards[shard].file).ids()
