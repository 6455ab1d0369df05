"""The recall-QPS suite: build every library once, sweep ef at each thread setting, measure
single-query latency, write JSON rows, print markdown tables, optionally plot.

    python -m bench.run_suite --dataset glove-50-angular --threads 1,all --plot
    python -m bench.run_suite --dataset clustered-small --libs faiss-hnsw,hnswlib,usearch

Importable core: :func:`run_suite` (used by ``bitgraph bench``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):                     # run as a file: make "bench" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

import numpy as np

from bench import protocol, summary
from bench.cli_common import int_list, print_run
from bench.adapters import ADAPTERS, DEFAULT_LIBS, available, make_adapter
from bench.datasets import dataset_names, default_dataset_name, load_dataset

DEFAULT_EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def all_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_threads(spec: str | list) -> list[int]:
    """"1,all" -> [1, n_cores] (deduplicated, in order)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for it in items:
        t = all_cores() if str(it).strip() == "all" else int(it)
        if t < 1:
            raise ValueError(f"thread counts must be >= 1, got {it!r}")
        if t not in out:
            out.append(t)
    return out


def parse_libs(spec: str | list | None) -> list[str]:
    if spec in (None, "all"):
        return list(DEFAULT_LIBS)
    libs = spec.split(",") if isinstance(spec, str) else list(spec)
    libs = [x.strip() for x in libs if x.strip()]
    unknown = [x for x in libs if x not in ADAPTERS]
    if unknown:
        raise ValueError(f"unknown libraries {unknown}; expected some of {sorted(ADAPTERS)}")
    return libs


def _git_commit() -> dict:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
        # tracked changes only: the suite's own outputs (results/*.png) are untracked
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=root, capture_output=True, text=True,
                                    timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        head, dirty = None, None
    return {"commit": head, "dirty": dirty}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_suite(dataset: str | None = None, libs: str | list | None = None,
              threads: str | list = "1,all", efs: list[int] | None = None, k: int = 10,
              repeats: int = 3, max_base: int | None = None, max_queries: int | None = None,
              latency_queries: int = 1000, latency_recall: float = 0.95,
              min_time: float = 0.2, cache_dir: str | None = None,
              out: str | Path | None | bool = None, plot: bool = False, log=_log) -> dict:
    """Run the suite and return ``{"meta", "rows", "tables", "out", "plot"}``.

    Progress goes to ``log`` (stderr by default): a line before and after each library's
    build, one per library per run of the sweep. ``tables`` (printed by the callers, in order):
    the legend of the library labels, the ef sweep (recall@10 / QPS) per thread setting, the
    best-QPS tables, latency, and the headline ratios (median of the ``repeats`` interleaved
    runs, see :mod:`bench.summary`).

    ``out``: JSON path (None: ``bench/results/<dataset>[-b<max_base>][-q<max_queries>].json``;
    ``False``: do not write). ``plot``: also write the Pareto PNG next to the JSON.
    """
    t_start = time.perf_counter()
    dataset = dataset or default_dataset_name()
    efs = sorted(set(int(e) for e in (efs or DEFAULT_EFS)))
    thread_list = parse_threads(threads)
    if repeats < 1:
        raise ValueError("repeats must be >= 1")

    log(f"[data] loading {dataset} (exact ground truth: computed once, then cached) ...")
    ds = load_dataset(dataset, cache_dir=cache_dir, max_base=max_base, max_queries=max_queries)
    log(f"[data] {ds.name}: {len(ds.base):,} x {ds.dim} base vectors, {len(ds.queries):,} "
        f"queries, metric {ds.metric}")

    algos, skipped = [], {}
    for name in parse_libs(libs):
        ok, why = available(name)
        if not ok:
            skipped[name] = why
            log(f"[skip] {name}: {why}")
            continue
        algos.append(make_adapter(name, ds.metric, ds.dim))

    rows: list[dict] = []
    built = []
    for a in algos:                                   # build: once, all cores
        try:
            rows.append(protocol.build(a, ds, all_cores(), log=log))
            built.append(a)
        except Exception as e:                        # one broken library must not end the run
            skipped[a.name] = f"build failed: {type(e).__name__}: {e}"
            log(f"[skip] {a.name}: {skipped[a.name]}")
            a.close()
    for t in thread_list:
        log(f"[sweep] threads={t}: {repeats} interleaved run(s) of {len(built)} libraries x "
            f"{len(efs)} ef values, {len(ds.queries):,} queries per point ...")
        rows += protocol.sweep(built, ds, t, efs, k, repeats, min_time=min_time, log=log)
    if latency_queries > 0 and built:
        rows += protocol.latency(built, ds, rows, k, n=latency_queries, target=latency_recall,
                                 log=log)
    for a in built:
        a.close()

    meta = {"dataset": ds.describe(), "k": k, "efs": efs, "threads": thread_list,
            "build_threads": all_cores(), "repeats": repeats, "min_time": min_time,
            "latency_queries": min(latency_queries, len(ds.queries)),
            "latency_recall": latency_recall, "libraries": [a.name for a in built],
            "legend": {a.name: a.describe() for a in built},
            "versions": {r["library"]: r["version"] for r in rows if r["kind"] == "build"},
            "skipped": skipped,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cores": all_cores(), "python": platform.python_version(),
                        "numpy": np.__version__},
            **_git_commit(), "argv": sys.argv, "wall_s": None}
    meta["wall_s"] = time.perf_counter() - t_start
    tabs = summary.console_tables(rows, meta)

    result = {"meta": meta, "rows": rows, "tables": tabs, "out": None, "plot": None}
    if out is not False:
        if out is None:
            suffix = (f"-b{max_base}" if "max_base" in ds.info else "") + \
                     (f"-q{max_queries}" if "max_queries" in ds.info else "")
            out = RESULTS_DIR / f"{dataset}{suffix}.json"
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "rows": rows, "tables": tabs}, indent=1))
        result["out"] = str(out)
        if plot:
            from bench.plot import plot_rows
            result["plot"] = str(plot_rows(rows, out.with_suffix(".png"), dataset))
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="bitgraph recall-QPS benchmark suite",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default=default_dataset_name(), choices=dataset_names())
    p.add_argument("--libs", default="all",
                   help=f"comma list from {sorted(ADAPTERS)}, or 'all' = {','.join(DEFAULT_LIBS)}")
    p.add_argument("--threads", default="1,all", help="comma list of thread counts; 'all' = cores")
    p.add_argument("--ef", type=int_list, default=DEFAULT_EFS, help="comma list of search ef")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="rounds per point (median)")
    p.add_argument("--max-base", type=int, default=None, help="subsample the base")
    p.add_argument("--max-queries", type=int, default=None, help="subsample the queries")
    p.add_argument("--min-time", type=float, default=0.2,
                   help="seconds a point repeats its batch for within a round")
    p.add_argument("--latency-queries", type=int, default=1000, help="0 skips latency")
    p.add_argument("--latency-recall", type=float, default=0.95)
    p.add_argument("--cache-dir", default=None, help="ground-truth cache "
                   "(default $BITGRAPH_BENCH_CACHE or ~/.cache/bitgraph/bench)")
    p.add_argument("--out", default=None, help="JSON path (default bench/results/<dataset>.json)")
    p.add_argument("--plot", action="store_true", help="also write the Pareto PNG")
    a = p.parse_args(argv)
    res = run_suite(dataset=a.dataset, libs=a.libs, threads=a.threads, efs=a.ef, k=a.k,
                    repeats=a.repeats, max_base=a.max_base, max_queries=a.max_queries,
                    latency_queries=a.latency_queries, latency_recall=a.latency_recall,
                    min_time=a.min_time, cache_dir=a.cache_dir, out=a.out, plot=a.plot)
    print_run(res)
    return res


if __name__ == "__main__":
    main()
