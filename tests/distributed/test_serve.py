"""bitgraph serve --ray: the sharded index on Ray Serve answers the service's HTTP API, and
bitgraph.Client speaks to it as to a served collection."""

from __future__ import annotations

import socket

import bitgraph as bg
import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("httpx")
from bitgraph.distributed import build_sharded

N, DIM = 2000, 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(ray_local, tmp_path_factory):
    from bitgraph.distributed import serve as bg_serve
    from ray import serve

    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    ids = np.arange(N, dtype=np.int64) * 2
    lab = np.arange(N) % 4
    path = build_sharded((ids, x, {"lab": lab}), tmp_path_factory.mktemp("serve"), 2,
                         index={"kind": "flat", "metric": "l2"}, name="docs")
    port = _free_port()
    bg_serve.run(str(path), port=port, blocking=False, max_wait_us=100.0)
    client = bg.Client(f"http://127.0.0.1:{port}")
    exact = bg.FlatIndex(DIM, metric="l2")
    exact.add(x, ids, attributes={"lab": lab})
    yield client, exact, x, ids, path
    client.close()
    serve.shutdown()


def test_search_over_http_equals_a_single_index(served):
    client, exact, x, _, _ = served
    docs = client.collection("docs")
    q = x[:20] + 0.01
    res = docs.search(q, k=10)
    want = exact.search(q, 10)
    assert np.array_equal(res.ids, want.ids)
    assert np.allclose(res.distances, want.distances)
    one = docs.search(q[:1], k=5)  # a single query (through the batcher)
    assert np.array_equal(one.ids, want.ids[:1, :5])
    f = bg.Filter.eq("lab", 1)
    assert np.array_equal(docs.search(q, k=5, filter=f).ids, exact.search(q, 5, filter=f).ids)
    per = [f if i % 2 else None for i in range(20)]
    assert np.array_equal(docs.search(q, k=5, filter=per).ids,
                          exact.search(q, 5, filter=per).ids)
    assert len(docs) == N and docs.count(f) == exact.count(f)
    assert client.list_collections() == ["docs"] and client.ready()


def test_writes_and_errors_over_http(served):
    client, _, x, _, path = served
    docs = client.collection("docs")
    docs.add(x[:3] * 2, [100_001, 100_003, 100_005], attributes={"lab": [9, 9, 9]})
    assert docs.count(bg.Filter.eq("lab", 9)) == 3
    assert np.allclose(docs.get_vectors([100_003]), x[1:2] * 2)
    assert docs.get_attributes([100_001]) == {"lab": [9]}
    docs.remove([100_001, 100_003, 100_005])
    with pytest.raises(bg.UnknownIdError):
        docs.remove([100_001])
    with pytest.raises(bg.BitgraphValueError, match="payloads"):
        docs.add(x[:1], [5], payloads=[{"t": 1}])
    with pytest.raises(bg.BitgraphValueError, match="\\(n, 16\\)"):
        docs.search(np.zeros((1, 3)), k=3)
    with pytest.raises(bg.UnknownIdError):
        client.collection("nope")
    docs.checkpoint()
    from bitgraph.distributed import read_manifest

    assert read_manifest(path).generation == 2 and read_manifest(path).count == N
