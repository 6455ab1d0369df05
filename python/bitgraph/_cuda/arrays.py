"""Arrays in and out of the device: numpy, CuPy, and anything with
``__cuda_array_interface__`` or a CUDA DLPack capsule (PyTorch, JAX, Numba), without copies.

A search answers in the kind of array it was given: numpy queries give numpy results (copied
back once at the end), device queries give CuPy arrays (or, for a PyTorch tensor, tensors
through DLPack), so a pipeline that stays on the GPU never touches the host.

Device-side query checks mirror :mod:`bitgraph._validation` (shape, dtype, finiteness,
magnitude, cosine normalisation): the common case is checked with two reductions on the
device; a batch that fails (or has rows whose squared norm is outside float32's comfortable
range) is copied to the host and checked there, so the error messages are the CPU's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_magnitude, magnitude_limit, normalized, rows_shape
from ..errors import BitgraphTypeError, BitgraphValueError

_DLPACK_CUDA = (2, 13)  # kDLCUDA, kDLCUDAManaged
_SQ_LOW, _SQ_HIGH = 1e-30, 1e30  # as _validation.normalized: the direct path's range


def is_device_array(x: Any) -> bool:
    """Whether ``x`` lives on a CUDA device (and so the answer should too)."""
    if isinstance(x, np.ndarray):
        return False
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dev = getattr(x, "__dlpack_device__", None)
    if dev is None:
        return False
    try:
        return int(dev()[0]) in _DLPACK_CUDA
    except Exception:  # noqa: BLE001 - a foreign object's method: any failure means no
        return False


def as_cupy(cp: Any, x: Any) -> Any:
    """``x`` as a CuPy array sharing its memory (no copy for device arrays)."""
    if isinstance(x, cp.ndarray):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return cp.asarray(x)
    return cp.from_dlpack(x)


def output_kind(x: Any) -> str:
    """"numpy", "cupy" or "torch": what the results of a call with input ``x`` are."""
    if not is_device_array(x):
        return "numpy"
    if type(x).__module__.split(".")[0] == "torch":
        return "torch"
    return "cupy"


def to_kind(arr: Any, kind: str) -> Any:
    """A device array ``arr`` as ``kind`` (see :func:`output_kind`)."""
    if kind == "numpy":
        return arr.get()
    if kind == "torch":
        import torch

        return torch.from_dlpack(arr)
    return arr


def device_queries(cp: Any, x: Any, dim: int, metric: str, what: str = "queries") -> Any:
    """Checked ``(nq, dim)`` C-contiguous float32 CuPy queries from a device array (cosine:
    L2-normalised). Raises the same BitgraphValueError / BitgraphTypeError as the CPU."""
    arr = as_cupy(cp, x)
    kind = arr.dtype.kind
    if kind == "c":
        raise BitgraphTypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    if kind not in "fiub":
        raise BitgraphTypeError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.reshape(rows_shape(tuple(arr.shape), dim, what))
    if kind == "f" and arr.dtype.itemsize > 4:
        peak = float(cp.abs(arr).max())
        if not np.isfinite(peak) or peak > float(np.finfo(np.float32).max):
            raise BitgraphValueError(f"{what} contains NaN or infinity or values beyond the "
                                     "float32 range (+-3.4e38)")
    arr = cp.ascontiguousarray(arr, dtype=cp.float32)
    lo, hi = (float(v) for v in cp.stack([arr.min(), arr.max()]).get())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        host = arr.get()
        bad = int(np.flatnonzero(~np.isfinite(host).all(axis=1))[0])
        raise BitgraphValueError(f"{what} contains NaN or infinity (first in row {bad})")
    if metric == "cosine":
        sq = cp.einsum("ij,ij->i", arr, arr)
        s_lo, s_hi = (float(v) for v in cp.stack([sq.min(), sq.max()]).get())
        if _SQ_LOW <= s_lo and s_hi <= _SQ_HIGH:
            return arr / cp.sqrt(sq)[:, None]
        return cp.asarray(normalized(arr.get(), what))  # zero rows raise, tiny/huge rescale
    if max(hi, -lo) > magnitude_limit(dim):
        check_magnitude(arr.get(), what)
    return arr
