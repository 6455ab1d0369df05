"""Choosing at fit time, on held-out vectors, what ranks a binarizer's codes best: the code
distance, and for a bits-per-dimension budget (``RecurrentBinarizer(dim, bits=b)``) the layout.

Why measure instead of a rule: which wins depends on the data and on the model. On real MiniLM
sentence embeddings one plane of d bits under the asymmetric distance is best at 1 bit/dim
(flat, 4x re-rank: 0.966, against 0.89 for SDC and 0.68-0.90 for narrower multi-plane
layouts), while on embeddings of low intrinsic dimension (text-like-384) six learned planes of
d/6 bits under SDC reach 0.998 and the asymmetric distance only 0.90 on those codes (learned
planes are trained for the symmetric code inner product). The score is the mean of two
recalls@10 of a flat scan over a pool of the sample, for queries held out of the pool: of the
codes' own top 10, and of their top 40 re-ranked with exact inner products (what a user gets
with ``oversample=4``). The codes-only part keeps the score from saturating: a 10,000-row pool
is an easier task than the user's collection (text-like-384, fixed, 1 bit/dim: re-ranked
recall 0.993 on the pool, 0.902 on 100k rows), and the layouts must still be told apart.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import offsets as offsets_mod
from . import reference

# The binarizer (binarizer.py imports this module, so its type is not imported here): what is
# used of it is encode, encode_queries, offsets, has_offsets_for, loops, code_dim, query_step.
RecurrentBinarizer = Any

POOL = 20_000        # sample rows searched
QUERIES = 300        # held-out rows used as queries
MIN_ROWS = 200       # below this, nothing is measured (defaults apply)
K = 10
OVERSAMPLE = 4
DISTANCES = ("asymmetric", "sdc")


def candidate_layouts(dim: int, bits: float, max_loops: int) -> list[tuple[int, int]]:
    """(loops, code_dim) layouts of ``bits`` per dimension, simplest first: whole bits as
    planes of ``dim`` bits, then 4 and 6 times as many planes of dim/4 and dim/6 bits (more
    planes of fewer bits suit data of low intrinsic dimension); a budget below one bit is one
    narrower plane."""
    if bits < 1:
        return [(1, max(8, int(round(bits * dim))))]
    planes = int(round(bits))
    out = [(planes, dim)]
    for split in (4, 6):
        if dim % split == 0 and dim // split >= 16 and planes * split <= max_loops:
            out.append((planes * split, dim // split))
    return out


def held_out_split(x: np.ndarray, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(pool, queries, truth: the queries' exact top-K inner-product rows of the pool), or None
    for samples too small to measure anything."""
    if len(x) < MIN_ROWS:
        return None
    order = rng.permutation(len(x))
    n_q = min(QUERIES, len(x) // 4)
    queries = x[order[:n_q]]
    pool = x[order[n_q:n_q + POOL]]
    sims = queries @ pool.T
    truth = np.argpartition(-sims, K - 1, axis=1)[:, :K]
    return pool, queries, truth


def held_out_score(binz: RecurrentBinarizer, distance: str,
                    split: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """The score of ``binz``'s codes under ``distance`` (with the offsets a BinaryIndex would
    use by default): the mean of recall@K of the code ranking's top K and of its top
    OVERSAMPLE * K re-ranked with exact inner products."""
    pool, queries, truth = split
    codes = binz.encode(pool)
    planes, m = binz.loops, binz.code_dim
    if distance == "asymmetric":
        dist = reference.asymmetric_matrix(binz.encode_queries(queries), codes, planes, m)
    else:
        dist = reference.sdc_matrix(binz.encode(queries), codes, planes, m)
    if offsets_mod.used_by_default(planes, m, distance, binz.has_offsets_for(distance)):
        dist = (dist + binz.offsets(pool, distance).astype(np.int64)[None, :]
                + binz.offsets(queries, distance).astype(np.int64)[:, None])
    n_cand = min(OVERSAMPLE * K, len(pool))
    cand = np.argpartition(dist, n_cand - 1, axis=1)[:, :n_cand]
    cand = np.take_along_axis(cand, np.argsort(np.take_along_axis(dist, cand, 1), axis=1,
                                               kind="stable"), 1)
    sims = np.einsum("qd,qkd->qk", queries, pool[cand])
    top = np.take_along_axis(cand, np.argsort(-sims, axis=1)[:, :K], 1)
    codes_only = np.mean([len(set(a[:K]) & set(t)) for a, t in zip(cand, truth)]) / K
    reranked = np.mean([len(set(a) & set(t)) for a, t in zip(top, truth)]) / K
    return float(codes_only + reranked) / 2


def best_distance(binz: RecurrentBinarizer, split: Any) -> tuple[str, dict[str, float]]:
    """The distance of DISTANCES with the best held-out score (ties: the asymmetric one), and
    every score."""
    if split is None or binz.query_step is None:
        return ("asymmetric" if binz.query_step is not None else "sdc"), {}
    scores = {d: held_out_score(binz, d, split) for d in DISTANCES}
    return max(DISTANCES, key=lambda d: (scores[d], d == "asymmetric")), scores
