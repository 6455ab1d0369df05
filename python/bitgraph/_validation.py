"""Input conversion and checks shared by every index (cores trust what passes here)."""

from __future__ import annotations

import functools
import numbers
import os
from typing import Any

import numpy as np

from .errors import BitgraphTypeError, BitgraphValueError

METRICS = ("l2", "ip", "cosine")
STORAGES = ("float32", "float16", "int8")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise BitgraphValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


# Bounds of numbers that reach the cores. A value with a natural bound is clamped to it where it
# is used (ef, ef_construction and oversampled candidates to the index size, threads to the
# cores); a value without one gets a typed error here instead of reaching pybind11 or numpy.
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
UINT64_MAX = (1 << 64) - 1
INT32_MAX = (1 << 31) - 1
MAX_DIM = 1 << 20  # values per vector: a 4 MiB float32 row
# Result cells (queries x k) one search may return: 2^28 cells are 3 GiB of ids and distances.
MAX_RESULT_CELLS = 1 << 28


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None, *,
              allow_none: bool = False) -> int | None:
    """``value`` as a Python int in ``[minimum, maximum]`` (BitgraphTypeError for non-ints,
    bools included; BitgraphValueError outside the range)."""
    if type(value) is not int:  # bool is not int here (type(True) is bool)
        if value is None and allow_none:
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            bound = (f"an int >= {minimum}" if maximum is None
                     else f"an int in [{minimum}, {maximum}]")
            raise BitgraphTypeError(
                f"{name} must be {bound}, got {type(value).__name__} {value!r}")
        value = int(value)
    if value < minimum:
        raise BitgraphValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise BitgraphValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_dim(value: Any) -> int:
    """A vector dimension: 1 .. MAX_DIM."""
    return int(check_int("dim", value, 1, MAX_DIM))  # type: ignore[arg-type]


def check_seed(value: Any) -> int:
    """A generator seed: 0 .. 2^64 - 1."""
    return int(check_int("seed", value, 0, UINT64_MAX))  # type: ignore[arg-type]


def check_number(name: str, value: Any, minimum: float) -> float:
    """A finite real number >= ``minimum`` (bools are not numbers here)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise BitgraphTypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    try:
        out = float(value)
    except OverflowError:  # an int beyond float range
        raise BitgraphValueError(f"{name} must be a finite number, got {value}") from None
    if not np.isfinite(out) or out < minimum:
        raise BitgraphValueError(f"{name} must be a finite number >= {minimum:g}, got {value}")
    return out


@functools.lru_cache(maxsize=None)
def usable_cores() -> int:
    """Cores this process may run on (read once: a search must not pay a system call)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads(threads: Any) -> int:
    """Worker threads for a call: None means every core the process may use; larger requests
    are clamped to those cores (more threads than cores only add contention, and each holds
    search scratch sized by the index)."""
    cores = usable_cores()
    if threads is None:
        return cores
    return min(int(check_int("threads", threads, 1)), cores)  # type: ignore[arg-type]


def check_result_size(nq: int, k: int) -> None:
    """Refuses a search whose (nq, k) result arrays alone would take gigabytes."""
    if nq * k > MAX_RESULT_CELLS:
        raise BitgraphValueError(
            f"k={k} for {nq} queries asks for {nq * k:,} results ({nq * k * 12 / 2**30:.1f} GiB "
            f"of ids and distances; at most {MAX_RESULT_CELLS:,} per call): use a smaller k or "
            "split the batch")


def next_ids(first: int, n: int) -> np.ndarray:
    """Automatic ids ``first .. first + n - 1`` (BitgraphValueError past int64)."""
    if first + n - 1 > INT64_MAX:
        raise BitgraphValueError(
            f"no automatic ids left: {n} ids after {first - 1} would pass the int64 limit "
            f"{INT64_MAX}; pass ids explicitly")
    return np.arange(first, first + n, dtype=np.int64)


def as_matrix(x: Any, dim: int, what: str, *, check_finite: bool = True) -> np.ndarray:
    """Converts an array-like to a C-contiguous (n, dim) float32 matrix of finite values.

    A single vector of ``dim`` values is accepted as one row. ``check_finite=False`` leaves
    the finiteness check to the caller (:func:`prepared_rows` folds it into the metric's own
    pass over the values). A C-contiguous float32 (n, dim) array passes without a copy.
    """
    if (type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2  # the common case
            and x.shape[1] == dim and x.shape[0] and x.flags.c_contiguous):
        if check_finite:
            _check_finite(x, what, "contains NaN or infinity")
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise BitgraphTypeError(f"{what} must be an array of real numbers: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise BitgraphTypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise BitgraphTypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.reshape(rows_shape(arr.shape, dim, what))
    wide = arr.dtype.kind == "f" and arr.dtype.itemsize > 4
    if wide:
        _check_finite(arr, what, "contains NaN or infinity")
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    if wide or check_finite:
        _check_finite(arr, what, "holds values beyond the float32 range (+-3.4e38)" if wide
                      else "contains NaN or infinity")
    return arr


def rows_shape(shape: tuple[int, ...], dim: int, what: str) -> tuple[int, int]:
    """The (n, dim) shape of an input of ``shape`` (one vector is one row), or the error
    as_matrix raises (also used for device arrays, which cannot pass through numpy)."""
    if len(shape) == 1:
        if shape[0] == 0:
            raise BitgraphValueError(f"{what} is empty: expected at least one row of {dim} values")
        shape = (1, shape[0])
    if len(shape) != 2:
        raise BitgraphValueError(f"{what} must be a 2-d array (n, {dim}), got shape {shape}")
    if shape[0] == 0:
        raise BitgraphValueError(f"{what} is empty: expected at least one row of {dim} values")
    if shape[1] != dim:
        raise BitgraphValueError(f"{what} has dimension {shape[1]}, expected {dim} (shape {shape})")
    return (int(shape[0]), int(shape[1]))


def _check_finite(arr: np.ndarray, what: str, why: str) -> None:
    # min and max propagate NaN and show infinities without an (n, dim) temporary: a batch
    # validated here leaves no garbage behind (see _peaks).
    if not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        _raise_not_finite(arr, what, why)


def _raise_not_finite(arr: np.ndarray, what: str, why: str) -> None:
    bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
    raise BitgraphValueError(f"{what} {why} (first in row {bad})")


def _peaks(arr: np.ndarray) -> np.ndarray:
    """max |x| of each row, without an (n, dim) temporary like ``np.abs(arr)``: input checks
    make no copies of a batch beyond the one the index keeps (freed temporaries of that size
    stay in the process's heap as RSS)."""
    return np.maximum(arr.max(axis=1), -arr.min(axis=1))


# Squared norms in this range are exact enough to normalise by directly; outside it (values
# beyond ~1e19 overflow, below ~1e-19 underflow in float32) rows are scaled by their peak first.
_SQ_LOW, _SQ_HIGH = 1e-30, 1e30


def normalized(arr: np.ndarray, what: str, *, inplace: bool = False) -> np.ndarray:
    """L2-normalised copy of an unchecked float32 matrix (for cosine; in place with
    ``inplace``, for an array that is already a private copy). NaN / infinity and zero rows
    are errors.

    One pass computes the squared norms; NaN or infinity in a row shows in its norm, so that
    pass is also the finiteness check. A row whose squared norm would overflow or underflow
    float32 is first divided by its largest magnitude. Each row takes its path by its own norm,
    so it normalises to the same bits whatever batch it comes in.
    """
    sq = np.einsum("ij,ij->i", arr, arr)
    out = arr if inplace else np.empty_like(arr)
    lo, hi = sq.min(), sq.max()  # NaN propagates: the comparisons below fail for it
    if _SQ_LOW <= lo and hi <= _SQ_HIGH:
        np.divide(arr, np.sqrt(sq)[:, None], out=out)
        return out
    ok = (sq >= _SQ_LOW) & (sq <= _SQ_HIGH)
    odd = np.flatnonzero(~ok)
    rows = arr[odd]
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = int(odd[np.flatnonzero(~finite)[0]])
        raise BitgraphValueError(f"{what} contains NaN or infinity (first in row {bad})")
    peak = _peaks(rows)
    if (peak == 0).any():
        bad = int(odd[np.flatnonzero(peak == 0)[0]])
        raise BitgraphValueError(
            f"{what} row {bad} is all zeros: cosine similarity is undefined for it"
        )
    rows /= peak[:, None]
    rows /= np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]
    keep = np.flatnonzero(ok)
    out[keep] = arr[keep] / np.sqrt(sq[keep])[:, None]
    out[odd] = rows
    return out


def checked_magnitude(arr: np.ndarray, what: str,
                      advice: str = "rescale the vectors or use metric='cosine'") -> np.ndarray:
    """``arr`` after the l2 / ip checks in one pass: finite values (check_finite=False in
    as_matrix) within :func:`check_magnitude`'s limit."""
    lo, hi = arr.min(), arr.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        _raise_not_finite(arr, what, "contains NaN or infinity")
    if max(float(hi), -float(lo)) > magnitude_limit(arr.shape[1]):
        check_magnitude(arr, what, advice)
    return arr


def magnitude_limit(dim: int) -> float:
    """The largest |value| an l2 / ip vector may hold (see :func:`check_magnitude`)."""
    return float(np.sqrt(np.finfo(np.float32).max / (4.0 * dim)))


def is_private_copy(arr: np.ndarray, source: Any) -> bool:
    """Whether conversion made ``arr`` a new array that nothing else refers to (so it may be
    changed in place): it owns its memory and is not the caller's array."""
    return arr is not source and bool(arr.flags.owndata)


def check_magnitude(arr: np.ndarray, what: str,
                    advice: str = "rescale the vectors or use metric='cosine'") -> None:
    """l2 / ip distances are float32: rows whose values could make a squared distance or a dot
    product overflow to infinity are refused rather than ranked wrongly. The limit (for any two
    rows |<a, b>| and |a - b|^2 stay below float32's maximum) is ~1e18 at dim 128."""
    dim = arr.shape[1]
    limit = magnitude_limit(dim)
    if max(float(arr.max()), -float(arr.min())) <= limit:
        return
    peak = _peaks(arr)
    row = int(np.flatnonzero(peak > limit)[0])
    raise BitgraphValueError(
        f"{what} row {row} holds a value of magnitude {float(peak[row]):g}: beyond "
        f"{limit:.3g} (for dimension {dim}) float32 products overflow; {advice}"
    )


def check_float16_range(arr: np.ndarray, what: str) -> None:
    """Values a float16 row cannot hold (|x| >= 65520 rounds to infinity) would be stored as
    infinity."""
    if max(float(arr.max()), -float(arr.min())) < 65520.0:
        return
    peak = _peaks(arr)
    row = int(np.flatnonzero(peak >= 65520.0)[0])
    value = float(arr[row][np.abs(arr[row]) >= 65520.0][0])
    raise BitgraphValueError(
        f"{what} row {row} holds {value:g}, beyond the float16 range (+-65504) of "
        "storage='float16': use storage='float32' (or 'int8', which scales each row)"
    )


def exact_ints(values: Any, what: str) -> np.ndarray:
    """``np.asarray(values)``, except that a list or tuple of Python ints stays exact: numpy
    silently turns ``[2**63, 1]`` into float64. Such a list becomes int64 when every value
    fits, and a BitgraphValueError names the first one that does not."""
    if (isinstance(values, (list, tuple)) and values
            and all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                    for v in values)):
        bad = next((v for v in values if not INT64_MIN <= v <= INT64_MAX), None)
        if bad is not None:
            raise BitgraphValueError(f"{what} holds {int(bad)}, beyond int64")
        return np.array(values, dtype=np.int64)
    return np.asarray(values)


def as_ids(ids: Any, n: int | None, what: str = "ids") -> np.ndarray:
    """Converts ids to a 1-d int64 array of non-negative, unique values (length n if given)."""
    try:
        arr = exact_ints(ids, what)
    except ValueError as exc:  # ragged lists
        if isinstance(exc, BitgraphValueError):
            raise
        raise BitgraphTypeError(f"{what} must be a 1-d sequence of ints: {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise BitgraphValueError(f"{what} must be 1-d, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise BitgraphTypeError(f"{what} must be integers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.unsignedinteger) and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise BitgraphValueError(f"{what} must fit in int64")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if n is not None and arr.shape[0] != n:
        raise BitgraphValueError(f"{what} has {arr.shape[0]} entries, expected {n} (one per vector)")
    if arr.size and arr.min() < 0:
        raise BitgraphValueError(f"{what} must be >= 0 (-1 marks missing results), got {arr.min()}")
    if arr.size != np.unique(arr).size:
        uniq, counts = np.unique(arr, return_counts=True)
        raise BitgraphValueError(f"{what} contains duplicates, e.g. {int(uniq[counts > 1][0])}")
    return arr
