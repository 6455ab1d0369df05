"""Recall of RecurrentBinarizer codes: fixed vs learned, 1/2/4 bits per dim, SDC vs Hamming.

Exact scans of the codes (numpy reference, ranks identical to the integer SDC / Hamming
distances), recall@10 against the exact float top-10, without re-rank and with re-rank of
the top ``oversample * 10`` by exact float cosine.

    python bench/binarizer_quality.py --dataset text-like-small
    python bench/binarizer_quality.py --dataset text-like-384 --compat
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import load_dataset  # noqa: E402

import bitgraph as bg  # noqa: E402
from bitgraph.binary import reference as R  # noqa: E402

CONFIGS = [  # (label, loops, code_dim, distance); bits/dim = loops * code_dim / 384
    ("1 bit/dim  SDC     P=1 m=384", 1, 384, "sdc"),
    ("2 bits/dim SDC     P=2 m=384", 2, 384, "sdc"),
    ("2 bits/dim Hamming P=1 m=768", 1, 768, "hamming"),
    ("2 bits/dim Hamming P=2 m=384", 2, 384, "hamming"),
    ("4 bits/dim SDC     P=4 m=384", 4, 384, "sdc"),
    ("1 bit/dim  SDC     P=6 m=64", 6, 64, "sdc"),
    ("2 bits/dim SDC     P=8 m=96", 8, 96, "sdc"),
    ("2 bits/dim SDC     P=4 m=192", 4, 192, "sdc"),
]


def recall(ids: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean([len(set(a[:10]) & set(g[:10])) / 10 for a, g in zip(ids, gt)]))


def evaluate(b, base, queries, gt, kind, oversample):
    t0 = time.perf_counter()
    cd, cq = b.encode(base), b.encode(queries)
    enc = time.perf_counter() - t0
    ids = R.search(cq, cd, b.loops, b.code_dim, 10 * oversample, kind)
    sims = np.einsum("qd,qkd->qk", queries, base[ids])
    rr = np.take_along_axis(ids, np.argsort(-sims, axis=1, kind="stable"), 1)
    return recall(ids, gt), recall(rr, gt), enc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="text-like-small")
    ap.add_argument("--oversample", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--configs", default=",".join(str(i) for i in range(len(CONFIGS))),
                    help="comma-separated config numbers")
    ap.add_argument("--variants", default="fixed,learned")
    ap.add_argument("--compat", action="store_true", help="also measure compatible_with")
    args = ap.parse_args(argv)
    ds = load_dataset(args.dataset)
    base, queries, gt = ds.base, ds.queries, ds.gt[:, :10]
    dim = base.shape[1]
    print(f"dataset {args.dataset}: {base.shape[0]} x {dim}, {len(queries)} queries, "
          f"backend {bg.backend_info()['backend']}")
    print(f"{'config':32s} {'variant':8s} {'bytes':>5s} {'R@10 raw':>9s} "
          f"{'R@10 rerank x' + str(args.oversample):>16s} {'fit s':>7s} {'encode s':>9s}")
    fitted = {}
    for i in (int(c) for c in args.configs.split(",")):
        label, loops, m, kind = CONFIGS[i]
        for variant in args.variants.split(","):
            key = (loops, m, variant)
            if key not in fitted:
                t0 = time.perf_counter()
                fitted[key] = (bg.RecurrentBinarizer(dim, loops=loops, code_dim=m,
                                                     learned=variant == "learned")
                               .fit(base, epochs=args.epochs), time.perf_counter() - t0)
            b, fit_s = fitted[key]
            raw, rr, enc = evaluate(b, base, queries, gt, kind, args.oversample)
            print(f"{label:32s} {variant:8s} {b.code_bytes:5d} {raw:9.4f} {rr:16.4f} "
                  f"{fit_s:7.1f} {enc:9.1f}", flush=True)
    if args.compat:
        # old model fitted on the first half, new model on the second half, compatible
        half = base.shape[0] // 2
        for loops, m in ((1, dim), (6, 64)):
            old = bg.RecurrentBinarizer(dim, loops=loops, code_dim=m, seed=0).fit(base[:half])
            t0 = time.perf_counter()
            new = bg.RecurrentBinarizer(dim, loops=loops, code_dim=m, seed=1).fit(
                base[half:], compatible_with=old, epochs=args.epochs)
            fit_s = time.perf_counter() - t0
            indep = bg.RecurrentBinarizer(dim, loops=loops, code_dim=m, seed=1).fit(base[half:])
            cd_old, cd_new = old.encode(base), new.encode(base)
            rows = [("old q / old docs", old.encode(queries), cd_old),
                    ("new q / new docs", new.encode(queries), cd_new),
                    ("new q / old docs", new.encode(queries), cd_old),
                    ("independent q / old docs", indep.encode(queries), cd_old)]
            for name, cq, cd in rows:
                ids = R.search(cq, cd, loops, m, 10 * args.oversample, "sdc")
                sims = np.einsum("qd,qkd->qk", queries, base[ids])
                rr = np.take_along_axis(ids, np.argsort(-sims, axis=1, kind="stable"), 1)
                print(f"compat P={loops} {name:26s} R@10 raw {recall(ids, gt):.4f} "
                      f"rerank {recall(rr, gt):.4f}  (compat fit {fit_s:.1f}s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
