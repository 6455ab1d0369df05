"""Filter expressions: which items a search may return.

>>> f = (Filter.eq("section", 3) & Filter.range("size_kb", 0, 500)) | Filter.has_any("tags", [4, 7])
>>> res = index.search(queries, k=10, filter=f)

A filter is an immutable expression tree. The index compiles it against its attribute store
into a small program of "set these slots" leaves combined with AND / OR / NOT, which the
backend evaluates into one bitset over the index's slots (C++ or Numba, no Python per item).
Items whose attribute is missing never match a leaf on that attribute (but do match its ``~``).
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

from ._validation import exact_ints
from .errors import BitgraphTypeError, BitgraphValueError


def _check_field(field: Any) -> str:
    if not isinstance(field, str) or not field:
        raise BitgraphTypeError(f"a filter field must be a non-empty str, got {field!r}")
    return field


_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _as_bound(value: Any, what: str) -> int | float:
    """A range bound, kept exact: ints stay Python ints (float64 would round 2**63 - 1 up to
    2**63 and past the int64 limit), floats stay floats; NaN bounds nothing and is refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise BitgraphTypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    v = float(value)
    if np.isnan(v):
        raise BitgraphValueError(f"{what} must not be NaN")
    return v


def _eq_value(value: Any, what: str) -> np.ndarray:
    """The value of an ``eq`` leaf as a one-element int64 or float64 array."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise BitgraphTypeError(
            f"{what} expects an int or float value, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise BitgraphValueError(
                f"{what}: {v} is beyond int64, which no attribute can hold")
        return np.array([v], dtype=np.int64)
    f = float(value)
    if np.isnan(f):
        raise BitgraphValueError(f"{what}: NaN equals nothing (a missing value is not NaN); "
                                 "use ~Filter.range(field) to find items without the field")
    return np.array([f], dtype=np.float64)


def _int_array(values: Any, what: str) -> np.ndarray:
    if (values is None or isinstance(values, (str, bytes, dict)) or np.isscalar(values)
            or not hasattr(values, "__iter__")):
        raise BitgraphTypeError(f"{what} must be a sequence of ints, got {values!r:.80}")
    try:
        arr = exact_ints(list(values) if not isinstance(values, np.ndarray) else values, what)
    except BitgraphValueError:
        raise
    except (TypeError, ValueError) as exc:  # ragged or not iterable
        raise BitgraphTypeError(f"{what} must be a sequence of ints: {exc}") from None
    if arr.ndim != 1:
        raise BitgraphValueError(f"{what} must be 1-d, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise BitgraphTypeError(f"{what} must hold ints, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise BitgraphValueError(f"{what} has values beyond int64")
    return arr.astype(np.int64, copy=False)


class Filter:
    """A predicate over item attributes (and ids), built with the static constructors.

    Combine with ``&`` (and), ``|`` (or) and ``~`` (not). Filters are immutable, hashable by
    content (``key()``) and reusable across searches and indexes.
    """

    __slots__ = ("_op", "_field", "_args", "_children", "_key")

    def __init__(self, op: str, field: str | None = None, args: tuple[Any, ...] = (),
                 children: tuple["Filter", ...] = ()) -> None:
        self._op = op
        self._field = field
        self._args = args
        self._children = children
        self._key: tuple[Any, ...] | None = None

    # --- constructors ------------------------------------------------------------------------
    @staticmethod
    def eq(field: str, value: int | float) -> "Filter":
        """Items whose ``field`` equals ``value`` (int fields: an int; float fields: a number)."""
        _check_field(field)
        return Filter("isin", field, (_eq_value(value, f"Filter.eq({field!r}, ...)"),))

    @staticmethod
    def isin(field: str, values: Iterable[int]) -> "Filter":
        """Items whose ``field`` is one of the int ``values`` (int fields; float fields compare
        them exactly, so 2**53 + 1 matches no float)."""
        _check_field(field)
        arr = _int_array(values, f"Filter.isin({field!r}, values)")
        return Filter("isin", field, (np.unique(arr),))

    @staticmethod
    def range(field: str, low: float | None = None, high: float | None = None) -> "Filter":
        """Items with ``low <= field <= high`` (closed interval; None leaves a side open).

        Bounds are compared exactly with the field's values: int bounds of any size with int
        fields (beyond int64 they just include everything on that side), int or float bounds
        with float fields."""
        _check_field(field)
        lo = -np.inf if low is None else _as_bound(low, f"Filter.range({field!r}) low")
        hi = np.inf if high is None else _as_bound(high, f"Filter.range({field!r}) high")
        return Filter("range", field, (lo, hi))

    @staticmethod
    def has_any(field: str, labels: Iterable[int]) -> "Filter":
        """Items whose multi-label ``field`` holds at least one of ``labels``."""
        _check_field(field)
        return Filter("has_any", field, (np.unique(_int_array(labels, f"Filter.has_any({field!r})")),))

    @staticmethod
    def has_all(field: str, labels: Iterable[int]) -> "Filter":
        """Items whose multi-label ``field`` holds every one of ``labels`` (all items if empty)."""
        _check_field(field)
        return Filter("has_all", field, (np.unique(_int_array(labels, f"Filter.has_all({field!r})")),))

    @staticmethod
    def ids(ids: Iterable[int]) -> "Filter":
        """Items whose id is in ``ids`` (ids not in the index simply match nothing)."""
        arr = _int_array(ids, "Filter.ids(ids)")
        return Filter("ids", None, (np.unique(arr),))

    # --- combinators -------------------------------------------------------------------------
    def __and__(self, other: "Filter") -> "Filter":
        return Filter("and", None, (), (self, _checked(other, "&")))

    def __or__(self, other: "Filter") -> "Filter":
        return Filter("or", None, (), (self, _checked(other, "|")))

    def __invert__(self) -> "Filter":
        return Filter("not", None, (), (self,))

    def __bool__(self) -> bool:
        raise BitgraphTypeError("a Filter has no truth value: combine filters with & | ~, "
                                "not with and / or / not")

    # --- identity ----------------------------------------------------------------------------
    def key(self) -> tuple[Any, ...]:
        """A hashable description of the expression (equal filters have equal keys)."""
        if self._key is None:
            args = tuple(a.tobytes() if isinstance(a, np.ndarray) else a for a in self._args)
            kids = tuple(c.key() for c in self._children)
            self._key = (self._op, self._field, args, kids)
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def fields(self) -> set[str]:
        """Attribute fields the expression reads."""
        out = {self._field} if self._field else set()
        for c in self._children:
            out |= c.fields()
        return out

    def __repr__(self) -> str:
        if self._op == "and":
            return f"({self._children[0]!r} & {self._children[1]!r})"
        if self._op == "or":
            return f"({self._children[0]!r} | {self._children[1]!r})"
        if self._op == "not":
            return f"~{self._children[0]!r}"
        if self._op == "ids":
            return f"Filter.ids(<{self._args[0].size} ids>)"
        if self._op == "range":
            return f"Filter.range({self._field!r}, {self._args[0]}, {self._args[1]})"
        vals = self._args[0].tolist()
        shown = vals if len(vals) <= 8 else vals[:8] + ["..."]
        return f"Filter.{self._op}({self._field!r}, {shown})"


def _checked(other: Any, op: str) -> Filter:
    if not isinstance(other, Filter):
        raise BitgraphTypeError(f"Filter {op} expects a Filter, got {type(other).__name__}")
    return other
