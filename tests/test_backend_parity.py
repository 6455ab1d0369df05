"""native and numba build the same HNSW graph: the same level stream (splitmix64 seeded with
``seed``, csrc/hnsw/build.cpp), the same entry point and top level, and, where both compute
bit-identical distances (float32 l2 over small integers: every sum is exact), the same links.
Builds are single-threaded (``threads=1``): a parallel native build inserts in another order."""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pytest

import bitgraph as bg

from bg_testutil import BACKENDS

pytestmark = pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both backends")

_MASK = (1 << 64) - 1


def reference_levels(seed: int, n: int, M: int) -> list[int]:
    """The level stream in plain Python: u = ((splitmix64(state) >> 11) + 1) * 2^-53,
    level = int(-ln(u) / ln(M)), state seeded with ``seed``, one step per item."""
    state, mult, out = seed, 1.0 / math.log(float(M)), []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & _MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        out.append(int(-math.log(float((z >> 11) + 1) * (1.0 / 9007199254740992.0)) * mult))
    return out


def _build(backend, x, *, M, ef_construction, seed, history):
    """An index built by ``history``: ("add", lo, hi, ids or None), ("remove", ids),
    ("reload",) (save, load, continue)."""
    index = bg.HNSWIndex(x.shape[1], metric="l2", M=M, ef_construction=ef_construction,
                         seed=seed, backend=backend)
    with tempfile.TemporaryDirectory() as tmp:
        for step in history:
            if step[0] == "add":
                _, lo, hi, ids = step
                index.add(x[lo:hi], ids=ids, threads=1)
            elif step[0] == "remove":
                index.remove(step[1])
            else:
                path = os.path.join(tmp, "index.bg")
                index.save(path)
                index = bg.load(path, backend=backend)
    return dict(index._core.get_state())


# Several adds, one longer than the numba core's chunk of 1000 items, removals, re-added ids.
_HISTORY = [("add", 0, 100, None), ("add", 100, 101, None), ("add", 101, 1250, None),
            ("remove", np.arange(0, 1250, 9)), ("add", 1250, 1400, np.arange(40, 190)),
            ("add", 1400, 1500, None)]


@pytest.mark.parametrize("M, seed", [(2, 7), (5, 0), (16, 12345), (8, 2**64 - 1)])
def test_same_levels_entry_point_and_max_level(M, seed):
    x = np.random.default_rng(seed % 1000).standard_normal((1500, 8)).astype(np.float32)
    states = [_build(name, x, M=M, ef_construction=24, seed=seed, history=_HISTORY)
              for name in ("native", "numba")]
    a, b = states
    assert a["levels"].dtype == b["levels"].dtype == np.int32
    assert np.array_equal(a["levels"], b["levels"])
    assert np.array_equal(a["levels"], reference_levels(seed, 1500, M))
    assert a["entry_point"] == b["entry_point"]
    assert a["max_level"] == b["max_level"] == a["levels"].max()
    assert a["levels"][a["entry_point"]] == a["max_level"]
    # The entry point is the first slot that reached the top level (a later one only ties).
    assert a["entry_point"] == int(np.flatnonzero(a["levels"] == a["max_level"])[0])


def test_a_loaded_index_restarts_the_level_stream():
    """As the native core: from_state seeds the generator with ``seed`` again."""
    x = np.random.default_rng(3).standard_normal((300, 4)).astype(np.float32)
    history = [("add", 0, 200, None), ("reload",), ("add", 200, 300, None)]
    for name in ("native", "numba"):
        levels = _build(name, x, M=4, ef_construction=16, seed=11, history=history)["levels"]
        ref = reference_levels(11, 200, 4)
        assert levels.tolist() == ref + ref[:100], name


def _integer_vectors(n, dim, seed):
    return np.random.default_rng(seed).integers(-8, 9, size=(n, dim)).astype(np.float32)


@pytest.mark.parametrize("M, ef_construction, seed", [
    (8, 40, 3),        # the usual case
    (4, 10, 0),        # small pools: many full lists, re-pruned back-links
    (16, 200, 12345),  # pools larger than the index for the first adds
    (2, 1, 7),         # a pool of one candidate
])
def test_same_graph_over_integer_vectors(M, ef_construction, seed):
    """Small integers (|x| <= 8, dim 16) make every l2 distance an exact float32 integer, in
    both backends whatever their summation order, with many ties: links0 / upper then depend
    only on the algorithm (walk, tie order, heuristic, back-link pruning, repair)."""
    x = _integer_vectors(500, 16, seed)
    history = [("add", 0, 100, None), ("add", 100, 101, None), ("add", 101, 251, None),
               ("add", 251, 500, None)]
    a, b = (_build(name, x, M=M, ef_construction=ef_construction, seed=seed, history=history)
            for name in ("native", "numba"))
    assert np.array_equal(a["levels"], b["levels"])
    assert (a["entry_point"], a["max_level"]) == (b["entry_point"], b["max_level"])
    assert np.array_equal(a["links0"], b["links0"]), \
        f"{int((a['links0'] != b['links0']).any(axis=1).sum())} level-0 lists differ"
    assert np.array_equal(a["upper"], b["upper"])


def test_same_graph_with_removals_re_adds_and_a_reload():
    x = _integer_vectors(1600, 16, 5)
    history = _HISTORY[:4] + [("reload",)] + _HISTORY[4:] + [("add", 1500, 1600, None)]
    a, b = (_build(name, x, M=6, ef_construction=30, seed=9, history=history)
            for name in ("native", "numba"))
    for key in ("levels", "links0", "upper", "labels", "deleted", "vectors"):
        assert np.array_equal(a[key], b[key]), key
    assert (a["entry_point"], a["max_level"]) == (b["entry_point"], b["max_level"])


@pytest.mark.parametrize("M, ef_construction, seed", [(8, 40, 1), (16, 100, 3), (4, 10, 0)])
def test_same_answers_query_by_query(M, ef_construction, seed):
    """Over the same graph both backends walk an unfiltered query the same way (the native
    pool walk), so they return the same ids in the same order with the same distances, ties
    included, call by call and at every ef."""
    x = _integer_vectors(800, 16, seed)
    queries = _integer_vectors(150, 16, seed + 100)
    a, b = (bg.HNSWIndex(16, metric="l2", M=M, ef_construction=ef_construction, seed=seed,
                         backend=name) for name in ("native", "numba"))
    for index in (a, b):
        index.add(x, threads=1)
    for ef in (10, 32, 100):
        for k in (1, 10):
            ra, rb = a.search(queries, k, ef=ef, threads=1), b.search(queries, k, ef=ef, threads=1)
            assert np.array_equal(ra.ids, rb.ids), \
                f"ef={ef} k={k}: {int((ra.ids != rb.ids).any(axis=1).sum())} rows differ"
            assert np.array_equal(ra.distances, rb.distances)
