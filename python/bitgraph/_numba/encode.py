"""Numba kernel of the recurrent binary encoder (docs/backend-contract.md, "Binary codes").

``binary_encode`` turns float rows into P bit planes of m bits, each plane padded to
W = ceil(m / 64) little-endian uint64 words; a row is P * W * 8 bytes. Set bit = +1.
"""
import numpy as np
from numba import njit, prange

from .parallel import clamp_threads, run_parallel


@njit(cache=True, nogil=True, parallel=True, fastmath=False)
def _encode_kernel(x, normalize, mean, proj, phi, phi_bias, psi, psi_scale, psi_bias, out):
    n, d = x.shape
    r_dim = proj.shape[1]
    planes = phi_bias.shape[0]
    m = phi_bias.shape[1]
    words = (m + 63) // 64
    has_phi = phi.shape[0] > 0
    has_psi = psi.shape[0] > 0
    for i in prange(n):
        f = np.empty(d, dtype=np.float32)
        norm = np.float32(0.0)
        for k in range(d):
            norm += x[i, k] * x[i, k]
        norm = np.float32(np.sqrt(norm))
        inv = np.float32(1.0)
        if normalize and norm > 0:
            inv = np.float32(1.0) / norm
        for k in range(d):
            v = x[i, k]
            if normalize:
                v = v * inv if norm > 0 else np.float32(0.0)
            f[k] = v - mean[k]
        r = np.zeros(r_dim, dtype=np.float32)
        for k in range(d):
            fk = f[k]
            if fk != 0:
                for c in range(r_dim):
                    r[c] += fk * proj[k, c]
        z = np.empty(m, dtype=np.float32)
        b = np.empty(m, dtype=np.float32)
        for t in range(planes):
            if has_phi:
                for j in range(m):
                    z[j] = phi_bias[t, j]
                for c in range(r_dim):
                    rc = r[c]
                    for j in range(m):
                        z[j] += rc * phi[t, c, j]
            else:
                for j in range(m):
                    z[j] = r[j] + phi_bias[t, j]
            base = t * words * 8
            for j in range(m):
                if z[j] > 0:
                    b[j] = 1.0
                    out[i, base + (j >> 3)] |= np.uint8(1 << (j & 7))
                else:
                    b[j] = -1.0
            if t < planes - 1:
                if has_psi:
                    for c in range(r_dim):
                        r[c] -= psi_bias[t, c]
                    for j in range(m):
                        bj = b[j]
                        for c in range(r_dim):
                            r[c] -= bj * psi[t, j, c]
                else:
                    s = psi_scale[t]
                    for c in range(r_dim):
                        r[c] -= s * b[c] + psi_bias[t, c]


def binary_encode(x, normalize, mean, proj, phi, phi_bias, psi, psi_scale, psi_bias, threads):
    """Encodes rows of ``x`` (n, d) into (n, P * W * 8) uint8 codes (see module doc)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    planes, m = phi_bias.shape
    words = (m + 63) // 64
    out = np.zeros((x.shape[0], planes * words * 8), dtype=np.uint8)
    if x.shape[0] == 0:
        return out
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    run_parallel(_encode_kernel, clamp_threads(threads, x.shape[0]), x, bool(normalize),
                 f32(mean), f32(proj), f32(phi), f32(phi_bias), f32(psi), f32(psi_scale),
                 f32(psi_bias), out)
    return out
