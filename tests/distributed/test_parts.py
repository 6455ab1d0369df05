"""The Ray-free parts: the routers, the merge, the manifest (these run without Ray)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bitgraph.distributed.errors import ManifestError, RoutingError
from bitgraph.distributed.manifest import (
    Manifest,
    ShardEntry,
    commit,
    file_crc32,
    read_manifest,
    verify_shard,
)
from bitgraph.distributed.merge import merge_results, merge_rows
from bitgraph.distributed.router import (
    HashRouter,
    KMeansRouter,
    router_from_json,
    stable_hash,
)

from .conftest import clustered


def test_stable_hash_is_fixed_and_balanced():
    # splitmix64 (checked against a pure-Python one); a change would re-route saved indexes
    assert stable_hash(np.array([0, 1, 2**62], np.int64)).tolist() == [
        16294208416658607535, 10451216379200822465, 47939714376772075]
    owners = HashRouter(4).owners(np.arange(100_000))
    counts = np.bincount(owners, minlength=4)
    assert counts.min() > 24_000 and counts.max() < 26_000


def test_kmeans_router_assigns_to_the_nearest_centroid_and_probes_in_order():
    x = clustered(3000, 8, centers=4)
    r = KMeansRouter.train(x, 4, "l2", seed=0)
    owners = r.owners(np.arange(3000), x)
    d = ((x[:, None, :] - r.centroids[None]) ** 2).sum(-1)
    assert (owners == d.argmin(1)).all()
    v = r.visits(x[:50], 2)
    nearest2 = np.argsort(d[:50], axis=1, kind="stable")[:, :2]
    assert v.shape == (50, 4) and (v.sum(1) == 2).all()
    assert v[np.arange(50)[:, None], nearest2].all()
    assert r.visits(x[:5], 4) is None  # probe = every shard: no routing
    again = router_from_json(json.loads(json.dumps(r.to_json())))
    assert np.array_equal(again.centroids, r.centroids)
    with pytest.raises(RoutingError, match="k-means"):
        HashRouter(3).visits(x[:2], 1)
    with pytest.raises(RoutingError, match="k-means"):
        HashRouter(3).visits(x[:2], margin=0.1)
    assert HashRouter(3).visits(x[:2]) is None
    with pytest.raises(RoutingError, match="at least"):
        KMeansRouter.train(x[:2], 3, "l2")


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_kmeans_probe_margin_visits_the_shards_about_as_near_as_the_nearest(metric):
    x = clustered(3000, 8, centers=4)
    r = KMeansRouter.train(x, 4, metric, seed=1)
    q = x[:200] + np.random.default_rng(2).normal(0, 0.5, (200, 8)).astype(np.float32)
    if metric == "l2":
        dist = np.sqrt(((q[:, None, :] - r.centroids[None]) ** 2).sum(-1))
    else:  # by direction, also for ip (the centroids are spherical)
        unit = q / np.linalg.norm(q, axis=1, keepdims=True)
        dist = 1 - unit @ r.centroids.T
    assert np.allclose(r.centroid_distances(q), dist, atol=1e-4)
    nearest = dist.argmin(1)
    assert (r.owners(np.arange(200), q) == nearest).all()
    only = r.visits(q, margin=0.0)  # the nearest shard alone (no ties in random data)
    assert (only.sum(1) == 1).all() and only[np.arange(200), nearest].all()
    previous = only
    for m in (0.05, 0.2, 1.0, 4.0):
        v = r.visits(q, margin=m)
        want = dist <= dist.min(1, keepdims=True) * (1 + m) + 1e-6
        assert (v <= want).all() and ((want & ~v).sum() <= 2)  # float rounding at the edge
        assert (v >= previous).all()  # a wider margin never visits fewer shards
        previous = v
    assert 1 < previous.sum(1).mean() < 4  # a mix: some queries visit one shard, some more
    assert r.visits(q, margin=0.05).sum(1).mean() < previous.sum(1).mean()
    assert r.visits(q, margin=1e9).all()
    capped = r.visits(q, probe=2, margin=1e9)
    assert (capped.sum(1) == 2).all() and capped[np.arange(200), nearest].all()
    for bad in (-0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(RoutingError, match="probe_margin"):
            r.visits(q, margin=bad)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(RoutingError, match="probe must"):
            r.visits(q, probe=bad)


def test_merge_orders_by_distance_then_id_and_pads():
    a = (np.array([[5, 9, -1]]), np.array([[0.5, 1.0, np.inf]], np.float32))
    b = (np.array([[4, 2, 7]]), np.array([[1.0, 1.0, 0.1]], np.float32))
    ids, d = merge_rows([a, b], 5)
    assert ids.tolist() == [[7, 5, 2, 4, 9]]
    assert d[0].tolist() == pytest.approx([0.1, 0.5, 1.0, 1.0, 1.0])
    ids, d = merge_rows([a], 5)  # fewer than k found: -1 / inf after the real ones
    assert ids.tolist() == [[5, 9, -1, -1, -1]] and np.isinf(d[0, 2:]).all()


def test_merge_of_probed_shards_and_plans():
    full = (np.array([[1, 2], [3, 4]]), np.array([[0.1, 0.2], [0.3, 0.4]], np.float32),
            np.array(["exact", "exact"], object), np.array([10, 20]))
    some = (np.array([[9, -1]]), np.array([[0.05, np.inf]], np.float32),
            np.array(["acorn"], object), np.array([5]))
    res = merge_results(2, 2, [(None, full), (np.array([1]), some)], partial=True)
    assert res.ids.tolist() == [[1, 2], [9, 3]]
    assert res.plans.tolist() == ["exact", "acorn+exact"]
    assert res.visited.tolist() == [10, 25] and res.partial


def _manifest(tmp_path, sizes=(3, 4)):
    shards = []
    for i, n in enumerate(sizes):
        f = tmp_path / f"shard-{i:05d}-g1.bg"
        f.write_bytes(b"x" * n)
        shards.append(ShardEntry(f.name, n, n, file_crc32(f)))
    return Manifest(spec={"kind": "flat", "dim": 4, "metric": "l2", "storage": "float32"},
                    router=HashRouter(len(sizes)).to_json(), shards=shards, next_id=7)


def test_manifest_round_trip_and_checks(tmp_path):
    m = _manifest(tmp_path)
    path = commit(tmp_path, m)
    got = read_manifest(tmp_path)
    assert got.shards == m.shards and got.next_id == 7 and got.count == 7 and path.exists()
    verify_shard(tmp_path, got.shards[0], 0)
    (tmp_path / got.shards[0].file).write_bytes(b"yyy")  # same size, other bytes
    with pytest.raises(ManifestError, match="CRC-32"):
        verify_shard(tmp_path, got.shards[0], 0)
    (tmp_path / got.shards[1].file).unlink()
    with pytest.raises(ManifestError, match="shard 1 file .* is missing"):
        read_manifest(tmp_path)


def test_manifest_errors_name_the_problem(tmp_path):
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(tmp_path)
    data = _manifest(tmp_path).to_json()
    for change, message in [({"format": "x"}, "not a bitgraph sharded manifest"),
                            ({"version": 99}, "version 99"),
                            ({"shards": []}, "no shards"),
                            ({"n_shards": 5}, "n_shards is 5"),
                            ({"spec": {"kind": "ivf", "dim": 4}}, "spec.kind")]:
        with pytest.raises(ManifestError, match=message):
            Manifest.from_json({**data, **change})
    bad = dict(data, n_shards=1, shards=[dict(data["shards"][0], file="../elsewhere.bg")])
    with pytest.raises(ManifestError, match="file name in the manifest's directory"):
        Manifest.from_json(bad)


def test_commit_deletes_the_previous_generation(tmp_path):
    commit(tmp_path, _manifest(tmp_path))
    f = tmp_path / "shard-00000-g2.bg"
    f.write_bytes(b"abc")
    m2 = Manifest(spec=_manifest(tmp_path).spec, router=HashRouter(1).to_json(),
                  shards=[ShardEntry(f.name, 3, 3, file_crc32(f))], generation=2)
    commit(tmp_path, m2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", f.name]
