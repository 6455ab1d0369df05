"""What 1 bit per dimension loses on real sentence embeddings, and which estimator wins it back.

Flat scans (numpy), recall@10 against the exact float top-10, raw and after re-ranking the
best ``oversample * 10`` by exact cosine. Each code is the sign of the centred, randomly
rotated vector (``bits = sign(R (x - mean))``, d bits); the estimators differ in what they
compare it with:

* ``symmetric``: the query binarized the same way, scored by matching bits (what
  ``BinaryIndex`` with a 1-plane fixed binarizer computes: Hamming = SDC ranks at 1 plane);
* ``asymmetric``: the float rotated query against the code, ``<R(q - mean), bits>``;
* ``RaBitQ``: the same scaled by the code's per-vector factor ``||x'||^2 / ||x'||_1`` with
  ``x' = R(x - mean)`` (``<bits, x'> = ||x'||_1``: RaBitQ's unbiased estimator of
  ``<x', q'>``), plus the exact per-row ``<x, mean>`` that centring drops (the terms in
  ``<q, mean>`` are the same for every row); two floats per row beside the bits;
* ``learned symmetric``: bitgraph's learned ``RecurrentBinarizer(loops=1)``, SDC.

    python -m bench.one_bit_probe --dataset docs-minilm-384 --oversample 4
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench.datasets import load_dataset

K = 10


def recall(ids: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean([len(set(a[:K]) & set(g[:K])) / K for a, g in zip(ids, gt)]))


def top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n largest scores per row, best first."""
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def reranked(cands: np.ndarray, base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    sims = np.einsum("qd,qkd->qk", queries, base[cands])
    return np.take_along_axis(cands, np.argsort(-sims, axis=1, kind="stable"), 1)


def scores_in_chunks(fn, nq: int, chunk: int = 512) -> list[np.ndarray]:
    return [fn(slice(s, min(s + chunk, nq))) for s in range(0, nq, chunk)]


def run(dataset: str, oversample: int, max_queries: int, seed: int) -> list[dict]:
    ds = load_dataset(dataset, max_queries=max_queries)
    base = ds.base / np.linalg.norm(ds.base, axis=1, keepdims=True)
    queries = ds.queries / np.linalg.norm(ds.queries, axis=1, keepdims=True)
    gt = ds.gt[:, :K]
    dim = base.shape[1]
    mean = base.mean(0)
    rot, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    xr = ((base - mean) @ rot).astype(np.float32)
    qr = ((queries - mean) @ rot).astype(np.float32)
    bits = np.where(xr >= 0, 1.0, -1.0).astype(np.float32)          # (n, d) +-1
    qbits = np.where(qr >= 0, 1.0, -1.0).astype(np.float32)
    l1 = np.abs(xr).sum(1)                                            # <bits, xr>
    scale = (np.linalg.norm(xr, axis=1) ** 2 / l1).astype(np.float32)  # per row, stored
    offset = (base @ mean).astype(np.float32)  # <x, mean>: what centring drops, per row
    n_cand = oversample * K
    estimators = {
        "symmetric (sign q . sign x)": lambda s: qbits[s] @ bits.T,
        "asymmetric (q . sign x)": lambda s: qr[s] @ bits.T,
        "asymmetric x ||x||^2/||x||_1 + <x, mean> (RaBitQ)":
            lambda s: (qr[s] @ bits.T) * scale[None, :] + offset[None, :],
    }
    rows = []
    for name, fn in estimators.items():
        t0 = time.perf_counter()
        cands = np.concatenate([top(sc, n_cand) for sc in scores_in_chunks(fn, len(queries))])
        rows.append({"estimator": name, "raw": recall(cands, gt),
                     "reranked": recall(reranked(cands, base, queries), gt),
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(rows[-1], file=sys.stderr)
    try:
        import bitgraph as bg
        from bitgraph.binary import reference as R
        t0 = time.perf_counter()
        b = bg.RecurrentBinarizer(dim, loops=1, code_dim=dim, learned=True).fit(base[:20_000])
        cd, cq = b.encode(base), b.encode(queries)
        cands = R.search(cq, cd, b.loops, b.code_dim, n_cand, "sdc")
        rows.append({"estimator": "learned symmetric (bitgraph loops=1, SDC)",
                     "raw": recall(cands, gt),
                     "reranked": recall(reranked(cands, base, queries), gt),
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(rows[-1], file=sys.stderr)
    except ImportError:
        pass
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="docs-minilm-384")
    ap.add_argument("--oversample", type=int, default=4)
    ap.add_argument("--max-queries", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    rows = run(a.dataset, a.oversample, a.max_queries, a.seed)
    print(f"{a.dataset}: 1 bit per dimension, flat scan, recall@10 raw / re-ranked x{a.oversample}")
    print("| estimator | raw | re-ranked |")
    for r in rows:
        print(f"| {r['estimator']} | {r['raw']:.4f} | {r['reranked']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
