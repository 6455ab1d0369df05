"""Planner overhead: the share of a filtered search spent turning the filter into a plan.

    python -m bench.planner_overhead [--queries 1000] [--selectivities 1,0.5,...,0.001]

Overhead = compiling the Filter against the attribute store + evaluating it into a bitset of
matches + counting them (``index._evaluate``), i.e. everything before the first distance is
computed. It is paid once per distinct filter in a call, so two cases are measured on
glove-50-angular (the index cached by ``bench.planner_probe``), 1 thread, default planner:

- shared: one filter for the whole batch (overhead / time of the whole filtered search);
- per-query: every query has its own filter (a different range of ``u`` of the same width,
  all distinct: the worst case), passed as a list in one call (overhead / that call's time).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import bitgraph as bg

from .planner_probe import DEFAULT_CACHE as CACHE


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--per-query", type=int, default=1000, help="queries in the per-query case")
    ap.add_argument("--selectivities", default="1,0.5,0.2,0.1,0.05,0.02,0.01,0.005,0.002,0.001")
    args = ap.parse_args(argv)
    if not os.path.exists(CACHE):
        raise SystemExit(f"run python -m bench.planner_probe first (it builds {CACHE})")
    from .datasets import load_dataset

    index = bg.load(CACHE)
    queries = load_dataset("glove-50-angular").queries[: args.queries]
    rng = np.random.default_rng(2)
    print("| s | shared: overhead ms | shared: search ms | shared % | per-query: overhead us/q "
          "| per-query: search us/q | per-query % | plans |")
    print("|---|---|---|---|---|---|---|---|")
    for s in (float(v) for v in args.selectivities.split(",")):
        f = bg.Filter.range("u", 0, s)
        over = _time(lambda: index._evaluate(f))
        total = _time(lambda: index.search(queries, 10, filter=f, threads=1))
        plans = index.search(queries, 10, filter=f, threads=1).plans
        starts = rng.random(args.per_query) * (1 - s)
        filters = [bg.Filter.range("u", a, a + s) for a in starts]
        nq = args.per_query
        q = queries[:nq]

        distinct = list({f.key(): f for f in filters}.values())  # search evaluates each once

        def evaluate_all():
            limit = len(index._attributes)
            ops, offsets, entries, loads = index._attributes.compile_many(distinct, index._slots_of)
            bits = np.empty((len(distinct), (limit + 63) // 64), dtype=np.uint64)
            index._core.evaluate_filters(ops, offsets, entries, limit, bits, loads)

        over_q = _time(evaluate_all) / nq
        total_q = _time(lambda: index.search(q, 10, filter=filters, threads=1)) / nq
        used = ", ".join(f"{k} {v}" for k, v in zip(*np.unique(plans, return_counts=True)))
        used += f"; {len(distinct)} distinct per-query filters"
        print(f"| {s} | {over * 1e3:.2f} | {total * 1e3:.1f} | {100 * over / total:.1f}% "
              f"| {over_q * 1e6:.0f} | {total_q * 1e6:.0f} | {100 * over_q / total_q:.1f}% | {used} |",
              flush=True)


if __name__ == "__main__":
    main()
