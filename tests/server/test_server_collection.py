"""A collection without HTTP: log + snapshot + replay, and checks before anything is logged."""

from __future__ import annotations

import shutil

import bitgraph as bg
import numpy as np
import pytest
from bitgraph.server.collection import Collection, Upsert
from bitgraph.server.errors import ApiError
from bitgraph.server.spec import CollectionSpec


def _spec(kind="hnsw", **kw):
    return CollectionSpec.from_json("c", {"dim": 4, "metric": "l2", "kind": kind, **kw})


def _batch(ids, seed=0, attrs=None, payloads=None):
    x = np.random.default_rng(seed).integers(-9, 9, (len(ids), 4)).astype(np.float32)
    return Upsert(np.asarray(ids, np.int64), x, attrs or [{}] * len(ids),
                  payloads or [None] * len(ids))


def _state(c: Collection):
    ids = c.index.ids()
    return (ids.tolist(), c.index.get_vectors(ids).tolist(), c.index.get_attributes(ids),
            dict(c.payloads), c.next_id)


def test_replay_after_a_crash_equals_the_live_state(tmp_path):
    c = Collection.create(tmp_path / "c", _spec())
    c.upsert(_batch([1, 2, 3], attrs=[{"a": 1}, {"a": 2, "t": [1, 2]}, {}],
                    payloads=[b'{"x":1}', None, b'{"y":2}']))
    c.checkpoint()
    c.upsert(_batch([3, 4], seed=1, attrs=[{"a": 5}, {}]))
    c.delete(np.array([1, 99]))
    c.delete_matching(bg.Filter.eq("a", 5))
    ids = c.upsert(None, np.ones((2, 4), np.float32), None, [b'{"z":3}', None])
    assert ids.tolist() == [5, 6]
    live = _state(c)  # not closed: as after kill -9
    again = Collection.open(tmp_path / "c")
    assert _state(again) == live and again.generation == 1


def test_a_crash_between_snapshot_switch_and_log_reset_replays_nothing_twice(tmp_path):
    c = Collection.create(tmp_path / "c", _spec())
    c.upsert(_batch([1, 2]))
    c.delete(np.array([2]))
    log_before = (tmp_path / "c" / "wal.log").read_bytes()
    c.checkpoint()
    (tmp_path / "c" / "wal.log").write_bytes(log_before)  # the reset never happened
    c.upsert(_batch([2], seed=5))  # written after the old records
    live = _state(c)
    assert _state(Collection.open(tmp_path / "c")) == live


def test_an_interrupted_checkpoint_leaves_the_old_snapshot(tmp_path):
    c = Collection.create(tmp_path / "c", _spec())
    c.upsert(_batch([1, 2]))
    c.checkpoint()
    c.upsert(_batch([3]))
    live = _state(c)
    shutil.copytree(tmp_path / "c" / "snap-1", tmp_path / "c" / ".snap-2")  # half written
    again = Collection.open(tmp_path / "c")
    assert _state(again) == live and not (tmp_path / "c" / ".snap-2").exists()


@pytest.mark.parametrize("batch,words", [
    (_batch([1, 1]), "same id twice"),
    (Upsert(np.array([1], np.int64), np.zeros((1, 4), np.float32), [{}], [None]), None),
    (_batch([2], attrs=[{"a": 1.5}]), "holds int values"),
    (_batch([2], attrs=[{"t": 3}]), "holds tags values"),
])
def test_bad_upserts_are_refused_before_the_log(tmp_path, batch, words):
    c = Collection.create(tmp_path / "c", _spec())
    c.upsert(_batch([1], attrs=[{"a": 1, "t": [1]}]))
    log = (tmp_path / "c" / "wal.log").read_bytes()
    if words is None:  # a zero vector is fine for l2
        c.upsert(batch)
        return
    with pytest.raises(ApiError, match=words) as e:
        c.upsert(batch)
    assert e.value.status == 400
    assert (tmp_path / "c" / "wal.log").read_bytes() == log


def test_mixed_kinds_in_one_field_of_one_upsert_are_refused(tmp_path):
    c = Collection.create(tmp_path / "c", _spec())
    with pytest.raises(ApiError, match="mixes"):
        c.upsert(_batch([1, 2], attrs=[{"a": 1}, {"a": [1]}]))
    c.upsert(_batch([1, 2], attrs=[{"a": 1}, {"a": 2.5}]))  # int and float: a float field
    assert c.index.attribute_fields == {"a": "float"}


def test_zero_vectors_are_refused_for_cosine(tmp_path):
    c = Collection.create(tmp_path / "c", CollectionSpec.from_json("c", {"dim": 4}))
    with pytest.raises(ApiError, match="zero vector"):
        c.upsert(Upsert(np.array([1]), np.zeros((1, 4), np.float32), [{}], [None]))


def test_an_ivf_collection_searches_and_replays(tmp_path):
    c = Collection.create(tmp_path / "c", _spec("ivf"))
    c.upsert(_batch(list(range(200)), attrs=[{"a": i % 2} for i in range(200)]))
    assert isinstance(c.index, bg.IVFIndex)
    q = c.index.get_vectors([7])
    res = c.search(q, 1, 10_000, None, None)
    assert res.ids[0, 0] == 7 and res.distances[0, 0] == 0
    filtered = c.search(q, 5, None, bg.Filter.eq("a", 0), None)
    assert (filtered.ids[0] % 2 == 0).all()
    live = _state(c)
    assert _state(Collection.open(tmp_path / "c")) == live
    with pytest.raises(ApiError):
        _spec("ivf", storage="int8")
