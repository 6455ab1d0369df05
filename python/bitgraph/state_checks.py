"""Checks of the values a loaded index holds, beyond what its checksums prove.

A CRC-32 proves that the bytes are the ones written; it does not prove that they are values
bitgraph could have written (a file may be edited and its checksums recomputed, or written by
a buggy tool). Each check here refuses, with ValueError (the loaders turn it into
IndexFileError), a value that would make a search return non-finite or wrong distances: rows
that are not finite or exceed what ``add`` accepts, int8 rows whose scale or squared norm is
not the one their codes imply, binary codes with padding bits set or offsets out of range,
negative ids, tombstone flags other than 0/1, a ``next_id`` that would make automatic ids
replace stored items. Backend-neutral: both cores adopt the arrays after these checks.

The checks read every row once, in chunks (no copy of the whole index); ``bg.load(...,
verify=False)`` skips them together with the checksums.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ._validation import INT64_MAX, magnitude_limit

_CHUNK_BYTES = 32 << 20
# Stored cosine vectors are unit vectors (normalised at add); a float16 row keeps ~3 digits.
_UNIT_TOLERANCE = {"float32": 1e-3, "float16": 2e-2}


def _chunks(n: int, row_bytes: int) -> Iterator[slice]:
    step = max(1, _CHUNK_BYTES // max(1, row_bytes))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def check_float_rows(name: str, vectors: np.ndarray, metric: str, storage: str = "float32"
                     ) -> None:
    """Float vectors (n, dim) as ``add`` stores them: finite, within the l2/ip magnitude
    limit, and unit length for cosine."""
    n, dim = vectors.shape
    limit = magnitude_limit(dim)
    for part in _chunks(n, vectors.itemsize * dim):
        block = np.asarray(vectors[part], dtype=np.float32)
        if not np.isfinite(block).all():
            raise ValueError(f"{name} hold NaN or infinity")
        if metric == "cosine":
            norms = np.linalg.norm(block.astype(np.float64), axis=1)
            if (np.abs(norms - 1.0) > _UNIT_TOLERANCE.get(storage, 1e-3)).any():
                raise ValueError(f"{name} of a cosine index must be unit vectors")
        elif block.size and float(np.abs(block).max()) > limit:
            raise ValueError(f"{name} hold values beyond the l2/ip limit {limit:.3g}")


def check_storage_rows(rows: np.ndarray, storage: str, dim: int, metric: str) -> None:
    """The encoded rows of a float index (docs/backend-contract.md, "Storage rows")."""
    n = rows.shape[0]
    if storage == "float32":
        check_float_rows("stored vectors", rows.view("<f4").reshape(n, dim), metric, storage)
    elif storage == "float16":
        check_float_rows("stored vectors", rows.view("<f2").reshape(n, dim), metric, storage)
    elif storage == "int8":
        _check_int8_rows(rows, dim, metric)
    else:  # pragma: no cover - the loaders only pass known storages
        raise ValueError(f"unknown storage {storage!r}")


def _check_int8_rows(rows: np.ndarray, dim: int, metric: str) -> None:
    """int8 rows: dim codes in [-127, 127], then a positive finite scale and the squared norm
    of the decoded row (recomputed here: the l2 distance trusts it)."""
    limit = magnitude_limit(dim)
    for part in _chunks(rows.shape[0], rows.shape[1]):
        block = np.asarray(rows[part])
        codes = block[:, :dim].view(np.int8)
        tail = np.ascontiguousarray(block[:, dim:dim + 8]).view("<f4")
        scale, sqnorm = tail[:, 0], tail[:, 1]
        if not (np.isfinite(scale).all() and np.isfinite(sqnorm).all()):
            raise ValueError("int8 rows hold a NaN or infinite scale or norm")
        if (scale <= 0).any() or (codes == -128).any():
            raise ValueError("int8 rows hold a non-positive scale or the code -128")
        if metric != "cosine" and float(scale.max(initial=0.0)) * 127.0 > limit:
            raise ValueError(f"int8 rows hold values beyond the l2/ip limit {limit:.3g}")
        decoded = codes.astype(np.float64) * scale[:, None].astype(np.float64)
        expect = np.einsum("ij,ij->i", decoded, decoded)
        if (np.abs(expect - sqnorm) > 1e-3 * np.maximum(expect, 1e-30) + 1e-30).any():
            raise ValueError("int8 rows hold a squared norm that their codes do not have")


def check_code_rows(rows: np.ndarray, loops: int, code_dim: int, offsets: bool,
                    max_offset: int) -> None:
    """Binary code rows: padding bits of every plane clear, offsets within range."""
    words = (code_dim + 63) // 64
    code_bytes = loops * words * 8
    want = code_bytes + (4 if offsets else 0)
    if rows.ndim != 2 or rows.shape[1] != want:
        raise ValueError(f"code rows have {rows.shape[1:]} bytes, expected {want}")
    pad = words * 64 - code_dim
    for part in _chunks(rows.shape[0], want):
        block = np.asarray(rows[part])
        if pad:
            last = np.ascontiguousarray(block[:, :code_bytes]).view("<u8")
            last = last.reshape(-1, loops, words)[:, :, -1]
            keep = np.uint64((1 << (64 - pad)) - 1)
            if (last & ~keep).any():
                raise ValueError("binary codes have padding bits set")
        if offsets:
            off = np.ascontiguousarray(block[:, code_bytes:]).view("<u4")
            if off.size and int(off.max()) > max_offset:
                raise ValueError(f"code offsets beyond {max_offset}")


def check_ids(labels: np.ndarray, deleted: np.ndarray, next_id: int) -> None:
    """Ids are non-negative, tombstone flags 0 or 1, and ``next_id`` (the first automatic
    id) lies above every stored id, so automatic ids never replace an item."""
    if deleted.size and int(deleted.max()) > 1:
        raise ValueError("tombstone flags must be 0 or 1")
    if labels.size:
        if int(labels.min()) < 0:
            raise ValueError("ids must be >= 0")
        top = int(labels.max())
        if not top < next_id <= INT64_MAX + 1:
            raise ValueError(f"next_id {next_id} is not above the largest stored id {top}")
    elif not 0 <= next_id <= INT64_MAX + 1:
        raise ValueError(f"next_id {next_id} is out of range")


def check_finite_arrays(name: str, arrays: dict[str, np.ndarray]) -> None:
    """Every float array of ``arrays`` is finite (e.g. a binarizer's parameters)."""
    for key, arr in arrays.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{name} array {key!r} holds NaN or infinity")


def check_state_consistent(state: dict[str, Any], required: tuple[str, ...]) -> None:
    """Every section in ``required`` is present."""
    missing = [name for name in required if name not in state]
    if missing:
        raise ValueError(f"missing sections: {', '.join(missing)}")


def check_state_arrays(state: dict[str, Any], layout: dict[str, tuple[Any, int]]) -> None:
    """Every named section is present with its dtype and number of dimensions (the cores
    would cast or reshape silently)."""
    check_state_consistent(state, tuple(layout))
    for name, (dtype, ndim) in layout.items():
        arr = state[name]
        if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype) or arr.ndim != ndim:
            got = (f"{arr.dtype} with {arr.ndim} dimensions" if isinstance(arr, np.ndarray)
                   else type(arr).__name__)
            raise ValueError(f"section {name!r} is {got}, expected {np.dtype(dtype)} with "
                             f"{ndim} dimensions")
