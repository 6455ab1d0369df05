"""Code offsets: the per-vector terms of the inner product that centred codes cannot carry.

A binarizer codes the centred vector f - mu. The code inner product estimates <f_q - mu,
f_d - mu> (up to a scale ``a`` fitted here), but the ranking needs

    <f_q, f_d> = <f_q - mu, f_d - mu> + <mu, f_q - mu> + <mu, f_d - mu> + |mu|^2,

whose middle terms depend on each vector: sentence embeddings share a large common direction,
so dropping them mis-ranks neighbours however fine the code (text-like-384: exact centred inner
products alone put only 0.977 of the top-10 in the top-40). The code distance falls as the code
inner product rises (SDC: <B_q, B_d> = m (sum w)^2 - 2 SDC; Hamming likewise), so

    -<f_q, f_d> / (2a) = SDC + o(q) + o(d) + const,    o(v) = -<mu, f_v - mu> / (2a),

and every code row can carry o(v) as one non-negative integer (shifted by ``half`` and rounded
to the code's own unit 2a) that the store adds to the code distance (docs/backend-contract.md,
"Code offsets"). Distances stay exact integers.
"""
from __future__ import annotations

import numpy as np

from . import reference

MAX_OFFSET = (1 << 22) - 1      # the native store's bound: two offsets + SDC < 2^24
PAIRS = 20_000  # random pairs the inner-product slope is fitted on


def weighted_signs(bits: np.ndarray, kind: str) -> np.ndarray:
    """(n, P, m) bool bits -> the +-1 vectors whose inner product the code distance ranks by:
    SDC weights plane t by 2^(P-1-t); Hamming concatenates the planes unweighted."""
    s = bits.astype(np.float32) * 2.0 - 1.0
    if kind == "hamming":
        return s.reshape(len(s), -1)
    w = reference.plane_weights(s.shape[1]).astype(np.float32)
    return np.einsum("npm,p->nm", s, w)


def ip_slope(code_vectors: np.ndarray, centred: np.ndarray, rng: np.random.Generator,
             pairs: int = PAIRS, query_vectors: np.ndarray | None = None) -> float:
    """Least-squares slope a of <centred_i, centred_j> ~ a * <code_i, code_j> + c over random
    pairs i != j (the intercept is a per-query constant and does not matter). With
    ``query_vectors`` the code inner product is <query_i, code_j> (the asymmetric distance)."""
    n = len(code_vectors)
    i = rng.integers(0, n, pairs)
    j = rng.integers(0, n, pairs)
    keep = i != j
    i, j = i[keep], j[keep]
    left = code_vectors if query_vectors is None else query_vectors
    s = np.einsum("ij,ij->i", left[i], code_vectors[j]).astype(np.float64)
    t = np.einsum("ij,ij->i", centred[i], centred[j]).astype(np.float64)
    s -= s.mean()
    t -= t.mean()
    ss = float(s @ s)
    return float(s @ t) / ss if ss > 0 else 0.0


def fit_offsets(f: np.ndarray, params: dict[str, np.ndarray], normalize: bool,
                rng: np.random.Generator, sample: int = 50_000,
                query_step: float | None = None) -> dict[str, dict[str, float]] | None:
    """Offset units for SDC and Hamming codes of ``params`` fitted on (normalised) vectors f,
    and, given the binarizer's ``query_step``, for the asymmetric distance.

    Returns {"sdc": {"unit": 2a, "half": K}, "hamming": {...}, "asymmetric": {"unit": a,
    ...}} or None when the codes do not track the inner product (slope <= 0: offsets would
    have no meaningful unit). The asymmetric distance falls by one per unit of
    <u - (2^B - 1)/2, b> (not two, as the symmetric ones: reference.py), hence unit a."""
    if len(f) > sample:
        f = f[np.sort(rng.choice(len(f), sample, replace=False))]
    mean = params["mean"].astype(np.float32)
    centred = f - mean
    proj_terms = centred @ mean
    # |<mu, f - mu>| <= |mu| |f - mu| <= |mu| (1 + |mu|) for unit vectors; else twice the
    # largest seen (offsets of larger vectors are clipped: documented in the contract)
    mu = float(np.linalg.norm(mean))
    span = mu * (1.0 + mu) if normalize else 2.0 * float(np.abs(proj_terms).max())
    span = max(span, 1e-12)
    bits, _ = reference.encode_bits(f, False, **params)
    out: dict[str, dict[str, float]] = {}
    kinds = ("sdc", "hamming") if query_step is None else ("sdc", "hamming", "asymmetric")
    for kind in kinds:
        if kind == "asymmetric":
            v = reference.query_values(f, params["mean"], params["proj"], params["psi"],
                                       params["psi_scale"])
            levels = reference.query_levels(v, query_step).astype(np.float32)
            centre = (2 ** reference.QUERY_BITS - 1) / 2
            a = ip_slope(weighted_signs(bits, "hamming"), centred, rng,
                         query_vectors=(levels - centre).reshape(len(f), -1))
        else:
            a = ip_slope(weighted_signs(bits, kind), centred, rng)
        if not np.isfinite(a) or a <= 0:
            return None
        unit = a if kind == "asymmetric" else 2.0 * a
        half = int(np.ceil(span / unit))
        if 2 * half > MAX_OFFSET:       # coarser than the code's unit: still 2^21 steps
            half = MAX_OFFSET // 2
            unit = span / half
        out[kind] = {"unit": float(unit), "half": float(half)}
    return out


def compute_offsets(f: np.ndarray, mean: np.ndarray, unit: float, half: float) -> np.ndarray:
    """o(v) + half for (normalised) vectors f: (n,) uint32 in [0, 2 * half]."""
    mean = mean.astype(np.float32)
    # einsum, not a BLAS matrix-vector product: OpenBLAS threads keep spinning after a call
    # and took a core from the search that follows (binary HNSW at 2 threads: 57k -> 31k QPS)
    term = np.einsum("ij,j->i", f, mean).astype(np.float64) - float(mean @ mean)
    o = np.rint(half - term / unit)
    return np.clip(o, 0, 2 * half).astype(np.uint32)



def fits_with_offsets(planes: int, code_dim: int, distance: str) -> bool:
    """Whether distances with offsets stay exact: code distances below 2^23."""
    words = -(-int(code_dim) // 64)
    if distance == "asymmetric":
        largest = 64 * words * planes * (2 ** reference.QUERY_BITS - 1)
    else:
        largest = 64 * words * (2 ** planes - 1) ** 2
    return largest < 2 ** 23


def used_by_default(planes: int, code_dim: int, distance: str, available: bool) -> bool:
    """Whether a BinaryIndex uses offsets when not told: the binarizer has them for
    ``distance``, distances with them stay exact, and the code has two planes or more. One
    plane is too coarse: its code inner product is so noisy that the fitted unit over-weights
    the offset (flat, 4x re-rank, offsets on / off: 1 plane, asymmetric: docs-minilm-384
    0.960 / 0.966, text-like-384 0.892 / 0.902, glove-50 0.398 / 0.504; 2 planes: 0.998 /
    0.990, 0.958 / 0.952, 0.760 / 0.706)."""
    return available and planes >= 2 and fits_with_offsets(planes, code_dim, distance)
