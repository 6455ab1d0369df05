"""The versioned JSON form of Filter: round trips and clear errors."""

import json

import bitgraph as bg
import numpy as np
import pytest
from bitgraph import Filter
from hypothesis import given, settings
from hypothesis import strategies as st

_FIELDS = st.sampled_from(["a", "b", "tags", "é"])
_INTS = st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5)
_LEAVES = st.one_of(
    st.builds(Filter.eq, _FIELDS, st.integers(-(2**63), 2**63 - 1)),
    st.builds(Filter.eq, _FIELDS, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(Filter.isin, _FIELDS, _INTS),
    st.builds(Filter.range, _FIELDS, st.one_of(st.none(), st.integers(-(2**70), 2**70)),
              st.one_of(st.none(), st.floats(allow_nan=False))),
    st.builds(Filter.range, _FIELDS, st.sampled_from([None, -np.inf, np.inf, 1.5]),
              st.sampled_from([None, -np.inf, np.inf, 2])),
    st.builds(Filter.has_any, _FIELDS, _INTS),
    st.builds(Filter.has_all, _FIELDS, _INTS),
    st.builds(Filter.ids, _INTS),
)
_FILTERS = st.recursive(_LEAVES, lambda kids: st.one_of(
    st.builds(lambda a, b: a & b, kids, kids), st.builds(lambda a, b: a | b, kids, kids),
    st.builds(lambda a: ~a, kids)), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(_FILTERS)
def test_round_trip(f):
    text = f.to_json()
    assert Filter.from_json(text) == f
    assert Filter.from_json(json.loads(text)) == f
    assert Filter.from_json(text.encode()) == f
    assert Filter.from_json(f.to_dict()["expr"]) == f  # a bare expression is version 1


def test_documented_form():
    f = (Filter.eq("section", 3) & Filter.range("size", 0, None)) | ~Filter.has_any("tags", [7])
    assert f.to_dict() == {"version": 1, "expr": {"op": "or", "args": [
        {"op": "and", "args": [{"op": "isin", "field": "section", "values": [3]},
                               {"op": "range", "field": "size", "gte": 0, "lte": None}]},
        {"op": "not", "arg": {"op": "has_any", "field": "tags", "values": [7]}}]}}
    many = Filter.from_json({"op": "and", "args": [{"op": "eq", "field": "a", "value": 1}] * 3})
    assert many == Filter.eq("a", 1) & Filter.eq("a", 1) & Filter.eq("a", 1)


def test_same_matches_after_round_trip(backend):
    rng = np.random.default_rng(1)
    index = bg.FlatIndex(4, backend=backend)
    index.add(rng.standard_normal((200, 4)), attributes={
        "a": rng.integers(0, 5, 200), "f": rng.random(200),
        "tags": [list(rng.integers(0, 6, rng.integers(0, 3))) for _ in range(200)]})
    f = (Filter.isin("a", [1, 3]) | Filter.range("f", 0.2, 0.4)) & ~Filter.has_all("tags", [2])
    assert index.count(Filter.from_json(f.to_json())) == index.count(f) > 0


@pytest.mark.parametrize("bad,exc,words", [
    ("{", bg.BitgraphValueError, "not valid JSON"),
    ("[1]", bg.BitgraphTypeError, "JSON object"),
    ({"version": 2, "expr": {"op": "ids", "values": []}}, bg.BitgraphValueError, "version"),
    ({"version": 1}, bg.BitgraphValueError, "expr"),
    ({"op": "like", "field": "a"}, bg.BitgraphValueError, "unknown op"),
    ({"op": "eq", "field": "a"}, bg.BitgraphValueError, "needs 'value'"),
    ({"op": "eq", "field": "a", "value": 1, "x": 2}, bg.BitgraphValueError, "unknown key 'x'"),
    ({"op": "eq", "field": 3, "value": 1}, bg.BitgraphTypeError, "field"),
    ({"op": "eq", "field": "a", "value": True}, bg.BitgraphTypeError, "int or float"),
    ({"op": "eq", "field": "a", "value": "3"}, bg.BitgraphTypeError, "int or float"),
    ({"op": "isin", "field": "a", "values": 3}, bg.BitgraphTypeError, "list"),
    ({"op": "isin", "field": "a", "values": [1.5]}, bg.BitgraphTypeError, "ints"),
    ({"op": "range", "field": "a", "gte": "x"}, bg.BitgraphTypeError, "number"),
    ({"op": "and", "args": []}, bg.BitgraphValueError, "non-empty"),
    ({"op": "not", "arg": 5}, bg.BitgraphTypeError, "expected an object"),
])
def test_errors_name_the_problem(bad, exc, words):
    with pytest.raises(exc, match=words):
        Filter.from_json(bad)


def test_deep_nesting_is_refused_not_a_crash():
    e = {"op": "ids", "values": [1]}
    for _ in range(5000):
        e = {"op": "not", "arg": e}
    with pytest.raises(bg.BitgraphValueError, match="deeper"):
        Filter.from_json(e)
