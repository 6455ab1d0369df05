"""Filter expressions: which items a search may return.

>>> f = (Filter.eq("section", 3) & Filter.range("size_kb", 0, 500)) | Filter.has_any("tags", [4, 7])
>>> res = index.search(queries, k=10, filter=f)

A filter is an immutable expression tree. The index compiles it against its attribute store
into a small program of "set these slots" leaves combined with AND / OR / NOT, which the
backend evaluates into one bitset over the index's slots (C++ or Numba, no Python per item).
Items whose attribute is missing never match a leaf on that attribute (but do match its ``~``).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable
from typing import Any

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

    __slots__ = ("_args", "_children", "_field", "_key", "_op")

    def __init__(self, op: str, field: str | None = None, args: tuple[Any, ...] = (),
                 children: tuple[Filter, ...] = ()) -> None:
        self._op = op
        self._field = field
        self._args = args
        self._children = children
        self._key: tuple[Any, ...] | None = None

    # --- constructors ------------------------------------------------------------------------
    @staticmethod
    def eq(field: str, value: float) -> Filter:
        """Items whose ``field`` equals ``value`` (int fields: an int; float fields: a number)."""
        _check_field(field)
        return Filter("isin", field, (_eq_value(value, f"Filter.eq({field!r}, ...)"),))

    @staticmethod
    def isin(field: str, values: Iterable[int]) -> Filter:
        """Items whose ``field`` is one of the int ``values`` (int fields; float fields compare
        them exactly, so 2**53 + 1 matches no float)."""
        _check_field(field)
        arr = _int_array(values, f"Filter.isin({field!r}, values)")
        return Filter("isin", field, (np.unique(arr),))

    @staticmethod
    def range(field: str, low: float | None = None, high: float | None = None) -> Filter:
        """Items with ``low <= field <= high`` (closed interval; None leaves a side open).

        Bounds are compared exactly with the field's values: int bounds of any size with int
        fields (beyond int64 they just include everything on that side), int or float bounds
        with float fields."""
        _check_field(field)
        lo = -np.inf if low is None else _as_bound(low, f"Filter.range({field!r}) low")
        hi = np.inf if high is None else _as_bound(high, f"Filter.range({field!r}) high")
        return Filter("range", field, (lo, hi))

    @staticmethod
    def has_any(field: str, labels: Iterable[int]) -> Filter:
        """Items whose multi-label ``field`` holds at least one of ``labels``."""
        _check_field(field)
        return Filter("has_any", field, (np.unique(_int_array(labels, f"Filter.has_any({field!r})")),))

    @staticmethod
    def has_all(field: str, labels: Iterable[int]) -> Filter:
        """Items whose multi-label ``field`` holds every one of ``labels`` (all items if empty)."""
        _check_field(field)
        return Filter("has_all", field, (np.unique(_int_array(labels, f"Filter.has_all({field!r})")),))

    @staticmethod
    def ids(ids: Iterable[int]) -> Filter:
        """Items whose id is in ``ids`` (ids not in the index simply match nothing)."""
        arr = _int_array(ids, "Filter.ids(ids)")
        return Filter("ids", None, (np.unique(arr),))

    # --- combinators -------------------------------------------------------------------------
    def __and__(self, other: Filter) -> Filter:
        return Filter("and", None, (), (self, _checked(other, "&")))

    def __or__(self, other: Filter) -> Filter:
        return Filter("or", None, (), (self, _checked(other, "|")))

    def __invert__(self) -> Filter:
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

    # --- JSON form -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form as a dict: ``{"version": 1, "expr": <expression>}``.

        Expressions (the same vocabulary as the constructors; see :data:`JSON_VERSION`):
        ``{"op": "eq", "field": f, "value": v}``, ``{"op": "isin", "field": f, "values": [...]}``,
        ``{"op": "range", "field": f, "gte": low, "lte": high}`` (null or absent: open; an
        infinite bound is "inf" / "-inf"),
        ``{"op": "has_any" | "has_all", "field": f, "values": [...]}``,
        ``{"op": "ids", "values": [...]}``, ``{"op": "and" | "or", "args": [e, e, ...]}``,
        ``{"op": "not", "arg": e}``.
        """
        return {"version": JSON_VERSION, "expr": _expr_to_json(self)}

    def to_json(self) -> str:
        """The versioned JSON form as a string (see :meth:`to_dict`);
        ``Filter.from_json(f.to_json()) == f``."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @staticmethod
    def from_json(data: str | bytes | dict[str, Any]) -> Filter:
        """The Filter of a JSON form: a string / bytes, or an already parsed dict; either the
        versioned wrapper ``{"version": 1, "expr": ...}`` or a bare expression.

        Raises BitgraphValueError / BitgraphTypeError naming the offending part."""
        if isinstance(data, (str, bytes, bytearray)):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise BitgraphValueError(f"filter: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise BitgraphTypeError(f"filter: expected a JSON object, got {type(data).__name__}")
        if "version" in data:
            version = data["version"]
            if version != JSON_VERSION or isinstance(version, bool):
                raise BitgraphValueError(
                    f"filter: unsupported version {version!r} (this bitgraph reads {JSON_VERSION})")
            extra = set(data) - {"version", "expr"}
            if extra or "expr" not in data:
                raise BitgraphValueError("filter: a versioned filter is {\"version\": 1, "
                                         f"\"expr\": ...}}, got keys {sorted(data)}")
            data = data["expr"]
        return _expr_from_json(data, "filter", 0)

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


JSON_VERSION = 1
_MAX_JSON_DEPTH = 64  # deeper expressions are refused (a request must not exhaust the stack)
_JSON_OPS = {"eq": ("field", "value"), "isin": ("field", "values"), "range": ("field", "gte", "lte"),
             "has_any": ("field", "values"), "has_all": ("field", "values"), "ids": ("values",),
             "and": ("args",), "or": ("args",), "not": ("arg",)}


def _json_bound(x: float, open_side: float) -> int | float | str | None:
    """A range bound in JSON: null for an open side; "inf" / "-inf" for an infinite bound that
    closes a side (JSON has no infinity)."""
    if isinstance(x, float) and math.isinf(x):
        return None if x == open_side else ("inf" if x > 0 else "-inf")
    return x


def _bound_from_json(x: Any) -> Any:
    return {"inf": math.inf, "-inf": -math.inf}.get(x, x) if isinstance(x, str) else x


def _expr_to_json(f: Filter) -> dict[str, Any]:
    op = f._op
    if op in ("and", "or"):
        return {"op": op, "args": [_expr_to_json(c) for c in f._children]}
    if op == "not":
        return {"op": "not", "arg": _expr_to_json(f._children[0])}
    if op == "range":
        lo, hi = f._args
        return {"op": "range", "field": f._field, "gte": _json_bound(lo, -math.inf),
                "lte": _json_bound(hi, math.inf)}
    values = f._args[0]
    if op == "isin" and values.dtype.kind == "f":  # Filter.eq of a float
        return {"op": "eq", "field": f._field, "value": float(values[0])}
    if op == "ids":
        return {"op": "ids", "values": values.tolist()}
    return {"op": op, "field": f._field, "values": values.tolist()}


def _expr_from_json(e: Any, where: str, depth: int) -> Filter:
    if depth > _MAX_JSON_DEPTH:
        raise BitgraphValueError(f"{where}: nested deeper than {_MAX_JSON_DEPTH} levels")
    if not isinstance(e, dict):
        raise BitgraphTypeError(f"{where}: expected an object with an \"op\", got {e!r:.60}")
    op = e.get("op")
    if not isinstance(op, str) or op not in _JSON_OPS:
        raise BitgraphValueError(f"{where}: unknown op {op!r} (one of {', '.join(_JSON_OPS)})")
    allowed = _JSON_OPS[op]
    extra = set(e) - {"op", *allowed}
    if extra:
        raise BitgraphValueError(f"{where}: {op} takes {', '.join(allowed)}; "
                                 f"unknown key {sorted(extra)[0]!r}")
    required = [k for k in allowed if k not in ("gte", "lte")]
    for key in required:
        if key not in e:
            raise BitgraphValueError(f"{where}: {op} needs {key!r}")
    where = f"{where}.{op}"
    if op in ("and", "or"):
        args = e["args"]
        if not isinstance(args, list) or not args:
            raise BitgraphValueError(f"{where}: args must be a non-empty list of expressions")
        out = _expr_from_json(args[0], f"{where}[0]", depth + 1)
        for i, a in enumerate(args[1:], 1):
            nxt = _expr_from_json(a, f"{where}[{i}]", depth + 1)
            out = (out & nxt) if op == "and" else (out | nxt)
        return out
    if op == "not":
        return ~_expr_from_json(e["arg"], where, depth + 1)
    if op == "eq":
        return Filter.eq(e["field"], e["value"])
    if op == "range":
        return Filter.range(e["field"], _bound_from_json(e.get("gte")),
                            _bound_from_json(e.get("lte")))
    values = e["values"]
    if not isinstance(values, list):
        raise BitgraphTypeError(f"{where}: values must be a list of ints, got {values!r:.60}")
    if op == "ids":
        return Filter.ids(values)
    return getattr(Filter, op)(e["field"], values)


def _checked(other: Any, op: str) -> Filter:
    if not isinstance(other, Filter):
        raise BitgraphTypeError(f"Filter {op} expects a Filter, got {type(other).__name__}")
    return other
