"""Binary-code distances for the Numba backend (docs/backend-contract.md, "Binary codes").

Code rows live in the same ``(n, row_bytes) uint8`` arrays as float rows and are read through
their float32 view: each float32 lane is 32 bits of the code, reinterpreted (never converted)
before XOR + popcount. The plane count and the distance kind travel in the metric code, so the
graph and scan kernels need no extra argument: ``metric = CODE_METRIC_BASE + 2 * planes +
(1 for Hamming, 0 for SDC)``. A row with an odd number of lanes carries one more lane after the
code: its offset (uint32), added for both rows to the code distance ("Code offsets").
"""
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from .bits import f32_as_u32 as _bits

CODE_METRIC_BASE = 16


def code_metric(distance, planes):
    """Metric code of a binary distance ("sdc" | "hamming") over ``planes`` bit planes."""
    if distance not in ("sdc", "hamming"):
        raise ValueError(f"binary distance must be 'sdc' or 'hamming', got {distance!r}")
    return CODE_METRIC_BASE + 2 * int(planes) + (1 if distance == "hamming" else 0)


@intrinsic
def _popcount(typingctx, x):
    """Population count of a uint32 (LLVM ctpop: one POPCNT where the CPU has it)."""
    sig = types.uint32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _popcount_xor(q, x, slot, q0, x0, n):
    s = np.uint32(0)
    for i in range(n):
        s += _popcount(_bits(q[q0 + i]) ^ _bits(x[slot, x0 + i]))
    return s


@njit(cache=True, nogil=True)
def code_distance(q, x, slot, dim, metric):
    """SDC or Hamming distance between query code ``q`` (float32 view, ``dim`` lanes) and
    stored code row ``slot`` of ``x`` (float32 view), as an exact float32 integer."""
    m = metric - CODE_METRIC_BASE
    planes = m >> 1
    offsets = np.int64(0)
    if dim & 1:  # the last lane is the row's offset
        dim -= 1
        offsets = np.int64(_bits(q[dim])) + np.int64(_bits(x[slot, dim]))
    if m & 1:
        return np.float32(np.int64(_popcount_xor(q, x, slot, 0, 0, dim)) + offsets)
    per_plane = dim // planes
    total = np.int64(0)
    top = 2 * (planes - 1)
    for i in range(planes):
        for j in range(planes):
            c = np.int64(_popcount_xor(q, x, slot, i * per_plane, j * per_plane, per_plane))
            total += c << (top - i - j)
    return np.float32(total + offsets)


def binary_distances(query, codes, planes, distance="sdc", level=""):
    """Distances from one query code to every code row (the native function's signature)."""
    query = np.ascontiguousarray(query, dtype=np.uint8).reshape(-1)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    planes = int(planes)
    rb = query.shape[0]
    if not (1 <= planes <= 8) or rb == 0 or rb % (8 * planes):
        raise ValueError("a code row must hold 1 to 8 planes of whole uint64 words")
    if codes.ndim != 2 or codes.shape[1] != rb:
        raise ValueError(f"codes must be a 2-d array with {rb} columns")
    words = rb // (8 * planes)
    if 64 * words * (2 ** planes - 1) ** 2 >= 2 ** 24:
        raise ValueError("binary code too long for exact float32 distances")
    metric = code_metric(distance, planes)
    out = np.empty(codes.shape[0], dtype=np.float32)
    _range(query.view(np.float32), codes.view(np.float32), rb // 4, metric, out)
    return out


@njit(cache=True, nogil=True)
def _range(q, x, dim, metric, out):
    for r in range(out.shape[0]):
        out[r] = code_distance(q, x, r, dim, metric)
