"""The measurement protocol: build once, sweep ef with interleaved repeats, single-query latency.

* build: each index once, with all cores, timed; RSS growth around it as a memory cross-check.
* sweep: for each thread setting, ``repeats`` rounds; in every round each library runs its
  whole ef sweep (the full query set as one batch per ef), and the library order rotates from
  round to round, so slow phases of a shared, noisy machine hit every library alike. Within a
  round a point repeats its batch until ``min_time`` has passed (time per batch = mean). The
  figure per point is the median over rounds; recall@10 is taken from the first batch.
* latency: one query at a time, 1 thread, at the smallest ef whose recall reaches the target
  (0.95); queries are interleaved across libraries (query i runs on every library before i+1).
"""
from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np

from .adapters import BaseANN
from .datasets import Dataset
from .memory import settled_rss
from .metrics import id_recall_at_k, latency_stats, recall_at_k

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rotated(items: list, shift: int) -> list:
    """``items`` rotated left by ``shift`` (the interleaving order of a round)."""
    if not items:
        return []
    shift %= len(items)
    return items[shift:] + items[:shift]


def build(algo: BaseANN, ds: Dataset, threads: int, log: Log = _stderr) -> dict:
    """Fit ``algo`` on the base with ``threads`` threads; return the build row."""
    log(f"[build] building {algo.name} on {len(ds.base):,} x {ds.dim} "
        f"({threads} thread{'s' if threads != 1 else ''}) ...")
    rss0 = settled_rss()
    algo.set_threads(threads)
    t0 = time.perf_counter()
    algo.fit(ds.base)
    build_s = time.perf_counter() - t0
    rss1 = settled_rss()
    nbytes = algo.nbytes()
    row = {"kind": "build", "library": algo.name, "family": algo.family,
           "version": algo.version(), "params": algo.params(), "threads": int(threads),
           "build_s": build_s, "nbytes": nbytes, "nbytes_method": algo.nbytes_method,
           "bytes_per_vector": nbytes / len(ds.base), "rss_growth_bytes": rss1 - rss0,
           **algo.memory_extra(),
           "n_base": int(len(ds.base)), "dim": ds.dim}
    log(f"[build] {algo.name} done in {build_s:.1f} s: {nbytes / 2**20:.1f} MiB "
        f"({row['bytes_per_vector']:.0f} B/vector), RSS +{(rss1 - rss0) / 2**20:.1f} MiB")
    return row


def _timed_batch(algo: BaseANN, Q: np.ndarray, k: int, min_time: float
                 ) -> tuple[np.ndarray, float, float]:
    """Run the whole query set as one batch, repeated until ``min_time`` seconds have passed
    (fast points are otherwise a few ms and at the mercy of the scheduler); returns the ids
    of the first batch and the wall / CPU seconds per batch."""
    c0, t0 = time.process_time(), time.perf_counter()
    ids = algo.batch_query(Q, k)
    n = 1
    while time.perf_counter() - t0 < min_time:
        algo.batch_query(Q, k)
        n += 1
    wall = time.perf_counter() - t0
    return ids, wall / n, (time.process_time() - c0) / n


def sweep(algos: list[BaseANN], ds: Dataset, threads: int, efs: list[int], k: int,
          repeats: int, min_time: float = 0.2, log: Log = _stderr) -> list[dict]:
    """Interleaved repeated ef sweep at one thread setting; returns one row per (lib, ef)."""
    Q = ds.queries
    points = {a.name: ([e for e in efs] if a.is_graph else [None]) for a in algos}
    walls: dict = {}
    cpus: dict = {}
    recalls: dict = {}
    for a in algos:                                   # untimed warm-up (JIT, caches, pools)
        a.set_threads(threads)
        a.set_query_arguments(points[a.name][0])
        a.batch_query(Q[: min(len(Q), 200)], k)
    for r in range(repeats):
        for a in rotated(algos, r):
            t_lib = time.perf_counter()
            a.set_threads(threads)
            for ef in points[a.name]:
                a.set_query_arguments(ef)
                ids, wall, cpu = _timed_batch(a, Q, k, min_time)
                key = (a.name, ef)
                walls.setdefault(key, []).append(wall)
                cpus.setdefault(key, []).append(cpu)
                if key not in recalls:
                    recalls[key] = (recall_at_k(ids, ds.gt, ds.base, Q, ds.metric, k),
                                    id_recall_at_k(ids, ds.gt, k))
            rec = [recalls[(a.name, e)][0] for e in points[a.name]]
            qps = [len(Q) / walls[(a.name, e)][-1] for e in points[a.name]]
            log(f"[threads={threads} run {r + 1}/{repeats}] {a.name:14s} "
                f"{len(qps)} point(s) in {time.perf_counter() - t_lib:.1f} s: recall@{k} "
                f"{min(rec):.3f}-{max(rec):.3f}, QPS {min(qps):,.0f}-{max(qps):,.0f}")
    rows = []
    for a in algos:
        for ef in points[a.name]:
            w = np.asarray(walls[(a.name, ef)])
            c = np.asarray(cpus[(a.name, ef)])
            med = float(np.median(w))
            rows.append({"kind": "search", "library": a.name, "family": a.family,
                         "is_bitgraph": a.is_bitgraph, "is_graph": a.is_graph,
                         "threads": int(threads), "ef": ef, "k": int(k),
                         "recall": recalls[(a.name, ef)][0], "id_recall": recalls[(a.name, ef)][1],
                         "qps": len(Q) / med, "seconds_median": med,
                         "seconds_runs": w.tolist(),
                         "cpu_util": float(np.median(c / np.maximum(w, 1e-12))),
                         "n_queries": int(len(Q))})
    return rows


def choose_latency_ef(rows: list[dict], library: str, target: float) -> tuple[int | None, bool]:
    """Smallest ef of ``library`` whose recall >= target (else the best-recall ef, False)."""
    pts = [r for r in rows if r["kind"] == "search" and r["library"] == library]
    if not pts:
        return None, False
    first_threads = pts[0]["threads"]
    pts = [r for r in pts if r["threads"] == first_threads]
    ok = [r for r in pts if r["recall"] >= target]
    if ok:
        return min(ok, key=lambda r: (r["ef"] is not None, r["ef"] or 0))["ef"], True
    return max(pts, key=lambda r: r["recall"])["ef"], False


def latency(algos: list[BaseANN], ds: Dataset, rows: list[dict], k: int, n: int = 1000,
            target: float = 0.95, warmup: int = 20, log: Log = _stderr) -> list[dict]:
    """Single-query latency p50/p99 at 1 thread, queries interleaved across libraries."""
    n = min(n, len(ds.queries))
    chosen = {}
    for a in algos:
        ef, met = choose_latency_ef(rows, a.name, target)
        chosen[a.name] = (ef, met)
        a.set_threads(1)
        a.set_query_arguments(ef)
    for i in range(min(warmup, n)):
        for a in algos:
            a.query(ds.queries[i], k)
    times = {a.name: [] for a in algos}
    perf = time.perf_counter
    for i in range(n):
        q = ds.queries[i]
        for a in rotated(algos, i):
            t0 = perf()
            a.query(q, k)
            times[a.name].append(perf() - t0)
    out = []
    for a in algos:
        ef, met = chosen[a.name]
        rec = next((r["recall"] for r in rows if r["kind"] == "search"
                    and r["library"] == a.name and r["ef"] == ef), None)
        st = latency_stats(times[a.name])
        out.append({"kind": "latency", "library": a.name, "threads": 1, "ef": ef, "k": int(k),
                    "recall": rec, "recall_target": target, "target_met": met, **st})
        log(f"[latency] {a.name:14s} ef={ef} p50 {st['p50_us']:.0f} us  p99 {st['p99_us']:.0f} us")
    return out
