"""Distance and codec kernels over storage rows (docs/backend-contract.md).

Every index keeps its vectors as a ``(capacity, row_bytes) uint8`` array whose bytes are the
file format shared with the native backend, so the kernels here read the rows in place:

- ``float32``: ``dim`` little-endian float32;
- ``float16``: ``dim`` IEEE half floats;
- ``int8``: ``dim`` int8 codes, then float32 ``scale``, then float32 ``sqnorm``.

Storage and metric are passed to the jitted code as small integers rather than as separate
functions: one compiled specialisation then serves every index, which keeps JIT time low; the
branch on them is perfectly predictable inside the hot loops.
"""
import numpy as np
from numba import njit

from .bits import f32_as_u32 as _f32_as_u32, u32_as_f32 as _u32_as_f32
from .codes import CODE_DISTANCES, QUERY_BITS, code_distance, code_metric

# Codes used by every jitted function of this package. BIN rows are binary codes: their
# metric code (codes.code_metric) carries the distance kind and the plane count.
F32, F16, I8, BIN = 0, 1, 2, 3
L2, IP = 0, 1

STORAGE_CODES = {"float32": F32, "float16": F16, "int8": I8, "binary": BIN}
METRIC_CODES = {"l2": L2, "ip": IP}

# 2**(e - 25) for a half exponent field e (subnormals, e == 0, use the e == 1 scale).
# A half value is then (implicit_bit*1024 + mantissa) * _HALF_SCALE[e]: both factors are exact
# in float32 and the product is a power-of-two scaling, hence exact, which makes the decode
# match numpy's float16 -> float32 cast bit for bit without any bit reinterpretation.
_HALF_SCALE = np.array([2.0 ** (max(e, 1) - 25) for e in range(32)], dtype=np.float32)


def storage_code(storage):
    """Integer code of a storage name ("float32", "float16", "int8")."""
    return STORAGE_CODES[storage]


def metric_code(metric, planes=1):
    """Integer code of a metric name ("l2", "ip"; "sdc", "hamming", "asymmetric" with binary
    storage)."""
    if metric in CODE_DISTANCES:
        return code_metric(metric, planes)
    return METRIC_CODES[metric]


def core_units(dim, storage, planes=1, offsets=False):
    """The row width in 4-byte lanes this backend works with: ``dim`` for float storage; for
    binary storage ``dim`` is the code's bits per plane (the contract), and a row is planes
    * ceil(dim / 64) uint64 words, plus one lane for the offset."""
    if storage != "binary":
        return int(dim)
    if int(dim) < 1:
        raise ValueError("dim must be >= 1")
    return int(planes) * ((int(dim) + 63) // 64) * 2 + (1 if offsets else 0)


def check_storage_metric(storage, metric, dim=None, planes=1):
    """Binary storage takes a code distance and whole uint64 words per plane, float storage a
    float metric (the native core's checks)."""
    if (storage == "binary") != (metric in CODE_DISTANCES):
        raise ValueError(f"metric {metric!r} does not apply to storage {storage!r} (binary "
                         "storage takes 'sdc', 'hamming' or 'asymmetric', float storage 'l2' "
                         "or 'ip')")
    if storage == "binary" and dim is not None:
        planes = int(planes)
        offsets = int(dim) % 2  # an odd lane count: one offset lane after the code
        units = int(dim) - offsets
        if not 1 <= planes <= 8 or units == 0 or units % (2 * planes):
            raise ValueError("binary storage needs 1 to 8 planes and a row of whole uint64 "
                             "words per plane, plus optionally one offset unit "
                             f"(dim {dim}, planes {planes})")
        words = units // (2 * planes)
        largest = (64 * words * planes * (2 ** QUERY_BITS - 1) if metric == "asymmetric"
                   else 64 * words * (2 ** planes - 1) ** 2)
        if largest >= 2 ** (23 if offsets else 24):
            raise ValueError(f"binary code too long for exact distances: {planes} planes of "
                             f"{64 * words} bits")


def row_bytes_for(dim, storage):
    """Bytes of one stored row for ``dim`` values in the given storage (name or code)."""
    code = STORAGE_CODES[storage] if isinstance(storage, str) else int(storage)
    if code == F32 or code == BIN:
        return 4 * dim
    if code == F16:
        return 2 * dim
    return dim + 8


# --------------------------------------------------------------------------------------------
# Scalar helpers
# --------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def half_to_float(h):
    """Exact float32 value of the IEEE half with bits ``h`` (an integer in [0, 65535])."""
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0x1F:
        v = np.float32(np.inf) if m == 0 else np.float32(np.nan)
    elif e == 0:
        v = np.float32(m) * _HALF_SCALE[0]
    else:
        v = np.float32(m | 0x400) * _HALF_SCALE[e]
    if h & 0x8000:
        v = -v
    return v


@njit(cache=True, nogil=True)
def sqnorm(q, dim):
    """Squared norm of a float32 query (sequential float32 sum)."""
    s = np.float32(0.0)
    for i in range(dim):
        s += q[i] * q[i]
    return s


# --------------------------------------------------------------------------------------------
# Typed views of the rows
# --------------------------------------------------------------------------------------------
# Jitted code receives the rows as a tuple ``(u8, f32, u16, i8)`` of 2-D views of the same
# memory. Indexing a pre-made typed view is several times cheaper than calling ``.view()`` on
# every row inside the hot loop. A view that does not apply to the storage (e.g. float32 over
# odd-sized int8 rows) is a 1x1 dummy so the tuple type, and therefore the compiled
# specialisation, is the same for every index.

def row_views(rows):
    """The ``(u8, f32, u16, i8)`` view tuple of a ``(n, row_bytes) uint8`` rows array."""
    rows = np.asarray(rows)
    ro = not rows.flags.writeable
    rb = rows.shape[1]

    def dummy(dtype):
        d = np.zeros((1, 1), dtype=dtype)
        if ro:  # keep one read-only specialisation rather than mixed flag combinations
            d.setflags(write=False)
        return d

    f32 = rows.view(np.float32) if rb % 4 == 0 else dummy(np.float32)
    u16 = rows.view(np.uint16) if rb % 2 == 0 else dummy(np.uint16)
    return (rows, f32, u16, rows.view(np.int8))


@njit(cache=True, nogil=True)
def load_f32(u8, slot, off):
    """Little-endian float32 at byte ``off`` of row ``slot`` of a uint8 2-D array (any
    alignment: int8 rows put it at an odd offset when dim is odd)."""
    u = (np.uint32(u8[slot, off]) | (np.uint32(u8[slot, off + 1]) << np.uint32(8))
         | (np.uint32(u8[slot, off + 2]) << np.uint32(16))
         | (np.uint32(u8[slot, off + 3]) << np.uint32(24)))
    return _u32_as_f32(u)


@njit(cache=True, nogil=True)
def store_f32(u8, slot, off, value):
    """Writes ``value`` as a little-endian float32 at byte ``off`` of row ``slot``."""
    u = _f32_as_u32(np.float32(value))
    for b in range(4):
        u8[slot, off + b] = np.uint8((u >> np.uint32(8 * b)) & np.uint32(0xFF))


# --------------------------------------------------------------------------------------------
# One query against one stored row
# --------------------------------------------------------------------------------------------

# The one-row kernels take the whole 2-D view and a slot rather than a row slice: slicing
# builds a new array object (with reference counting) per distance, which cost more than the
# arithmetic itself in graph walks.

@njit(cache=True, nogil=True)
def _f32_dist(q, x, slot, dim, metric):
    # Four partial sums give the CPU independent add chains (no fastmath needed) and follow
    # the native generic kernel's summation order.
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    i = 0
    if metric == L2:
        while i + 4 <= dim:
            d0 = q[i] - x[slot, i]
            d1 = q[i + 1] - x[slot, i + 1]
            d2 = q[i + 2] - x[slot, i + 2]
            d3 = q[i + 3] - x[slot, i + 3]
            s0 += d0 * d0
            s1 += d1 * d1
            s2 += d2 * d2
            s3 += d3 * d3
            i += 4
        while i < dim:
            d0 = q[i] - x[slot, i]
            s0 += d0 * d0
            i += 1
        return (s0 + s1) + (s2 + s3)
    while i + 4 <= dim:
        s0 += q[i] * x[slot, i]
        s1 += q[i + 1] * x[slot, i + 1]
        s2 += q[i + 2] * x[slot, i + 2]
        s3 += q[i + 3] * x[slot, i + 3]
        i += 4
    while i < dim:
        s0 += q[i] * x[slot, i]
        i += 1
    return -((s0 + s1) + (s2 + s3))


@njit(cache=True, nogil=True)
def _f16_dist(q, h, slot, dim, metric):
    s = np.float32(0.0)
    if metric == L2:
        for i in range(dim):
            d = q[i] - half_to_float(h[slot, i])
            s += d * d
        return s
    for i in range(dim):
        s += q[i] * half_to_float(h[slot, i])
    return -s


@njit(cache=True, nogil=True)
def _i8_dist(q, qq, c, u8, slot, dim, metric):
    # Asymmetric: float32 query against codes; the stored scale and sqnorm finish the job.
    dot = np.float32(0.0)
    for i in range(dim):
        dot += q[i] * np.float32(c[slot, i])
    ip = load_f32(u8, slot, dim) * dot
    if metric == IP:
        return -ip
    d = qq - np.float32(2.0) * ip + load_f32(u8, slot, dim + 4)
    return d if d > 0 else np.float32(0.0)


@njit(cache=True, nogil=True, inline="always")
def slot_distance(q, qq, views, slot, dim, storage, metric):
    """Distance from float32 query ``q`` (squared norm ``qq``) to stored row ``slot``.

    Inlined into the graph walks so the four-array ``views`` tuple is not passed per call.
    """
    if storage == F32:
        return _f32_dist(q, views[1], slot, dim, metric)
    if storage == F16:
        return _f16_dist(q, views[2], slot, dim, metric)
    if storage == BIN:
        return code_distance(q, views[1], slot, dim, metric)
    return _i8_dist(q, qq, views[3], views[0], slot, dim, metric)


@njit(cache=True, nogil=True, fastmath=True)
def _f32_dist_walk(q, x, slot, dim, metric):
    # fastmath lets LLVM reassociate the sum and vectorise it with the host's SIMD width;
    # graph walks only compare distances, so the last-bit difference from the ordered sum
    # of _f32_dist (kept for exact scans, which must match the native kernels) does not
    # matter there. Inputs are validated finite, so fastmath's no-NaN/inf assumption holds.
    s = np.float32(0.0)
    if metric == L2:
        for i in range(dim):
            d = q[i] - x[slot, i]
            s += d * d
        return s
    for i in range(dim):
        s += q[i] * x[slot, i]
    return -s


@njit(cache=True, nogil=True, inline="always")
def walk_distance(q, qq, views, slot, dim, storage, metric):
    """:func:`slot_distance` for graph walks (build and search): float32 rows use the
    vectorised, reassociated sum."""
    if storage == F32:
        return _f32_dist_walk(q, views[1], slot, dim, metric)
    return slot_distance(q, qq, views, slot, dim, storage, metric)


@njit(cache=True, nogil=True)
def decode_slot_into(views, slot, dim, storage, out):
    """Decodes stored row ``slot`` into the float32 buffer ``out`` (the first ``dim`` values)."""
    if storage == F32 or storage == BIN:  # BIN: a bit-exact copy of the code's lanes
        x = views[1]
        for i in range(dim):
            out[i] = x[slot, i]
    elif storage == F16:
        h = views[2]
        for i in range(dim):
            out[i] = half_to_float(h[slot, i])
    else:
        c = views[3]
        scale = load_f32(views[0], slot, dim)
        for i in range(dim):
            out[i] = np.float32(c[slot, i]) * scale


# --------------------------------------------------------------------------------------------
# Batch kernels behind the public functions
# --------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _encode_int8_into(vectors, out):
    n, dim = vectors.shape
    for r in range(n):
        x = vectors[r]
        amax = np.float32(0.0)
        for i in range(dim):
            a = abs(x[i])
            if a > amax:
                amax = a
        scale = amax / np.float32(127.0) if amax > 0 else np.float32(1.0)
        sq = np.float32(0.0)
        for i in range(dim):
            c = np.rint(x[i] / scale)  # rint: round half to even, like the native encoder
            c = min(np.float32(127.0), max(np.float32(-127.0), c))
            out[r, i] = np.uint8(np.int32(c) & 0xFF)  # two's complement byte of the code
            v = c * scale
            sq += v * v  # sequential float32 sum: the same bytes as the native encoder
        # byte-wise: the tail sits at an odd offset when dim is odd
        store_f32(out, r, dim, scale)
        store_f32(out, r, dim + 4, sq)


@njit(cache=True, nogil=True)
def _decode_into(views, dim, storage, out):
    for r in range(out.shape[0]):
        decode_slot_into(views, r, dim, storage, out[r])


@njit(cache=True, nogil=True)
def _distances_into(q, views, dim, storage, metric, out):
    qq = sqnorm(q, dim)
    for r in range(out.shape[0]):
        out[r] = slot_distance(q, qq, views, r, dim, storage, metric)


def encode_rows(vectors, storage):
    """Encodes float32 vectors ``(n, dim)`` into storage rows ``(n, row_bytes) uint8``."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if storage in ("float32", "binary"):
        return vectors.view(np.uint8).reshape(n, 4 * dim).copy()
    if storage == "float16":
        # numpy's cast rounds to nearest even, exactly like the native encoder.
        return vectors.astype("<f2").view(np.uint8).reshape(n, 2 * dim)
    if storage == "int8":
        out = np.zeros((n, dim + 8), dtype=np.uint8)
        if n:
            _encode_int8_into(vectors, out)
        return out
    raise ValueError(f"unknown storage {storage!r}")


def decode_rows(rows, dim, storage):
    """Decodes storage rows ``(n, row_bytes) uint8`` back to float32 ``(n, dim)``."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    out = np.empty((rows.shape[0], dim), dtype=np.float32)
    if rows.shape[0]:
        _decode_into(row_views(rows), dim, STORAGE_CODES[storage], out)
    return out


def distances(query, rows, dim, metric, storage):
    """Distances ``(n,) float32`` from one float32 query to every stored row."""
    query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    out = np.empty(rows.shape[0], dtype=np.float32)
    if rows.shape[0]:
        _distances_into(query, row_views(rows), dim, STORAGE_CODES[storage],
                        METRIC_CODES[metric], out)
    return out
