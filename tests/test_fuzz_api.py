"""Property-based fuzzing of the public API of every index kind on every backend.

A hypothesis state machine (:class:`IndexMachine`) drives one index (HNSWIndex with each
storage, FlatIndex, BinaryIndex flat / hnsw with rerank "memory" / "mmap" / None; native and
numba) with a numpy model of what it holds (id -> vector, attributes): adds (explicit, automatic
and re-added ids, int / float / tags attributes), removes (also of unknown ids), searches (k from
1 to beyond the index size, ef, threads, random filters and per-query filter lists), counts,
save / load (also memory-mapped), bytes and pickle round trips, planner thresholds that force
other filtered plans, and invalid calls. The invariant
(see fuzz_support.py): every call succeeds with a well-formed, correct result or raises a
``bg.BitgraphError``; anything else is a bug.

Correctness checked against the model: FlatIndex (and a flat BinaryIndex on codes) equals brute
force (ties compared by distance); for every index, returned ids are live and match the filter,
each distance is the recomputed distance of the query to that item's stored vector (decoded
float16 / int8 rows; BinaryIndex: exact float distance when re-ranked, exact code distance
otherwise), rows are sorted and padded with -1 / +inf, a filtered search finds
``min(k, matches)``, and ``k >= len(index)`` returns every live item (HNSW too).

Besides the machine, one test per category of invalid input (``test_invalid_calls``) samples
hostile calls (wrong dims, NaN / inf, empty arrays, strings / objects / complex, bools, huge
ints for k / ef / threads / oversample / ids / dim / M / ..., bad attributes, filters and
planner settings, bad load / loads / save arguments), so that a bug in one category does not
hide bugs in the others. Constructor arguments run in a worker process (absurd values have
crashed the interpreter).

A default run stops each test soon after its first failures (hypothesis' rule); with bugs
present, different runs report different subsets, and the example database
($TMPDIR/bitgraph-tests-hypothesis, see conftest.py) replays the known ones first.

Run: ``python -m pytest tests/test_fuzz_api.py``; ``BITGRAPH_FUZZ=long`` for 20x the examples.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, note, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule, run_state_machine_as_test)

import bitgraph as bg
from bitgraph.binary import reference as code_ref

from fuzz_support import (BACKENDS, INT64_MAX, INT64_MIN, INT_MISSING, METRICS, STORAGES, Spec,
                          attempt, check_well_formed, decoded, float_distances, fuzz_settings,
                          make_index, memory_guard, must_raise, prepared)

MAX_ITEMS = 240  # items in one index (adds stop there)


@pytest.fixture(scope="module", autouse=True)
def _guard():
    with memory_guard():
        yield


# --- strategies ------------------------------------------------------------------------------

@st.composite
def specs(draw: Any, kinds: tuple[str, ...] = ("hnsw", "flat", "binary")) -> Spec:
    kind = draw(st.sampled_from(kinds))
    base = dict(kind=kind, backend=draw(st.sampled_from(BACKENDS)),
                metric=draw(st.sampled_from(METRICS)),
                M=draw(st.integers(2, 12)), ef_construction=draw(st.integers(1, 64)),
                seed=draw(st.integers(0, 2 ** 32 - 1)))
    if kind != "binary":
        return Spec(storage=draw(st.sampled_from(STORAGES)), **base)
    return Spec(graph=draw(st.sampled_from(["flat", "hnsw"])),
                rerank=draw(st.sampled_from(["memory", None, "mmap"])),
                distance=draw(st.sampled_from(["sdc", "hamming"])),
                loops=draw(st.integers(1, 3)),
                code_dim=draw(st.sampled_from([None, 1, 8, 33, 64, 70])),
                learned=draw(st.booleans()), bseed=draw(st.integers(0, 1)),
                offsets=draw(st.sampled_from([None, False])), **base)


def magnitude_limit(dim: int) -> float:
    """The largest |value| l2 / ip accept (check_magnitude)."""
    return float(np.sqrt(np.finfo(np.float32).max / (4.0 * dim)))


@st.composite
def vector_batches(draw: Any, dim: int, n: int, metric: str, storage: str,
                   existing: list[np.ndarray]) -> np.ndarray:
    """n valid float32 vectors: Gaussian at several scales, small integers (exact ties, zero
    rows), copies of stored vectors (zero distances, ties), one-hot rows, values near the
    l2/ip magnitude limit."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    styles = ["normal", "ints", "onehot", "tiny"] + (["dups"] if existing else [])
    if storage == "float32" or storage == "int8" or metric == "cosine":
        styles.append("huge")
    style = draw(st.sampled_from(styles))
    if style == "normal":
        scale = draw(st.sampled_from([1e-3, 1.0, 30.0, 1e3]))
        x = rng.standard_normal((n, dim)) * scale
    elif style == "ints":
        x = rng.integers(-2, 3, (n, dim)).astype(np.float64)
    elif style == "onehot":
        x = np.zeros((n, dim))
        x[np.arange(n), rng.integers(0, dim, n)] = rng.choice([-1.0, 1.0, 2.0], n)
    elif style == "tiny":
        x = rng.standard_normal((n, dim)) * draw(st.sampled_from([1e-6, 1e-20, 1e-38]))
    elif style == "dups":
        pick = rng.integers(0, len(existing), n)
        x = np.stack([existing[i] for i in pick]).astype(np.float64)
        if metric == "cosine":
            x = x * rng.choice([0.5, 1.0, 3.0], (n, 1))
    else:  # huge
        if metric == "cosine":
            x = rng.standard_normal((n, dim)) * 1e30
        else:
            x = rng.uniform(-1.0, 1.0, (n, dim)) * magnitude_limit(dim) * 0.999
    if storage == "float16":
        x = np.clip(x, -6e4, 6e4)
    x = x.astype(np.float32)
    if metric == "cosine":  # all-zero rows are invalid for cosine
        zero = ~np.any(x != 0, axis=1)
        x[zero, 0] = 1.0
    return x


# attribute fields of the model: name -> intended kind
FIELDS = {"cat": "int", "big": "int", "score": "float", "tags": "tags"}
CAT_VALUES = [-2, -1, 0, 1, 2, 3, 4]
BIG_VALUES = [INT64_MIN + 1, INT64_MIN + 2, -(2 ** 53) - 1, -1, 0, 1, 2 ** 53 + 1, INT64_MAX - 1,
              INT64_MAX]
SCORE_VALUES = [-1e300, -1.5, -0.0, 0.0, 5e-324, 0.5, 1.0, 2.5, 1e300]
TAG_VALUES = [0, 1, 2, 3, 4, 5, 6, -1, INT64_MAX, INT64_MIN]


@st.composite
def attribute_sets(draw: Any, n: int, kinds: dict[str, str]) -> tuple[dict[str, Any] | None,
                                                                       dict[str, list[Any]]]:
    """(attributes argument for add, {field: n python values}) — valid attributes."""
    if draw(st.integers(0, 3)) == 0:
        return None, {}
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=4))
    arg: dict[str, Any] = {}
    values: dict[str, list[Any]] = {}
    for name in names:
        kind = kinds.get(name, FIELDS[name])
        if kind == "tags":
            lists = [draw(st.lists(st.sampled_from(TAG_VALUES), max_size=4)) for _ in range(n)]
            box = draw(st.sampled_from(["list", "tuple", "set", "array"]))
            conv = {"list": list, "tuple": tuple, "set": set,
                    "array": lambda v: np.asarray(v, dtype=np.int64)}[box]
            arg[name] = [conv(v) for v in lists]
            values[name] = [frozenset(v) for v in lists]
            continue
        if kind == "int":
            pool = CAT_VALUES if name == "cat" else BIG_VALUES
            vals = [draw(st.sampled_from(pool)) for _ in range(n)]
            form = draw(st.sampled_from(["int64", "list"] + (["int32"] if name == "cat" else [])))
            arg[name] = (vals if form == "list" else np.asarray(vals, dtype=form))
            values[name] = [int(v) for v in vals]
        else:  # float
            vals = [draw(st.one_of(st.sampled_from(SCORE_VALUES),
                                   st.floats(allow_nan=False, allow_infinity=False)))
                    for _ in range(n)]
            form = draw(st.sampled_from(["float64", "list"]))
            if kinds.get(name) == "float" and draw(st.booleans()):
                # ints into an existing float field are converted
                ivals = [draw(st.integers(-5, 5)) for _ in range(n)]
                arg[name] = np.asarray(ivals, dtype=np.int64)
                values[name] = [float(v) for v in ivals]
                continue
            arg[name] = vals if form == "list" else np.asarray(vals, dtype=np.float64)
            values[name] = [float(v) for v in vals]
    return arg, values


class Model:
    """What the index should hold."""

    def __init__(self) -> None:
        self.vecs: dict[int, np.ndarray] = {}
        self.attrs: dict[int, dict[str, Any]] = {}
        self.kinds: dict[str, str] = {}
        self.next_id = 0
        self.ever: set[int] = set()  # every id ever added (removed ones included)

    def ids(self) -> list[int]:
        return sorted(self.vecs)


# --- filters ---------------------------------------------------------------------------------

class FCase:
    """A filter with the model's predicate. ``may_raise``: a BitgraphError is an acceptable
    answer too (values that no item can hold, e.g. beyond int64)."""

    def __init__(self, f: bg.Filter, pred: Callable[[int, dict[str, Any]], bool],
                 text: str, may_raise: bool = False) -> None:
        self.f, self.pred, self.text, self.may_raise = f, pred, text, may_raise

    def __repr__(self) -> str:
        return self.text


def _fields_of(kinds: dict[str, str], *want: str) -> list[str]:
    return sorted(n for n, k in kinds.items() if k in want)


@st.composite
def filter_cases(draw: Any, model: Model, depth: int = 0) -> FCase:
    kinds = model.kinds
    choices = ["ids"]
    if _fields_of(kinds, "int", "float"):
        choices += ["eq", "eq", "range", "range"]
    if _fields_of(kinds, "int"):
        choices += ["isin"]
    if _fields_of(kinds, "tags"):
        choices += ["has_any", "has_all"]
    if depth < 3:
        choices += ["and", "or", "not"]
    op = draw(st.sampled_from(choices))
    if op in ("and", "or"):
        a = draw(filter_cases(model, depth + 1))
        b = draw(filter_cases(model, depth + 1))
        if op == "and":
            return FCase(a.f & b.f, lambda i, at: a.pred(i, at) and b.pred(i, at),
                         f"({a} & {b})", a.may_raise or b.may_raise)
        return FCase(a.f | b.f, lambda i, at: a.pred(i, at) or b.pred(i, at),
                     f"({a} | {b})", a.may_raise or b.may_raise)
    if op == "not":
        a = draw(filter_cases(model, depth + 1))
        return FCase(~a.f, lambda i, at: not a.pred(i, at), f"~{a}", a.may_raise)
    seen: dict[str, list[Any]] = {}
    for at in model.attrs.values():
        for name, v in at.items():
            seen.setdefault(name, []).append(v)
    if op == "ids":
        pool = sorted(model.ever) + [0, 1, 7, 10 ** 6, INT64_MAX, -1]
        ids = draw(st.lists(st.sampled_from(pool), max_size=6))
        s = set(ids)
        return FCase(bg.Filter.ids(ids), lambda i, at: i in s, f"Filter.ids({ids})")
    if op in ("has_any", "has_all"):
        name = draw(st.sampled_from(_fields_of(kinds, "tags")))
        pool = sorted({t for v in seen.get(name, []) for t in v}) + TAG_VALUES
        labels = draw(st.lists(st.sampled_from(pool), max_size=4))
        ls = frozenset(labels)
        if op == "has_any":
            return FCase(bg.Filter.has_any(name, labels),
                         lambda i, at: name in at and bool(at[name] & ls),
                         f"Filter.has_any({name!r}, {labels})")
        # has_all of no labels holds for every item (documented), the field missing or not
        return FCase(bg.Filter.has_all(name, labels),
                     lambda i, at: (not ls) or (name in at and ls <= at[name]),
                     f"Filter.has_all({name!r}, {labels})")
    if op == "isin":
        name = draw(st.sampled_from(_fields_of(kinds, "int")))
        pool = sorted(set(seen.get(name, []))) + [0, 5, INT64_MIN, INT64_MAX, INT64_MIN + 1]
        vals = draw(st.lists(st.sampled_from(pool), max_size=5))
        vs = set(vals)
        return FCase(bg.Filter.isin(name, vals), lambda i, at: name in at and at[name] in vs,
                     f"Filter.isin({name!r}, {vals})")
    name = draw(st.sampled_from(_fields_of(kinds, "int", "float")))
    is_int = kinds[name] == "int"
    pool = sorted(set(seen.get(name, [])), key=float)
    if op == "eq":
        if is_int:
            extra = [0, 3, INT64_MIN, INT64_MAX, INT64_MIN + 1, 2 ** 63, 2 ** 63 + 1, 2 ** 64 - 1,
                     2 ** 64 + 5, -(2 ** 63) - 1]
            value = draw(st.sampled_from(pool + extra) if pool else st.sampled_from(extra))
            value = int(value)
            beyond = not (INT64_MIN <= value <= INT64_MAX)
            if beyond:
                try:
                    bg.Filter.eq(name, value)
                except bg.BitgraphError:  # refusing a value no attribute holds is an answer too
                    value, beyond = 0, False
            return FCase(bg.Filter.eq(name, value),
                         lambda i, at: name in at and at[name] == value,
                         f"Filter.eq({name!r}, {value})", may_raise=beyond)
        extra = [0.0, -0.0, 1.0, 2.5, math.inf, -math.inf, 1e300, 3]
        value = draw(st.sampled_from(pool + extra) if pool else st.sampled_from(extra))
        fv = float(value)
        return FCase(bg.Filter.eq(name, value), lambda i, at: name in at and at[name] == fv,
                     f"Filter.eq({name!r}, {value!r})")
    # range
    bounds: list[Any] = [None, -math.inf, math.inf, 0, -1, 1, 0.5, -0.5, 1e300, -1e300]
    if is_int:
        bounds += [INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1, 2 ** 63, 2 ** 64,
                   -(2 ** 64), 2 ** 53 + 1, -(2 ** 53) - 1, float(2 ** 63)]
        # values next to stored ones
        bounds += [v + d for v in pool[:6] for d in (-1, 0, 1)]
    else:
        bounds += [v for v in pool[:6]] + [np.nextafter(float(v), math.inf) for v in pool[:3]]
    lo = draw(st.sampled_from(bounds))
    hi = draw(st.sampled_from(bounds))

    def in_range(v: Any) -> bool:
        if is_int:  # exact: ints compare with ints and floats exactly in Python
            return (lo is None or lo <= v) and (hi is None or v <= hi)
        fv = float(v)  # float fields: the bounds as floats
        return (lo is None or float(lo) <= fv) and (hi is None or fv <= float(hi))

    return FCase(bg.Filter.range(name, lo, hi), lambda i, at: name in at and in_range(at[name]),
                 f"Filter.range({name!r}, {lo!r}, {hi!r})")


# --- the harness -------------------------------------------------------------------------------

class Harness:
    """One index and its model, with the checks. Used by the state machine and by the
    invalid-call tests."""

    def __init__(self, spec: Spec, dim: int, workdir: str) -> None:
        self.spec = spec
        self.dim = dim
        self.workdir = workdir
        ok, index = attempt(f"create {spec.label()} dim={dim}", make_index, spec, dim, workdir)
        assert ok, f"creating a valid index failed: {index}"
        self.index = index
        self.model = Model()
        self.files: list[tuple[str, str]] = []  # (path, sha256) of saved files, never written

    # ---- reference ----------------------------------------------------------------------
    def stored_rows(self, ids: list[int]) -> np.ndarray:
        x = np.stack([self.model.vecs[i] for i in ids]) if ids else np.zeros((0, self.dim), np.float32)
        if not ids:
            return x
        p = prepared(x, self.spec.metric)
        if self.spec.is_binary:
            return p
        return decoded(p, self.spec.storage)

    def code_rows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(codes, offsets as int64 (0 without offsets)) of prepared rows."""
        binz = self.index.binarizer
        codes = binz.encode(x, threads=1)
        if self.index.offsets:
            off = binz.offsets(x, self.spec.distance).astype(np.int64)
        else:
            off = np.zeros(len(x), np.int64)
        return codes, off

    def reference(self, q: np.ndarray, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(distances (nq, n), tolerance (nq, n)) of the queries to the model items ``ids``
        as the index must report them."""
        qp = prepared(q, self.spec.metric)
        if not ids:
            z = np.zeros((len(q), 0))
            return z, z
        if self.spec.is_binary and self.spec.rerank is None:
            binz = self.index.binarizer
            qc, qo = self.code_rows(qp)
            dc, do = self.code_rows(prepared(np.stack([self.model.vecs[i] for i in ids]),
                                             self.spec.metric))
            d = np.stack([code_ref.binary_distances(qc[j], dc, binz.loops, self.spec.distance)
                          for j in range(len(qc))]).astype(np.float64)
            d += qo[:, None] + do[None, :]
            return d, np.zeros_like(d)
        rows = self.stored_rows(ids)
        d, tol = float_distances(qp, rows, self.spec.metric)
        return d, tol

    def live(self) -> set[int]:
        return set(self.model.vecs)

    # ---- checks -------------------------------------------------------------------------
    def check_search(self, res: Any, q: np.ndarray, k: int, fcases: list[FCase | None] | None,
                     oversample: float | None, label: str) -> None:
        """``fcases``: None when no filter argument was passed, else one per query."""
        nq = len(q)
        check_well_formed(res, nq, k, self.live(), fcases is not None, label)
        all_ids = self.model.ids()
        d_ref, tol = self.reference(q, all_ids)
        pos = {i: j for j, i in enumerate(all_ids)}
        n_live = len(all_ids)
        for r in range(nq):
            case = None if fcases is None else fcases[r]
            if case is None:
                match = list(range(n_live))
            else:
                match = [j for j, i in enumerate(all_ids) if case.pred(i, self.model.attrs.get(i, {}))]
            row_ids = res.ids[r][res.ids[r] >= 0]
            row_d = res.distances[r][: row_ids.size].astype(np.float64)
            where = f"{label}: query {r}, filter {case}"
            cols = np.array([pos[int(i)] for i in row_ids], dtype=np.int64)
            mset = set(match)
            bad = [int(all_ids[c]) for c in cols if c not in mset]
            assert not bad, f"{where}: returned ids that do not match the filter: {bad}"
            if cols.size:
                want = d_ref[r, cols]
                err = np.abs(row_d - want)
                assert (err <= tol[r, cols]).all(), (
                    f"{where}: distance != recomputed distance to the stored vector: ids "
                    f"{row_ids[err > tol[r, cols]][:5]}, got {row_d[err > tol[r, cols]][:5]}, "
                    f"want {want[err > tol[r, cols]][:5]}")
            n_match = len(match)
            expect_all = min(k, n_match)
            if case is not None or self.spec.exact or k >= n_live:
                assert row_ids.size == expect_all, (
                    f"{where}: {row_ids.size} results, expected min(k={k}, matches={n_match}) = "
                    f"{expect_all} (index of {n_live} live items"
                    f"{'; k >= len(index) must return every item' if k >= n_live else ''})")
            if self.spec.is_binary and self.spec.rerank is not None:
                kk = max(k, math.ceil((4.0 if oversample is None else oversample) * k))
                exact = kk >= n_match  # every match is a candidate and gets re-ranked
            else:
                exact = self.spec.exact  # flat scans (on codes for a BinaryIndex without re-rank)
            if exact and n_match:
                # the k best by distance (ties: compare distances, not ids)
                assert row_ids.size == expect_all, (
                    f"{where}: {row_ids.size} results, expected min(k={k}, matches={n_match}) = "
                    f"{expect_all} (every match is a candidate of this exact search)")
                best = np.sort(d_ref[r, match])[:expect_all]
                slack = tol[r, match].max() * 2 + 1e-30
                assert (np.abs(row_d - best) <= slack).all(), (
                    f"{where}: not the exact k nearest: distances {row_d[:8]}, brute force {best[:8]}")

    def query_batch(self, data: Any, nq: int) -> np.ndarray:
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="qseed"))
        existing = list(self.model.vecs.values())
        style = data.draw(st.sampled_from(["normal", "copies", "scaled"] if existing else ["normal", "scaled"]),
                          label="qstyle")
        if style == "copies":
            q = np.stack([existing[i] for i in rng.integers(0, len(existing), nq)])
        elif style == "scaled":
            q = rng.standard_normal((nq, self.dim)) * data.draw(st.sampled_from([1e-3, 1e3, 1e6]))
        else:
            q = rng.standard_normal((nq, self.dim))
        q = np.asarray(q, dtype=np.float32)
        if self.spec.metric == "cosine":
            zero = ~np.any(q != 0, axis=1)
            q[zero, 0] = 1.0
        return q

    # ---- operations ---------------------------------------------------------------------
    def add(self, data: Any, huge_ids: bool = True) -> None:
        """A valid add; ``huge_ids``: ids up to 2**63 - 1 may be drawn (after which automatic
        ids must be refused)."""
        m = self.model
        room = MAX_ITEMS - len(m.vecs)
        how = data.draw(st.sampled_from(["auto", "auto", "explicit", "readd", "mixed"]
                                        + (["huge"] if huge_ids else [])), label="ids")
        n_max = max(1, min(40, room))
        if how == "readd" and m.vecs:
            n_max = min(n_max, len(m.vecs))
        n = data.draw(st.integers(1, n_max), label="n")
        x = data.draw(vector_batches(self.dim, n, self.spec.metric, self.spec.storage,
                                     list(m.vecs.values())), label="vectors")
        ids: list[int] | None
        if how == "auto":
            ids = None
        else:
            existing = m.ids()
            pool_new = st.integers(0, 400)
            if how == "huge":
                pool_new = st.one_of(st.sampled_from([2 ** 40, 2 ** 62, INT64_MAX - 64, INT64_MAX]),
                                     st.integers(2 ** 40, INT64_MAX))
            if how == "readd" and existing:
                strat = st.sampled_from(existing)
            elif how == "mixed" and existing:
                strat = st.one_of(st.sampled_from(existing), pool_new)
            else:
                strat = pool_new
            ids = data.draw(st.lists(strat, min_size=n, max_size=n, unique=True), label="id list")
        attrs, values = data.draw(attribute_sets(n, m.kinds), label="attributes")
        threads = data.draw(st.sampled_from([None, 1, 2]), label="threads")
        progress = data.draw(st.sampled_from([False] * 9 + [True]), label="progress")
        form = data.draw(st.sampled_from(["array", "list", "float64"]), label="form")
        arg = x if form == "array" else (x.tolist() if form == "list" else x.astype(np.float64))
        ids_arg: Any = ids
        if ids is not None and data.draw(st.booleans(), label="ids as array"):
            ids_arg = np.asarray(ids, dtype=np.int64)
        note(f"add n={n} ids={ids} attrs={values} threads={threads}")
        ok, out = attempt("add", self.index.add, arg, ids=ids_arg, attributes=attrs,
                          threads=threads, progress=progress)
        expected = list(range(m.next_id, m.next_id + n)) if ids is None else ids
        if max(expected) > INT64_MAX:  # automatic ids would pass int64: refusing is right
            assert not ok, f"add gave automatic ids beyond int64: {out!r}"
            return
        assert ok, f"a valid add failed: {type(out).__name__}: {out} (ids {expected[:5]}..)"
        assert isinstance(out, np.ndarray) and out.dtype == np.int64, f"add returned {out!r}"
        assert out.tolist() == expected, f"add returned ids {out.tolist()[:8]}, expected {expected[:8]}"
        for j, i in enumerate(expected):
            m.vecs[i] = x[j].copy()
            at = dict(m.attrs.get(i, {}))  # a re-added id keeps fields it is not given
            for name, vals in values.items():
                at[name] = vals[j]
            m.attrs[i] = at
            m.ever.add(i)
        for name, vals in values.items():
            if name not in m.kinds:
                v0 = attrs[name]
                if FIELDS[name] == "tags":
                    m.kinds[name] = "tags"
                else:
                    m.kinds[name] = "int" if np.asarray(v0).dtype.kind in "iu" else "float"
        m.next_id = max(m.next_id, max(expected) + 1)

    def remove(self, data: Any) -> None:
        m = self.model
        existing = m.ids()
        if existing and data.draw(st.integers(0, 4), label="known") > 0:
            ids = data.draw(st.lists(st.sampled_from(existing), min_size=1,
                                     max_size=min(30, len(existing)), unique=True), label="rm")
            form = data.draw(st.sampled_from(["list", "array", "scalar"]), label="form")
            arg: Any = ids if form == "list" else np.asarray(ids, np.int64)
            if form == "scalar":
                ids = ids[:1]
                arg = ids[0]
            ok, out = attempt("remove", self.index.remove, arg)
            assert ok, f"removing live ids {ids} failed: {out!r}"
            for i in ids:
                del m.vecs[i]
                m.attrs.pop(i, None)
            for i in ids:
                assert i not in self.index, f"{i} still in the index after remove"
            return
        live = set(existing)
        unknown_pool = sorted(({10 ** 7, 10 ** 7 + 1, INT64_MAX} | m.ever) - live)
        unknown = data.draw(st.lists(st.sampled_from(unknown_pool), min_size=1, max_size=3,
                                     unique=True), label="unknown")
        known = data.draw(st.lists(st.sampled_from(existing), max_size=3, unique=True)
                          if existing else st.just([]), label="known part")
        before = len(self.index)
        err = must_raise(f"remove unknown ids {unknown} (+ live {known})", self.index.remove,
                         unknown + known, kind=bg.UnknownIdError)
        assert isinstance(err, KeyError), "UnknownIdError must be a KeyError"
        assert len(self.index) == before, "a failed remove changed the index"
        for i in known:
            assert i in self.index, f"a failed remove removed {i}"

    def search(self, data: Any) -> None:
        n_live = len(self.model.vecs)
        nq = data.draw(st.integers(1, 4), label="nq")
        q = self.query_batch(data, nq)
        k = data.draw(st.one_of(st.integers(1, max(1, n_live + 3)),
                                st.sampled_from([1, n_live, n_live + 1, 2 * n_live + 7, 1000])),
                      label="k")
        k = max(1, k)
        ef = data.draw(st.one_of(st.none(), st.integers(1, 300), st.just(10 ** 9)), label="ef")
        threads = data.draw(st.sampled_from([None, 1, 2, 3]), label="threads")
        mode = data.draw(st.sampled_from(["none", "none", "one", "one", "list"]), label="filter mode")
        fcases: list[FCase | None] | None = None
        farg: Any = None
        if mode == "one":
            c = data.draw(filter_cases(self.model), label="filter")
            fcases, farg = [c] * nq, c.f
        elif mode == "list":
            cs = [data.draw(st.one_of(st.none(), filter_cases(self.model)), label="filter i")
                  for _ in range(nq)]
            fcases, farg = cs, [c if c is None else c.f for c in cs]
        kwargs: dict[str, Any] = dict(k=k, ef=ef, filter=farg, threads=threads)
        oversample = None
        if self.spec.is_binary and data.draw(st.booleans(), label="oversample given"):
            oversample = data.draw(st.sampled_from([1, 1.0, 1.5, 2, 4, 10.0, 300]), label="oversample")
            kwargs["oversample"] = oversample
        qarg: Any = q if data.draw(st.booleans(), label="2d") or nq > 1 else q[0]
        label = f"search(nq={nq}, k={k}, ef={ef}, threads={threads}, filter={fcases})"
        note(label)
        ok, res = attempt(label, self.index.search, qarg, **kwargs)
        if not ok:
            if fcases and any(c is not None and c.may_raise for c in fcases):
                return
            raise AssertionError(f"{label}: a valid search failed: {type(res).__name__}: {res}")
        self.check_search(res, q, k, fcases, oversample, label)

    def count(self, data: Any) -> None:
        c = data.draw(filter_cases(self.model), label="count filter")
        ok, got = attempt(f"count({c})", self.index.count, c.f)
        if not ok:
            assert c.may_raise, f"count({c}) failed: {got!r}"
            return
        want = sum(1 for i in self.model.vecs if c.pred(i, self.model.attrs.get(i, {})))
        assert isinstance(got, int) and not isinstance(got, bool), f"count returned {got!r}"
        assert got == want, f"count({c}) = {got}, model says {want}"

    def probe_results(self) -> tuple[np.ndarray, dict[str, Any]]:
        """A fixed set of searches whose results must survive a round trip bit for bit."""
        rng = np.random.default_rng(len(self.model.vecs))
        q = rng.standard_normal((3, self.dim)).astype(np.float32)
        k = len(self.model.vecs) + 2
        out = {"plain": self.index.search(q, k=max(1, min(k, 7)), threads=1),
               "all": self.index.search(q, k=k, threads=1)}
        if "cat" in self.model.kinds and self.model.kinds["cat"] == "int":
            out["filtered"] = self.index.search(q, k=5, filter=bg.Filter.range("cat", 0, 2),
                                                threads=1)
        return q, out

    def round_trip(self, data: Any) -> None:
        how = data.draw(st.sampled_from(["save", "save-mmap", "pickle", "loads"]), label="how")
        q, before = self.probe_results()
        if how.startswith("save"):
            path = os.path.join(self.workdir, f"idx{len(self.files)}.bg")
            ok, err = attempt("save", self.index.save, path)
            assert ok, f"save failed: {err!r}"
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            self.files.append((path, digest))
            ok, clone = attempt("load", bg.load, path, mmap=how == "save-mmap",
                                backend=self.spec.backend)
        elif how == "pickle":
            ok, clone = attempt("pickle", lambda: pickle.loads(pickle.dumps(self.index)))
        else:
            path = os.path.join(self.workdir, "bytes.bg")
            self.index.save(path)
            ok, clone = attempt("loads", bg.loads, Path(path).read_bytes(), backend=self.spec.backend)
        assert ok, f"{how} round trip failed: {clone!r}"
        assert type(clone) is type(self.index), f"{how}: got a {type(clone).__name__}"
        assert len(clone) == len(self.index), f"{how}: {len(clone)} items, expected {len(self.index)}"
        assert clone.dim == self.index.dim and clone.metric == self.index.metric
        assert clone.storage == self.index.storage
        assert clone.attribute_fields == self.index.attribute_fields, how
        if how != "pickle" or self.spec.backend:
            assert clone.backend == self.spec.backend, f"{how}: backend {clone.backend}"
        for i in list(self.model.vecs)[:20]:
            assert i in clone, f"{how}: id {i} lost"
        for i in sorted(self.model.ever - set(self.model.vecs))[:20]:
            assert i not in clone, f"{how}: removed id {i} came back"
        old = self.index
        self.index = clone
        _, after = self.probe_results()
        for name in before:
            a, b = before[name], after[name]
            assert np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances), (
                f"{how}: '{name}' results differ after the round trip:\n{a.ids}\n{b.ids}\n"
                f"{a.distances}\n{b.distances}\n{a.plans} {b.plans} {a.visited} {b.visited}")
        # carry on with the clone or the original (both must keep working)
        if data.draw(st.booleans(), label="keep original"):
            self.index = old

    def check_files_untouched(self) -> None:
        for path, digest in self.files:
            if os.path.exists(path):
                now = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                assert now == digest, f"{path} was modified after it was saved (and loaded)"

    def check_consistent(self) -> None:
        m = self.model
        ok, n = attempt("len", len, self.index)
        assert ok and n == len(m.vecs), f"len(index) = {n}, model holds {len(m.vecs)}"
        ok, c = attempt("count()", self.index.count)
        assert ok and c == len(m.vecs), f"count() = {c}, model holds {len(m.vecs)}"
        ok, nb = attempt("nbytes", lambda: self.index.nbytes)
        assert ok and isinstance(nb, int) and nb >= 0, f"nbytes = {nb!r}"
        ok, text = attempt("repr", repr, self.index)
        assert ok and isinstance(text, str), f"repr(index) = {text!r}"
        ids = m.ids()
        for i in ids[:: max(1, len(ids) // 8)][:8]:
            assert i in self.index, f"live id {i} not in the index"
        gone = sorted(m.ever - set(ids))
        for i in gone[:8]:
            assert i not in self.index, f"removed id {i} still in the index"
        assert self.index.attribute_fields == m.kinds, (
            f"attribute fields {self.index.attribute_fields}, model {m.kinds}")


# --- the state machine -------------------------------------------------------------------------

class IndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h: Harness | None = None
        self.workdir = tempfile.mkdtemp(prefix="bitgraph-fuzz-")

    @initialize(spec=specs(), dim=st.integers(2, 24))
    def create(self, spec: Spec, dim: int) -> None:
        note(f"index: {spec} dim={dim}")
        self.h = Harness(spec, dim, self.workdir)

    @precondition(lambda self: len(self.h.model.vecs) < MAX_ITEMS)
    @rule(data=st.data())
    def add(self, data: Any) -> None:
        self.h.add(data)

    @rule(data=st.data())
    def remove(self, data: Any) -> None:
        self.h.remove(data)

    @rule(data=st.data())
    def search(self, data: Any) -> None:
        self.h.search(data)

    @rule(data=st.data())
    def search_again(self, data: Any) -> None:  # searches are the point: twice the weight
        self.h.search(data)

    @rule(data=st.data())
    def count(self, data: Any) -> None:
        self.h.count(data)

    @rule(exact_ratio=st.sampled_from([0.0, 0.5, 7.0, 1e6]),
          batched=st.sampled_from([0.0, 1000.0, 1e9]),
          acorn_below=st.sampled_from([0.0, 0.05, 0.5, 1.0]), seeds=st.sampled_from([0, 1, 8, 1024]))
    def set_planner(self, exact_ratio: float, batched: float, acorn_below: float, seeds: int) -> None:
        """Other planner thresholds force other plans (acorn / post-filter walks): filtered
        results must stay correct whatever the plan."""
        ok, cfg = attempt("PlannerConfig", bg.PlannerConfig, exact_ratio=exact_ratio,
                          exact_ratio_batched=batched, acorn_below=acorn_below, seeds=seeds)
        assert ok, f"a valid PlannerConfig was refused: {cfg!r}"
        self.h.index.planner = cfg

    @rule(data=st.data())
    def round_trip(self, data: Any) -> None:
        self.h.round_trip(data)

    @rule(data=st.data())
    def invalid_call(self, data: Any) -> None:
        category = data.draw(st.sampled_from(sorted(CATEGORIES)), label="category")
        run_invalid(self.h, category, data)

    @invariant()
    def consistent(self) -> None:
        if self.h is not None:
            self.h.check_consistent()

    def teardown(self) -> None:
        try:
            if self.h is not None:
                self.h.check_files_untouched()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def test_index_state_machine():
    run_state_machine_as_test(IndexMachine, settings=fuzz_settings(300, stateful_step_count=30))


# --- invalid calls -----------------------------------------------------------------------------

HUGE_INTS = [2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 2 ** 64 - 1, 10 ** 12,
             np.uint64(2 ** 64 - 1), np.int64(2 ** 63 - 1)]
NOT_INTS = [0, -1, -(2 ** 63), -(2 ** 64), True, False, np.bool_(True), 1.5, 2.0, float("nan"),
            float("inf"), "3", b"3", None, [3], (3,), 3 + 0j, object()]


def _result_ok(h: Harness, label: str, q: np.ndarray, k: int,
               fcases: list[FCase | None] | None = None, oversample: float | None = None):
    def check(res: Any) -> None:
        h.check_search(res, q, k, fcases, oversample, label)
    return check


def _state(h: Harness) -> tuple[Any, ...]:
    return (len(h.index), h.index.attribute_fields, getattr(h.index, "_next_id", None))


def _hostile(h: Harness, label: str, fn: Callable[[], Any], must: bool,
             check: Callable[[Any], None] | None = None,
             apply: Callable[[], None] | None = None) -> None:
    """Runs one invalid (or borderline) call: a BitgraphError, or (unless ``must``) a
    well-formed result (``check``; ``apply`` records an accepted add in the model). A refused
    call must leave the index unchanged (size, fields, next automatic id)."""
    before = _state(h)
    note(f"hostile call: {label}")
    ok, value = attempt(label, fn)
    if ok:
        assert not must, f"{label}: accepted invalid input (returned {repr(value)[:200]})"
        if check is not None:
            check(value)
        if apply is not None:
            apply()
            h.check_consistent()
            return
    after = _state(h)
    assert after == before, f"{label}: the call changed the index: {before} -> {after}"
    h.check_consistent()


def _valid_query(h: Harness) -> np.ndarray:
    q = np.ones((2, h.dim), np.float32)
    q[1, 0] = -2.0
    return q


def cat_search_k(h: Harness, data: Any) -> None:
    q = _valid_query(h)
    k = data.draw(st.sampled_from(NOT_INTS + HUGE_INTS), label="k")
    must = not (isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)) and k >= 1)
    _hostile(h, f"search(k={k!r})", lambda: h.index.search(q, k=k), must,
             None if must else _result_ok(h, f"search(k={k!r})", q, int(k)))


def cat_search_k_filtered(h: Harness, data: Any) -> None:
    q = _valid_query(h)
    k = data.draw(st.sampled_from(HUGE_INTS + [0, -1, True]), label="k")
    f = bg.Filter.ids(h.model.ids()[:3])
    case = FCase(f, lambda i, at, s=set(h.model.ids()[:3]): i in s, "ids")
    must = not (not isinstance(k, (bool, np.bool_)) and k >= 1)
    _hostile(h, f"search(k={k!r}, filter=ids)", lambda: h.index.search(q, k=k, filter=f), must,
             None if must else _result_ok(h, f"search(k={k!r}, filter)", q, int(k), [case, case]))


def cat_search_ef(h: Harness, data: Any) -> None:
    q = _valid_query(h)
    ef = data.draw(st.sampled_from(NOT_INTS + HUGE_INTS), label="ef")
    must = not (ef is None or (isinstance(ef, (int, np.integer)) and not isinstance(ef, (bool, np.bool_)) and ef >= 1))
    _hostile(h, f"search(ef={ef!r})", lambda: h.index.search(q, k=3, ef=ef), must,
             None if must else _result_ok(h, f"search(ef={ef!r})", q, 3))


def cat_search_threads(h: Harness, data: Any) -> None:
    q = _valid_query(h)
    th = data.draw(st.sampled_from(NOT_INTS + HUGE_INTS), label="threads")
    must = not (th is None or (isinstance(th, (int, np.integer)) and not isinstance(th, (bool, np.bool_)) and th >= 1))
    _hostile(h, f"search(threads={th!r})", lambda: h.index.search(q, k=3, threads=th), must,
             None if must else _result_ok(h, f"search(threads={th!r})", q, 3))


def cat_oversample(h: Harness, data: Any) -> None:
    if not h.spec.is_binary:
        return
    q = _valid_query(h)
    ov = data.draw(st.sampled_from([0, 0.5, -1, float("nan"), float("inf"), -math.inf, "x", "3",
                                    True, False, np.bool_(True), [], 1 + 0j, 1e30, 1e9,
                                    2 ** 31, 2 ** 63, 2 ** 64, 1.0, 2, 4.0, None]), label="oversample")
    valid_number = (isinstance(ov, (int, float, np.integer, np.floating))
                    and not isinstance(ov, (bool, np.bool_)) and math.isfinite(ov) and ov >= 1)
    must = h.spec.rerank is not None and not (valid_number or ov is None)
    if h.spec.rerank is not None and valid_number and ov > 1e6:
        must = False  # a BitgraphError or a capped search: both fine
    over = None if not valid_number or h.spec.rerank is None else float(ov)
    _hostile(h, f"search(oversample={ov!r})", lambda: h.index.search(q, k=3, oversample=ov), must,
             None if must else _result_ok(h, f"search(oversample={ov!r})", q, 3, None, over))


def _bad_arrays(dim: int, metric: str, storage: str | None) -> list[tuple[str, Any, bool]]:
    """(label, array-like, must raise) for vectors / queries of dimension ``dim``."""
    good = np.ones((2, dim), np.float32)
    nan = good.copy()
    nan[1, 0] = np.nan
    inf = good.copy()
    inf[0, -1] = np.inf
    cases: list[tuple[str, Any, bool]] = [
        ("dim+1", np.ones((2, dim + 1)), True),
        ("dim-1", np.ones((2, dim - 1)), True),
        ("3-d", np.ones((2, 1, dim)), True),
        ("empty (0, dim)", np.zeros((0, dim), np.float32), True),
        ("empty 1-d", np.zeros(0, np.float32), True),
        ("empty list", [], True),
        ("scalar", 1.0, True),
        ("None", None, True),
        ("NaN", nan, True),
        ("inf", inf, True),
        ("float64 overflow to float32 inf", np.full((1, dim), 1e300), True),
        ("strings", np.full((1, dim), "a"), True),
        ("numeric strings", [["1"] * dim], True),
        ("objects", np.array([[object()] * dim], dtype=object), True),
        ("complex", np.ones((1, dim), np.complex64), True),
        ("ragged", [[1.0] * dim, [1.0] * (dim + 1)], True),
        ("dict", {"a": 1}, True),
        ("datetime", np.zeros((1, dim), "datetime64[s]"), True),
        ("bools", np.ones((1, dim), bool), False),
        ("int64", np.ones((1, dim), np.int64), False),
        ("uint8", np.ones((1, dim), np.uint8), False),
        ("float16", np.ones((1, dim), np.float16), False),
        ("non-contiguous", np.ones((dim, 2), np.float32).T, False),
        ("read-only", np.frombuffer(np.ones(dim, np.float32).tobytes(), np.float32).reshape(1, -1), False),
    ]
    if metric != "cosine":
        cases.append(("beyond the l2/ip magnitude limit", np.full((1, dim), 1e30, np.float32), True))
        cases.append(("huge ints", np.full((1, dim), 2 ** 62, np.int64), 2.0 ** 62 > magnitude_limit(dim)))
    else:
        cases.append(("zero row (cosine)", np.zeros((1, dim), np.float32), True))
        cases.append(("zero bools (cosine)", np.zeros((1, dim), bool), True))
        cases.append(("huge values (cosine)", np.full((1, dim), 3e38, np.float32), False))
    if storage == "float16" and metric != "cosine":  # cosine stores unit vectors
        cases.append(("beyond float16", np.full((1, dim), 7e4, np.float32), True))
    return cases


def cat_queries(h: Harness, data: Any) -> None:
    cases = _bad_arrays(h.dim, h.spec.metric, None)
    label, q, must = data.draw(st.sampled_from(cases), label="queries")
    check = None
    if not must:
        qq = np.asarray(q, dtype=np.float32).reshape(-1, h.dim)
        check = _result_ok(h, f"search({label})", qq, 3)
    _hostile(h, f"search(queries={label})", lambda: h.index.search(q, k=3), must, check)


def cat_add_vectors(h: Harness, data: Any) -> None:
    cases = [c for c in _bad_arrays(h.dim, h.spec.metric, h.spec.storage) if c[2]]
    label, x, must = data.draw(st.sampled_from(cases), label="vectors")
    _hostile(h, f"add(vectors={label})", lambda: h.index.add(x), must)


def cat_add_ids(h: Harness, data: Any) -> None:
    x = np.ones((2, h.dim), np.float32)
    x[1, 0] = 3.0
    existing = h.model.ids()
    cases: list[tuple[str, Any]] = [
        ("duplicate", [5, 5]), ("wrong length", [1]), ("too many", [1, 2, 3]),
        ("negative", [1, -1]), ("-2**63", [1, -(2 ** 63)]), ("2**63", [1, 2 ** 63]),
        ("2**64", [1, 2 ** 64]), ("2**64-1 uint64", np.array([1, 2 ** 64 - 1], np.uint64)),
        ("2**63 uint64", np.array([1, 2 ** 63], np.uint64)), ("floats", [1.5, 2.5]),
        ("integral floats", [1.0, 2.0]), ("strings", ["a", "b"]), ("bools", [True, False]),
        ("2-d", [[1, 2]]), ("objects", np.array([1, 2], dtype=object)), ("complex", [1j, 2j]),
        ("dict", {1: 2}), ("nan", [float("nan"), 1.0]), ("scalar", 7),
    ]
    if existing:
        cases.append(("duplicate existing", [existing[0], existing[0]]))
    label, ids = data.draw(st.sampled_from(cases), label="ids")
    _hostile(h, f"add(ids={label})", lambda: h.index.add(x, ids=ids), True)


def cat_add_threads(h: Harness, data: Any) -> None:
    x = np.ones((1, h.dim), np.float32)
    th = data.draw(st.sampled_from(NOT_INTS + [2 ** 31, 2 ** 64, 2 ** 63, np.uint64(2 ** 64 - 1)]),
                   label="threads")
    must = not (th is None or _int_ok(th, 1))
    new_id = 10 ** 8 + 1 + len(h.model.ever)

    def apply() -> None:
        m = h.model
        m.vecs[new_id] = x[0].copy()
        m.attrs[new_id] = dict(m.attrs.get(new_id, {}))
        m.ever.add(new_id)
        m.next_id = max(m.next_id, new_id + 1)

    _hostile(h, f"add(threads={th!r})", lambda: h.index.add(x, ids=[new_id], threads=th), must,
             apply=apply)


def cat_attributes(h: Harness, data: Any) -> None:
    n = 2
    x = np.ones((n, h.dim), np.float32)
    x[1, 0] = 3.0
    kinds = h.model.kinds
    cases: list[tuple[str, Any]] = [
        ("a list", [1, 2]), ("a string", "cat"), ("an int", 3),
        ("field name ''", {"": [1, 2]}), ("field name 3", {3: [1, 2]}), ("field name None", {None: [1, 2]}),
        ("scalar value", {"cat": 5}), ("None value", {"cat": None}), ("wrong length", {"cat": [1]}),
        ("too long", {"cat": [1, 2, 3]}), ("2-d", {"cat": np.ones((2, 2), np.int64)}),
        ("strings", {"cat": ["a", "b"]}), ("objects", {"cat": np.array([object(), 1], dtype=object)}),
        ("bools", {"cat": [True, False]}), ("complex", {"cat": [1j, 2j]}),
        ("NaN float", {"score": [float("nan"), 1.0]}), ("inf float", {"score": [math.inf, 1.0]}),
        ("int64 min (the missing marker)", {"cat": [INT_MISSING, 1]}),
        ("uint64 beyond int64", {"big": np.array([2 ** 64 - 1, 1], np.uint64)}),
        ("python int beyond int64", {"big": [2 ** 63, 1]}),
        ("python int beyond uint64", {"big": [2 ** 70, 1]}),
        ("tags beyond int64 (uint64 max)", {"tags": [[2 ** 64 - 1], [1]]}),
        ("tags beyond int64 (2**63)", {"tags": [[2 ** 63], []]}),
        ("tags uint64 array beyond int64", {"tags": [np.array([2 ** 64 - 1], np.uint64), []]}),
        ("tags beyond uint64", {"tags": [[2 ** 70], []]}),
        ("tags floats", {"tags": [[1.5], [1]]}), ("tags strings", {"tags": [["a"], ["b"]]}),
        ("tags nested", {"tags": [[1, [2]], [1]]}), ("tags None entry", {"tags": [None, [1]]}),
        ("tags scalar entry", {"tags": [[1], 2]}), ("tags bools", {"tags": [[True], [False]]}),
        ("tags wrong length", {"tags": [[1]]}), ("tags dict entry", {"tags": [{1: 2}, [1]]}),
        ("tags string entry", {"tags": ["ab", [1]]}),
    ]
    if kinds.get("cat") == "int":
        cases.append(("floats into an int field", {"cat": [1.5, 2.5]}))
        cases.append(("tags into an int field", {"cat": [[1], [2]]}))
    if kinds.get("tags") == "tags":
        cases.append(("ints into a tags field", {"tags": [1, 2]}))
    if kinds.get("score") == "float":
        cases.append(("tags into a float field", {"score": [[1], [2]]}))
    label, attrs = data.draw(st.sampled_from(cases), label="attributes")
    _hostile(h, f"add(attributes={label})",
             lambda: h.index.add(x, ids=[10 ** 8 + 2, 10 ** 8 + 3], attributes=attrs), True)


def cat_filter_values(h: Harness, data: Any) -> None:
    """Filters that must be refused: unknown fields, wrong kinds, NaN, values beyond int64,
    malformed arguments; at construction, search or count."""
    q = _valid_query(h)
    kinds = h.model.kinds
    F = bg.Filter
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("eq unknown field", lambda: F.eq("nope", 1)),
        ("isin unknown field", lambda: F.isin("nope", [1])),
        ("range unknown field", lambda: F.range("nope", 0, 1)),
        ("has_any unknown field", lambda: F.has_any("nope", [1])),
        ("has_all unknown field", lambda: F.has_all("nope", [1])),
        ("has_all unknown field, no labels", lambda: F.has_all("nope", [])),
        ("eq NaN", lambda: F.eq("score", float("nan"))),
        ("eq np.nan float32", lambda: F.eq("score", np.float32("nan"))),
        ("range low NaN", lambda: F.range("score", float("nan"), 1)),
        ("range high NaN", lambda: F.range("score", None, float("nan"))),
        ("eq string", lambda: F.eq("cat", "a")), ("eq None", lambda: F.eq("cat", None)),
        ("eq bool", lambda: F.eq("cat", True)), ("eq complex", lambda: F.eq("cat", 1j)),
        ("eq list", lambda: F.eq("cat", [1])), ("eq array", lambda: F.eq("cat", np.array([1, 2]))),
        ("field ''", lambda: F.eq("", 1)), ("field 3", lambda: F.eq(3, 1)),
        ("field None", lambda: F.range(None, 0, 1)),
        ("isin scalar", lambda: F.isin("cat", 5)), ("isin string", lambda: F.isin("cat", "abc")),
        ("isin floats", lambda: F.isin("cat", [1.5])), ("isin nested", lambda: F.isin("cat", [[1]])),
        ("isin beyond int64", lambda: F.isin("cat", [2 ** 64 - 1])),
        ("isin beyond uint64", lambda: F.isin("cat", [2 ** 70])),
        ("isin bools", lambda: F.isin("cat", [True])), ("isin None", lambda: F.isin("cat", None)),
        ("range string", lambda: F.range("cat", "a")), ("range complex", lambda: F.range("cat", 1j)),
        ("range bool", lambda: F.range("cat", True)), ("range list", lambda: F.range("cat", [1])),
        ("has_any floats", lambda: F.has_any("tags", [1.5])), ("has_any scalar", lambda: F.has_any("tags", 3)),
        ("has_any beyond int64", lambda: F.has_any("tags", [2 ** 64 - 1])),
        ("has_all strings", lambda: F.has_all("tags", ["a"])),
        ("ids beyond int64", lambda: F.ids([2 ** 64 - 1])), ("ids strings", lambda: F.ids(["a"])),
        ("ids None", lambda: F.ids(None)), ("ids scalar", lambda: F.ids(3)),
        ("ids floats", lambda: F.ids([1.5])), ("ids 2-d", lambda: F.ids([[1]])),
        ("and with int", lambda: F.ids([1]) & 3), ("or with None", lambda: F.ids([1]) | None),
        ("bool()", lambda: bool(F.ids([1]))),
        ("and keyword", lambda: F.ids([1]) and F.ids([2]) and None),
    ]
    if kinds.get("cat") == "int":
        cases += [("eq float on int field", lambda: F.eq("cat", 1.5)),
                  ("eq integral float on int field", lambda: F.eq("cat", 1.0)),
                  ("has_any on an int field", lambda: F.has_any("cat", [1])),
                  ("has_all on an int field", lambda: F.has_all("cat", [1])),
                  ("int field & unknown", lambda: F.eq("cat", 1) & F.eq("nope", 1)),
                  ("~unknown | int field", lambda: ~F.eq("nope", 1) | F.eq("cat", 1))]
    if kinds.get("tags") == "tags":
        cases += [("eq on a tags field", lambda: F.eq("tags", 1)),
                  ("range on a tags field", lambda: F.range("tags", 0, 1)),
                  ("isin on a tags field", lambda: F.isin("tags", [1]))]
    if kinds.get("score") == "float":
        # (isin on a float field is allowed: its int values compare exactly with the floats)
        cases += [("has_any on a float field", lambda: F.has_any("score", [1]))]
    label, make = data.draw(st.sampled_from(cases), label="filter")
    how = data.draw(st.sampled_from(["search", "count", "list"]), label="where")

    def call() -> Any:
        f = make()
        if how == "count":
            return h.index.count(f)
        if how == "list":
            return h.index.search(q, k=3, filter=[f, None])
        return h.index.search(q, k=3, filter=f)

    _hostile(h, f"filter {label} ({how})", call, True)


def cat_filter_args(h: Harness, data: Any) -> None:
    q = _valid_query(h)
    f = bg.Filter.ids([1])
    cases: list[tuple[str, Any]] = [
        ("a string", "cat"), ("an int", 3), ("a dict", {"cat": 1}), ("bytes", b"x"),
        ("list too long", [f, f, f]), ("list too short", [f]), ("empty list", []),
        ("list with a string", [f, "x"]), ("list with an int", [f, 3]),
        ("a set", {f}), ("a generator", (g for g in [f, f])),
        ("nested list", [[f], [f]]), ("True", True),
    ]
    label, farg = data.draw(st.sampled_from(cases), label="filter argument")
    _hostile(h, f"search(filter={label})", lambda: h.index.search(q, k=3, filter=farg), True)


def _finite(v: Any) -> bool:
    """Whether v is a finite float (a huge int is a finite ratio as long as a float holds it)."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def cat_planner(h: Harness, data: Any) -> None:
    """PlannerConfig with bad values, and an index.planner that is not a PlannerConfig."""
    q = _valid_query(h)
    field = data.draw(st.sampled_from(["exact_ratio", "exact_ratio_batched", "acorn_below",
                                       "seeds", "planner attribute"]), label="field")
    value = data.draw(st.sampled_from([None, "x", "3", [1], float("nan"), float("inf"), -1,
                                       -0.5, 2 ** 63, 2 ** 1000, 1.5, True, 1 + 0j]), label="value")
    if field == "planner attribute":
        saved = h.index.planner

        def call() -> Any:
            h.index.planner = value
            return h.index.search(q, k=2, filter=bg.Filter.ids(h.model.ids()[:3]))

        try:
            _hostile(h, f"index.planner = {value!r}; search(filter=...)", call, True)
        finally:
            h.index.planner = saved
        return
    valid = {"seeds": lambda v: _int_ok(v, 0) and v <= 1024,
             "acorn_below": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
             and 0 <= v <= 1}.get(field, lambda v: isinstance(v, (int, float))
                                  and not isinstance(v, bool) and 0 <= v and _finite(v))
    must = not valid(value)
    _hostile(h, f"PlannerConfig({field}={value!r})", lambda: bg.PlannerConfig(**{field: value}), must)


def cat_remove(h: Harness, data: Any) -> None:
    existing = h.model.ids()
    cases: list[tuple[str, Any, type]] = [
        ("unknown", [10 ** 9 + 7], bg.UnknownIdError), ("-1", -1, bg.BitgraphError),
        ("2**63", [2 ** 63], bg.BitgraphError), ("2**64", [2 ** 64], bg.BitgraphError),
        ("uint64 max", np.array([2 ** 64 - 1], np.uint64), bg.BitgraphError),
        ("floats", [1.5], bg.BitgraphError), ("strings", ["a"], bg.BitgraphError),
        ("None", None, bg.BitgraphError), ("2-d", [[1]], bg.BitgraphError),
        ("bools", [True], bg.BitgraphError), ("objects", np.array([object()]), bg.BitgraphError),
        ("dict", {1: 1}, bg.BitgraphError), ("complex", [1j], bg.BitgraphError),
    ]
    if existing:
        cases.append(("duplicates", [existing[0], existing[0]], bg.BitgraphError))
        cases.append(("live + unknown", [existing[0], 10 ** 9 + 9], bg.UnknownIdError))
    label, ids, kind = data.draw(st.sampled_from(cases), label="remove")
    before = len(h.index)
    must_raise(f"remove({label})", h.index.remove, ids, kind=kind)
    assert len(h.index) == before, f"remove({label}) failed but changed the index"
    h.check_consistent()


def cat_contains_count(h: Harness, data: Any) -> None:
    existing = h.model.ids()
    item = data.draw(st.sampled_from(["a", None, 2 ** 64, 2 ** 63, -1, 1.5, [1, 2], (1,),
                                      np.array([[1]]), object(), b"1", 1j, True, {1: 2},
                                      np.uint64(2 ** 64 - 1)]), label="item")
    ok, v = attempt(f"{item!r} in index", lambda: item in h.index)
    assert ok and isinstance(v, bool), f"`{item!r} in index` gave {v!r}"
    if existing and data.draw(st.booleans()):
        assert existing[0] in h.index
    arg = data.draw(st.sampled_from(["x", 3, [bg.Filter.ids([1])], {"a": 1}, True]), label="count")
    must_raise(f"count({arg!r})", h.index.count, arg)


def cat_save_load(h: Harness, data: Any) -> None:
    """Bad paths and blobs for save / load / loads. Operating-system errors about a path that
    is not a file (missing, a directory) stay the builtin OSError subclasses (the existing
    suite relies on FileNotFoundError); wrong *types* must be BitgraphErrors."""
    which = data.draw(st.sampled_from(["load None", "load 3", "load 3 mmap", "load 1.5",
                                       "load list", "load object", "load bytes path",
                                       "loads None", "loads text", "loads 3", "loads 1.5",
                                       "loads list of ints", "loads object", "loads pickle",
                                       "loads empty", "loads truncated", "save None", "save 3",
                                       "save object", "load bad backend", "loads bad backend",
                                       "load backend int", "load empty file",
                                       "load empty file mmap", "loads memoryview"]),
                      label="call")
    path = os.path.join(h.workdir, "sl.bg")
    h.index.save(path)
    blob = Path(path).read_bytes()
    empty = os.path.join(h.workdir, "empty.bg")
    Path(empty).write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)  # an int is not a path: load(fd) must not use (or close) it
    calls: dict[str, tuple[Callable[[], Any], bool]] = {
        "load None": (lambda: bg.load(None), True),
        "load 3": (lambda: bg.load(fd), True),
        "load 3 mmap": (lambda: bg.load(fd, mmap=True), True),
        "load 1.5": (lambda: bg.load(1.5), True),
        "load list": (lambda: bg.load([path]), True),
        "load object": (lambda: bg.load(object()), True),
        "load bytes path": (lambda: bg.load(os.fsencode(path)), False),
        "loads None": (lambda: bg.loads(None), True),
        "loads text": (lambda: bg.loads("text"), True),
        "loads 3": (lambda: bg.loads(3), True),
        "loads 1.5": (lambda: bg.loads(1.5), True),
        "loads list of ints": (lambda: bg.loads([1, 2, 3]), True),
        "loads object": (lambda: bg.loads(object()), True),
        "loads pickle": (lambda: bg.loads(pickle.dumps(h.index)), True),
        "loads empty": (lambda: bg.loads(b""), True),
        "loads truncated": (lambda: bg.loads(blob[: len(blob) // 2]), True),
        "save None": (lambda: h.index.save(None), True),
        "save 3": (lambda: h.index.save(3), True),
        "save object": (lambda: h.index.save(object()), True),
        "load bad backend": (lambda: bg.load(path, backend="gpu"), True),
        "loads bad backend": (lambda: bg.loads(blob, backend="gpu"), True),
        "load backend int": (lambda: bg.load(path, backend=3), True),
        "load empty file": (lambda: bg.load(empty), True),
        "load empty file mmap": (lambda: bg.load(empty, mmap=True), True),
        "loads memoryview": (lambda: bg.loads(memoryview(blob), backend=h.spec.backend), False),
    }
    fn, must = calls[which]
    try:
        _hostile(h, which.replace("3", "<an open fd>"), fn, must)
        assert _fd_open(fd), f"{which}: closed a file descriptor the caller owns"
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


CATEGORIES: dict[str, Callable[[Harness, Any], None]] = {
    "search k": cat_search_k,
    "search k filtered": cat_search_k_filtered,
    "search ef": cat_search_ef,
    "search threads": cat_search_threads,
    "search oversample": cat_oversample,
    "search queries": cat_queries,
    "search filter argument": cat_filter_args,
    "filters": cat_filter_values,
    "add vectors": cat_add_vectors,
    "add ids": cat_add_ids,
    "add threads": cat_add_threads,
    "add attributes": cat_attributes,
    "remove": cat_remove,
    "planner": cat_planner,
    "contains / count": cat_contains_count,
    "save / load": cat_save_load,
}


def run_invalid(h: Harness, category: str, data: Any) -> None:
    CATEGORIES[category](h, data)


@st.composite
def filled_harness(draw: Any) -> Harness:
    spec = draw(specs(), label="spec")
    dim = draw(st.integers(2, 16), label="dim")
    h = Harness(spec, dim, tempfile.mkdtemp(prefix="bitgraph-fuzz-"))
    data = _Drawer(draw)
    for _ in range(draw(st.integers(0, 2), label="adds")):
        h.add(data, huge_ids=False)
    if h.model.vecs and draw(st.booleans(), label="remove some"):
        h.remove(data)
    return h


class _Drawer:
    """st.data()-like wrapper around a composite's ``draw``."""

    def __init__(self, draw: Any) -> None:
        self._draw = draw

    def draw(self, strategy: Any, label: str | None = None) -> Any:
        return self._draw(strategy)


@pytest.mark.parametrize("category", sorted(CATEGORIES))
@fuzz_settings(50)
@given(h=filled_harness(), data=st.data())
def test_invalid_calls(category, h, data):
    try:
        note(f"index: {h.spec} dim={h.dim}, {len(h.model.vecs)} items, fields {h.model.kinds}")
        CATEGORIES[category](h, data)
    finally:
        shutil.rmtree(h.workdir, ignore_errors=True)


# --- constructors and the binarizer --------------------------------------------------------------

CTOR_VALUES = NOT_INTS + HUGE_INTS + [2, 3, 512, 513, 10 ** 6]


def _int_ok(v: Any, minimum: int) -> bool:
    return (isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
            and v >= minimum)


CTOR_STRINGS = ["l2", "float32", "native", "numba", "flat", "sdc", "memory", "cuda", "", "L2",
                "/nonexistent/dir", np.str_("l2")]
CTOR_ALL = CTOR_VALUES + CTOR_STRINGS
CTOR_PARAMS = ["dim", "M", "ef_construction", "seed", "loops", "code_dim", "metric", "storage",
               "backend", "graph", "distance", "rerank", "offsets", "learned", "rerank_dir"]


@pytest.fixture(scope="module")
def ctor_worker():
    from fuzz_support import Worker

    # One constructor + add of 5 vectors takes milliseconds, but the first numba case of a
    # fresh checkout compiles the backend (a minute or more on a slow shared machine): the
    # limit only has to tell a hang from that.
    w = Worker(Path(__file__).resolve(), job_timeout=float(os.environ.get(
        "BITGRAPH_FUZZ_JOB_TIMEOUT", "300")))
    yield w
    w.close()


@fuzz_settings(150)
@given(kind=st.sampled_from(["hnsw", "flat", "binary", "binarizer"]),
       param=st.sampled_from(CTOR_PARAMS), value=st.integers(0, len(CTOR_ALL) - 1),
       backend=st.sampled_from(BACKENDS))
def test_constructors(ctor_worker, kind, param, value, backend):
    """Constructor arguments: valid ones build an index that works (add + search a few
    vectors); invalid ones raise a BitgraphError right away; none allocates gigabytes or
    crashes (each case runs in a worker process: absurd values have segfaulted it)."""
    note(f"{kind}({param}={CTOR_ALL[value]!r}, backend={backend})")
    reply = ctor_worker.run({"kind": kind, "param": param, "value": value, "backend": backend})
    if reply["failures"]:
        from fuzz_support import distinct_failure, failure_kind

        raise distinct_failure(f"{kind} {param} {reply['status']} "
                               f"{failure_kind(reply['failures'][0])}",
                               f"{kind}({param}={CTOR_ALL[value]!r}, backend={backend}): "
                               f"{reply['status']}:\n" + "\n".join(reply["failures"]))


def constructor_job(job: dict[str, Any]) -> dict[str, Any]:
    """Runs one constructor case (in the worker process)."""
    failures: list[str] = []
    try:
        constructor_case(job["kind"], job["param"], CTOR_ALL[job["value"]], job["backend"])
    except AssertionError as exc:
        failures.append(str(exc))
    return {"status": "done", "failures": failures}


def constructor_case(kind: str, param: str, value: Any, backend: str) -> None:
    dim = 6
    x = np.random.default_rng(0).standard_normal((5, dim)).astype(np.float32)
    if kind == "binarizer":
        if param not in ("dim", "loops", "code_dim", "seed", "learned"):
            return
        kwargs: dict[str, Any] = {"loops": 1, "learned": False}
        if param != "dim":
            kwargs[param] = value
        d = value if param == "dim" else dim
        label = f"RecurrentBinarizer({param}={value!r})"
        ok, b = attempt(label, lambda: bg.RecurrentBinarizer(d, **kwargs))
        valid = _valid_binarizer_arg(param, value)
        if valid is True:
            assert ok, f"{label}: a valid argument was refused: {b!r}"
        elif valid is False:
            assert not ok, f"{label}: accepted an invalid argument ({b!r})"
        if ok:
            # fitting data (of the index dim: an absurd dim must be refused cleanly)
            ok2, fitted = attempt(f"{label}.fit", b.fit, x)
            if ok2:
                ok3, codes = attempt(f"{label}.encode", fitted.encode, x)
                assert ok3, f"{label}: encode failed: {codes!r}"
        return
    allowed = {"hnsw": {"dim", "M", "ef_construction", "seed", "metric", "storage", "backend"},
               "flat": {"dim", "metric", "storage", "backend"},
               "binary": {"M", "ef_construction", "seed", "metric", "backend", "graph",
                          "distance", "rerank", "offsets", "rerank_dir"}}[kind]
    if param not in allowed:
        return
    kwargs = {"backend": backend}
    kwargs[param] = value
    d = value if param == "dim" else dim
    if kind == "hnsw":
        def build() -> Any:
            return bg.HNSWIndex(d, **{k: v for k, v in kwargs.items() if k != "dim"})
    elif kind == "flat":
        def build() -> Any:
            return bg.FlatIndex(d, **{k: v for k, v in kwargs.items() if k != "dim"})
    else:
        binz = bg.RecurrentBinarizer(dim, loops=1, learned=False).fit(
            np.random.default_rng(1).standard_normal((32, dim)))

        def build() -> Any:
            kw = dict(kwargs)
            if param == "rerank_dir":
                kw["rerank"] = "mmap"
            return bg.BinaryIndex(binz, **kw)
    label = f"{kind}({param}={value!r}, backend={backend})"
    ok, index = attempt(label, build)
    valid = _valid_ctor(kind, param, value)
    if valid is True:
        assert ok, f"{label}: a valid constructor call failed: {index!r}"
    elif valid is False:
        assert not ok, f"{label}: accepted an invalid argument ({index!r})"
    if not ok:
        return
    # whatever was accepted must then work, or refuse cleanly
    if d == dim:
        ok, _ = attempt(f"{label}.add", index.add, x)
        if ok:
            ok, res = attempt(f"{label}.search", index.search, x, k=7)
            if ok:
                check_well_formed(res, len(x), 7, set(range(5)), False, label)
            attempt(f"{label} pickle", lambda: pickle.loads(pickle.dumps(index)))
    else:
        attempt(f"{label}.search(wrong dim)", index.search, x, k=3)
        attempt(f"{label} pickle", lambda: pickle.loads(pickle.dumps(index)))


def _valid_binarizer_arg(param: str, value: Any) -> bool | None:
    if param == "learned":
        return isinstance(value, (bool, np.bool_))
    if param == "code_dim" and value is None:
        return True
    minimum = 0 if param == "seed" else 1
    if not _int_ok(value, minimum):
        return False
    if param == "loops" and value > 8:
        return False
    return None if value >= 10 ** 5 else True  # huge shapes may be refused for their size


def _valid_ctor(kind: str, param: str, value: Any) -> bool | None:
    """True: must be accepted; False: must be refused; None: either (huge but legal ints)."""
    is_str = isinstance(value, str)
    if param in ("dim", "M", "ef_construction", "seed"):
        minimum = {"dim": 1, "M": 2, "ef_construction": 1, "seed": 0}[param]
        if not _int_ok(value, minimum):
            return False
        if param == "M" and value > 512:
            return False
        if value > 10 ** 6:
            return None
        return True
    if param == "metric":
        return value in ("l2", "ip", "cosine") if is_str else False
    if param == "storage":
        return value in ("float32", "float16", "int8") if is_str else False
    if param == "backend":
        return value in BACKENDS if is_str else (None if value is None else False)
    if param == "graph":
        return value in ("flat", "hnsw") if is_str else False
    if param == "distance":
        return value in ("sdc", "hamming") if is_str else False
    if param == "rerank":
        return (value in ("memory", "mmap") if is_str else (True if value is None else False))
    if param == "offsets":
        return True if value is None or value is False or (isinstance(value, (bool, np.bool_)) and not value) \
            else (None if isinstance(value, (bool, np.bool_)) else False)
    if param == "rerank_dir":  # checked at the first add at the latest (then BitgraphError)
        return True if value is None else None
    return None


@fuzz_settings(50)
@given(dim=st.integers(1, 12), n=st.integers(1, 70), loops=st.integers(1, 4),
       code_dim=st.one_of(st.none(), st.integers(1, 90)), learned=st.booleans(),
       normalize=st.booleans(), seed=st.integers(0, 2 ** 32 - 1),
       style=st.sampled_from(["normal", "constant", "zeros", "ints", "nan", "huge"]))
def test_binarizer_fit(dim, n, loops, code_dim, learned, normalize, seed, style):
    """fit on any sample of >= 2 finite rows works (or is refused with a BitgraphError), and
    the fitted binarizer encodes / builds a working BinaryIndex."""
    rng = np.random.default_rng(seed)
    x = {"normal": lambda: rng.standard_normal((n, dim)),
         "constant": lambda: np.ones((n, dim)),
         "zeros": lambda: np.zeros((n, dim)),
         "ints": lambda: rng.integers(-1, 2, (n, dim)).astype(float),
         "nan": lambda: np.where(np.arange(n * dim).reshape(n, dim) % 5 == 0, np.nan, 1.0),
         "huge": lambda: rng.standard_normal((n, dim)) * 1e30}[style]().astype(np.float32)
    label = (f"RecurrentBinarizer({dim}, loops={loops}, code_dim={code_dim}, learned={learned}, "
             f"normalize={normalize}).fit({style} sample of {n})")
    ok, b = attempt(label, lambda: bg.RecurrentBinarizer(
        dim, loops=loops, code_dim=code_dim, learned=learned, seed=seed, normalize=normalize).fit(x))
    if style == "nan" or n < 2:
        assert not ok, f"{label}: accepted a sample that is too small or holds NaN"
        return
    if not ok:
        return  # refused with a BitgraphError
    ok, codes = attempt(f"{label}.encode", b.encode, x)
    assert ok, f"{label}: encode failed: {codes!r}"
    assert codes.dtype == np.uint8 and codes.shape == (n, b.code_bytes)
    ok, index = attempt(f"{label}: BinaryIndex", bg.BinaryIndex, b, graph="flat", metric="l2")
    if ok:
        ok, _ = attempt(f"{label}: BinaryIndex.add", index.add, x)
        if ok:
            ok, res = attempt(f"{label}: search", index.search, x[:2], k=n + 1)
            assert ok, f"{label}: search failed: {res!r}"
            check_well_formed(res, 2, n + 1, set(range(n)), False, label)
            assert (res.counts == n).all(), f"{label}: flat BinaryIndex found {res.counts} of {n}"


def _warm_up() -> None:
    """Compile / load numba's code before the first timed job."""
    for be in BACKENDS:
        for kind in ("hnsw", "flat", "binary"):
            try:
                constructor_case(kind, "metric", "l2", be)
            except AssertionError:
                pass


if __name__ == "__main__" and "--worker" in sys.argv:
    from fuzz_support import serve

    serve(constructor_job, _warm_up)
