"""Filtered k-NN search benchmark (protocol: bench/README.md, "Filtered search"): recall@10
and QPS across selectivities from 100% down to 0.1%, uncorrelated and cluster-correlated
filters, multi-label and numeric range, for bitgraph and its peers in one process.

    python -m bench.filtered                                   # glove-50-angular, all workloads
    python -m bench.filtered --threads 1 --base-limit 20000 --queries 200      # quick
    python -m bench.filtered --dataset clustered-128-l2 --workloads label,corr-pos,corr-neg

Protocol (see bench/README.md, "Filtered search"):
* one build per library with all attribute fields (all cores, timed);
* per workload point (filter, target selectivity): exact filtered ground truth (top-k among
  the passing items, brute force), then for each thread setting ``repeats`` interleaved rounds
  (library order rotates). Round 1 sweeps ef upwards per graph library and stops at the first
  ef with recall >= ``stop_recall`` (0.99) or once a batch is too slow (below); rounds 2.. re-time
  the points that reach recall 0.95 (the ones the tables report). QPS = queries / median seconds
  per batch; each batch repeats until ``min_time`` has passed;
* a point whose batch would take over ``max_seconds`` (projected from a 10-query probe, which
  is also the warm-up) runs on the first queries that fit (``n_queries`` in its row, >= the
  probe) and ends that library's sweep: a larger ef only costs more;
* recall, nodes visited, plans and the exact-filter checks come from the first batch.

Importable core: :func:`run_filtered`.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):                     # run as a file: make "bench" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

import numpy as np

from bench import filter_report
from bench.cli_common import float_list, int_list
from bench.datasets import GENERATORS, dataset_names, default_dataset_name
from bench.filter_peers import DEFAULT_LIBS, LIBS, available, make_lib
from bench.filter_workloads import (GRID, WORKLOADS, filtered_ground_truth, evaluate,
                                    make_attributes, make_points, prepare_vectors)
from bench.protocol import rotated
from bench.run_suite import _git_commit, all_cores, parse_threads

DEFAULT_EFS = [10, 16, 32, 64, 128, 256, 512]
DEFAULT_QUERIES = 1000
RESULTS_DIR = Path(__file__).resolve().parent / "results"
KEEP_LEVEL = 0.95                # rounds 2.. re-time the points at or above this recall


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_vectors(name: str, base_limit: int | None = None, queries: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, str, dict]:
    """Base, queries and metric of a bench dataset (no unfiltered ground truth needed)."""
    if name not in GENERATORS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {dataset_names()}")
    base, q, metric = GENERATORS[name]()
    info = {}
    if base_limit is not None and base_limit < len(base):
        base = np.ascontiguousarray(base[:base_limit])
        info["base_limit"] = int(base_limit)
    if queries is not None and queries < len(q):
        q = np.ascontiguousarray(q[:queries])
    return base, q, metric, info


def parse_libs(spec) -> list[str]:
    if spec in (None, "all"):
        return list(DEFAULT_LIBS)
    libs = [x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip()]
    bad = [x for x in libs if x not in LIBS]
    if bad:
        raise ValueError(f"unknown libraries {bad}; expected some of {sorted(LIBS)}")
    return libs


def parse_workloads(spec) -> list[str]:
    if spec in (None, "all"):
        return list(WORKLOADS)
    ws = [x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip()]
    bad = [x for x in ws if x not in WORKLOADS]
    if bad:
        raise ValueError(f"unknown workloads {bad}; expected some of {list(WORKLOADS)}")
    return ws


# --------------------------------------------------------------------------- timing

def _timed(lib, state, Q, k, ef, threads, min_time):
    """First result and wall / CPU seconds per batch (batch repeated until min_time)."""
    c0, t0 = time.process_time(), time.perf_counter()
    res = lib.search(state, Q, k, ef, threads)
    n = 1
    while time.perf_counter() - t0 < min_time:
        lib.search(state, Q, k, ef, threads)
        n += 1
    wall = time.perf_counter() - t0
    return res, wall / n, (time.process_time() - c0) / n


def _batch_size(lib, state, Q, k, ef, threads, probe, max_seconds):
    """How many of the queries to time: all, unless a ``probe``-query run projects the batch
    past ``max_seconds`` (then as many as fit, at least ``probe``). One untimed query first
    absorbs one-time costs (bitgraph builds a field's sorted index on its first filter), which
    would otherwise be projected over the whole batch and end the ef sweep at its first ef."""
    nq = len(Q)
    p = min(probe, nq)
    lib.search(state, Q[:1], k, ef, threads)
    t0 = time.perf_counter()
    lib.search(state, Q[:p], k, ef, threads)
    projected = (time.perf_counter() - t0) * nq / max(p, 1)
    if projected <= max_seconds or p >= nq:
        return nq
    return max(p, int(nq * max_seconds / projected))


def measure_point(libs, point, base, Q, k, efs, threads, repeats, min_time, max_seconds,
                  stop_recall, probe, rotation, metric, log=_log) -> list[dict]:
    """All libraries at one workload point and one thread setting; one row per (lib, ef)."""
    nq = len(Q)
    states = {}
    for lib in libs:
        states[lib.name] = lib.prepare(point)
    recs: dict = {}                 # (lib, ef) -> dict
    order: dict = {lib.name: [] for lib in libs}
    keep: dict = {}
    for r in range(repeats):
        for lib in rotated(libs, rotation + r):
            st = states[lib.name]
            if r == 0:
                for ef in (efs if lib.is_graph else [None]):
                    n = _batch_size(lib, st, Q, k, ef, threads, probe, max_seconds)
                    res, wall, cpu = _timed(lib, st, Q[:n], k, ef, threads, min_time)
                    ev = evaluate(res.ids, point, point.gt, base, Q, metric, k)
                    recs[(lib.name, ef)] = {"n": n, "walls": [wall], "cpus": [cpu], "ev": ev,
                                            "res": res}
                    order[lib.name].append(ef)
                    if ev["recall"] >= stop_recall or n < nq:
                        break
                keep[lib.name] = [ef for ef in order[lib.name]
                                  if recs[(lib.name, ef)]["ev"]["recall"] >= KEEP_LEVEL]
                pts = ", ".join(
                    f"{'-' if ef is None else ef}:{recs[(lib.name, ef)]['ev']['recall']:.3f}"
                    f"/{recs[(lib.name, ef)]['n'] / recs[(lib.name, ef)]['walls'][0]:.0f}"
                    for ef in order[lib.name])
                log(f"  [t={threads} r1] {lib.name:13s} ef:recall/QPS {pts}")
            else:
                for ef in keep[lib.name]:
                    rec = recs[(lib.name, ef)]
                    _, wall, cpu = _timed(lib, st, Q[:rec["n"]], k, ef, threads, min_time)
                    rec["walls"].append(wall)
                    rec["cpus"].append(cpu)
    rows = []
    sel = point.selectivity(nq)
    for lib in libs:
        for ef in order[lib.name]:
            rec = recs[(lib.name, ef)]
            w, c = np.asarray(rec["walls"]), np.asarray(rec["cpus"])
            med = float(np.median(w))
            res = rec["res"]
            visited = res.visited
            if visited is None:
                vmean = None
            elif np.ndim(visited) == 0:
                vmean = float(visited)
            else:
                vmean = float(np.mean(visited))
            plans = dict(Counter(res.plans.tolist())) if res.plans is not None else None
            rows.append({
                "kind": "filtered", "workload": point.workload, "target": point.target,
                **sel, "filter": point.describe(), "n_filters": len(point.specs),
                "library": lib.name, "family": lib.family, "is_bitgraph": lib.is_bitgraph,
                "is_graph": lib.is_graph, "threads": int(threads), "ef": ef, "k": int(k),
                **rec["ev"], "qps": rec["n"] / med, "seconds_median": med,
                "seconds_runs": w.tolist(), "rounds": len(w),
                "cpu_util": float(np.median(c / np.maximum(w, 1e-12))),
                "n_queries": int(rec["n"]), "truncated": bool(rec["n"] < nq),
                "visited_mean": vmean,
                "visited_median": (float(np.median(visited)) if visited is not None
                                   and np.ndim(visited) > 0 else None),
                "visited_method": lib.visited_method,
                "plans": plans,
                "plan": max(plans, key=plans.get) if plans else None,
                "errors": int(res.errors),
            })
    states.clear()
    return rows


# --------------------------------------------------------------------------- the run

def _default_out(dataset: str, base_limited: bool, n_base: int, nq: int) -> Path:
    if base_limited or nq != DEFAULT_QUERIES:
        return RESULTS_DIR / f"filtered-{dataset}-b{n_base}-q{nq}.json"   # git-ignored
    return RESULTS_DIR / f"filtered-{dataset}.json"


def run_filtered(dataset: str | None = None, *, base: np.ndarray | None = None,
                 queries: np.ndarray | None = None, metric: str | None = None,
                 base_limit: int | None = None, n_queries: int | None = DEFAULT_QUERIES,
                 workloads=None, selectivities=None, libs=None, threads="1,all",
                 efs: list[int] | None = None, k: int = 10, repeats: int = 3,
                 min_time: float = 0.05, max_seconds: float = 2.0, stop_recall: float = 0.99,
                 probe: int = 10, seed: int = 0, out: str | Path | None | bool = None,
                 plot: bool = True, log=_log) -> dict:
    """Run the filtered benchmark; returns ``{"meta", "rows", "tables", "out", "plot"}``.

    Data: a bench dataset name, or arrays ``base`` / ``queries`` with ``metric`` (tests).
    ``out``: JSON path (None: ``bench/results/filtered-<dataset>[-b<n>-q<nq>].json``; False: do
    not write). ``plot``: also write the PNG next to the JSON.
    """
    t_start = time.perf_counter()
    if base is not None:
        if queries is None or metric is None:
            raise ValueError("base needs queries and metric")
        dataset = dataset or "custom"
        base = np.ascontiguousarray(base, dtype=np.float32)
        info = {}
        if base_limit is not None and base_limit < len(base):
            base, info["base_limit"] = np.ascontiguousarray(base[:base_limit]), int(base_limit)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if n_queries is not None:
            queries = queries[:n_queries]
    else:
        dataset = dataset or default_dataset_name()
        base, queries, metric, info = load_vectors(dataset, base_limit, n_queries)
    nq = len(queries)
    efs = sorted(set(int(e) for e in (efs or DEFAULT_EFS)))
    thread_list = parse_threads(threads)
    wl = parse_workloads(workloads)
    grid = tuple(sorted((float(s) for s in (selectivities or GRID)), reverse=True))
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    ds_meta = {"name": dataset, "n_base": int(len(base)), "n_queries": int(nq),
               "dim": int(base.shape[1]), "metric": metric, **info}
    log(f"[data] {ds_meta}")

    t0 = time.perf_counter()
    attrs = make_attributes(base, metric, grid, wl, seed=seed, log=log)
    points = make_points(attrs, queries, metric, wl, grid, seed=seed)
    attrs_s = time.perf_counter() - t0
    log(f"[attrs] {len(attrs.ints) + len(attrs.floats) + len(attrs.multi)} fields, "
        f"{len(points)} points, in {attrs_s:.1f} s")

    skipped, algos, rows = {}, [], []
    for name in parse_libs(libs):
        ok, why = available(name)
        if not ok:
            skipped[name] = why
            log(f"[skip] {name}: {why}")
            continue
        lib = make_lib(name, metric, base.shape[1])
        t0 = time.perf_counter()
        try:
            lib.build(base, attrs, all_cores())
        except Exception as e:                  # one broken library must not end the run
            skipped[name] = f"build failed: {type(e).__name__}: {e}"
            log(f"[skip] {name}: {skipped[name]}")
            lib.close()
            continue
        build_s = time.perf_counter() - t0
        rows.append({"kind": "build", "library": name, "family": lib.family,
                     "version": lib.version(), "params": lib.params(),
                     "threads": all_cores(), "build_s": build_s, "n_base": int(len(base))})
        log(f"[build] {name:13s} {build_s:7.1f} s")
        algos.append(lib)

    base_p, q_p = prepare_vectors(base, metric), prepare_vectors(queries, metric)
    gt_s = 0.0
    for pi, point in enumerate(points):
        t0 = time.perf_counter()
        # numpy brute force: independent of faiss, which the exact-subset peer uses
        point.gt = filtered_ground_truth(base_p, q_p, point, metric, k, use_faiss=False)
        gt_s += time.perf_counter() - t0
        sel = point.selectivity(nq)
        rows.append({"kind": "point", "workload": point.workload, "target": point.target,
                     **sel, "filter": point.describe(), "n_filters": len(point.specs),
                     "matches_min": int(point.matches(nq).min())})
        log(f"[{point.workload} s={point.target:g}] measured {sel['selectivity']:.4g} "
            f"{point.describe()} (gt {time.perf_counter() - t0:.1f} s, "
            f"elapsed {(time.perf_counter() - t_start) / 60:.1f} min)")
        for t in thread_list:
            try:
                rows += measure_point(algos, point, base, queries, k, efs, t, repeats,
                                      min_time, max_seconds, stop_recall, probe, pi, metric,
                                      log=log)
            except Exception as e:
                # a library failing at one point (e.g. an unsupported filter) is recorded,
                # the point is retried without it so the others still report
                bad = _find_failing(algos, point, queries, k, efs[0], t)
                if not bad:
                    raise
                for lib in bad:
                    why = f"search failed at {point.workload} s={point.target:g}: " \
                          f"{type(e).__name__}: {e}"
                    skipped.setdefault(lib.name, why)
                    log(f"[skip] {lib.name}: {why}")
                    algos.remove(lib)
                    lib.close()
                rows += measure_point(algos, point, base, queries, k, efs, t, repeats,
                                      min_time, max_seconds, stop_recall, probe, pi, metric,
                                      log=log)
        point.release()
    for lib in algos:
        lib.close()

    meta = {"suite": "filtered", "dataset": ds_meta, "k": k, "efs": efs, "threads": thread_list,
            "build_threads": all_cores(), "repeats": repeats, "min_time": min_time,
            "max_seconds": max_seconds, "stop_recall": stop_recall, "probe": probe,
            "workloads": wl, "selectivities": list(grid), "seed": seed,
            "attributes": attrs.describe(), "attributes_s": attrs_s, "ground_truth_s": gt_s,
            "libraries": [a.name for a in algos],
            "versions": {r["library"]: r["version"] for r in rows if r["kind"] == "build"},
            "skipped": skipped,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cores": all_cores(), "python": platform.python_version(),
                        "numpy": np.__version__},
            **_git_commit(), "argv": sys.argv, "wall_s": None}
    meta["wall_s"] = time.perf_counter() - t_start
    tabs = filter_report.tables(rows, meta)
    result = {"meta": meta, "rows": rows, "tables": tabs, "out": None, "plot": None}
    if out is not False:
        out = Path(out) if out is not None else \
            _default_out(dataset, "base_limit" in info, len(base), nq)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "rows": rows, "tables": tabs}, indent=1))
        result["out"] = str(out)
        if plot and any(r["kind"] == "filtered" for r in rows):
            result["plot"] = str(filter_report.plot_rows(rows, out.with_suffix(".png"), dataset))
    log(f"[done] {meta['wall_s'] / 60:.1f} min")
    return result


def _find_failing(algos, point, Q, k, ef, threads):
    """The libraries whose search raises on this point (probing a few queries)."""
    bad = []
    for lib in algos:
        try:
            lib.search(lib.prepare(point), Q[:min(8, len(Q))], k, ef if lib.is_graph else None,
                       threads)
        except Exception:
            bad.append(lib)
    return bad


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="bitgraph filtered-search benchmark",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default=default_dataset_name(), choices=dataset_names())
    p.add_argument("--base-limit", type=int, default=None, help="first N base vectors only")
    p.add_argument("--queries", type=int, default=DEFAULT_QUERIES, help="queries per point")
    p.add_argument("--workloads", default="all", help=f"comma list from {','.join(WORKLOADS)}")
    p.add_argument("--selectivities", type=float_list, default=list(GRID),
                   help="comma list of target selectivities")
    p.add_argument("--libs", default="all",
                   help=f"comma list from {sorted(LIBS)}, or 'all' = {','.join(DEFAULT_LIBS)}")
    p.add_argument("--threads", default="1,all", help="comma list of thread counts; 'all' = cores")
    p.add_argument("--ef", type=int_list, default=DEFAULT_EFS, help="comma list of search ef")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="seconds a batch repeats for within a round")
    p.add_argument("--max-seconds", type=float, default=2.0,
                   help="a batch projected past this runs on a prefix of the queries and ends "
                        "that library's ef sweep")
    p.add_argument("--stop-recall", type=float, default=0.99,
                   help="a library's ef sweep stops at the first ef reaching this recall")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="JSON path (default bench/results/filtered-<dataset>.json; "
                        "-b<n>-q<nq> appended for quick runs, which git ignores)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    a = p.parse_args(argv)
    res = run_filtered(dataset=a.dataset, base_limit=a.base_limit, n_queries=a.queries,
                       workloads=a.workloads, selectivities=a.selectivities, libs=a.libs,
                       threads=a.threads, efs=a.ef, k=a.k, repeats=a.repeats,
                       min_time=a.min_time, max_seconds=a.max_seconds,
                       stop_recall=a.stop_recall, seed=a.seed, out=a.out, plot=not a.no_plot)
    for key, table in res["tables"].items():
        if "R>=0.99" not in key:
            print(table + "\n")
    for name, why in res["meta"]["skipped"].items():
        print(f"skipped {name}: {why}")
    if res["out"]:
        print(f"results: {res['out']}" + (f"  plot: {res['plot']}" if res["plot"] else "")
              + "  (R>=0.99 tables: python -m bench.filter_report <json>)")
    return res


if __name__ == "__main__":
    main()
