"""The retrieval service under load: `bitgraph serve` beside Chroma's own server.

    python -m bench.service                     # 100k x 384 text-like, concurrency 1,8,32,64
    python -m bench.service --n 100000 --queries 1000 --duration 4 --repeats 3 \\
        --chroma-bin /path/to/chroma --out bench/results/service.json

Needs ``pip install -e ".[server,service-bench]"`` (chromadb brings `chroma run`; uvloop a
cheaper client loop). Closed-loop single-query requests (one keep-alive HTTP connection per
worker, see bench/service_load.py) at each concurrency, for:

- ``bitgraph in-process``: the same index, loaded from the server's snapshot, searched by
  that many threads in this process (no HTTP: the ceiling), and its batched QPS (all queries
  in one ``search`` call, all cores);
- ``bitgraph serve``: base64 vectors; ``bitgraph serve, JSON vectors``; ``bitgraph serve,
  batching off`` (a second server on a copy of the data, ``--no-batching``);
- ``Chroma server``: `chroma run` (hnswlib inside) with the same M / ef_construction, fed the
  same vectors, queried over its REST API with JSON vectors.

Each system's ef is the smallest of the grid that reaches ``--target-recall`` (recall@10
against exact neighbours) on the query set; the table reports the recall each measurement
actually got. Targets and concurrencies are interleaved within a repetition; figures are
medians over ``--repeats`` repetitions. All processes share this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .datasets import load_dataset
from .service_report import plot, section
from .service_load import LoadResult, run_http, run_threads
from .service_targets import (ChromaCollection, Server, bitgraph_batch_ids, bitgraph_ids,
                              bitgraph_requests, build_bitgraph, chroma_binary, chroma_ids,
                              start_bitgraph, start_chroma)

EF_GRID = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
K = 10
INPROC, SERVE, SERVE_JSON, SERVE_OFF, CHROMA = ("bitgraph in-process", "bitgraph serve",
                                                "bitgraph serve, JSON vectors",
                                                "bitgraph serve, batching off", "Chroma server")


def recall_at_k(ids: np.ndarray, gt: np.ndarray, k: int = K) -> float:
    return float(np.mean([len(set(a[:k].tolist()) & set(b[:k].tolist())) / k
                          for a, b in zip(ids, gt)]))


def choose_ef(recall_of: Callable[[int], float], target: float) -> tuple[int, float, list]:
    """The smallest ef of the grid reaching ``target`` (the largest when none does)."""
    sweep = []
    for ef in EF_GRID:
        r = recall_of(ef)
        sweep.append((ef, r))
        if r >= target:
            return ef, r, sweep
    return EF_GRID[-1], sweep[-1][1], sweep


def _loaded_snapshot(data_dir: Path) -> Path:
    coll = data_dir / "collections" / "bench"
    gen = (coll / "CURRENT").read_text().strip()
    return coll / f"snap-{gen}" / "index.bg"


def _measured_recall(res: LoadResult, parse: Callable[[bytes], Any], gt: np.ndarray) -> float:
    if not res.bodies:
        return float("nan")
    got = [(qi, np.asarray(parse(b), dtype=np.int64)) for qi, b in res.bodies]
    return float(np.mean([len(set(ids[:K].tolist()) & set(gt[qi, :K].tolist())) / K
                          for qi, ids in got]))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import bitgraph as bg

    ds = load_dataset(args.dataset, max_base=args.n, max_queries=args.queries)
    q, gt = ds.queries, ds.gt
    work = Path(tempfile.mkdtemp(prefix="bench-service-", dir=args.work_dir))
    servers: list[Server] = []
    meta: dict[str, Any] = {"suite": "service", "dataset": ds.describe(),
                            "command": "python -m bench.service " + " ".join(args.argv),
                            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "machine": platform.node(), "cpus": _cpus(),
                            "commit": _commit(), "params": {"M": args.M,
                                                            "ef_construction": args.efc,
                                                            "k": K,
                                                            "target_recall": args.target_recall}}
    try:
        print(f"[service] building bitgraph serve on {len(ds.base):,} x {ds.dim}", flush=True)
        a_dir = work / "bitgraph-a"
        s = start_bitgraph(a_dir, batching=True)
        meta["build_s"] = {"bitgraph serve": build_bitgraph(s, ds.base, ds.metric, args.M,
                                                            args.efc)}
        s.stop()
        shutil.copytree(a_dir, work / "bitgraph-b")
        serve_on = start_bitgraph(a_dir, batching=True)
        serve_off = start_bitgraph(work / "bitgraph-b", batching=False)
        servers += [serve_on, serve_off]
        index = bg.load(_loaded_snapshot(a_dir))
        ef_bg, rec_bg, sweep_bg = choose_ef(
            lambda ef: recall_at_k(bitgraph_batch_ids(serve_on, q, K, ef), gt), args.target_recall)
        meta["ef"] = {"bitgraph": ef_bg}
        meta["sweep"] = {"bitgraph": sweep_bg}
        print(f"[service] bitgraph ef={ef_bg} (recall {rec_bg:.4f})", flush=True)

        requests: dict[str, tuple[Any, Any]] = {
            SERVE: (serve_on, bitgraph_requests(q, K, ef_bg, "base64")),
            SERVE_JSON: (serve_on, bitgraph_requests(q, K, ef_bg, "json")),
            SERVE_OFF: (serve_off, bitgraph_requests(q, K, ef_bg, "base64")),
        }
        parsers: dict[str, Callable[[bytes], Any]] = {
            SERVE: bitgraph_ids, SERVE_JSON: bitgraph_ids, SERVE_OFF: bitgraph_ids,
            INPROC: lambda b: np.frombuffer(b, dtype=np.int64)}

        chroma = chroma_binary(args.chroma_bin)
        if chroma and not args.no_chroma:
            print("[service] building Chroma", flush=True)
            cs = start_chroma(chroma, work / "chroma")
            servers.append(cs)
            cc = ChromaCollection(cs, "bench", ds.metric, args.M, args.efc, 64)
            meta["build_s"]["Chroma server"] = cc.add(ds.base)

            current = [64]

            def chroma_recall(ef: int) -> float:
                if ef != current[0]:
                    cc.set_ef(ef)
                    current[0] = ef
                return recall_at_k(cc.query_ids(q, K), gt)

            ef_c, rec_c, sweep_c = choose_ef(chroma_recall, args.target_recall)
            if ef_c != current[0]:
                cc.set_ef(ef_c)
            meta["ef"]["Chroma server"] = ef_c
            meta["sweep"]["Chroma server"] = sweep_c
            print(f"[service] Chroma ef_search={ef_c} (recall {rec_c:.4f})", flush=True)
            requests[CHROMA] = (cs, cc.requests(q, K))
            parsers[CHROMA] = chroma_ids
        else:
            print("[service] Chroma not found (pip install chromadb, or --chroma-bin): "
                  "measured without it", flush=True)

        def inproc_one(i: int) -> np.ndarray:
            return index.search(q[i], K, ef=ef_bg, threads=1).ids[0]

        rows: list[dict[str, Any]] = []
        batched: list[float] = []
        for rep in range(args.repeats):
            # one pass of the query set takes ~50 ms: the median of 5 passes per repeat
            passes = []
            for _ in range(5):
                t0 = time.perf_counter()
                index.search(q, K, ef=ef_bg)
                passes.append(len(q) / (time.perf_counter() - t0))
            batched.append(statistics.median(passes))
            for conc in args.concurrency:
                for target in [INPROC, *requests]:
                    if target == INPROC:
                        res = run_threads(inproc_one, len(q), conc, args.duration)
                    else:
                        server, reqs = requests[target]
                        res = run_http("127.0.0.1", server.port, reqs, conc, args.duration)
                    row = {"target": target, "concurrency": conc, "repeat": rep,
                           **res.summary(), "recall": _measured_recall(res, parsers[target], gt)}
                    rows.append(row)
                    print(f"[service] rep {rep} c={conc:>2} {target:<30} {row['qps']:>8.0f} "
                          f"QPS p50 {row['p50_ms']:.2f} ms p99 {row['p99_ms']:.2f} ms "
                          f"recall {row['recall']:.4f}", flush=True)
        meta["inprocess_batched_qps"] = batched
        return {"meta": meta, "rows": rows, "summary": summarize(rows, batched)}
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


def summarize(rows: list[dict[str, Any]], batched: list[float]) -> dict[str, Any]:
    """Medians per (target, concurrency), and the issue's comparisons."""
    cells: dict[tuple[str, int], dict[str, float]] = {}
    for key in {(r["target"], r["concurrency"]) for r in rows}:
        sel = [r for r in rows if (r["target"], r["concurrency"]) == key]
        cells[key] = {m: statistics.median(r[m] for r in sel)
                      for m in ("qps", "p50_ms", "p99_ms", "recall")}
    out: dict[str, Any] = {"cells": [{"target": t, "concurrency": c, **v}
                                     for (t, c), v in sorted(cells.items())],
                           "inprocess_batched_qps": statistics.median(batched)}

    def get(t: str, c: int, m: str) -> float | None:
        return cells.get((t, c), {}).get(m)

    checks = {}
    if get(CHROMA, 32, "qps"):
        checks["serve_vs_chroma_qps_c32"] = get(SERVE, 32, "qps") / get(CHROMA, 32, "qps")
        concs = sorted({c for t, c in cells if t == CHROMA})
        checks["serve_p99_below_chroma_every_c"] = all(
            get(SERVE, c, "p99_ms") < get(CHROMA, c, "p99_ms") for c in concs)
        checks["recall_serve_c32"] = get(SERVE, 32, "recall")
        checks["recall_chroma_c32"] = get(CHROMA, 32, "recall")
    if get(SERVE_OFF, 64, "qps"):
        checks["batching_on_vs_off_qps_c64"] = get(SERVE, 64, "qps") / get(SERVE_OFF, 64, "qps")
    if get(SERVE_OFF, 1, "p50_ms") is not None:
        checks["batching_added_p50_ms_c1"] = get(SERVE, 1, "p50_ms") - get(SERVE_OFF, 1, "p50_ms")
    if get(SERVE, 64, "qps"):
        checks["serve_c64_vs_inprocess_batched"] = get(SERVE, 64, "qps") / out[
            "inprocess_batched_qps"]
    out["checks"] = checks
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="text-like-384")
    p.add_argument("--n", type=int, default=100_000, help="base vectors (first n)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                   default=[1, 8, 32, 64])
    p.add_argument("--duration", type=float, default=4.0, help="seconds per measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--target-recall", type=float, default=0.95)
    p.add_argument("-M", "--M", type=int, default=16)
    p.add_argument("--efc", type=int, default=200, help="ef_construction")
    p.add_argument("--chroma-bin", default=None, help="the `chroma` executable (default: PATH)")
    p.add_argument("--no-chroma", action="store_true")
    p.add_argument("--work-dir", default=None, help="where the servers keep their data")
    p.add_argument("--out", default="bench/results/service.json")
    p.add_argument("--plot", default="bench/results/service.png")
    args = p.parse_args(argv)
    args.argv = argv
    result = run(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    if args.plot:
        plot(result, Path(args.plot))
    print(section(result))


if __name__ == "__main__":
    main()
