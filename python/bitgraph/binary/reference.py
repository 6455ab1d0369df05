"""Numpy reference of the recurrent binary codes: encoding, bit packing and code distances.

These follow docs/backend-contract.md ("Binary codes") literally and are what the backend
kernels are tested against. ``sdc_matrix`` / ``hamming_matrix`` are exact (integers) and fast
for whole query sets because they go through a float64 matrix product of the +-1 planes:
``popcount(a XOR b) = (m - <a, b>) / 2`` for +-1 vectors of m real bits.

The asymmetric distance compares a finer query with the codes: per code plane t the query
holds a ``QUERY_BITS``-bit level u_t per bit (``query_levels``, packed as that many bit planes,
most significant first, by ``pack_query_levels``), and the distance is
``sum_t sum_i 2^(B-1-i) popcount(Q_{t,i} XOR D_t) = sum_{t,k} (d_tk ? 2^B-1-u_tk : u_tk)``,
which falls as ``sum_t <u_t - (2^B - 1)/2, 2 d_t - 1>`` rises.
"""
from __future__ import annotations

import numpy as np


def words_per_plane(code_dim: int) -> int:
    return (int(code_dim) + 63) // 64


def plane_weights(planes: int) -> np.ndarray:
    """w_t = 2 ** (P - 1 - t) (integers)."""
    return (2 ** np.arange(planes - 1, -1, -1)).astype(np.int64)


def pack_planes(bits: np.ndarray) -> np.ndarray:
    """(n, P, m) bool -> (n, P * W * 8) uint8 codes (little-endian bits, zero padding)."""
    n, planes, m = bits.shape
    wb = words_per_plane(m) * 8
    packed = np.packbits(bits.astype(bool), axis=-1, bitorder="little")  # (n, P, ceil(m/8))
    out = np.zeros((n, planes, wb), dtype=np.uint8)
    out[:, :, : packed.shape[2]] = packed
    return out.reshape(n, planes * wb)


def unpack_planes(codes: np.ndarray, planes: int, code_dim: int) -> np.ndarray:
    """(n, P * W * 8) uint8 -> (n, P, m) bool (the inverse of :func:`pack_planes`)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n = codes.shape[0]
    wb = words_per_plane(code_dim) * 8
    bits = np.unpackbits(codes.reshape(n, planes, wb), axis=-1, bitorder="little")
    return bits[:, :, :code_dim].astype(bool)


QUERY_BITS = 4  # the native kAsymmetricQueryBits


def query_levels(v: np.ndarray, step: float, bits: int = QUERY_BITS) -> np.ndarray:
    """(n, P, m) float query values -> uint8 levels u in [0, 2^bits): the grid of centres
    (u + 1/2 - 2^(bits-1)) * step, symmetric around 0 (no level at 0, none wasted), clipped."""
    half = 2 ** (bits - 1)
    u = np.floor(np.asarray(v, dtype=np.float64) / step + half)
    return np.clip(u, 0, 2 ** bits - 1).astype(np.uint8)


def pack_query_levels(u: np.ndarray, bits: int = QUERY_BITS) -> np.ndarray:
    """(n, P, m) uint8 levels -> (n, P * bits * W * 8) uint8 asymmetric query codes: for each
    code plane t, the bit planes of u_t, most significant first."""
    n, planes, m = u.shape
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint8)
    b = (u[:, :, None, :] >> shifts[None, None, :, None]) & 1        # (n, P, B, m)
    return pack_planes(b.reshape(n, planes * bits, m).astype(bool))


def unpack_query_levels(q: np.ndarray, planes: int, code_dim: int,
                        bits: int = QUERY_BITS) -> np.ndarray:
    """The inverse of :func:`pack_query_levels`: (n, P, m) int64 levels."""
    b = unpack_planes(q, planes * bits, code_dim).reshape(len(q), planes, bits, code_dim)
    w = (2 ** np.arange(bits - 1, -1, -1)).astype(np.int64)
    return np.einsum("ntbm,b->ntm", b.astype(np.int64), w)


def query_values(f, mean, proj, psi, psi_scale) -> np.ndarray:
    """(n, d) (normalised) vectors -> (n, P, m) float32 per-plane query values v_t with
    ``sum_t <v_t, 2 d_t - 1> = <(f - mean) @ proj, decode(code) - sum_t psi_bias_t>``: what the
    asymmetric distance scores a query's levels by (v_t = psi_t r, or psi_scale_t * r)."""
    r = (np.asarray(f, dtype=np.float32) - mean) @ proj
    if np.asarray(psi).size:
        return np.einsum("tmr,nr->ntm", psi, r).astype(np.float32)
    return (np.asarray(psi_scale, np.float32)[None, :, None] * r[:, None, :]).astype(np.float32)


def asymmetric_matrix(q_rows, d_codes, planes: int, code_dim: int,
                      bits: int = QUERY_BITS) -> np.ndarray:
    """Exact asymmetric distances (nq, nd) int64 of query codes against code rows."""
    u = unpack_query_levels(np.asarray(q_rows, np.uint8), planes, code_dim, bits)
    d = unpack_planes(d_codes, planes, code_dim).astype(np.float64)   # (nd, P, m) 0/1
    top = 2 ** bits - 1
    base = u.reshape(len(u), -1).sum(1).astype(np.float64)            # all d = 0
    gain = (top - 2 * u).reshape(len(u), -1).astype(np.float64)       # d = 1 adds this
    return np.rint(base[:, None] + gain @ d.reshape(len(d), -1).T).astype(np.int64)


def identity_map() -> np.ndarray:
    """How ``phi`` / ``psi`` hold the identity (no learned map): an empty (0, 0, 0) array."""
    return np.zeros((0, 0, 0), dtype=np.float32)


def encode_bits(x, normalize, mean, proj, phi, phi_bias, psi, psi_scale, psi_bias):
    """The contract's encoder in numpy: (n, d) -> ((n, P, m) bool bits, (n, P, m) float z)."""
    x = np.asarray(x, dtype=np.float32)
    if normalize:
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        f = np.where(norm > 0, x / np.where(norm > 0, norm, 1), 0).astype(np.float32)
    else:
        f = x
    r = (f - mean) @ proj
    planes, m = phi_bias.shape
    bits = np.zeros((x.shape[0], planes, m), dtype=bool)
    zs = np.zeros((x.shape[0], planes, m), dtype=np.float32)
    for t in range(planes):
        z = (r @ phi[t] if phi.size else r) + phi_bias[t]
        bits[:, t] = z > 0
        zs[:, t] = z
        if t < planes - 1:
            b = 2.0 * bits[:, t].astype(np.float32) - 1.0
            r = r - ((b @ psi[t] if psi.size else psi_scale[t] * b) + psi_bias[t])
    return bits, zs


def encode(x, normalize, mean, proj, phi, phi_bias, psi, psi_scale, psi_bias):
    """The contract's encoder in numpy: (n, d) float -> (n, P * W * 8) uint8 codes."""
    bits, _ = encode_bits(x, normalize, mean, proj, phi, phi_bias, psi, psi_scale, psi_bias)
    return pack_planes(bits)


def _signs(codes: np.ndarray, planes: int, code_dim: int) -> np.ndarray:
    return unpack_planes(codes, planes, code_dim).astype(np.float64) * 2.0 - 1.0


def sdc_matrix(q_codes, d_codes, planes: int, code_dim: int) -> np.ndarray:
    """Exact SDC distances (nq, nd) int64: sum_{i,j} w_i w_j popcount(q_i XOR d_j)."""
    w = plane_weights(planes).astype(np.float64)
    bq = np.einsum("npm,p->nm", _signs(q_codes, planes, code_dim), w)
    bd = np.einsum("npm,p->nm", _signs(d_codes, planes, code_dim), w)
    s = float(w.sum())
    return np.rint((s * s * code_dim - bq @ bd.T) / 2.0).astype(np.int64)


def hamming_matrix(q_codes, d_codes, planes: int, code_dim: int) -> np.ndarray:
    """Exact Hamming distances (nq, nd) int64: sum_t popcount(q_t XOR d_t)."""
    bq = _signs(q_codes, planes, code_dim).reshape(len(q_codes), -1)
    bd = _signs(d_codes, planes, code_dim).reshape(len(d_codes), -1)
    return np.rint((planes * code_dim - bq @ bd.T) / 2.0).astype(np.int64)


def _popcount_u8(a: np.ndarray) -> np.ndarray:
    return np.unpackbits(a[..., None], axis=-1).sum(axis=-1, dtype=np.int64)


def binary_distances(query, codes, planes: int, kind: str = "sdc") -> np.ndarray:
    """The contract's ``binary_distances`` done literally with XOR + popcount (slow, small n)."""
    codes = np.asarray(codes, dtype=np.uint8)
    query = np.asarray(query, dtype=np.uint8).reshape(-1)
    pb = codes.shape[1] // planes
    if kind == "asymmetric":
        c = codes.reshape(len(codes), planes, pb)
        q = query.reshape(planes, QUERY_BITS, pb)
        out = np.zeros(len(codes), dtype=np.int64)
        for t in range(planes):
            for i in range(QUERY_BITS):
                pc = _popcount_u8(np.bitwise_xor(q[t, i][None, :], c[:, t])).sum(
                    axis=1, dtype=np.int64)
                out += pc << (QUERY_BITS - 1 - i)
        return out
    q = query.reshape(planes, pb)
    c = codes.reshape(len(codes), planes, pb)
    w = plane_weights(planes)
    out = np.zeros(len(codes), dtype=np.int64)
    for i in range(planes):
        for j in range(planes):
            if kind == "hamming" and i != j:
                continue
            pc = _popcount_u8(np.bitwise_xor(q[i][None, :], c[:, j])).sum(axis=1, dtype=np.int64)
            out += pc if kind == "hamming" else w[i] * w[j] * pc
    return out


def _weighted(codes, planes, code_dim, kind):
    s = unpack_planes(codes, planes, code_dim).astype(np.float32) * 2.0 - 1.0
    if kind == "hamming":
        return s.reshape(len(codes), -1)
    return np.einsum("npm,p->nm", s, plane_weights(planes).astype(np.float32))


def search(q_codes, d_codes, planes: int, code_dim: int, k: int, kind: str = "sdc",
           block: int = 256, d_block: int = 50_000) -> np.ndarray:
    """Exact top-k ids by SDC or Hamming distance (ties by id) over all codes.

    Ranks by the +-1 code inner product, which orders exactly as the integer distance
    (float32 sums of small integers are exact here)."""
    k = min(k, len(d_codes))
    scores = []
    bq = _weighted(q_codes, planes, code_dim, kind)
    best_s = np.full((len(q_codes), 0), 0, np.float32)
    best_i = np.full((len(q_codes), 0), 0, np.int64)
    for s0 in range(0, len(d_codes), d_block):
        bd = _weighted(d_codes[s0:s0 + d_block], planes, code_dim, kind)
        sc = bq @ bd.T
        kk = min(k, sc.shape[1])
        part = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        best_s = np.concatenate([best_s, np.take_along_axis(sc, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + s0], axis=1)
        if best_s.shape[1] > k:
            part = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
            best_s = np.take_along_axis(best_s, part, 1)
            best_i = np.take_along_axis(best_i, part, 1)
    del scores, block
    order = np.lexsort((best_i, -best_s), axis=1)
    return np.take_along_axis(best_i, order, 1)
