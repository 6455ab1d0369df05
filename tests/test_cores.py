"""The core classes of docs/backend-contract.md (HNSWCore, FlatCore), run on every backend.

Covers what the public API does not reach yet: the ``allowed`` slot bitset, slot/tombstone
bookkeeping, and adopting state arrays (read-only memory maps, copy-on-write).
"""

from __future__ import annotations

import numpy as np
import pytest

from bg_testutil import BACKENDS, STORAGES, clustered, recall, reference_search


def _bits(slots, n_slots):
    words = np.zeros((n_slots + 63) // 64, dtype=np.uint64)
    for s in np.asarray(slots):
        words[s >> 6] |= np.uint64(1) << np.uint64(s & 63)
    return words


def test_add_returns_count_and_bookkeeping(core_module):
    x = clustered(300, 16, seed=1)
    ids = np.arange(300, dtype=np.int64) * 2 + 1
    for core in (core_module.HNSWCore(16, "l2", "float32", 8, 40, 0),
                 core_module.FlatCore(16, "l2", "float32")):
        assert core.size == 0 and core.n_slots == 0
        assert core.add(x, ids, 1, None) == 300
        assert core.size == 300 and core.n_slots == 300
        assert core.contains(np.array([1, 2, 599], np.int64)).tolist() == [1, 0, 1]
        assert core.slots_of(np.array([1, 599, 4], np.int64)).tolist() == [0, 299, -1]
        # re-adding a label: its old slot becomes a tombstone, a new slot is used
        core.add(x[:1] + 1, np.array([599], np.int64), 1, None)
        assert core.size == 300 and core.n_slots == 301
        assert core.slots_of(np.array([599], np.int64)).tolist() == [300]
        state = core.get_state()
        assert state["deleted"][299] == 1 and state["labels"][300] == 599
        core.remove(np.array([1, 3], np.int64))
        assert core.size == 298 and core.slots_of(np.array([1], np.int64))[0] == -1
        with pytest.raises(KeyError):
            core.remove(np.array([5, 1], np.int64))  # 1 is gone: nothing is removed
        assert core.size == 298 and core.contains(np.array([5], np.int64))[0] == 1


def test_empty_searches(core_module):
    for core in (core_module.HNSWCore(8, "l2", "float32", 8, 50, 0),
                 core_module.FlatCore(8, "l2", "float32")):
        labels, dists = core.search(np.zeros((3, 8), np.float32), 4, 10, 1, None)
        assert labels.shape == (3, 4) and (labels == -1).all() and np.isinf(dists).all()


@pytest.mark.parametrize("storage", STORAGES)
def test_flat_filter_and_tombstones(core_module, storage):
    x = clustered(200, 16, seed=2)
    q = clustered(10, 16, seed=3)
    ids = np.arange(200, dtype=np.int64) + 1000
    core = core_module.FlatCore(16, "l2", storage)
    core.add(x, ids, 1, None)
    core.remove(ids[::2])
    allowed = np.arange(0, 200, 3)  # slots; the even ones are tombstones
    labels, dists = core.search(q, 150, 0, 2, _bits(allowed, 200))
    live = np.setdiff1d(allowed, np.arange(0, 200, 2))
    assert (labels >= 0).sum(axis=1).tolist() == [len(live)] * len(q)
    assert all(set(row[row >= 0]) == set(ids[live]) for row in labels)
    ref_ids, _ = reference_search(x[live], q, 5, "l2", storage, ids=ids[live])
    assert np.array_equal(core.search(q, 5, 0, 1, _bits(allowed, 200))[0], ref_ids)
    # an empty bitset allows nothing; a short one allows nothing beyond its words
    assert (core.search(q, 3, 0, 1, np.zeros(0, np.uint64))[0] == -1).all()
    short = _bits([1, 3], 64)  # one word covers slots 0..63 only
    short[0] |= np.uint64(1) << np.uint64(5)
    assert set(core.search(q, 5, 0, 1, short)[0][0]) == {1001, 1003, 1005, -1}
    beyond = _bits([65, 67], 128)[:1]  # the words holding 65 and 67 were cut off
    assert (core.search(q, 3, 0, 1, beyond)[0] == -1).all()


def test_hnsw_filter_and_tombstones(core_module):
    x = clustered(3000, 16, seed=4)
    q = clustered(50, 16, seed=5)
    ids = np.arange(3000, dtype=np.int64)
    core = core_module.HNSWCore(16, "l2", "float32", 12, 100, 1)
    core.add(x, ids, 1, None)
    removed = np.random.default_rng(3).choice(ids, 600, replace=False)
    core.remove(removed)
    assert core.size == 2400
    allowed = ids[ids % 10 == 3]
    labels, _ = core.search(q, 10, 64, 2, _bits(allowed, 3000))
    live = np.setdiff1d(allowed, removed)
    assert np.isin(labels[labels >= 0], live).all()
    truth, _ = reference_search(x[live], q, 10, "l2", ids=live)
    assert recall(labels, truth) > 0.9  # measured 1.0 on both backends
    # a one-item filter: found although the walk crosses many inadmissible nodes
    only = int(live[0])
    labels, _ = core.search(q[:5], 3, 16, 1, _bits([only], 3000))
    assert (labels[:, 0] == only).all() and (labels[:, 1:] == -1).all()


def test_hnsw_ef_is_raised_to_k(core_module):
    x = clustered(500, 8, seed=6)
    core = core_module.HNSWCore(8, "ip", "float16", 6, 40, 0)
    core.add(x / np.linalg.norm(x, axis=1, keepdims=True), np.arange(500, dtype=np.int64), 1, None)
    labels, dists = core.search(x[:4], 40, 1, 1, None)
    assert (labels >= 0).all() and (np.diff(dists, axis=1) >= 0).all()


@pytest.mark.parametrize("storage", STORAGES)
def test_hnsw_state_from_read_only_memmaps(tmp_path, core_module, storage):
    """from_state adopts np.memmap arrays without writing them; the first add/remove copies."""
    x = clustered(2000, 16, seed=7)
    q = clustered(40, 16, seed=8)
    ids = np.arange(2000, dtype=np.int64) + 7
    core = core_module.HNSWCore(16, "l2", storage, 8, 60, 0)
    core.add(x, ids, 1, None)
    core.remove(ids[:100])
    maps = {}
    for key, value in core.get_state().items():
        if isinstance(value, np.ndarray):
            np.save(tmp_path / f"{key}.npy", value)
            maps[key] = np.load(tmp_path / f"{key}.npy", mmap_mode="r")
        else:
            maps[key] = value
    clone = core_module.HNSWCore.from_state(16, "l2", storage, 8, 60, 0, maps)
    a, b = core.search(q, 10, 50, 1, None), clone.search(q, 10, 50, 2, None)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert clone.size == core.size and clone.nbytes < core.nbytes
    before = {k: np.array(v) for k, v in maps.items() if isinstance(v, np.ndarray)}
    clone.remove(ids[100:200])
    clone.add(x[:500] + 0.1, ids[:500] + 10_000, 1, None)
    for key, value in before.items():
        assert np.array_equal(np.load(tmp_path / f"{key}.npy"), value), key
    labels, _ = clone.search(q, 10, 50, 1, None)
    assert not np.isin(labels, ids[:200]).any()
    state = clone.get_state()
    assert state["vectors"].shape[0] == 2500 and state["links0"].shape == (2500, 17)
    assert core.size == 1900  # the source core is untouched


def test_hnsw_from_state_rejects_bad_links(core_module):
    x = clustered(300, 8, seed=9)
    core = core_module.HNSWCore(8, "l2", "int8", 4, 30, 0)
    core.add(x, np.arange(300, dtype=np.int64), 1, None)
    state = core.get_state()
    for edit in ("link", "count", "entry"):
        bad = {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in state.items()}
        if edit == "link":
            bad["links0"][3, 1] = 10**6
        elif edit == "count":
            bad["links0"][3, 0] = 100
        else:
            bad["entry_point"] = 300
        with pytest.raises(ValueError):
            core_module.HNSWCore.from_state(8, "l2", "int8", 4, 30, 0, bad)


def test_flat_state_round_trip_read_only(core_module):
    x = clustered(300, 16, seed=10)
    core = core_module.FlatCore(16, "ip", "float16")
    core.add(x, np.arange(300, dtype=np.int64), 1, None)
    ro = {k: v.copy() for k, v in core.get_state().items()}
    for v in ro.values():
        v.setflags(write=False)
    clone = core_module.FlatCore.from_state(16, "ip", "float16", ro)
    assert np.array_equal(clone.search(x[:5], 4, 0, 1, None)[0], core.search(x[:5], 4, 0, 1, None)[0])
    clone.remove(np.array([0], np.int64))
    assert clone.size == 299 and core.size == 300 and ro["deleted"][0] == 0


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both backends")
@pytest.mark.parametrize("storage", STORAGES)
def test_state_moves_between_backends(native_module, numba_module, storage):
    x = clustered(1500, 13, seed=11)
    q = clustered(40, 13, seed=12)
    ids = np.arange(1500, dtype=np.int64)
    for src, dst in ((native_module, numba_module), (numba_module, native_module)):
        core = src.HNSWCore(13, "l2", storage, 8, 60, 0)
        core.add(x, ids, 1, None)
        core.remove(ids[:50])
        other = dst.HNSWCore.from_state(13, "l2", storage, 8, 60, 0, core.get_state())
        a, b = core.search(q, 5, 40, 1, None)[0], other.search(q, 5, 40, 1, None)[0]
        assert (a == b).all(axis=1).mean() >= 0.95
