"""Sharded build and scatter-gather search on a local Ray cluster (2 CPUs)."""

from __future__ import annotations

import os

import bitgraph as bg
import numpy as np
import pytest

from .conftest import clustered, recall

ray = pytest.importorskip("ray")
from bitgraph.distributed import (
    ManifestError,
    RoutingError,
    ShardedIndex,
    build_sharded,
)
from bitgraph.distributed.front import ShardedCollection

N, DIM = 6000, 24


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = clustered(N, DIM, seed=1)
    ids = rng.permutation(10 * N)[:N].astype(np.int64)  # sparse user ids
    attrs = {"lab": np.arange(N) % 7, "tags": [[i % 3, 10 + i % 5] for i in range(N)]}
    q = clustered(300, DIM, seed=2)
    return ids, x, attrs, q


@pytest.fixture(scope="module")
def flat_pair(ray_local, data, tmp_path_factory):
    ids, x, attrs, _ = data
    out = tmp_path_factory.mktemp("flat")
    path = build_sharded((ids, x, attrs), out, 3, index={"kind": "flat", "metric": "l2"})
    single = bg.FlatIndex(DIM, metric="l2")
    single.add(x, ids, attributes=attrs)
    sharded = ShardedIndex.open(path, verify=True)
    yield single, sharded
    sharded.close()


def test_sharded_flat_equals_a_single_flat_index(flat_pair, data):
    single, sharded = flat_pair
    q = data[3]
    for k in (1, 10, 50):
        a, b = single.search(q, k), sharded.search(q, k)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances), k
        assert b.partial is False
    assert len(sharded) == N and sorted(i["count"] for i in sharded.info()) != [0, 0, N]


def test_shards_use_every_core_of_their_node_and_take_turns(flat_pair, data):
    _, sharded = flat_pair
    cores = os.cpu_count() or 1
    for info in sharded.info():
        assert info["threads"] == cores and info["turns"] == (cores > 1)
    with ShardedIndex.open(sharded._path, threads=1) as side_by_side:
        assert all(i["threads"] == 1 and not i["turns"] for i in side_by_side.info())
        a, b = sharded.search(data[3], 10), side_by_side.search(data[3], 10)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances)


def test_filters_and_per_query_filters_across_shards(flat_pair, data):
    single, sharded = flat_pair
    q = data[3][:40]
    f = bg.Filter.eq("lab", 3) & bg.Filter.has_any("tags", [11])
    a, b = single.search(q, 10, filter=f), sharded.search(q, 10, filter=f)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances)
    assert b.plans is not None and b.visited.sum() > 0
    per = [bg.Filter.eq("lab", i % 7) if i % 3 else None for i in range(40)]
    a, b = single.search(q, 5, filter=per), sharded.search(q, 5, filter=per)
    assert np.array_equal(a.ids, b.ids)
    assert sharded.count(f) == single.count(f)
    assert np.array_equal(sharded.ids(f), single.ids(f))
    rare = bg.Filter.ids(data[0][:3])  # fewer matches than k: -1 padding
    b = sharded.search(q[:2], 10, filter=rare)
    assert (b.counts == 3).all() and (b.ids[:, 3:] == -1).all()


def test_sharded_hnsw_recall_within_0_01_of_a_single_index(ray_local, data, tmp_path):
    ids, x, _, q = data
    exact = bg.FlatIndex(DIM, metric="cosine")
    exact.add(x, ids)
    truth = exact.search(q, 10).ids
    spec = {"kind": "hnsw", "metric": "cosine", "M": 12, "ef_construction": 80}
    single = bg.HNSWIndex(DIM, metric="cosine", M=12, ef_construction=80)
    single.add(x, ids)
    path = build_sharded((ids, x), tmp_path, 2, index=spec, workers=2)
    with ShardedIndex.open(path) as sharded:
        for ef in (16, 96):
            r1 = recall(single.search(q, 10, ef=ef).ids, truth)
            r2 = recall(sharded.search(q, 10, ef=ef).ids, truth)
            assert r2 >= r1 - 0.01, (ef, r1, r2)
        assert recall(sharded.search(q, 10, ef=96).ids, truth) > 0.9


def test_kmeans_routing_visits_fewer_shards(ray_local, data, tmp_path):
    ids, x, _, q = data
    path = build_sharded((ids, x), tmp_path, 4, index={"kind": "flat", "metric": "l2"},
                         route="kmeans", sample_size=2000)
    exact = bg.FlatIndex(DIM, metric="l2")
    exact.add(x, ids)
    truth = exact.search(q, 10).ids
    with ShardedIndex.open(path) as sharded:
        counts = [i["count"] for i in sharded.info()]
        assert sum(counts) == N
        assert np.array_equal(sharded.search(q, 10).ids, truth)  # probe=None: every shard
        r2 = recall(sharded.search(q, 10, probe=2).ids, truth)
        assert r2 >= 0.95, r2
        r1 = recall(sharded.search(q, 10, probe=1).ids, truth)
        assert r1 <= r2
        # probe_margin: each query's nearest shard, and the others about as near
        visits = sharded.router.visits(q, margin=0.3).sum(1).mean()
        assert 1 < visits < 4, visits
        rm = recall(sharded.search(q, 10, probe_margin=0.3).ids, truth)
        assert r1 <= rm <= 1, (r1, rm)
        assert np.array_equal(sharded.search(q, 10, probe_margin=1e9).ids, truth)
        # the HTTP front (bitgraph serve --ray --probe-margin) searches with the same margin
        front = ShardedCollection("docs", sharded, probe_margin=0.3)
        assert np.array_equal(front.search(q, 10, None, None, None).ids,
                              sharded.search(q, 10, probe_margin=0.3).ids)
        # adds route by vector; a re-added id moves to its new nearest shard, never twice
        sharded.add(x[:5] + 0, ids[:5])
        sharded.add(-x[:5], ids[:5])
        assert len(sharded) == N and sharded.contains(ids[:5]).all()
        assert np.array_equal(sharded.get_vectors(ids[:5]), -x[:5])


def test_add_remove_routed_and_saved(ray_local, data, tmp_path):
    ids, x, attrs, q = data
    path = build_sharded((ids[:4000], x[:4000], {"lab": attrs["lab"][:4000]}), tmp_path, 3,
                         index={"kind": "flat", "metric": "l2"})
    single = bg.FlatIndex(DIM, metric="l2")
    single.add(x[:4000], ids[:4000], attributes={"lab": attrs["lab"][:4000]})
    with ShardedIndex.open(path) as sharded:
        new = sharded.add(x[4000:], ids[4000:], attributes={"lab": attrs["lab"][4000:]})
        single.add(x[4000:], ids[4000:], attributes={"lab": attrs["lab"][4000:]})
        assert np.array_equal(new, ids[4000:])
        sharded.remove(ids[:100])
        single.remove(ids[:100])
        with pytest.raises(bg.UnknownIdError):
            sharded.remove([ids[0], ids[200]])  # one unknown: nothing removed
        assert sharded.contains([ids[200]]).all()
        auto = sharded.add(x[:2])  # automatic ids after the largest
        assert auto.min() > ids.max()
        sharded.remove(auto)
        a, b = single.search(q, 10), sharded.search(q, 10)
        assert np.array_equal(a.ids, b.ids)
        assert sharded.get_attributes(ids[4000:4003]) == single.get_attributes(ids[4000:4003])
        sharded.save()
    files = sorted(os.listdir(tmp_path))
    assert files == ["manifest.json"] + [f"shard-{i:05d}-g2.bg" for i in range(3)]
    with ShardedIndex.open(tmp_path, verify=True) as again:  # the checkpoint reloads as saved
        assert len(again) == N - 100
        assert np.array_equal(again.search(q, 10).ids, single.search(q, 10).ids)


def test_ray_dataset_and_parquet_sources(ray_local, data, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    ids, x, attrs, q = data
    n = 1500
    table = pa.table({"id": ids[:n], "vector": list(x[:n]), "lab": attrs["lab"][:n]})
    pq.write_table(table, tmp_path / "rows.parquet")
    single = bg.FlatIndex(DIM, metric="l2")
    single.add(x[:n], ids[:n], attributes={"lab": attrs["lab"][:n]})
    f = bg.Filter.eq("lab", 2)
    sources = [str(tmp_path / "rows.parquet"),
               ray.data.from_arrow(table).repartition(3)]
    for j, source in enumerate(sources):
        out = tmp_path / f"idx{j}"
        path = build_sharded(source, out, 2, index={"kind": "flat", "metric": "l2"}, workers=2)
        with ShardedIndex.open(path) as sharded:
            assert len(sharded) == n
            a, b = single.search(q[:50], 10, filter=f), sharded.search(q[:50], 10, filter=f)
            assert np.array_equal(a.ids, b.ids)


def test_a_failed_build_leaves_no_manifest_and_no_files(ray_local, data, tmp_path):
    ids, x, _, _ = data
    bad_tags = {"t": [[1]] * 2999 + [["not an int"]]}  # one shard's add fails
    with pytest.raises((bg.BitgraphError, ray.exceptions.RayTaskError)):
        build_sharded((ids[:3000], x[:3000], bad_tags), tmp_path, 3,
                      index={"kind": "flat", "metric": "l2"})
    assert os.listdir(tmp_path) == []
    with pytest.raises(ManifestError, match="no manifest"):
        ShardedIndex.open(tmp_path)


def test_clear_errors(ray_local, data, tmp_path):
    ids, x, _, _ = data
    path = build_sharded((ids[:500], x[:500]), tmp_path, 2, index="flat")
    with pytest.raises(RoutingError, match="already holds"):
        build_sharded((ids[:500], x[:500]), tmp_path, 2, index="flat")
    with pytest.raises(RoutingError, match="unknown flat parameter"):
        build_sharded((ids[:500], x[:500]), tmp_path / "b", 2, index={"kind": "flat", "M": 3})
    with pytest.raises(RoutingError, match="unique"):
        build_sharded((np.zeros(500, np.int64), x[:500]), tmp_path / "c", 2)
    with ShardedIndex.open(path) as sharded:
        with pytest.raises(RoutingError, match="probe and probe_margin need k-means"):
            sharded.search(x[:2], 5, probe=1)
        with pytest.raises(RoutingError, match="probe and probe_margin need k-means"):
            sharded.search(x[:2], 5, probe_margin=0.2)
        with pytest.raises(RoutingError, match="probe and probe_margin need k-means"):
            ShardedCollection("docs", sharded, probe_margin=0.2)
        with pytest.raises(bg.BitgraphValueError, match=f"\\(nq, {DIM}\\)"):
            sharded.search(np.zeros((2, 3)), 5)
