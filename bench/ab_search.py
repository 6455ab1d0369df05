"""Two builds of bitgraph side by side on the same search workloads (a regression check).

    python -m bench.ab_search --a /path/old-venv/bin/python --b /path/new-venv/bin/python

Each interpreter must import its own bitgraph (an editable install of one commit). For every
dataset, each repetition runs A then B then A ... in fresh child processes (alternating which
goes first), so both see the same machine state; a child builds its indexes with 2 threads
and the same seeds and times, at 1 thread:

* ``hnsw batch``: the query set in one call at ef = 64 (QPS, best of 3), and its recall@10;
* ``hnsw single``: one query per call at ef = 64 (p50 latency over the query set);
* ``filtered 1%`` / ``filtered 10%``: a category filter of that selectivity, one batch call;
* ``binary``: a BinaryIndex (2 fixed bits per dimension, HNSW, re-ranked from memory,
  oversample 4) in one batch call at ef = 64.

The table gives per workload the median over repetitions of A and B and of the per-repetition
ratio B / A (QPS: > 1 is faster; latency: < 1 is faster).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = ("glove-50-angular", "clustered-128-l2")


def _best_qps(call, nq: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return nq / best


def worker(name: str, max_base: int, max_queries: int) -> dict[str, Any]:
    import bitgraph as bg

    from .datasets import load_dataset

    ds = load_dataset(name, max_base=max_base, max_queries=max_queries)
    x, q, gt = ds.base, ds.queries, ds.gt
    nq = q.shape[0]
    out: dict[str, Any] = {}
    cat = np.random.default_rng(1).integers(0, 100, size=x.shape[0])
    index = bg.HNSWIndex(ds.dim, metric=ds.metric, M=16, ef_construction=200)
    index.add(x, attributes={"cat": cat}, threads=2)
    ids = index.search(q, 10, ef=64, threads=1).ids
    out["hnsw recall@10"] = float(np.mean([len(set(a) & set(b[:10])) / 10 for a, b in zip(ids, gt)]))
    out["hnsw batch QPS"] = _best_qps(lambda: index.search(q, 10, ef=64, threads=1), nq)
    times = []
    for i in range(nq):
        t0 = time.perf_counter()
        index.search(q[i:i + 1], 10, ef=64, threads=1)
        times.append(time.perf_counter() - t0)
    out["hnsw single p50 us"] = statistics.median(times) * 1e6
    one = bg.Filter.eq("cat", 3)
    ten = bg.Filter.isin("cat", list(range(10)))
    out["filtered 1% QPS"] = _best_qps(lambda: index.search(q, 10, ef=64, filter=one, threads=1), nq)
    out["filtered 10% QPS"] = _best_qps(lambda: index.search(q, 10, ef=64, filter=ten, threads=1), nq)
    binz = bg.RecurrentBinarizer(ds.dim, loops=2, learned=False, normalize=ds.metric != "l2")
    binz.fit(x[:5000])
    binary = bg.BinaryIndex(binz, graph="hnsw", M=16, ef_construction=100, rerank="memory",
                            metric=ds.metric)
    binary.add(x, threads=2)
    out["binary QPS"] = _best_qps(
        lambda: binary.search(q, 10, ef=64, oversample=4, threads=1), nq)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """Per dataset and workload: medians of A and B and the median per-repetition B / A."""
    lines = ["| dataset | workload | A | B | B / A |", "| --- | --- | ---: | ---: | ---: |"]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == name]
        for key in [k for k in mine[0] if k not in ("dataset", "build", "repeat")]:
            va = {r["repeat"]: r[key] for r in mine if r["build"] == "A"}
            vb = {r["repeat"]: r[key] for r in mine if r["build"] == "B"}
            ratio = statistics.median(vb[i] / va[i] for i in va)
            lines.append(f"| {name} | {key} | {statistics.median(va.values()):.4g} | "
                         f"{statistics.median(vb.values()):.4g} | {ratio:.3f} |")
    return "\n".join(lines)


def section(path: Path) -> str:
    """The RESULTS.md section of an A/B results JSON (bench.results_md)."""
    data = json.loads(Path(path).read_text())
    meta = data["meta"]
    datasets = sorted({r["dataset"] for r in data["rows"]}, key=[r["dataset"] for r in
                                                                  data["rows"]].index)
    return (f"## Two builds side by side ({Path(path).stem})\n\n"
            f"Command: `python -m bench.ab_search --a {meta['a']} --b {meta['b']} --datasets "
            f"{','.join(datasets)} --max-base {meta['max_base']} --max-queries "
            f"{meta['max_queries']} --repeats {meta['repeats']}`  \n"
            f"Date: {meta['date']}{'  ' + chr(10) + meta['what'] if meta.get('what') else ''}"
            f"  \n\n{table(data['rows'])}\n")


def _child(python: str, name: str, max_base: int, max_queries: int) -> dict[str, Any]:
    cmd = [python, "-m", "bench.ab_search", "--worker", name, "--max-base", str(max_base),
           "--max-queries", str(max_queries)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", help="python of build A (the baseline)")
    p.add_argument("--b", help="python of build B (the change)")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--max-base", type=int, default=50000)
    p.add_argument("--max-queries", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="bench/results/ab-search.json")
    p.add_argument("--what", default="", help="what A and B are (kept with the results)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker, a.max_base, a.max_queries)))
        return
    rows = []
    for name in a.datasets.split(","):
        for rep in range(a.repeats):
            order = [("A", a.a), ("B", a.b)] if rep % 2 == 0 else [("B", a.b), ("A", a.a)]
            for label, python in order:
                res = _child(python, name, a.max_base, a.max_queries)
                rows.append({"dataset": name, "build": label, "repeat": rep, **res})
                print(f"[{name}] rep {rep} {label}: " +
                      ", ".join(f"{k} {v:.3g}" for k, v in res.items()), flush=True)
    print()
    print(table(rows))
    if a.out:
        Path(a.out).write_text(json.dumps({"rows": rows, "meta": {
            "suite": "ab-search", "a": a.a, "b": a.b, "max_base": a.max_base, "max_queries": a.max_queries,
            "repeats": a.repeats, "date": time.strftime("%Y-%m-%d"), "what": a.what}}, indent=1))
        print(f"results: {a.out}")


if __name__ == "__main__":
    sys.exit(main())
