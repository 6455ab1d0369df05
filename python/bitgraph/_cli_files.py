"""Files the ``bitgraph`` command line reads and writes: vector matrices (``.npy``,
``.fvecs``) in, index and result files out.

Every problem with a file becomes a :class:`click.BadParameter` naming the file, what was
expected and what was found, so the command line prints one line instead of a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

NPY_MAGIC = b"\x93NUMPY"
# rows checked for NaN / infinity at a time (bounded memory on memory-mapped files)
_FINITE_CHUNK = 65_536
# an .fvecs dimension field above this is taken for a file that is not .fvecs
_MAX_FVECS_DIM = 1 << 20
_F32_MAX = float(np.finfo(np.float32).max)


def _bad(message: str, hint: str | None) -> click.BadParameter:
    return click.BadParameter(message, param_hint=f"'{hint}'" if hint else None)


def _os_reason(e: OSError) -> str:
    return e.strerror or str(e)


# --------------------------------------------------------------------------- reading

def read_vectors(path: str | os.PathLike[str], hint: str | None = None) -> np.ndarray:
    """Reads a 2-D matrix of real numbers from ``.npy`` or ``.fvecs`` (per row: an int32
    dimension, then that many float32 values, little-endian).

    The matrix is memory-mapped where the format allows. ``hint`` names the command-line
    argument in error messages (e.g. ``"VECTORS"``).

    Raises:
        click.BadParameter: the file cannot be read, is not of the format its suffix says,
            or does not hold a non-empty 2-D matrix of finite float / integer values.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = _read_npy(p, hint)
        elif suffix == ".fvecs":
            arr = _read_fvecs(p, hint)
        else:
            raise _bad(f"{p}: expected a .npy or .fvecs file, got suffix {p.suffix!r}", hint)
    except OSError as e:
        raise _bad(f"cannot read {p}: {_os_reason(e)}", hint) from e
    check_matrix(arr, p, hint)
    return arr


def _read_npy(p: Path, hint: str | None) -> np.ndarray:
    """The array of a ``.npy`` file, memory-mapped, after checking its header: the magic
    bytes, a numeric dtype and a data size the file really holds."""
    fmt = np.lib.format
    with open(p, "rb") as f:
        head = f.read(len(NPY_MAGIC))
        if head != NPY_MAGIC:
            raise _bad(f"not a .npy file: {p} (a .npy file starts with the bytes "
                       f"{NPY_MAGIC!r}, this one with {head!r})", hint)
        f.seek(0)
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, _, dtype = fmt.read_array_header_2_0(f)
        except (ValueError, SyntaxError, TypeError) as e:
            raise _bad(f"not a valid .npy file: {p} (unreadable header: {e})", hint) from e
        offset = f.tell()
    check_dtype(dtype, p, hint)
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = p.stat().st_size
    if size < need:
        raise _bad(f"truncated .npy file: {p} (its header describes a {_shape(shape)} "
                   f"{dtype} array, {need:,} bytes with the header; the file has {size:,})",
                   hint)
    if 0 in shape:            # numpy cannot map an empty array; check_matrix reports it
        return np.empty(shape, dtype)
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as e:   # the header was fine; keep numpy's reason, drop pickle advice
        raise _bad(f"not a readable .npy file: {p} ({e})", hint) from e


def _read_fvecs(p: Path, hint: str | None) -> np.ndarray:
    """The float32 matrix of an ``.fvecs`` file, after checking that every row has the same
    dimension field and the file is a whole number of rows."""
    size = p.stat().st_size
    if size == 0:
        raise _bad(f"empty .fvecs file: {p} (0 bytes; expected at least one row)", hint)
    if size % 4:
        raise _bad(f"not an .fvecs file: {p} ({size:,} bytes is not a whole number of "
                   f"4-byte values)", hint)
    raw = np.memmap(p, dtype="<i4", mode="r")
    dim = int(raw[0])
    if not 0 < dim <= _MAX_FVECS_DIM:
        raise _bad(f"not an .fvecs file: {p} (the first row's dimension field is {dim}; "
                   f"expected an int32 in 1..{_MAX_FVECS_DIM:,})", hint)
    if raw.size % (dim + 1):
        raise _bad(f"not an .fvecs file: {p} ({size:,} bytes is not a whole number of rows "
                   f"of 4 + 4 x {dim} bytes; dimension {dim} read from the first row)", hint)
    rows = raw.reshape(-1, dim + 1)
    wrong = np.flatnonzero(rows[:, 0] != dim)
    if wrong.size:
        i = int(wrong[0])
        raise _bad(f"not an .fvecs file: {p} (row {i} has dimension field {int(rows[i, 0])}, "
                   f"row 0 has {dim}; {wrong.size:,} of {len(rows):,} rows differ)", hint)
    return rows[:, 1:].view("<f4")


# --------------------------------------------------------------------------- checks

def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(str(s) for s in shape) if shape else "0-d"


def check_dtype(dtype: np.dtype, p: Path, hint: str | None = None) -> None:
    """Raises BadParameter unless ``dtype`` holds real numbers (float or integer)."""
    if dtype.hasobject:
        raise _bad(f"{p} holds Python objects (dtype {dtype}), not numbers; expected a float "
                   f"or integer matrix, e.g. np.save(path, np.asarray(x, dtype=np.float32))",
                   hint)
    if dtype.kind not in "fiu":
        raise _bad(f"{p} holds {dtype} values; expected a float or integer matrix", hint)


def check_matrix(arr: np.ndarray, p: Path, hint: str | None = None) -> None:
    """Raises BadParameter unless ``arr`` is a non-empty 2-D matrix of finite real numbers
    that fit float32 (what every index stores or converts to)."""
    check_dtype(arr.dtype, p, hint)
    if arr.ndim != 2:
        extra = (f"; a single vector? save it as shape (1, {arr.shape[0]})"
                 if arr.ndim == 1 else "")
        raise _bad(f"{p}: expected a 2-D matrix (rows x dimension), got a {arr.ndim}-D "
                   f"array of shape {arr.shape}{extra}", hint)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise _bad(f"{p}: the matrix is empty (shape {arr.shape}); expected at least one "
                   f"row of at least one value", hint)
    if arr.dtype.kind != "f":
        return
    for start in range(0, arr.shape[0], _FINITE_CHUNK):
        chunk = np.asarray(arr[start:start + _FINITE_CHUNK])
        with np.errstate(over="ignore"):
            finite = np.isfinite(chunk.astype(np.float32, copy=False)).all(axis=1)
        if finite.all():
            continue
        i = int(np.flatnonzero(~finite)[0])
        row = chunk[i]
        if np.isfinite(row).all():
            raise _bad(f"{p}: row {start + i} has a value beyond the float32 range "
                       f"(|x| > {_F32_MAX:.3g}); expected values that fit float32", hint)
        raise _bad(f"{p}: row {start + i} holds NaN or infinity; expected finite values",
                   hint)


# --------------------------------------------------------------------------- writing

def check_output_path(path: str | os.PathLike[str], hint: str, *, force: bool = True,
                      force_flag: str = "--force") -> Path:
    """Checks, before any work is done, that ``path`` can be written: its directory exists,
    is a directory and is writable, ``path`` is not a directory, and (unless ``force``) no
    file is there yet. Returns ``path`` as a Path.

    Raises:
        click.BadParameter: naming ``hint`` (the argument or option) and the reason.
    """
    p = Path(path)
    parent = p.parent
    if not parent.exists():
        raise _bad(f"cannot write {p}: directory {parent} does not exist", hint)
    if not parent.is_dir():
        raise _bad(f"cannot write {p}: {parent} is not a directory", hint)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _bad(f"cannot write {p}: directory {parent} is not writable", hint)
    if p.is_dir():
        raise _bad(f"cannot write {p}: it is a directory", hint)
    if p.exists() and not force:
        raise _bad(f"{p} already exists; pass {force_flag} to overwrite it", hint)
    return p
