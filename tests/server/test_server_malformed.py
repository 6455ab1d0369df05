"""Malformed requests: thousands of generated bad requests, each a 4xx with a JSON error that
names the problem; never a 5xx; the server stays up and its data stays intact."""

from __future__ import annotations

import base64
import json
import random

import httpx
import numpy as np
import pytest

DIM = 8
_GOOD_VECTOR = [0.5] * DIM


def _bad_values() -> list[object]:
    return [None, True, False, -1, 0, 1.5, "x", "", [], [1], {}, {"a": 1}, [None] * DIM,
            ["1"] * DIM, [True] * DIM, [[0.1] * DIM], [0.1] * (DIM + 1), [1e39] * DIM,
            2**64, -2**63 - 1, "AAAA", base64.b64encode(b"\0" * 3).decode(), [0.0] * DIM,
            "€" * 5, {"op": "nope"}, [{"op": "eq"}], 1e308]


def _mutations(rng: random.Random, base: dict[str, object], keys: list[str]) -> dict[str, object]:
    body = json.loads(json.dumps(base))
    action = rng.random()
    if action < 0.6:
        body[rng.choice(keys)] = rng.choice(_bad_values())
    elif action < 0.8:
        body.pop(rng.choice(list(body) or ["x"]), None)
        body[rng.choice(["colour", "K", "vectorz", ""])] = 1
    else:
        body[rng.choice(keys)] = rng.choice(_bad_values())
        body[rng.choice(keys)] = rng.choice(_bad_values())
    return body


def _requests(rng: random.Random, n: int) -> list[tuple[str, str, bytes, dict[str, str]]]:
    c = "/collections/m"
    valid = {
        ("PUT", c + "/points"): {"points": [{"id": 1, "vector": _GOOD_VECTOR,
                                             "attributes": {"a": 1}, "payload": {"t": "x"}}]},
        ("POST", c + "/points/search"): {"vector": _GOOD_VECTOR, "k": 3, "ef": 16,
                                         "filter": {"op": "eq", "field": "a", "value": 1}},
        ("POST", c + "/points/delete"): {"ids": [12345]},
        ("POST", c + "/points/get"): {"ids": [1], "with_vector": True},
        ("POST", c + "/points/count"): {"filter": {"op": "ids", "values": [1]}},
        ("PUT", "/collections/m2"): {"dim": 4, "metric": "l2", "kind": "hnsw"},
    }
    point_keys = ["id", "vector", "attributes", "payload"]
    out = []
    for i in range(n):
        (method, path), base = rng.choice(list(valid.items()))
        kind = rng.random()
        headers = {"content-type": "application/json"}
        if kind < 0.08:
            raw = rng.choice([b"", b"{", b"[1,2]", b"null", b"\xff\xfe", b'{"k": NaN}',
                              b'{"vector": [1,2', b"x" * 50, b'{"a":1}{"b":2}'])
        elif kind < 0.12:  # unknown collections and routes, bad ids in paths
            path = rng.choice(["/collections/nope/points/search", "/collections/m/points/-1",
                               "/collections/m/points/abc", "/collections/m/points/" + "9" * 30,
                               "/nope", "/collections/m/points/search/x"])
            raw = json.dumps(base).encode()
        elif kind < 0.16:
            method = rng.choice(["GET", "DELETE", "PATCH"]) if method != "GET" else "PUT"
            raw = json.dumps(base).encode()
        elif kind < 0.2:  # filters: deep, wrong, unknown fields
            depth = rng.choice([1, 3, 200, 5000])  # as text: json.dumps cannot nest so deep
            deep = '{"op":"not","arg":' * depth + '{"op":"ids","values":[1]}' + "}" * depth
            f = rng.choice(["DEEP", {"op": "range", "field": "a", "gte": "low"},
                            {"op": "isin", "field": "a", "values": [1.5]},
                            {"version": 9, "expr": {"op": "ids", "values": []}},
                            {"op": "eq", "field": "a", "value": 1.5},
                            {"op": "has_any", "field": "a", "values": [1]}])
            method, path = "POST", c + "/points/search"
            raw = json.dumps({"vector": _GOOD_VECTOR, "filter": f}).replace('"DEEP"', deep).encode()
        elif path.endswith("/points") and kind < 0.5:
            pt = _mutations(rng, base["points"][0], point_keys)
            raw = json.dumps({"points": [pt]}).encode()
        else:
            raw = json.dumps(_mutations(rng, base, list(base) + ["k", "vectors", "filters",
                                                                  "with_payload"])).encode()
        out.append((method, path, raw, headers))
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from server_process import ServerProcess

    s = ServerProcess(tmp_path_factory.mktemp("malformed") / "data", "--max-body-mb",
                      "0.05").start()
    httpx.put(s.url + "/collections/m", content=json.dumps({"dim": DIM, "metric": "cosine"}))
    httpx.put(s.url + "/collections/m/points", content=json.dumps({"points": [
        {"id": i, "vector": list(np.random.default_rng(i).standard_normal(DIM)),
         "attributes": {"a": i % 3}} for i in range(50)]}))
    yield s
    s.stop(30)


def test_thousands_of_malformed_requests_get_4xx_json(server):
    rng = random.Random(1234)
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for method, path, raw, headers in _requests(rng, 1500):
            r = http.request(method, path, content=raw, headers=headers)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (method, path, raw[:300], r.text[:300])
            if r.status_code >= 400:
                err = r.json()["error"]
                assert err["code"] and err["message"], r.text
        # oversized bodies: by Content-Length and by a streamed body without one
        big = json.dumps({"vectors": [_GOOD_VECTOR] * 3000}).encode()
        r = http.post("/collections/m/points/search", content=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        r = http.post("/collections/m/points/search", content=iter([big[:30000], big[30000:]]))
        assert r.status_code == 413
        # the server is alive and its data intact
        assert http.get("/livez").status_code == 200
        count = http.post("/collections/m/points/count", content=b"{}").json()["count"]
    print("statuses", statuses)
    rejected = sum(v for s, v in statuses.items() if s >= 400)
    assert rejected >= 1000, statuses
    assert 50 <= count <= 51  # the one valid-looking upsert (id 1) may have replaced a point


def test_errors_name_the_problem(server):
    with httpx.Client(base_url=server.url) as http:
        def err(method, path, body):
            r = http.request(method, path, content=body if isinstance(body, bytes)
                             else json.dumps(body))
            assert 400 <= r.status_code < 500
            return r.status_code, r.json()["error"]["message"]

        s = "/collections/m/points/search"
        assert "dim = 8" in err("POST", s, {"vector": [1.0] * 3})[1]
        assert "finite" in err("POST", s, {"vector": "AADAfw==" * 0 + base64.b64encode(
            np.full(DIM, np.nan, np.float32).tobytes()).decode()})[1]
        assert "k must be" in err("POST", s, {"vector": _GOOD_VECTOR, "k": 0})[1]
        assert "k must be" in err("POST", s, {"vector": _GOOD_VECTOR, "k": 10**6})[1]
        assert "unknown field 'colour'" in err("POST", s, {"vector": _GOOD_VECTOR, "colour": 1})[1]
        assert "not valid JSON" in err("POST", s, b"{")[1]
        assert err("POST", "/collections/zz/points/search", {"vector": _GOOD_VECTOR}) == \
            (404, "no collection named 'zz'")
        assert "zero vector" in err("PUT", "/collections/m/points",
                                    {"points": [{"id": 3, "vector": [0.0] * DIM}]})[1]
        assert "holds int values" in err("PUT", "/collections/m/points", {"points": [
            {"id": 3, "vector": _GOOD_VECTOR, "attributes": {"a": 0.5}}]})[1]
        assert "field 'b'" in err("POST", s, {"vector": _GOOD_VECTOR,
                                              "filter": {"op": "eq", "field": "b", "value": 1}})[1]
