"""Durability: concurrent writers, `kill -9` at a random moment, restart, and every
acknowledged write is there (vector, attributes, payload), no partial write shows, over many
cycles. Small log limits make checkpoints happen during the writes too, so kills land in the
middle of snapshots as well."""

from __future__ import annotations

import random
import threading
import time

import httpx
import numpy as np
import pytest
from server_process import ServerProcess

DIM = 8
CYCLES = 20
WRITERS = 3
IDS_PER_WRITER = 200

State = tuple  # (vector tuple, attributes dict, payload) of a point


def _point(rng: random.Random, i: int) -> dict:
    p: dict = {"id": i, "vector": [float(rng.randint(-50, 50)) for _ in range(DIM)]}
    if rng.random() < 0.7:
        attrs: dict = {"a": rng.randint(0, 9)}
        if rng.random() < 0.5:
            attrs["tags"] = sorted(rng.sample(range(20), rng.randint(1, 3)))
        if rng.random() < 0.3:
            attrs["f"] = rng.random()
        p["attributes"] = attrs
    if rng.random() < 0.8:
        p["payload"] = {"n": rng.randint(0, 10**9), "s": "x" * rng.randint(0, 40)}
    return p


def _state_of(p: dict) -> State:
    return (tuple(p["vector"]), dict(sorted((p.get("attributes") or {}).items())),
            p.get("payload"))


def _actual_state(p: dict) -> State:
    attrs = {k: v for k, v in p["attributes"].items() if v is not None and v != []}
    return (tuple(p["vector"]), dict(sorted(attrs.items())), p.get("payload"))


class Writer(threading.Thread):
    """Writes to its own ids; ``expected`` holds what the server acknowledged, ``in_flight``
    the ids and states of a write sent but not answered."""

    def __init__(self, url: str, first_id: int, expected: dict[int, State | None], seed: int):
        super().__init__(daemon=True)
        self.url = url
        self.ids = list(range(first_id, first_id + IDS_PER_WRITER))
        self.expected = expected
        self.rng = random.Random(seed)
        self.in_flight: dict[int, State | None] | None = None
        self.acked = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while True:
                chosen = self.rng.sample(self.ids, self.rng.randint(1, 6))
                if self.rng.random() < 0.75:
                    points = [_point(self.rng, i) for i in chosen]
                    after = {p["id"]: _state_of(p) for p in points}
                    req = ("PUT", "/collections/d/points", {"points": points})
                else:
                    after = dict.fromkeys(chosen)
                    req = ("POST", "/collections/d/points/delete", {"ids": chosen})
                self.in_flight = after
                try:
                    r = http.request(req[0], req[1], json=req[2])
                except httpx.HTTPError:
                    return  # killed: this write may or may not have happened
                assert r.status_code == 200, r.text
                self.expected.update(after)
                self.in_flight = None
                self.acked += 1


def _check(url: str, writers: list[Writer], expected: dict[int, State | None]) -> None:
    ids = sorted(expected)
    with httpx.Client(base_url=url, timeout=60) as http:
        got = http.post("/collections/d/points/get", json={
            "ids": ids, "with_vector": True, "with_payload": True}).json()["points"]
    actual: dict[int, State | None] = dict.fromkeys(ids)
    actual.update({p["id"]: _actual_state(p) for p in got})
    maybe = {}
    for w in writers:
        if w.in_flight is not None:
            # all or nothing: the whole write shows, or none of it
            new = all(actual[i] == s for i, s in w.in_flight.items())
            old = all(actual[i] == expected[i] for i in w.in_flight)
            assert new or old, f"partial write: {w.in_flight} vs {[actual[i] for i in w.in_flight]}"
            if new and not old:
                maybe.update(w.in_flight)
    expected.update(maybe)  # it landed: it is the state from now on
    lost = [i for i in ids if actual[i] != expected[i]]
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. id {lost[0]}: " \
                     f"{expected[lost[0]]} != {actual[lost[0]]}"


@pytest.mark.parametrize("kind", ["hnsw"])
def test_kill_9_loses_no_acknowledged_write(tmp_path, kind):
    data = tmp_path / "data"
    expected: dict[int, State | None] = {}
    for w in range(WRITERS):
        expected.update(dict.fromkeys(range(w * 100_000, w * 100_000 + IDS_PER_WRITER)))
    rng = random.Random(7)
    acked_total = 0
    writers: list[Writer] = []
    for cycle in range(CYCLES):
        server = ServerProcess(data, "--checkpoint-log-mb", "0.03").start()
        try:
            if cycle == 0:
                r = httpx.put(server.url + "/collections/d", json={"dim": DIM, "metric": "l2",
                                                                   "kind": kind, "M": 8})
                assert r.status_code == 201, r.text
            else:
                _check(server.url, writers, expected)
            writers = [Writer(server.url, w * 100_000, expected, seed=cycle * 10 + w)
                       for w in range(WRITERS)]
            for w in writers:
                w.start()
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            server.kill()  # SIGKILL: no shutdown, no checkpoint
        for w in writers:
            w.join(30)
            assert not w.is_alive()
            acked_total += w.acked
    server = ServerProcess(data).start()
    try:
        _check(server.url, writers, expected)
        q = np.zeros(DIM).tolist()
        r = httpx.post(server.url + "/collections/d/points/search", json={"vector": q, "k": 5})
        assert r.status_code == 200
    finally:
        server.stop()
    assert acked_total > CYCLES * 5  # the loop really wrote (it is not vacuous)
    live = sum(v is not None for v in expected.values())
    assert live > 0
