"""Measures each filtered-search plan on its own, to set the planner's thresholds.

    python -m bench.planner_probe --selectivities 0.5,0.2,0.1,0.05,0.02,0.01 [--queries 1000]

Builds (or loads from --cache) a bitgraph HNSW index on glove-50-angular with a uniform random
float attribute ``u``, then for each selectivity s filters ``u <= s`` and forces each plan in
turn through PlannerConfig (ACORN walk, post-filter walk, exact scan), sweeping ef for the
walks. Prints recall@10 against the exact filtered top-10, QPS at 1 thread and nodes scored.
The exact plan runs batched (tiled) when the whole query batch shares the filter; pass
--single to time one query per call instead (the per-query gather path).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import bitgraph as bg

from .datasets import load_dataset

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "bitgraph-bench",
                             "planner-probe-glove.bg")

PLANS = {
    "acorn": bg.PlannerConfig(exact_ratio=0, exact_ratio_batched=0, acorn_below=1.0),
    "post-filter": bg.PlannerConfig(exact_ratio=0, exact_ratio_batched=0, acorn_below=0.0),
    "exact": bg.PlannerConfig(exact_ratio=1e12, exact_ratio_batched=1e12),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selectivities", default="0.5,0.2,0.1,0.05,0.02,0.01")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--efs", default="16,32,64,128,256")
    ap.add_argument("--single", action="store_true", help="one query per search call")
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    args = ap.parse_args(argv)
    ds = load_dataset("glove-50-angular")
    base, queries = ds.base, ds.queries[: args.queries]
    u = np.random.default_rng(1).random(len(base))
    if os.path.exists(args.cache):
        index = bg.load(args.cache)
    else:
        index = bg.HNSWIndex(base.shape[1], metric="cosine")
        index.add(base, attributes={"u": u}, progress=True)
        os.makedirs(os.path.dirname(args.cache), exist_ok=True)
        index.save(args.cache)
    bn = base / np.linalg.norm(base, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    for s in (float(v) for v in args.selectivities.split(",")):
        sub = np.flatnonzero(u <= s)
        truth = sub[np.argsort(-(qn @ bn[sub].T), axis=1)[:, :10]]
        f = bg.Filter.range("u", 0, s)
        for name, cfg in PLANS.items():
            index.planner = cfg
            for ef in (int(e) for e in args.efs.split(",")):
                t = time.perf_counter()
                if args.single:
                    parts = [index.search(queries[i:i + 1], 10, ef=ef, filter=f, threads=1)
                             for i in range(len(queries))]
                    ids = np.vstack([p.ids for p in parts])
                    plans = np.concatenate([p.plans for p in parts])
                    visited = np.concatenate([p.visited for p in parts])
                else:
                    r = index.search(queries, 10, ef=ef, filter=f, threads=1)
                    ids, plans, visited = r.ids, r.plans, r.visited
                qps = len(queries) / (time.perf_counter() - t)
                rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
                used = dict(zip(*np.unique(plans, return_counts=True)))
                print(f"s={s:<6} {name:<12} ef={ef:<4} recall={rec:.4f} qps={qps:8.0f} "
                      f"scored={visited.mean():8.0f} plans={ {str(k): int(v) for k, v in used.items()} }",
                      flush=True)
                if name == "exact" or rec > 0.995:
                    break


if __name__ == "__main__":
    main()
