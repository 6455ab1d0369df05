"""Training for IVFIndex: the coarse partition (k-means) and the 4-bit residual codebooks.

Numpy only (matrix products through numpy's BLAS), shared by every backend, so a partition
trained once searches the same on the native and the Numba backend.

Why residual product quantization with 16 centroids per sub-space: a 4-bit code is one nibble,
which the fast-scan kernels score 32 rows per shuffle instruction, and for inner product (and
cosine) the residual's table does not depend on the list (<q, c + r> = <q, c> + <q, r>), so one
table per query serves every probed list.
"""

from __future__ import annotations

import numpy as np

PQ_CENTROIDS = 16  # 4-bit codes: one nibble per sub-space
_CHUNK = 16384  # rows per matrix product in assignment (bounds the temporary to ~128 MiB)


def assign(x: np.ndarray, centroids: np.ndarray, metric: str) -> np.ndarray:
    """int32 ``(n,)``: the nearest centroid of each row (largest inner product for "ip" and
    "cosine", smallest squared L2 distance for "l2")."""
    out = np.empty(x.shape[0], dtype=np.int32)
    half_norms = 0.5 * np.einsum("ij,ij->i", centroids, centroids) if metric == "l2" else None
    for s in range(0, x.shape[0], _CHUNK):
        scores = x[s:s + _CHUNK] @ centroids.T
        if half_norms is not None:
            scores -= half_norms  # argmax of <x,c> - |c|^2/2 = argmin of |x - c|^2
        out[s:s + _CHUNK] = np.argmax(scores, axis=1)
    return out


def kmeans(x: np.ndarray, k: int, metric: str, *, iterations: int = 12,
           seed: int = 0) -> np.ndarray:
    """float32 ``(k, dim)`` centroids of ``x`` (Lloyd's iterations from a random sample).

    For "cosine" and "ip" the centroids are normalised after each step (spherical k-means:
    the partition an inner-product search probes). An empty cluster is re-seeded with a row of
    the largest cluster, so every centroid owns rows.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= n rows, got k={k}, n={n}")
    rng = np.random.default_rng(seed)
    centroids = x[rng.choice(n, k, replace=False)].copy()
    spherical = metric != "l2"
    for _ in range(iterations):
        labels = assign(x, centroids, metric)
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        sums = np.zeros((k, x.shape[1]), dtype=np.float64)
        np.add.at(sums, labels, x)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            # Re-seed from the rows of the largest clusters (split them).
            big = np.argsort(counts)[::-1][: empty.size]
            for e, b in zip(empty, big):
                rows = np.flatnonzero(labels == b)
                pick = rows[rng.integers(rows.size)]
                sums[e] = x[pick]
                counts[e] = 1.0
        centroids = (sums / counts[:, None]).astype(np.float32)
        if spherical:
            norms = np.linalg.norm(centroids, axis=1, keepdims=True)
            centroids /= np.maximum(norms, 1e-30)
    return np.ascontiguousarray(centroids)


def subspaces(dim: int, dims_per_code: int) -> int:
    """Number of 4-bit sub-spaces for ``dim`` values, ``dims_per_code`` values each (the last
    one zero-padded)."""
    return -(-dim // dims_per_code)


def _split(r: np.ndarray, m: int, dsub: int) -> np.ndarray:
    """``(n, m, dsub)``: rows cut into sub-vectors, zero-padded to m * dsub values."""
    n, dim = r.shape
    if m * dsub != dim:
        r = np.concatenate([r, np.zeros((n, m * dsub - dim), dtype=np.float32)], axis=1)
    return r.reshape(n, m, dsub)


def train_codebooks(residuals: np.ndarray, dims_per_code: int, *, iterations: int = 16,
                    seed: int = 0) -> np.ndarray:
    """float32 ``(m, 16, dims_per_code)``: per sub-space, 16 centroids of the residuals
    (plain L2 k-means: the residual code minimises the reconstruction error)."""
    m = subspaces(residuals.shape[1], dims_per_code)
    parts = _split(np.asarray(residuals, dtype=np.float32), m, dims_per_code)
    books = np.empty((m, PQ_CENTROIDS, dims_per_code), dtype=np.float32)
    for j in range(m):
        sub = np.ascontiguousarray(parts[:, j, :])
        k = min(PQ_CENTROIDS, sub.shape[0])
        books[j, :k] = kmeans(sub, k, "l2", iterations=iterations, seed=seed + j)
        books[j, k:] = books[j, 0]
    return books


def encode(residuals: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """uint8 ``(n, m)``: the nearest codebook entry (0..15) per sub-space of each residual."""
    m, _, dsub = codebooks.shape
    out = np.empty((residuals.shape[0], m), dtype=np.uint8)
    for s in range(0, residuals.shape[0], _CHUNK):
        parts = _split(np.asarray(residuals[s:s + _CHUNK], dtype=np.float32), m, dsub)
        # |p - c|^2 = |c|^2 - 2 <p, c> + |p|^2: the last term does not change the argmin.
        dots = np.einsum("nmd,mkd->nmk", parts, codebooks)
        d2 = np.einsum("mkd,mkd->mk", codebooks, codebooks)[None] - 2 * dots
        out[s:s + _CHUNK] = np.argmin(d2, axis=2)
    return out


def decode(codes: np.ndarray, codebooks: np.ndarray, dim: int) -> np.ndarray:
    """float32 ``(n, dim)``: the residuals the codes stand for."""
    m = codebooks.shape[0]
    parts = codebooks[np.arange(m)[None, :], codes.astype(np.int64)]
    return parts.reshape(codes.shape[0], -1)[:, :dim]
