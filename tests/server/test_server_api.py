"""The service API through bitgraph.Client against a real server process: the same answers
as an embedded index on the same data."""

from __future__ import annotations

import signal

import bitgraph as bg
import httpx
import numpy as np
import pytest
from bitgraph.client import ServiceNotFound, ServiceValueError


def _data(n=600, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(np.float32), rng


@pytest.fixture(scope="module")
def client(module_server):
    with bg.Client(module_server.url) as c:
        yield c


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_flat_collection_equals_embedded_flat_index(client, metric):
    x, rng = _data()
    cat = rng.integers(0, 4, len(x))
    tags = [list(map(int, rng.integers(0, 5, rng.integers(0, 3)))) for _ in range(len(x))]
    coll = client.create_collection(f"flat-{metric}", dim=16, metric=metric, kind="flat")
    embedded = bg.FlatIndex(16, metric=metric)
    ids = np.arange(1000, 1000 + len(x))
    attrs = {"cat": cat, "tags": tags}
    coll.add(x, ids, attributes=attrs)
    embedded.add(x, ids, attributes=attrs)
    q = rng.standard_normal((25, 16)).astype(np.float32)
    filt = bg.Filter.isin("cat", [1, 2]) & ~bg.Filter.has_any("tags", [3])
    for kwargs in ({}, {"filter": filt},
                   {"filter": [filt, None, bg.Filter.eq("cat", 0), None, filt] * 5}):
        got, want = coll.search(q, k=7, **kwargs), embedded.search(q, k=7, **kwargs)
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_allclose(got.distances, want.distances, rtol=1e-5, atol=1e-5)
    one = coll.search(q[0], k=7)  # a single query (the batched path)
    np.testing.assert_array_equal(one.ids, embedded.search(q[0], k=7).ids)
    assert len(coll) == len(embedded) == len(x)
    assert coll.count(filt) == embedded.count(filt)
    np.testing.assert_array_equal(coll.get_vectors([1003, 1000]),
                                  embedded.get_vectors([1003, 1000]))
    assert coll.get_attributes([1005, 1001]) == embedded.get_attributes([1005, 1001])


def test_hnsw_collection_recall_payloads_and_padding(client):
    x, rng = _data(2000, 16, 1)
    coll = client.create_collection("hnsw-a", dim=16, metric="l2", M=16, ef_construction=100)
    ids = coll.add(x, payloads=[{"i": i, "s": f"doc {i}"} if i % 2 == 0 else None
                                for i in range(len(x))])
    np.testing.assert_array_equal(ids, np.arange(len(x)))  # assigned after the largest id
    q = rng.standard_normal((50, 16)).astype(np.float32)
    exact = bg.FlatIndex(16, metric="l2")
    exact.add(x)
    truth = exact.search(q, k=10).ids
    res = coll.search(q, k=10, ef=64, with_payload=True)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res.ids, truth)])
    assert recall >= 0.95
    for row_ids, row_pays in zip(res.ids, res.payloads):
        for i, p in zip(row_ids.tolist(), row_pays):
            assert p == ({"i": i, "s": f"doc {i}"} if i % 2 == 0 else None)
    small = client.create_collection("tiny", dim=16, metric="l2")
    small.add(x[:3])
    padded = small.search(q[:2], k=5)
    assert (padded.ids[:, 3:] == -1).all() and np.isinf(padded.distances[:, 3:]).all()


def test_upsert_replaces_the_whole_point_and_remove(client):
    x, _ = _data(10, 16, 2)
    coll = client.create_collection("replace", dim=16, metric="l2", kind="flat")
    coll.add(x[:2], [1, 2], attributes={"a": [5, 6]}, payloads=[{"v": 1}, {"v": 2}])
    coll.add(x[2:3], [1], payloads=[{"v": 3}])  # attributes not given: missing now
    np.testing.assert_array_equal(coll.get_vectors([1])[0], x[2])
    assert coll.get_attributes([1, 2]) == {"a": [None, 6]}
    assert coll.get_payloads([1, 2]) == [{"v": 3}, {"v": 2}]
    with pytest.raises(ServiceNotFound):
        coll.remove([2, 99])  # as an embedded index: nothing removed
    assert len(coll) == 2
    coll.remove([2])
    assert len(coll) == 1 and coll.search(x[1], k=2).ids[0].tolist() == [1, -1]
    with pytest.raises(ServiceNotFound):
        coll.get_vectors([2])
    coll.add(x[3:6], [10, 11, 12], attributes={"a": [1, 2, 1]})
    assert coll.remove_matching(bg.Filter.eq("a", 1)) == 2
    assert sorted(coll.search(x[4], k=5).ids[0].tolist()) == [-1, -1, -1, 1, 11]


def test_binary_collection_trains_on_its_first_upsert(client):
    x, rng = _data(1500, 32, 3)
    coll = client.create_collection("bin", dim=32, metric="cosine", kind="binary",
                                    binarizer={"loops": 2, "train_size": 1000})
    with pytest.raises(ServiceValueError, match="train_size"):
        coll.add(x[:10])
    assert coll.search(x[0], k=3).ids.tolist() == [[-1, -1, -1]]
    coll.add(x[:1200])
    coll.add(x[1200:])
    q = x[:20] + 0.01 * rng.standard_normal((20, 32)).astype(np.float32)
    res = coll.search(q, k=10, ef=64, oversample=4)
    assert (res.ids[:, 0] == np.arange(20)).mean() >= 0.9
    info = coll.info()
    assert info["trained"] and info["count"] == 1500 and info["snapshot"] >= 1


def test_collections_admin(client):
    client.create_collection("admin-1", dim=4)
    assert "admin-1" in client.list_collections()
    with pytest.raises(bg.client.ServiceError) as e:
        client.create_collection("admin-1", dim=4)
    assert e.value.status == 409
    info = client.collection("admin-1").info()
    assert info["config"]["dim"] == 4 and info["count"] == 0
    client.delete_collection("admin-1")
    assert "admin-1" not in client.list_collections()
    with pytest.raises(ServiceNotFound):
        client.collection("admin-1")
    for bad in ({"dim": 0}, {"dim": 4, "metric": "hamming"}, {"dim": 4, "kind": "lsh"},
                {"dim": 4, "binarizer": {"loops": 2}}, {"dim": 4, "colour": 1}, {}):
        with pytest.raises(ServiceValueError):
            client.request("PUT", "/collections/bad-config", bad)
    with pytest.raises(ServiceValueError, match="name"):
        client.request("PUT", "/collections/..bad", {"dim": 4})


def test_health_metrics_and_openapi(module_server, client):
    base = module_server.url
    assert httpx.get(base + "/livez").json() == {"status": "ok"}
    assert httpx.get(base + "/readyz").status_code == 200
    doc = httpx.get(base + "/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/collections/{name}/points/search" in doc["paths"]
    assert "swagger" in httpx.get(base + "/docs").text.lower()
    client.create_collection("metrics", dim=4, metric="l2").add(np.eye(4))
    client.collection("metrics").search(np.ones(4), k=2)
    text = httpx.get(base + "/metrics").text
    assert 'bitgraph_requests_total{method="POST",route="/collections/{name}/points/search"' in text
    assert 'bitgraph_collection_points{collection="metrics"} 4.0' in text
    assert "bitgraph_search_batch_size_count" in text
    assert "bitgraph_request_seconds_bucket" in text


def test_restart_keeps_everything(start_server, tmp_path):
    x, rng = _data(300, 8, 4)
    server = start_server(data_dir=tmp_path / "d")
    with bg.Client(server.url) as c:
        coll = c.create_collection("keep", dim=8, metric="l2")
        coll.add(x, attributes={"a": np.arange(300) % 7}, payloads=[{"n": i} for i in range(300)])
        coll.remove([5, 6])
        before = coll.search(x[:20], k=5, filter=bg.Filter.eq("a", 3))
    # SIGTERM: graceful (uvicorn re-raises the signal once it has shut down), checkpointed
    assert server.stop() in (0, -signal.SIGTERM)
    assert b"Application shutdown complete" in server.log
    server = start_server(data_dir=tmp_path / "d")
    with bg.Client(server.url) as c:
        coll = c.collection("keep")
        assert len(coll) == 298
        after = coll.search(x[:20], k=5, filter=bg.Filter.eq("a", 3))
        np.testing.assert_array_equal(before.ids, after.ids)
        assert coll.get_payloads([7]) == [{"n": 7}]
        assert coll.info()["log_bytes"] <= 16  # the shutdown checkpoint emptied the log
