"""Input conversion and checks shared by every index (cores trust what passes here)."""

from __future__ import annotations

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


def check_int(name: str, value: Any, minimum: int, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise BitgraphTypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise BitgraphValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def default_threads(threads: int | None) -> int:
    """threads=None means every core the process may use."""
    if threads is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    return int(check_int("threads", threads, 1))  # type: ignore[arg-type]


def as_matrix(x: Any, dim: int, what: str) -> np.ndarray:
    """Converts an array-like to a C-contiguous (n, dim) float32 matrix of finite values.

    A single vector of ``dim`` values is accepted as one row.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise BitgraphTypeError(f"{what} must be an array of real numbers: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise BitgraphTypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise BitgraphTypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        if arr.size == 0:
            raise BitgraphValueError(f"{what} is empty: expected at least one row of {dim} values")
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise BitgraphValueError(f"{what} must be a 2-d array (n, {dim}), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise BitgraphValueError(f"{what} is empty: expected at least one row of {dim} values")
    if arr.shape[1] != dim:
        raise BitgraphValueError(
            f"{what} has dimension {arr.shape[1]}, expected {dim} (shape {arr.shape})"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise BitgraphValueError(f"{what} contains NaN or infinity (first in row {bad})")
    return arr


def normalized(arr: np.ndarray, what: str) -> np.ndarray:
    """L2-normalised copy of a float32 matrix (for cosine); zero rows are an error.

    Each row is first divided by its largest magnitude, so the squared norm can neither
    overflow (values beyond ~1e19) nor underflow (values below ~1e-19) in float32.
    """
    peak = np.abs(arr).max(axis=1, keepdims=True)
    if (peak == 0).any():
        bad = int(np.flatnonzero(peak[:, 0] == 0)[0])
        raise BitgraphValueError(
            f"{what} row {bad} is all zeros: cosine similarity is undefined for it"
        )
    out = arr / peak
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out, dtype=np.float32)


def check_magnitude(arr: np.ndarray, what: str) -> None:
    """l2 / ip distances are float32: rows whose values could make a squared distance or a dot
    product overflow to infinity are refused rather than ranked wrongly. The limit (for any two
    rows |<a, b>| and |a - b|^2 stay below float32's maximum) is ~1e18 at dim 128."""
    dim = arr.shape[1]
    limit = float(np.sqrt(np.finfo(np.float32).max / (4.0 * dim)))
    peak = np.abs(arr).max(axis=1)
    if (peak > limit).any():
        row = int(np.flatnonzero(peak > limit)[0])
        raise BitgraphValueError(
            f"{what} row {row} holds a value of magnitude {float(peak[row]):g}: beyond "
            f"{limit:.3g} (for dimension {dim}) l2/ip distances overflow float32; rescale the "
            "vectors or use metric='cosine'"
        )


def check_float16_range(arr: np.ndarray, what: str) -> None:
    """Values a float16 row cannot hold (|x| beyond 65504) would be stored as infinity."""
    with np.errstate(over="ignore"):
        ok = np.isfinite(arr.astype(np.float16))
    if not ok.all():
        row = int(np.flatnonzero(~ok.all(axis=1))[0])
        value = float(arr[row][~ok[row]][0])
        raise BitgraphValueError(
            f"{what} row {row} holds {value:g}, beyond the float16 range (+-65504) of "
            "storage='float16': use storage='float32' (or 'int8', which scales each row)"
        )


def as_ids(ids: Any, n: int | None, what: str = "ids") -> np.ndarray:
    """Converts ids to a 1-d int64 array of non-negative, unique values (length n if given)."""
    arr = np.asarray(ids)
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
