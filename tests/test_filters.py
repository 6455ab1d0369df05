"""Filtered search: filter semantics against numpy, planner plans, result counts, recall at
low selectivity, per-query filters, attribute consistency on update/remove, persistence and
bad filters. Every test runs on each backend."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import bitgraph as bg
from bg_testutil import clustered

F = bg.Filter
N, DIM = 3000, 16


def _attributes(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "cat": rng.integers(0, 20, n),
        "num": rng.random(n) * 100.0,
        "year": rng.integers(1990, 2030, n),
        "tags": [list(rng.choice(12, size=rng.integers(0, 4), replace=False)) for _ in range(n)],
    }


def _mask(f: F, attrs: dict, ids: np.ndarray) -> np.ndarray:
    """numpy reference: which rows match the filter (rows are ids 0..n-1)."""
    op = f._op
    if op == "and":
        return _mask(f._children[0], attrs, ids) & _mask(f._children[1], attrs, ids)
    if op == "or":
        return _mask(f._children[0], attrs, ids) | _mask(f._children[1], attrs, ids)
    if op == "not":
        return ~_mask(f._children[0], attrs, ids)
    if op == "ids":
        return np.isin(ids, f._args[0])
    col = attrs[f._field]
    if op == "isin":
        return np.isin(col, f._args[0])
    if op == "range":
        return (col >= f._args[0]) & (col <= f._args[1])
    sets = [set(int(t) for t in tags) for tags in col]
    want = set(int(v) for v in f._args[0])
    if op == "has_any":
        return np.array([bool(s & want) for s in sets])
    return np.array([want <= s for s in sets])


@pytest.fixture(scope="module")
def data():
    x = clustered(N, DIM, seed=3)
    q = clustered(60, DIM, seed=4)
    return x, q, _attributes(N)


@pytest.fixture
def indexes(data, backend):
    x, _, attrs = data
    out = {}
    for kind, cls in (("hnsw", bg.HNSWIndex), ("flat", bg.FlatIndex)):
        idx = cls(DIM, metric="l2", backend=backend)
        idx.add(x, attributes=attrs, threads=1)
        out[kind] = idx
    return out


def _exact(x, q, mask, k):
    d = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    d[:, ~mask] = np.inf
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.where(np.isfinite(np.take_along_axis(d, order, 1)), order, -1)


leaf = st.one_of(
    st.builds(F.eq, st.just("cat"), st.integers(0, 21)),
    st.builds(F.isin, st.just("cat"), st.lists(st.integers(0, 21), max_size=5)),
    st.builds(F.range, st.sampled_from(["num", "year"]), st.floats(-10, 110), st.floats(-10, 110)),
    st.builds(F.range, st.just("year"), st.none(), st.integers(1985, 2035)),
    st.builds(F.has_any, st.just("tags"), st.lists(st.integers(0, 13), max_size=3)),
    st.builds(F.has_all, st.just("tags"), st.lists(st.integers(0, 13), max_size=2)),
    st.builds(F.ids, st.lists(st.integers(0, N + 50), max_size=200)),
)
expr = st.recursive(leaf, lambda kids: st.one_of(
    st.builds(lambda a, b: a & b, kids, kids),
    st.builds(lambda a, b: a | b, kids, kids),
    st.builds(lambda a: ~a, kids)), max_leaves=5)


@settings(max_examples=60, deadline=None)
@given(f=expr)
def test_filter_semantics_match_numpy(data, f):
    x, q, attrs = data
    for backend in ("native", "numba"):
        if backend not in bg.backend_info()["available"]:
            continue
        idx = _cached_flat(backend, x, attrs)
        mask = _mask(f, attrs, np.arange(N))
        assert idx.count(f) == int(mask.sum())
        res = idx.search(q[:3], k=N, filter=f)
        for row in res.ids:
            got = np.sort(row[row >= 0])
            assert np.array_equal(got, np.flatnonzero(mask))


_FLAT_CACHE: dict = {}


def _cached_flat(backend, x, attrs):
    if backend not in _FLAT_CACHE:
        idx = bg.FlatIndex(DIM, metric="l2", backend=backend)
        idx.add(x, attributes=attrs)
        _FLAT_CACHE[backend] = idx
    return _FLAT_CACHE[backend]


SELECTIVE = [F.eq("cat", 7), F.range("num", 0, 0.5), F.has_all("tags", [1, 2]),
             F.isin("cat", [1, 2, 3]) & F.range("year", 2000, 2010), F.ids([5, 17, 99])]
BROAD = [F.range("num", 0, 100), F.range("num", 10, 90), ~F.eq("cat", 3),
         F.has_any("tags", [0, 1, 2, 3]), F.isin("cat", list(range(4)))]


@pytest.mark.parametrize("f", SELECTIVE + BROAD, ids=repr)
@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_only_matching_and_min_k_matches(indexes, data, f, kind):
    x, q, attrs = data
    idx = indexes[kind]
    mask = _mask(f, attrs, np.arange(N))
    res = idx.search(q, k=10, filter=f)
    assert np.isin(res.ids[res.ids >= 0], np.flatnonzero(mask)).all()
    assert (res.counts == min(10, int(mask.sum()))).all()
    assert res.plans is not None and res.visited is not None
    truth = _exact(x, q, mask, 10)
    hits = sum(len(set(a[a >= 0]) & set(b[b >= 0])) for a, b in zip(res.ids, truth))
    recall = hits / max(1, (truth >= 0).sum())
    assert recall >= (1.0 if kind == "flat" else 0.95)
    if kind == "flat":
        assert set(res.plans) == {"exact"}


@pytest.mark.parametrize("selectivity", [0.5, 0.2, 0.05, 0.01, 0.002])
def test_every_plan_keeps_recall(indexes, data, selectivity):
    """Forcing each plan (through the thresholds) still gives exact-filter results."""
    x, q, attrs = data
    idx = indexes["hnsw"]
    f = F.range("num", 0, selectivity * 100)
    mask = _mask(f, attrs, np.arange(N))
    truth = _exact(x, q, mask, 10)
    seen = set()
    for cfg in (bg.PlannerConfig(exact_ratio=0, exact_ratio_batched=0, acorn_below=1.0),
                bg.PlannerConfig(exact_ratio=0, exact_ratio_batched=0, acorn_below=0.0),
                bg.PlannerConfig(exact_ratio=1e9, exact_ratio_batched=0),
                bg.PlannerConfig(exact_ratio=0, exact_ratio_batched=1e9)):
        idx.planner = cfg
        res = idx.search(q, k=10, ef=64, filter=f)
        seen |= set(res.plans)
        assert np.isin(res.ids[res.ids >= 0], np.flatnonzero(mask)).all()
        assert (res.counts == min(10, int(mask.sum()))).all()
        hits = sum(len(set(a[a >= 0]) & set(b[b >= 0])) for a, b in zip(res.ids, truth))
        assert hits / (truth >= 0).sum() >= 0.95, (cfg, set(res.plans))
    assert "exact" in seen
    if mask.sum() > 10:  # with <= k matches every plan is the exact scan
        assert seen & {"acorn", "exact-fallback"} and seen & {"post-filter", "exact-fallback"}


def test_planner_picks_exact_for_selective_and_walks_for_broad(indexes, data):
    _, q, _ = data
    idx = indexes["hnsw"]
    # a small index: walks only above 256 matches
    idx.planner = bg.PlannerConfig(exact_ratio=0.34, exact_ratio_batched=0.34)
    assert set(idx.search(q, 10, filter=F.eq("cat", 7)).plans) == {"exact"}
    broad = idx.search(q, 10, filter=F.range("num", 0, 80))
    assert set(broad.plans) <= {"post-filter", "acorn"}
    assert (broad.visited > 0).all() or set(broad.plans) == {"post-filter"}
    # Guard: a walk may never score more than about twice the matches.
    mid = idx.search(q, 10, filter=F.range("num", 0, 20))
    assert (mid.visited <= 2 * idx.count(F.range("num", 0, 20)) + 64).all()


def test_per_query_filters(indexes, data):
    x, q, attrs = data
    idx = indexes["hnsw"]
    filters = [F.eq("cat", int(i % 20)) if i % 3 else None for i in range(len(q))]
    res = idx.search(q, k=5, filter=filters)
    for i, f in enumerate(filters):
        alone = idx.search(q[i:i + 1], k=5, filter=f)
        assert np.array_equal(res.ids[i], alone.ids[0])
        if f is None:
            assert res.plans[i] == "unfiltered"
        else:
            assert np.isin(res.ids[i][res.ids[i] >= 0], np.flatnonzero(attrs["cat"] == i % 20)).all()
    with pytest.raises(bg.BitgraphValueError, match="entries for 60 queries"):
        idx.search(q, k=5, filter=filters[:3])
    with pytest.raises(bg.BitgraphTypeError):
        idx.search(q, k=5, filter=["cat"] * len(q))


def test_batched_exact_plan_matches_single_queries(indexes, data):
    """A shared filter scanned for the whole batch (tiles) answers like one query at a time."""
    _, q, _ = data
    for idx in indexes.values():
        f = F.range("num", 0, 40) & ~F.has_any("tags", [3])
        batch = idx.search(q, 10, filter=f, threads=1)
        assert set(batch.plans) == {"exact"}
        for i in range(0, len(q), 7):
            one = idx.search(q[i:i + 1], 10, filter=f, threads=1)
            assert one.plans[0] == "exact"
            assert np.array_equal(one.ids[0], batch.ids[i])
            np.testing.assert_allclose(one.distances[0], batch.distances[i], rtol=1e-6)


def test_attributes_follow_updates_and_removes(backend):
    x = clustered(400, 8, seed=1)
    idx = bg.HNSWIndex(8, metric="l2", backend=backend)
    idx.add(x, attributes={"cat": np.arange(400) % 4, "tags": [[i % 5] for i in range(400)]})
    assert idx.count(F.eq("cat", 0)) == 100
    idx.remove(np.arange(0, 40, 4))  # ten items of category 0
    assert idx.count(F.eq("cat", 0)) == 90
    assert idx.count(~F.eq("cat", 0)) == 300
    # Re-adding with new attributes moves the item; without them it keeps its old values.
    idx.add(x[1:3], ids=[1, 2], attributes={"cat": [0, 0], "tags": [[9], [9]]})
    assert idx.count(F.eq("cat", 0)) == 92 and idx.count(F.has_any("tags", [9])) == 2
    idx.add(x[5:6], ids=[5])
    assert idx.count(F.eq("cat", 1)) == 99  # id 1 moved to category 0, 5 kept its category 1
    assert idx.search(x[5:6], 1, filter=F.eq("cat", 1)).ids[0, 0] == 5
    # New items without a field have it missing: never matched, but matched by its negation.
    idx.add(x[:2], ids=[1000, 1001])
    assert idx.count(F.eq("cat", 0)) == 92 and idx.count(~F.isin("cat", [0, 1, 2, 3])) == 2
    # A field added later is missing on older items.
    idx.add(x[:1], ids=[2000], attributes={"price": [3.5]})
    assert idx.count(F.range("price", 0, 10)) == 1
    assert idx.attribute_fields == {"cat": "int", "tags": "tags", "price": "float"}


def test_attributes_persist(tmp_path, backend, data):
    x, q, attrs = data
    idx = bg.HNSWIndex(DIM, metric="l2", backend=backend)
    idx.add(x, attributes=attrs, threads=1)
    idx.remove([0, 1, 2])
    f = (F.eq("cat", 3) | F.has_any("tags", [5])) & F.range("num", 10, 80)
    before = idx.search(q, 10, filter=f)
    path = tmp_path / "a.bg"
    idx.save(path)
    for mmap in (False, True):
        loaded = bg.load(path, mmap=mmap, backend=backend)
        assert loaded.attribute_fields == idx.attribute_fields
        after = loaded.search(q, 10, filter=f)
        assert np.array_equal(before.ids, after.ids)
        loaded.add(x[:5], ids=[10**6 + i for i in range(5)],
                   attributes={"cat": [3] * 5, "num": [50.0] * 5, "year": [2000] * 5,
                               "tags": [[]] * 5})
        assert loaded.count(F.eq("cat", 3)) == idx.count(F.eq("cat", 3)) + 5
    clone = pickle.loads(pickle.dumps(idx))
    assert np.array_equal(clone.search(q, 10, filter=f).ids, before.ids)


def test_bad_filters_and_attributes(backend):
    idx = bg.FlatIndex(4, metric="l2", backend=backend)
    x = np.eye(4, dtype=np.float32)
    idx.add(x, attributes={"cat": [1, 2, 3, 4], "tags": [[1], [], [2, 3], [1]], "p": [0.5] * 4})
    with pytest.raises(bg.BitgraphValueError, match="unknown filter field 'nope'"):
        idx.search(x, 2, filter=F.eq("nope", 1))
    with pytest.raises(bg.BitgraphTypeError, match="holds ints"):
        idx.search(x, 2, filter=F.eq("cat", 2.5))
    with pytest.raises(bg.BitgraphTypeError, match="tags"):
        idx.search(x, 2, filter=F.range("tags", 0, 1))
    with pytest.raises(bg.BitgraphTypeError):
        idx.search(x, 2, filter=F.has_any("cat", [1]))
    with pytest.raises(bg.BitgraphTypeError):
        F.eq("cat", "a")
    with pytest.raises(bg.BitgraphTypeError):
        F.isin("cat", [1.5])
    with pytest.raises(bg.BitgraphTypeError):
        F.ids(["a"])
    with pytest.raises(bg.BitgraphValueError):
        F.range("p", float("nan"), 1)
    with pytest.raises(bg.BitgraphTypeError, match="truth value"):
        bool(F.eq("cat", 1))
    with pytest.raises(bg.BitgraphTypeError):
        _ = F.eq("cat", 1) & "cat"
    with pytest.raises(bg.BitgraphTypeError):
        idx.search(x, 2, filter="cat == 1")
    # Attribute values are checked before anything is added.
    with pytest.raises(bg.BitgraphValueError, match="2 values for 1 vectors"):
        idx.add(x[:1], attributes={"cat": [1, 2]})
    with pytest.raises(bg.BitgraphTypeError, match="holds int values"):
        idx.add(x[:1], attributes={"cat": [[1]]})
    with pytest.raises(bg.BitgraphValueError, match="NaN"):
        idx.add(x[:1], attributes={"p": [float("nan")]})
    with pytest.raises(bg.BitgraphTypeError):
        idx.add(x[:1], attributes={"s": ["text"]})
    with pytest.raises(bg.BitgraphTypeError):
        idx.add(x[:1], attributes=[1])
    assert len(idx) == 4
    # A float field accepts ints; ranges on int fields use integer bounds exactly.
    idx.add(x[:1], attributes={"p": [2]})
    assert idx.count(F.range("p", 1.5, 2.5)) == 1
    assert idx.count(F.range("cat", 1.5, 3)) == 2


def test_empty_index_and_empty_matches(backend):
    idx = bg.HNSWIndex(4, metric="l2", backend=backend)
    res = idx.search(np.ones((2, 4)), 3, filter=F.ids([1, 2]))
    assert (res.ids == -1).all() and list(res.plans) == ["exact", "exact"]
    idx.add(np.eye(4), attributes={"cat": [0, 0, 1, 1]})
    res = idx.search(np.ones((2, 4)), 3, filter=F.eq("cat", 5))
    assert (res.ids == -1).all() and np.isinf(res.distances).all()
    res = idx.search(np.ones((1, 4)), 3, filter=F.eq("cat", 1))
    assert sorted(res.ids[0][:2]) == [2, 3] and res.ids[0][2] == -1


def test_backends_agree_on_filtered_search(data):
    if len(bg.backend_info()["available"]) < 2:
        pytest.skip("needs both backends")
    x, q, attrs = data
    f = F.range("num", 0, 30) & ~F.eq("cat", 2)
    out = []
    for backend in ("native", "numba"):
        idx = bg.FlatIndex(DIM, metric="l2", backend=backend)
        idx.add(x, attributes=attrs)
        out.append(idx.search(q, 10, filter=f))
    assert np.array_equal(out[0].ids, out[1].ids)
    np.testing.assert_allclose(out[0].distances, out[1].distances, rtol=1e-5)


def test_backends_choose_the_same_plans(data):
    """Both backends apply the same thresholds (incl. the batched one) to the same inputs."""
    if len(bg.backend_info()["available"]) < 2:
        pytest.skip("needs both backends")
    x, q, attrs = data
    filters = [F.eq("cat", 4), F.range("num", 0, 30), F.range("num", 0, 95)]
    cfg = bg.PlannerConfig(exact_ratio=0.043, exact_ratio_batched=1.07, acorn_below=0.5)
    runs = {}
    for backend in ("native", "numba"):
        idx = bg.HNSWIndex(DIM, metric="l2", backend=backend)
        idx.add(x, attributes=attrs, threads=1)
        idx.planner = cfg
        runs[backend] = [(idx.search(q, 10, ef=32, filter=f, threads=1),
                          idx.search(q[:2], 10, ef=32, filter=f, threads=1)) for f in filters]
    def kind(plans):  # a walk may end in the exact fallback on one backend and not the other
        return ["exact" if p == "exact" else "walk" for p in plans]

    for (nb, ns), (mb, ms) in zip(runs["native"], runs["numba"]):
        assert kind(nb.plans) == kind(mb.plans)
        assert kind(ns.plans) == kind(ms.plans)
        if set(nb.plans) == {"exact"}:
            assert np.array_equal(nb.ids, mb.ids)


@pytest.mark.parametrize("storage", ["float32", "float16", "int8"])
@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_filtered_search_on_every_storage(data, backend, storage, kind):
    x, q, attrs = data
    cls = bg.HNSWIndex if kind == "hnsw" else bg.FlatIndex
    idx = cls(DIM, metric="l2", storage=storage, backend=backend)
    idx.add(x, attributes=attrs, threads=1)
    exact = bg.FlatIndex(DIM, metric="l2", storage=storage, backend=backend)
    exact.add(x, attributes=attrs)
    for f in (F.eq("cat", 5), F.range("num", 0, 30), F.range("num", 0, 90) & ~F.eq("cat", 1)):
        mask = _mask(f, attrs, np.arange(N))
        for batch in (q, q[:1]):  # tiled batch plan and one-query plans
            res = idx.search(batch, 10, filter=f, threads=1)
            assert np.isin(res.ids[res.ids >= 0], np.flatnonzero(mask)).all()
            assert (res.counts == min(10, int(mask.sum()))).all()
            truth = exact.search(batch, 10, filter=f).ids
            hits = sum(len(set(a) & set(b)) for a, b in zip(res.ids, truth))
            assert hits / truth.size >= 0.95, (storage, kind, f)


def test_slots_without_recorded_attributes_never_match(backend):
    """Slots past the attribute rows (an add still running) are outside every filter, even
    a negation."""
    idx = bg.FlatIndex(4, metric="l2", backend=backend)
    idx.add(np.eye(4), attributes={"cat": [0, 1, 2, 3]})
    with idx._attr_lock:
        ops, entries, _ = idx._attributes.compile(~F.eq("cat", 0), idx._slots_of)
    bits, count = idx._core.evaluate_filter(ops, entries, 4)
    assert count == 3
    bits, count = idx._core.evaluate_filter(ops, entries, 2)
    assert count == 1 and int(bits[0]) == 0b10


def test_many_distinct_filters_in_chunks(indexes, data, monkeypatch):
    """Per-query filters are evaluated in chunks bounded in memory; chunking changes nothing."""
    _, q, _ = data
    idx = indexes["hnsw"]
    filters = [F.range("num", i, i + 30) for i in range(len(q))]
    whole = idx.search(q, 10, filter=filters)
    monkeypatch.setattr(type(idx), "_filters_per_call", lambda self: 7)
    chunked = idx.search(q, 10, filter=filters)
    assert np.array_equal(whole.ids, chunked.ids) and list(whole.plans) == list(chunked.plans)
    none = idx.search(q[:3], 10, filter=[None, None, None])
    assert list(none.plans) == ["unfiltered"] * 3
    assert np.array_equal(none.ids, idx.search(q[:3], 10).ids)


def test_wide_ranges_from_prefix_bitmaps(backend):
    """Ranges wider than two buckets of the sorted order come from prefix bitmaps plus the
    partial buckets; the result must equal the numpy mask exactly, alone and combined."""
    from bitgraph import attribute_columns as attributes

    n = 3 * attributes.MIN_PREFIX_ITEMS
    rng = np.random.default_rng(7)
    price = rng.random(n) * 100
    year = rng.integers(0, 50, n)
    idx = bg.FlatIndex(2, metric="l2", backend=backend)
    idx.add(rng.standard_normal((n, 2)), attributes={"price": price, "year": year})
    q = rng.standard_normal((3, 2))
    bounds = [(0, 100), (3.5, 97.25), (10, 60), (50, 50.5), (-5, 20), (99, 200)]
    filters = [F.range("price", lo, hi) for lo, hi in bounds] + \
        [F.range("year", 3, 40), F.range("year", 2.5, 47.5) & ~F.range("price", 20, 80)]
    masks = [(price >= lo) & (price <= hi) for lo, hi in bounds] + \
        [(year >= 3) & (year <= 40), (year >= 3) & (year <= 47) & ~((price >= 20) & (price <= 80))]
    from bitgraph._filter_ops import OP_PREFIX_DIFF

    ops, _, loads = idx._attributes.compile(filters[2], idx._slots_of)
    assert OP_PREFIX_DIFF in ops[:, 0]  # the wide range takes the prefix path
    assert loads is idx._attributes._cols["price"].prefix_bitmaps()[0]  # passed without a copy
    for f, m in zip(filters, masks):
        assert idx.count(f) == int(m.sum()), f
    # One call with one filter per query (the vectorised compile path) and k = n.
    per_query = [filters[i % len(filters)] for i in range(len(filters))]
    res = idx.search(np.repeat(q[:1], len(per_query), axis=0), k=n, filter=per_query)
    for row, m in zip(res.ids, masks):
        assert np.array_equal(np.sort(row[row >= 0]), np.flatnonzero(m))
    assert idx._attributes.nbytes > price.nbytes + year.nbytes  # prefix bitmaps counted


# --- bounds at and beyond the int64 limits, NaN ------------------------------------------------

def _int_index(backend, n=200):
    rng = np.random.default_rng(5)
    index = bg.FlatIndex(4, backend=backend)
    cat = rng.integers(-5, 5, n)
    cat[:3] = [2**63 - 1, -2**63 + 1, 0]  # the extremes an int field can hold
    index.add(rng.normal(size=(n, 4)), attributes={"cat": cat, "price": rng.random(n)})
    index.add(rng.normal(size=(7, 4)))  # items without any field
    return index, cat


@pytest.mark.parametrize("low, high", [
    (None, 2**63 - 1), (-2**63, None), (-2**63, 2**63 - 1), (-2**70, 2**70), (None, 2**64),
    (-2**63 + 1, None), (2**63 - 1, None), (None, -2**63 + 1), (2**63 - 1, 2**63 - 1),
    (2**63, None), (None, -2**63), (-2.0**63, 2.0**63), (0.5, 4.5), (-4.5, -0.5),
    (float("-inf"), float("inf")), (3, 2),
])
def test_int_range_bounds_are_exact(backend, low, high):
    index, cat = _int_index(backend)
    lo = -np.inf if low is None else low
    hi = np.inf if high is None else high
    expect = sum(1 for c in cat.tolist() if lo <= c <= hi)  # Python ints: exact
    assert index.count(bg.Filter.range("cat", low, high)) == expect
    res = index.search(np.ones((1, 4)), k=300, filter=bg.Filter.range("cat", low, high))
    assert res.counts[0] == expect


def test_float_field_bounds_and_values_are_exact(backend):
    index = bg.FlatIndex(2, backend=backend)
    price = np.array([2.0**53, 2.0**53 + 2, 1.5, -0.0])
    index.add(np.eye(2)[[0, 1, 0, 1]], attributes={"price": price})
    assert index.count(bg.Filter.range("price", 2**53 + 1, None)) == 1  # int bound, inexact
    assert index.count(bg.Filter.range("price", None, 2**53 + 1)) == 3
    assert index.count(bg.Filter.eq("price", 2**53 + 1)) == 0  # no float equals it
    assert index.count(bg.Filter.eq("price", 2**53)) == 1
    assert index.count(bg.Filter.isin("price", [2**53, 2**53 + 1])) == 1
    assert index.count(bg.Filter.eq("price", 0)) == 1
    assert index.count(bg.Filter.range("price", None, 2**2000)) == 4


def test_nan_and_out_of_range_filter_values_are_refused():
    with pytest.raises(bg.BitgraphValueError, match="NaN"):
        bg.Filter.eq("price", float("nan"))
    with pytest.raises(bg.BitgraphValueError, match="NaN"):
        bg.Filter.range("price", float("nan"), 1)
    with pytest.raises(bg.BitgraphValueError, match="beyond int64"):
        bg.Filter.eq("cat", 2**64 - 1)
    with pytest.raises(bg.BitgraphError):
        bg.Filter.isin("cat", [2**64 - 1])
    with pytest.raises(bg.BitgraphError):
        bg.Filter.has_any("tags", [2**70])


def test_eq_on_the_extreme_int_values(backend):
    index, cat = _int_index(backend)
    assert index.count(bg.Filter.eq("cat", 2**63 - 1)) == 1
    assert index.count(bg.Filter.eq("cat", -2**63 + 1)) == 1
    assert index.count(bg.Filter.eq("cat", -2**63)) == 0  # the missing marker matches nothing
    assert index.count(~bg.Filter.range("cat")) == 7  # the items without the field
