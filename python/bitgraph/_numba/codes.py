"""Binary-code distances for the Numba backend (docs/backend-contract.md, "Binary codes").

Code rows live in the same ``(n, row_bytes) uint8`` arrays as float rows and are read through
their float32 view: each float32 lane is 32 bits of the code, reinterpreted (never converted)
before XOR + popcount. The plane count and the distance kind travel in the metric code, so the
graph and scan kernels need no extra argument: ``metric = CODE_METRIC_BASE + 4 * planes +
kind`` (0 SDC, 1 Hamming, 2 asymmetric). A row with an odd number of lanes carries one more lane
after the code: its offset (uint32), added for both rows to the code distance ("Code offsets").

Asymmetric queries are wider than the rows: ``QUERY_BITS`` bit planes per code plane (the
native ``kAsymmetricQueryBits``), then the offset lane. A stored row passed as the query (graph
building) is the sharpest such query, every query plane equal to the code plane: (2^B - 1) x
the plane-wise Hamming distance, as the native ``CodeStore::as_query``.
"""
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from .bits import f32_as_u32 as _bits

CODE_METRIC_BASE = 16
CODE_DISTANCES = ("sdc", "hamming", "asymmetric")
QUERY_BITS = 4


def code_metric(distance, planes):
    """Metric code of a binary distance ("sdc" | "hamming" | "asymmetric") over ``planes``
    bit planes."""
    if distance not in CODE_DISTANCES:
        raise ValueError(f"binary distance must be 'sdc', 'hamming' or 'asymmetric', got "
                         f"{distance!r}")
    return CODE_METRIC_BASE + 4 * int(planes) + CODE_DISTANCES.index(distance)


def query_lanes(row_lanes, metric):
    """Lanes of a query row for a core whose rows have ``row_lanes`` lanes."""
    if metric < CODE_METRIC_BASE or (metric - CODE_METRIC_BASE) & 3 != 2:
        return row_lanes
    offsets = row_lanes & 1
    return (row_lanes - offsets) * QUERY_BITS + offsets


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
    """SDC, Hamming or asymmetric distance between query code ``q`` (float32 view) and stored
    code row ``slot`` of ``x`` (float32 view, ``dim`` lanes), as an exact float32 integer."""
    m = metric - CODE_METRIC_BASE
    planes = m >> 2
    kind = m & 3
    has_offset = dim & 1
    if has_offset:  # the last lane is the row's offset
        dim -= 1
    offsets = np.int64(0)
    if kind == 2 and q.shape[0] != dim + has_offset:  # an asymmetric query row
        if has_offset:
            offsets = np.int64(_bits(q[dim * QUERY_BITS])) + np.int64(_bits(x[slot, dim]))
        per_plane = dim // planes
        total = np.int64(0)
        for t in range(planes):
            for i in range(QUERY_BITS):
                c = np.int64(_popcount_xor(q, x, slot, (t * QUERY_BITS + i) * per_plane,
                                           t * per_plane, per_plane))
                total += c << (QUERY_BITS - 1 - i)
        return np.float32(total + offsets)
    if has_offset:
        offsets = np.int64(_bits(q[dim])) + np.int64(_bits(x[slot, dim]))
    if kind == 2:  # a stored row as the query
        return np.float32(np.int64(_popcount_xor(q, x, slot, 0, 0, dim))
                          * ((1 << QUERY_BITS) - 1) + offsets)
    if kind == 1:
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
    if distance not in CODE_DISTANCES:
        raise ValueError("distance must be 'sdc', 'hamming' or 'asymmetric'")
    bits = QUERY_BITS if distance == "asymmetric" else 1
    rb = query.shape[0] // bits
    if not (1 <= planes <= 8) or rb == 0 or rb % (8 * planes) or rb * bits != query.shape[0]:
        raise ValueError("a code row must hold 1 to 8 planes of whole uint64 words")
    if codes.ndim != 2 or codes.shape[1] != rb:
        raise ValueError(f"codes must be a 2-d array with {rb} columns")
    words = rb // (8 * planes)
    largest = (64 * words * planes * (2 ** QUERY_BITS - 1) if bits > 1
               else 64 * words * (2 ** planes - 1) ** 2)
    if largest >= 2 ** 24:
        raise ValueError("binary code too long for exact float32 distances")
    metric = code_metric(distance, planes)
    out = np.empty(codes.shape[0], dtype=np.float32)
    _range(query.view(np.float32), codes.view(np.float32), rb // 4, metric, out)
    return out


@njit(cache=True, nogil=True)
def _range(q, x, dim, metric, out):
    for r in range(out.shape[0]):
        out[r] = code_distance(q, x, r, dim, metric)
