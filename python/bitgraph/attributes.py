"""Per-item attributes of an index, aligned with its slots, and filter compilation.

Three kinds of field, chosen by the data at the first ``add`` that names them (their columns
live in :mod:`bitgraph.attribute_columns`):

- ``int``: one int64 per item (categorical codes, or integers for ranges): eq / isin / range;
- ``float``: one float64 per item: eq / range;
- ``tags``: a list of ints per item (multi-label, CSR storage): has_any / has_all.

Each field keeps a sorted permutation of its slots (for tags: an inverted index, label ->
slots), rebuilt lazily after writes, so every filter leaf is a few binary searches that name
runs of slots; the backend then sets those slots' bits (the program's op codes are in
:mod:`bitgraph._filter_ops`). A missing value (an item added before the field existed, or
without it) never matches a leaf.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .attribute_columns import (INT_MISSING, KINDS, ScalarColumn, TagsColumn, empty_column,
                                parse_values)
from ._filter_ops import OP_AND, OP_NOT, OP_OR, OP_PREFIX_DIFF, OP_SCATTER
from .errors import BitgraphTypeError, BitgraphValueError
from .filters import Filter


class AttributeStore:
    """The attributes of an index's slots (row i describes slot i)."""

    def __init__(self) -> None:
        self._n = 0
        self._cols: dict[str, ScalarColumn | TagsColumn] = {}

    @property
    def fields(self) -> dict[str, str]:
        """Field name -> kind ("int", "float" or "tags")."""
        return {name: col.kind for name, col in self._cols.items()}

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes held in memory: the columns (capacity included) and their lazily built search
        structures; memory-mapped values excluded."""
        return sum(sum(b.held_nbytes for b in col.buffers()) + col.index_nbytes()
                   for col in self._cols.values())

    @property
    def mapped_nbytes(self) -> int:
        """Bytes of values still memory-mapped from the index file."""
        return sum(b.mapped_nbytes for col in self._cols.values() for b in col.buffers())

    def reserve(self, n_slots: int) -> None:
        """Room for ``n_slots`` rows in every field without slack (tags: their offsets)."""
        for col in self._cols.values():
            col.buffers()[0].reserve(n_slots + (1 if col.kind == "tags" else 0))

    def shrink(self) -> None:
        """Gives the fields' unused capacity back."""
        for col in self._cols.values():
            for b in col.buffers():
                b.shrink()

    # --- writes ------------------------------------------------------------------------------
    def parse(self, attributes: dict[str, Any] | None, n: int) -> dict[str, tuple[str, Any]]:
        """Validates an ``add``'s attributes (before anything changes)."""
        if attributes is None:
            return {}
        if not isinstance(attributes, dict):
            raise BitgraphTypeError(
                f"attributes must be a dict of field -> values, got {type(attributes).__name__}")
        parsed = {}
        for name, raw in attributes.items():
            if not isinstance(name, str) or not name:
                raise BitgraphTypeError(f"attribute names must be non-empty str, got {name!r}")
            kind, data = parse_values(name, raw, n)
            have = self._cols.get(name)
            if have is not None and have.kind != kind:
                if have.kind == "float" and kind == "int":
                    kind, data = "float", data.astype(np.float64)
                else:
                    raise BitgraphTypeError(
                        f"attribute {name!r} holds {have.kind} values, got {kind} values")
            parsed[name] = (kind, data)
        return parsed

    def append(self, parsed: dict[str, tuple[str, Any]], n_slots: int,
               replaced_slots: np.ndarray | None = None) -> None:
        """Extends every field to ``n_slots`` rows: the new rows get the parsed values.

        Fields not given copy the value of the slot an item replaces (``replaced_slots``, -1 for
        new items), so re-adding a vector keeps its attributes; otherwise they are missing.
        """
        first = self._n
        n = n_slots - first
        if n <= 0:
            return
        for name, (kind, _) in parsed.items():
            if name not in self._cols:
                self._cols[name] = empty_column(kind, first)
        rep = replaced_slots if replaced_slots is not None else np.full(n, -1, np.int64)
        rep = rep[:n] if rep.shape[0] >= n else np.concatenate([rep, np.full(n - rep.shape[0], -1)])
        has_old = rep >= 0
        for name, col in self._cols.items():
            given = parsed.get(name)
            if isinstance(col, ScalarColumn):
                if given is not None:
                    vals = given[1][:n]
                else:
                    vals = np.full(n, col.missing, col.values.view.dtype)
                    vals[has_old] = col.gather(rep[has_old])
                col.append(vals)
            else:
                assert isinstance(col, TagsColumn)
                if given is not None:
                    counts, flat = given[1]
                    counts = counts[:n]
                    flat = flat[: int(counts.sum())]
                else:
                    counts = np.zeros(n, np.int64)
                    old_counts, flat = col.lists_of(rep[has_old])
                    counts[has_old] = old_counts
                col.append_lists(counts, flat)
        self._n = n_slots

    def values_of(self, slots: np.ndarray) -> dict[str, list[Any]]:
        """``{field: [value of each slot]}`` (None where missing; tags as lists of ints)."""
        out: dict[str, list[Any]] = {}
        for name, col in self._cols.items():
            if isinstance(col, ScalarColumn):
                vals = col.gather(slots)
                missing = vals == col.missing if col.kind == "int" else np.isnan(vals)
                out[name] = [None if m else v for v, m in zip(vals.tolist(), missing.tolist())]
            else:
                counts, flat = col.lists_of(slots)
                ends = np.cumsum(counts).tolist()
                flat_list = flat.tolist()
                out[name] = [flat_list[e - c:e] for c, e in zip(counts.tolist(), ends)]
        return out

    # --- filters -----------------------------------------------------------------------------
    def compile(self, filt: Filter, slots_of: Callable[[np.ndarray], np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(ops (n_ops, 3) int64, entries int32, loads (n, words) uint64)``: the filter as a
        postfix bitset program.

        Each op is ``(code, begin, end)``; OP_SCATTER pushes a bitset with the slots
        ``entries[begin:end]`` set, OP_PREFIX_DIFF pushes ``loads[begin] & ~loads[end]``; AND / OR / NOT combine the
        top of the stack.
        """
        ops: list[tuple[int, int, int]] = []
        parts: list[np.ndarray] = []
        loads = _Loads(self._n)
        size = [0]

        def scatter(runs: list[np.ndarray]) -> None:
            begin = size[0]
            for r in runs:
                if r.size:
                    parts.append(r)
                    size[0] += r.size
            ops.append((OP_SCATTER, begin, size[0]))

        def emit(f: Filter) -> None:
            op = f._op
            if op in ("and", "or"):
                emit(f._children[0])
                emit(f._children[1])
                ops.append((OP_AND if op == "and" else OP_OR, 0, 0))
            elif op == "not":
                emit(f._children[0])
                ops.append((OP_NOT, 0, 0))
            elif op == "ids":
                slots = slots_of(f._args[0])
                scatter([slots[slots >= 0].astype(np.int32)])
            elif op == "has_all":
                labels = f._args[0]
                col = self._column(f, ("tags",))  # an unknown field is an error even here
                if labels.size == 0:  # every item holds all of no labels
                    scatter([])
                    ops.append((OP_NOT, 0, 0))
                    return
                for i, lab in enumerate(labels):
                    scatter(_tag_runs(col, lab[None]))
                    if i:
                        ops.append((OP_AND, 0, 0))
            elif op == "has_any":
                scatter(_tag_runs(self._column(f, ("tags",)), f._args[0]))
            elif op == "isin":
                scatter(self._isin_runs(f))
            elif op == "range":
                col = self._column(f, ("int", "float"))
                lo, hi = _range_bounds(col.kind, *f._args)
                vals, perm = col.sorted_index()
                a, b = vals.searchsorted(lo, "left"), vals.searchsorted(hi, "right")
                diff, runs = col.range_parts(int(a), int(b))
                if diff is not None:
                    ops.append(loads.op(*diff))
                scatter(runs)
                if diff is not None:
                    ops.append((OP_OR, 0, 0))
            else:  # pragma: no cover - constructors only make the ops above
                raise BitgraphValueError(f"unknown filter op {op!r}")

        emit(filt)
        entries = np.concatenate(parts).astype(np.int32, copy=False) if parts else np.zeros(0, np.int32)
        return np.asarray(ops, dtype=np.int64).reshape(-1, 3), entries, loads.table()

    def compile_many(self, filters: list[Filter], slots_of: Callable[[np.ndarray], np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Several filters as one batch of programs: ``(ops (n_ops, 3), op_offsets (n + 1),
        entries, loads)``; filter i is ``ops[op_offsets[i]:op_offsets[i + 1]]``, and its SCATTER
        and LOAD ops index the shared ``entries`` and ``loads``.

        Single-leaf ``eq`` / ``range`` filters on the same field (one filter per query, e.g. a
        tenant or category per request) are resolved with one vectorised binary search for all
        of them; other expressions compile one by one.
        """
        n = len(filters)
        ops_parts: list[np.ndarray] = [np.zeros((0, 3), np.int64)] * n
        runs: list[list[np.ndarray]] = [[] for _ in range(n)]
        diffs: list[tuple[np.ndarray, int, int] | None] = [None] * n
        simple: dict[str, list[int]] = {}
        for i, f in enumerate(filters):
            if f._op == "range" or (f._op == "isin" and f._args[0].size == 1):
                col = self._column(f, ("int", "float"))
                if f._op == "isin" and col.kind == "int" and f._args[0].dtype.kind not in "iu":
                    self._isin_runs(f)  # raises the type error
                simple.setdefault(f._field or "", []).append(i)
        for field, members in simple.items():
            col = self._cols[field]
            vals, perm = col.sorted_index()
            lo = np.empty(len(members), vals.dtype)
            hi = np.empty(len(members), vals.dtype)
            for j, i in enumerate(members):
                f = filters[i]
                if f._op == "isin":
                    v = f._args[0][:1]
                    if col.kind == "float" and v.dtype.kind in "iu":
                        v = _exact_floats(v.astype(np.int64))
                    if v.size == 0 or (col.kind == "int" and v[0] == INT_MISSING):
                        lo[j], hi[j] = _range_bounds(col.kind, np.inf, -np.inf)  # no match
                    else:
                        lo[j] = hi[j] = v[0]
                else:
                    lo[j], hi[j] = _range_bounds(col.kind, *f._args)
            a = vals.searchsorted(lo, "left")
            b = vals.searchsorted(hi, "right")
            for j, i in enumerate(members):
                diffs[i], runs[i] = col.range_parts(int(a[j]), int(b[j]))
        entries_parts: list[np.ndarray] = []
        loads = _Loads(self._n)
        size = 0
        for i, f in enumerate(filters):
            if f._op == "range" or (f._op == "isin" and f._args[0].size == 1):
                count = sum(r.size for r in runs[i])
                rows = [[OP_SCATTER, size, size + count]]
                if diffs[i] is not None:
                    rows = [list(loads.op(*diffs[i]))] + rows + [[OP_OR, 0, 0]]
                ops_parts[i] = np.array(rows, np.int64)
                entries_parts.extend(runs[i])
                size += count
            else:
                ops, entries, own_loads = self.compile(f, slots_of)
                ops = ops.copy()
                ops[ops[:, 0] == OP_SCATTER, 1:] += size
                ops[ops[:, 0] == OP_PREFIX_DIFF, 1:] += loads.add_table(own_loads)
                ops_parts[i] = ops
                entries_parts.append(entries)
                size += entries.size
        offsets = np.zeros(n + 1, np.int64)
        offsets[1:] = np.cumsum([o.shape[0] for o in ops_parts])
        entries_all = (np.concatenate(entries_parts).astype(np.int32, copy=False)
                       if entries_parts else np.zeros(0, np.int32))
        return (np.concatenate(ops_parts) if ops_parts else np.zeros((0, 3), np.int64),
                offsets, entries_all, loads.table())

    def _column(self, f: Filter, kinds: tuple[str, ...]) -> Any:
        col = self._cols.get(f._field or "")
        if col is None:
            have = ", ".join(sorted(self._cols)) or "none"
            raise BitgraphValueError(
                f"unknown filter field {f._field!r} (the index has attribute fields: {have})")
        if col.kind not in kinds:
            raise BitgraphTypeError(
                f"{f!r} needs a {' or '.join(kinds)} field, but {f._field!r} holds {col.kind} values")
        return col

    def _isin_runs(self, f: Filter) -> list[np.ndarray]:
        col = self._column(f, ("int", "float"))
        values = f._args[0]
        if col.kind == "int":
            if values.dtype.kind not in "iu":
                raise BitgraphTypeError(
                    f"{f!r}: field {f._field!r} holds ints, got {values.dtype} value(s)")
            values = values.astype(np.int64)
            values = values[values != INT_MISSING]  # the missing marker matches nothing
        elif values.dtype.kind in "iu":
            values = _exact_floats(values.astype(np.int64))
        else:
            values = values.astype(np.float64)
        vals, perm = col.sorted_index()
        lo = np.searchsorted(vals, values, "left")
        hi = np.searchsorted(vals, values, "right")
        return [perm[a:b] for a, b in zip(lo, hi) if b > a]

    # --- persistence -------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, str], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        for name, col in self._cols.items():
            arrays.update(col.state(name))
        return self.fields, arrays

    @classmethod
    def from_state(cls, fields: dict[str, str], arrays: dict[str, np.ndarray],
                   n_slots: int) -> "AttributeStore":
        store = cls()
        store._n = n_slots
        for name, kind in fields.items():
            if kind not in KINDS:
                raise ValueError(f"attribute {name!r} has unknown kind {kind!r}")
            if kind == "tags":
                off = np.asarray(arrays[f"attr.{name}.offsets"])
                labels = np.asarray(arrays[f"attr.{name}.labels"])
                if (off.dtype != np.int64 or labels.dtype != np.int64 or labels.ndim != 1
                        or off.shape != (n_slots + 1,)
                        or off[0] != 0 or (np.diff(off) < 0).any() or off[-1] != labels.shape[0]):
                    raise ValueError(f"attribute {name!r} has inconsistent offsets")
                store._cols[name] = TagsColumn(off, labels)
            else:
                vals = np.asarray(arrays[f"attr.{name}.values"])
                want = np.int64 if kind == "int" else np.float64
                if vals.dtype != want or vals.shape != (n_slots,):
                    raise ValueError(f"attribute {name!r} has the wrong dtype or length")
                if kind == "float" and np.isinf(vals).any():  # NaN marks a missing value
                    raise ValueError(f"attribute {name!r} holds infinite values")
                store._cols[name] = ScalarColumn(kind, vals)
        return store


class _Loads:
    """The bitsets a batch of programs reads with PREFIX_DIFF: the prefix-bitmap matrices of
    the fields they use, passed as they are when there is one (no copy), stacked otherwise."""

    def __init__(self, n_slots: int) -> None:
        self._words = (n_slots + 63) // 64
        self._tables: list[np.ndarray] = []
        self._rows = 0

    def add_table(self, table: np.ndarray) -> int:
        """Row offset of ``table`` in the combined table (added once per distinct matrix)."""
        at = 0
        for t in self._tables:
            if t is table:
                return at
            at += t.shape[0]
        if table.shape[0]:
            self._tables.append(table)
            self._rows += table.shape[0]
        return at

    def op(self, table: np.ndarray, hi: int, lo: int) -> tuple[int, int, int]:
        base = self.add_table(table)
        return (OP_PREFIX_DIFF, base + hi, base + lo)

    def table(self) -> np.ndarray:
        if not self._tables:
            return np.zeros((0, self._words), dtype=np.uint64)
        if len(self._tables) == 1:
            return self._tables[0]
        return np.concatenate(self._tables)


def _range_bounds(kind: str, lo: int | float, hi: int | float) -> tuple[Any, Any]:
    """The closed range's bounds in the column's own type, computed exactly (a bound is an
    exact Python int or a float; -inf / inf for an open side), missing values excluded.

    int fields: ceil(lo) .. floor(hi) clamped to int64 (a bound at or beyond the int64 limits
    includes everything on its side, never the missing marker). float fields: the nearest
    float64 values inside the range (an int bound that float64 cannot hold is moved inward).
    An empty range comes back as lo > hi."""
    if kind != "int":
        return _float_bound(lo, up=True), _float_bound(hi, up=False)
    top, bottom = int(np.iinfo(np.int64).max), INT_MISSING + 1
    lo_i = bottom if lo == -np.inf else max(math.ceil(lo), bottom) if lo != np.inf else top + 1
    hi_i = top if hi == np.inf else min(math.floor(hi), top) if hi != -np.inf else bottom - 1
    if lo_i > hi_i or lo_i > top or hi_i < bottom:
        return np.int64(top), np.int64(bottom)  # empty
    return np.int64(lo_i), np.int64(hi_i)


def _float_bound(b: int | float, up: bool) -> float:
    """float64 bound equivalent to the exact bound ``b`` (rounded inward when inexact)."""
    if isinstance(b, float):
        return b
    try:
        f = float(b)
    except OverflowError:  # an int beyond every float
        return np.inf if b > 0 else -np.inf
    if up and f < b:
        return float(np.nextafter(f, np.inf))
    if not up and f > b:
        return float(np.nextafter(f, -np.inf))
    return f


def _exact_floats(values: np.ndarray) -> np.ndarray:
    """Int64 ``values`` as float64, dropping those no float64 equals exactly (they can never
    equal a float field's value)."""
    f = values.astype(np.float64)
    inside = np.abs(f) < 2.0 ** 63
    exact = np.zeros(values.shape, dtype=bool)
    exact[inside] = f[inside].astype(np.int64) == values[inside]
    return f[exact]


def _tag_runs(col: TagsColumn, labels: np.ndarray) -> list[np.ndarray]:
    vals, owners = col.sorted_index()
    lo = np.searchsorted(vals, labels, "left")
    hi = np.searchsorted(vals, labels, "right")
    return [owners[a:b] for a, b in zip(lo, hi) if b > a]
