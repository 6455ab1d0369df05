"""Lookup-table ("fast-scan") SDC for the Numba backend: same block layout and the same exact
integers as the native kernels (csrc/binary/fastscan.hpp, which documents the layout).

Per code dimension k the SDC contribution ``sum_{i,j} w_i w_j [q_ik != d_jk]`` splits over the
document planes j, so with the code's bits flattened dimension-major, plane-minor
(``g = k * planes + j``) every 4-bit group ("nibble") of a document costs one of 16 integers
fixed per query. Documents are stored 32 per block, nibble-position-major: position ``p`` of
block ``b`` is 16 bytes, byte ``i`` = nibble of document ``32b + i`` | nibble of ``32b + 16 + i``
<< 4. Positions are padded to a multiple of 4, padding documents are zero codes.

``sdc_reference`` is the popcount definition in plain numpy, for tests.
"""
import numpy as np
from numba import njit

BLOCK_DOCS = 32


def _check(planes, code_dim):
    planes, code_dim = int(planes), int(code_dim)
    # P = 5 would need table entries up to 31 * 31, past the native kernels' uint8 tables.
    if not 1 <= planes <= 4:
        raise ValueError(f"fast-scan SDC supports 1 to 4 planes, got {planes}")
    if code_dim < 1:
        raise ValueError("code_dim must be >= 1")
    return planes, code_dim


def code_row_bytes(planes, code_dim):
    """Bytes of one code row: ``planes * W * 8`` with ``W = ceil(code_dim / 64)``."""
    return int(planes) * ((int(code_dim) + 63) // 64) * 8


def fastscan_positions(planes, code_dim):
    """Nibble positions per document (``ceil(planes * code_dim / 4)``, padded to 4)."""
    nib = (int(planes) * int(code_dim) + 3) // 4
    return (nib + 3) // 4 * 4


def fastscan_block_bytes(planes, code_dim):
    """Bytes per 32-document block."""
    return 16 * fastscan_positions(planes, code_dim)


@njit(cache=True, nogil=True)
def _pack(codes, planes, code_dim, npos, out):
    n = codes.shape[0]
    plane_bytes = ((code_dim + 63) // 64) * 8
    nib = np.zeros(npos, dtype=np.uint8)
    for r in range(n):
        nib[:] = 0
        acc = 0
        nbits = 0
        p = 0
        for k in range(code_dim):
            val = 0
            for j in range(planes):
                val |= ((codes[r, j * plane_bytes + (k >> 3)] >> (k & 7)) & 1) << j
            acc |= val << nbits
            nbits += planes
            while nbits >= 4:
                nib[p] = acc & 15
                p += 1
                acc >>= 4
                nbits -= 4
        if nbits:
            nib[p] = acc & 15
        b = r // BLOCK_DOCS
        i = r % BLOCK_DOCS
        shift = 0 if i < 16 else 4
        for q in range(npos):
            out[b, 16 * q + (i & 15)] |= np.uint8(nib[q] << shift)


@njit(cache=True, nogil=True)
def _build_lut(query, planes, code_dim, npos):
    """Entry v of position p: sum over the nibble's bits t of the cost of bit t = v's bit t,
    where bit g = k * P + j costs w_j * Q_k (value 0) or w_j * (2^P - 1 - Q_k) (value 1) and
    Q_k = sum_i w_i q_ik is the query's integer at dimension k."""
    plane_bytes = ((code_dim + 63) // 64) * 8
    full = (1 << planes) - 1
    lut = np.zeros((npos, 16), dtype=np.uint32)
    c0 = np.zeros(4, dtype=np.int64)
    c1 = np.zeros(4, dtype=np.int64)
    for p in range(npos):
        for t in range(4):
            g = 4 * p + t
            k = g // planes
            j = g % planes
            if k >= code_dim:
                c0[t] = 0
                c1[t] = 0
                continue
            q = 0
            for i in range(planes):
                q |= ((query[i * plane_bytes + (k >> 3)] >> (k & 7)) & 1) << (planes - 1 - i)
            wj = 1 << (planes - 1 - j)
            c0[t] = wj * q
            c1[t] = wj * (full - q)
        for v in range(16):
            e = 0
            for t in range(4):
                e += c1[t] if (v >> t) & 1 else c0[t]
            lut[p, v] = e
    return lut


@njit(cache=True, nogil=True)
def _scan(blocks, n, lut, npos, out):
    acc = np.zeros(BLOCK_DOCS, dtype=np.uint32)
    nblocks = (n + BLOCK_DOCS - 1) // BLOCK_DOCS
    for b in range(nblocks):
        acc[:] = 0
        for p in range(npos):
            base = 16 * p
            for i in range(16):
                byte = blocks[b, base + i]
                acc[i] += lut[p, byte & 15]
                acc[i + 16] += lut[p, byte >> 4]
        first = b * BLOCK_DOCS
        for i in range(min(BLOCK_DOCS, n - first)):
            out[first + i] = acc[i]


def fastscan_pack(codes, planes, code_dim):
    """Packs code rows ``uint8 (n, row_bytes)`` into ``uint8 (ceil(n/32), block_bytes)``."""
    planes, code_dim = _check(planes, code_dim)
    rb = code_row_bytes(planes, code_dim)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2 or codes.shape[1] != rb:
        raise ValueError(f"codes must be a 2-d uint8 array with {rb} columns")
    n = codes.shape[0]
    npos = fastscan_positions(planes, code_dim)
    out = np.zeros(((n + BLOCK_DOCS - 1) // BLOCK_DOCS, 16 * npos), dtype=np.uint8)
    if n:
        _pack(codes, planes, code_dim, npos, out)
    return out


def _as_blocks(blocks, n, planes, code_dim):
    bb = fastscan_block_bytes(planes, code_dim)
    blocks = np.ascontiguousarray(blocks, dtype=np.uint8).reshape(-1)
    need = (n + BLOCK_DOCS - 1) // BLOCK_DOCS
    if blocks.size < need * bb:
        raise ValueError(f"blocks hold {blocks.size} bytes but {n} documents need {need * bb} "
                         "(fastscan_pack with the same planes and code_dim)")
    return blocks[: need * bb].reshape(need, bb)


def fastscan_sdc(blocks, n, query, planes, code_dim):
    """Exact SDC distances ``uint32 (n,)`` from one query code row to the first ``n`` packed
    documents."""
    planes, code_dim = _check(planes, code_dim)
    n = int(n)
    if n < 0:
        raise ValueError("n must be >= 0")
    rb = code_row_bytes(planes, code_dim)
    query = np.ascontiguousarray(query, dtype=np.uint8)
    if query.ndim != 1 or query.shape[0] != rb:
        raise ValueError(f"query must be one code row of {rb} bytes")
    blocks = _as_blocks(blocks, n, planes, code_dim)
    npos = fastscan_positions(planes, code_dim)
    out = np.zeros(n, dtype=np.uint32)
    if n:
        _scan(blocks, n, _build_lut(query, planes, code_dim, npos), npos, out)
    return out


def sdc_reference(query, codes, planes, code_dim):
    """The popcount definition ``sum_{i,j} w_i w_j popcount(q_i XOR d_j)``, ``w_t =
    2**(P-1-t)``, as ``int64 (n,)`` (numpy only)."""
    planes, code_dim = _check(planes, code_dim)
    w = (int(code_dim) + 63) // 64
    q = np.ascontiguousarray(query, dtype=np.uint8).view(np.uint64).reshape(planes, w)
    d = np.ascontiguousarray(codes, dtype=np.uint8).view(np.uint64).reshape(-1, planes, w)
    out = np.zeros(d.shape[0], dtype=np.int64)
    for i in range(planes):
        for j in range(planes):
            pc = np.bitwise_count(q[i][None, :] ^ d[:, j, :]).sum(axis=1, dtype=np.int64)
            out += pc << ((planes - 1 - i) + (planes - 1 - j))
    return out
