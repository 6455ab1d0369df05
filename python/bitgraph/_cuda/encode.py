"""RecurrentBinarizer encode on the device: (n, dim) float32 CuPy -> packed codes.

The steps and their rounding are csrc/binary/encode.cpp's (see csrc/cuda/encode.cu), so the
codes equal the CPU's wherever no pre-sign value z lies within float rounding of zero. The
binarizer's arrays (``mean, proj, phi, phi_bias, psi, psi_scale, psi_bias``: the contract's,
read-only once fitted) are copied to the device once and reused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import kernels

_THREADS = 256
_cache: dict[int, tuple[np.ndarray, Any]] = {}
_CACHE_MAX = 64


def _on_device(cp: Any, arr: np.ndarray) -> Any:
    """A device copy of a read-only parameter array, kept while the array lives."""
    hit = _cache.get(id(arr))
    if hit is not None and hit[0] is arr:
        return hit[1]
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    dev = cp.asarray(np.ascontiguousarray(arr, dtype=np.float32))
    _cache[id(arr)] = (arr, dev)
    return dev


def _grid(count: int) -> tuple[int]:
    return (max(1, -(-count // _THREADS)),)


def _gemm_add(cp: Any, a: Any, rows: int, lda: int, inner: int, b: Any, cols: int,
              c: Any) -> None:
    kernels.kernel("bg_encode_gemm_add")(
        _grid(rows * cols), (_THREADS,),
        (a, np.int32(rows), np.int64(lda), np.int32(inner), b, np.int32(cols), c))


def encode_words(cp: Any, x: Any, normalize: bool, params: dict[str, np.ndarray]) -> Any:
    """Codes of checked (n, dim) float32 device vectors as (n, planes * words) uint64."""
    x = cp.ascontiguousarray(x, dtype=cp.float32)
    n, d = (int(s) for s in x.shape)
    mean = _on_device(cp, params["mean"])
    proj = _on_device(cp, params["proj"])
    phi_bias = _on_device(cp, params["phi_bias"])
    psi_bias = _on_device(cp, params["psi_bias"])
    planes, m = (int(s) for s in params["phi_bias"].shape)
    r = int(params["proj"].shape[1])
    words = (m + 63) // 64
    learned_phi = params["phi"].size > 0
    learned_psi = params["psi"].size > 0
    phi = _on_device(cp, params["phi"]) if learned_phi else None
    psi = _on_device(cp, params["psi"]) if learned_psi else None
    codes = cp.zeros((n, planes * words), dtype=cp.uint64)
    if n == 0:
        return codes
    f = cp.empty((n, d), dtype=cp.float32)
    kernels.kernel("bg_encode_center")(_grid(n), (_THREADS,),
                                       (x, np.int32(n), np.int32(d), np.int32(bool(normalize)),
                                        mean, f))
    res = cp.zeros((n, r), dtype=cp.float32)
    _gemm_add(cp, f, n, d, d, proj, r, res)
    z = cp.empty((n, m), dtype=cp.float32)
    sgn = cp.empty((n, m), dtype=cp.float32)
    for t in range(planes):
        if learned_phi:
            z[...] = phi_bias[t][None, :]
            _gemm_add(cp, res, n, r, r, phi[t], m, z)
        else:
            kernels.kernel("bg_encode_add_bias")(
                _grid(n * m), (_THREADS,), (res, np.int32(n), np.int32(m), phi_bias[t], z))
        kernels.kernel("bg_encode_pack")(
            _grid(n * words), (_THREADS,),
            (z, np.int32(n), np.int32(m), np.int32(planes), np.int32(words), np.int32(t),
             codes, sgn))
        if t + 1 == planes:
            break
        if learned_psi:
            y = cp.zeros((n, r), dtype=cp.float32)
            _gemm_add(cp, sgn, n, m, m, psi[t], r, y)
            args = (res, np.int32(n), np.int32(r), y, np.float32(0.0), np.int32(0), psi_bias[t])
        else:
            a = np.float32(params["psi_scale"][t])
            args = (res, np.int32(n), np.int32(r), sgn, a, np.int32(1), psi_bias[t])
        kernels.kernel("bg_encode_residual")(_grid(n * r), (_THREADS,), args)
    return codes


def code_offsets(cp: Any, x: Any, normalize: bool, mean: np.ndarray, unit: float,
                 half: float) -> Any:
    """Device twin of :func:`bitgraph.binary.offsets.compute_offsets` for raw vectors x
    (normalised here when the binarizer normalises): (n,) uint32 in [0, 2 * half]. The dot
    product sums in another order than numpy's, so an offset may differ by one unit where
    the CPU's value sits on a rounding boundary."""
    x = cp.ascontiguousarray(x, dtype=cp.float32)
    if normalize:
        norm = cp.sqrt(cp.einsum("ij,ij->i", x, x))[:, None]
        x = cp.where(norm > 0, x / cp.where(norm > 0, norm, 1), 0).astype(cp.float32)
    mu = np.asarray(mean, dtype=np.float32)
    term = (x @ cp.asarray(mu)).astype(cp.float64) - float(mu @ mu)
    o = cp.rint(half - term / unit)
    return cp.clip(o, 0, 2 * half).astype(cp.uint32)
