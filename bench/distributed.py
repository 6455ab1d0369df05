"""Beyond one machine: the sharded index on Ray against a single index of the same size.

    python -m bench.distributed                                  # text-like-384, first 100k
    python -m bench.distributed --n 10000 --queries 200          # a quick run
    python -m bench.distributed --out bench/results/distributed-text-like-384.json

Needs ``pip install -e ".[ray]"``. On one machine (a local Ray cluster of all cores):

1. build time: one index (all threads) and ``build_sharded`` at 2 shards with 1 and 2 workers;
2. scatter-gather cost: 2 shards on Ray (all cores each, taking turns at batches: the default;
   and, as before turns, side by side with cores / shards threads each) against one index of
   the same total size (all threads), HNSW at a fine ef grid, the systems interleaved within
   every repetition: batch QPS (all queries in one call) and single-query p50, each system at
   first ef reaching ``--target-recall``, those points then timed again head to head
   (interleaved, 2 x repeats + 1 rounds). Another system, the same two shard files loaded in
   this process and searched in turn with all threads (then the same merge), splits the
   overhead: what sharding the graph costs by itself, and what the Ray calls add; two more
   systems: 2 k-means shards searched with ``probe_margin`` (each query visits its nearest
   shard, and the other only when its centroid is about as near), the routing that visits fewer
   shards;
3. routing: hash against k-means at 4 shards, recall@10 and batch QPS at probe 1..4 and at
   probe margins (the shards a query visits, on average);
4. sizing: bytes per vector of a shard (float32, float16, 2-bit binary codes with the floats
   memory-mapped for the re-rank) and the measured per-shard QPS, extrapolated to 100M and 1B
   vectors of 384 dims (see :mod:`bench.distributed_report` for the formula).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import load_dataset
from .distributed_report import (
    LOCAL,
    MARGINS_2,
    MARGINS_4,
    SIDE_BY_SIDE,
    kmeans_system,
    point_at_target,
)
from .metrics import id_recall_at_k

K = 10
# k = 10: ef >= 10; steps of at most ~15% everywhere: a shard set and a single index reach
# 0.95 a few ef apart, and a coarse step hands one of them a point far past the target (on
# GloVe with steps 48 / 64 / 96 the single index needed 96, at 0.964, the shards 64, at 0.968)
EFS = (10, 11, 12, 13, 14, 16, 18, 20, 22, 24, 28, 32, 36, 40, 44, 48, 56, 64, 72, 80, 88, 96,
       112, 128, 144, 160, 192)


def _batch(search: Any, q: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    """(median QPS, ids) of the whole query set in one call."""
    times, ids = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids = search(q).ids
        times.append(time.perf_counter() - t0)
    return q.shape[0] / statistics.median(times), ids


def _single_p50(search: Any, q: np.ndarray, n: int) -> float:
    lat = []
    for row in q[:n]:
        t0 = time.perf_counter()
        search(row[None])
        lat.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(lat))


def _sweep(name: str, search: Any, ds: Any, q: np.ndarray, repeats: int, single_n: int,
           efs: tuple[int, ...], target: float) -> list[dict[str, Any]]:
    return _sweep_interleaved({name: search}, ds, q, repeats, single_n, efs, target)


# A batch of 2,000 queries takes ~0.1 s; a pass that short swung by +-25% on a shared 2-core
# VM (one index read 16.7k QPS at ef 13 and 26.4k at ef 14): each timed round repeats the batch
# for at least this long.
MIN_ROUND_S = 0.4


def _timed_round(search: Any, q: np.ndarray, ef: int) -> tuple[float, np.ndarray]:
    """(QPS, ids): the batch repeated for at least MIN_ROUND_S."""
    n, t0 = 0, time.perf_counter()
    while True:
        ids = search(q, ef).ids
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= MIN_ROUND_S:
            return n * q.shape[0] / elapsed, ids


def _sweep_interleaved(systems: dict[str, Any], ds: Any, q: np.ndarray, repeats: int,
                       single_n: int, efs: tuple[int, ...], target: float
                       ) -> list[dict[str, Any]]:
    """Each system at each ef: batch QPS as the median of ``repeats`` rounds in which every
    system runs once (interleaved: drift on a shared machine hits all alike), recall and
    single-query p50. Stops once every system is past the target by 0.03."""
    rows = []
    for ef in efs:
        qps: dict[str, list[float]] = {name: [] for name in systems}
        found: dict[str, np.ndarray] = {}
        for _ in range(repeats):
            for name, search in systems.items():
                rate, found[name] = _timed_round(search, q, ef)
                qps[name].append(rate)
        done = True
        for name, search in systems.items():
            rec = id_recall_at_k(found[name], ds.gt[: q.shape[0]], K)
            p50 = (_single_p50(lambda x, ef=ef, s=search: s(x, ef), q, single_n) if single_n
                   else float("nan"))
            rows.append({"part": "scatter", "system": name, "ef": ef,
                         "qps": statistics.median(qps[name]), "recall": rec, "p50_ms": p50})
            done = done and rec >= min(0.999, target + 0.03)
        if done:
            break
    return rows


def _head_to_head(systems: dict[str, Any], sweep: list[dict[str, Any]], q: np.ndarray,
                  repeats: int, target: float) -> list[dict[str, Any]]:
    """Each system at its first ef reaching the target (recall does not depend on timing, so
    the sweep chose it), timed again with all systems interleaved round by round. The sweep
    interleaves the systems at one ef; the equal-recall comparison pairs different ef, whose
    points the sweep timed up to a minute apart, and a fast stretch of the shared machine
    lifted every system at one ef by ~25% in one run."""
    chosen = {name: point_at_target(sweep, name, target) for name in systems}
    chosen = {name: p for name, p in chosen.items() if p is not None}
    rates: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(repeats):
        for name, p in chosen.items():
            rate, _ = _timed_round(systems[name], q, p["ef"])
            rates[name].append(rate)
    return [{"part": "at_target", "system": name, "ef": p["ef"], "recall": p["recall"],
             "p50_ms": p["p50_ms"], "qps": statistics.median(rates[name]),
             "rounds": rates[name]} for name, p in chosen.items()]


class _LocalShards:
    """The shard files of a manifest loaded in this process and searched in turn, each with
    ``threads`` native threads (as the shard actors of one node take turns), merged as the
    sharded index merges: the scatter-gather without Ray."""

    def __init__(self, manifest_file: Path, threads: int) -> None:
        import bitgraph as bg
        from bitgraph.distributed.manifest import manifest_path, read_manifest

        path = manifest_path(manifest_file)
        m = read_manifest(path)
        self.indexes = [bg.load(path.parent / e.file, mmap=True) for e in m.shards]
        self.threads = threads

    def search(self, q: np.ndarray, k: int, ef: int) -> Any:
        from bitgraph.distributed.merge import merge_results

        parts = [idx.search(q, k, ef=ef, threads=self.threads) for idx in self.indexes]
        return merge_results(q.shape[0], k, [(None, (r.ids, r.distances, r.plans, r.visited))
                                             for r in parts], partial=False)

    def close(self) -> None:
        self.indexes.clear()  # unmaps the files


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="text-like-384")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=200, help="queries timed one by one")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import bitgraph as bg
    import ray
    from bitgraph.distributed import ShardedIndex, build_sharded

    ds = load_dataset(args.dataset, max_base=args.n, max_queries=args.queries)
    x, q, n, dim = ds.base, ds.queries, len(ds.base), ds.dim
    ids = np.arange(n, dtype=np.int64)
    cores = os.cpu_count() or 1
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    work = Path(tempfile.mkdtemp(prefix="bg-dist-"))
    spec = {"kind": "hnsw", "metric": ds.metric, "M": 16, "ef_construction": 200}
    rows: list[dict[str, Any]] = []

    # 1. build
    t0 = time.perf_counter()
    single = bg.HNSWIndex(dim, metric=ds.metric, M=16, ef_construction=200)
    single.add(x, ids)
    rows.append({"part": "build", "system": "single index", "workers": 1, "threads": cores,
                 "seconds": time.perf_counter() - t0})
    paths = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        paths[workers] = build_sharded((ids, x), work / f"w{workers}", 2, index=spec,
                                       workers=workers, threads=max(1, cores // workers))
        rows.append({"part": "build", "system": "2 shards", "workers": workers,
                     "threads": max(1, cores // workers), "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)

    # 2. scatter-gather against one index of the same size; beside it 2 k-means shards where
    # each query visits its nearest shard and the other only when it is about as near
    # (probe_margin), the way to visit fewer shards than hash routing
    local = _LocalShards(Path(paths[2]), cores)
    km_path = build_sharded((ids, x), work / "km2", 2, index=spec, route="kmeans",
                            sample_size=min(n, 50_000))
    with ShardedIndex.open(paths[2]) as sharded, \
            ShardedIndex.open(paths[2], threads=max(1, cores // 2)) as side_by_side, \
            ShardedIndex.open(km_path) as km:
        systems = {"single index": lambda z, ef: single.search(z, K, ef=ef),
                   "2 shards": lambda z, ef: sharded.search(z, K, ef=ef),
                   SIDE_BY_SIDE: lambda z, ef: side_by_side.search(z, K, ef=ef),
                   LOCAL: lambda z, ef: local.search(z, K, ef)}
        for m in MARGINS_2:
            systems[kmeans_system(m)] = (lambda z, ef, m=m: km.search(z, K, ef=ef,
                                                                       probe_margin=m))
        sweep = _sweep_interleaved(systems, ds, q, args.repeats, args.single, EFS,
                                   args.target_recall)
        rows += sweep
        rows += _head_to_head(systems, sweep, q, 2 * args.repeats + 1, args.target_recall)
        first_shard = sharded.info()[0]
        shard_threads, shard_turns = first_shard["threads"], first_shard["turns"]
        km_counts = [i["count"] for i in km.info()]
        for m in MARGINS_2:
            rows.append({"part": "visits", "system": kmeans_system(m), "margin": m,
                         "shards": 2, "counts": km_counts,
                         "visits": float(km.router.visits(q, margin=m).sum(1).mean())})
    local.close()
    for r in (r for r in rows if r["part"] in ("scatter", "at_target")):
        print(r, flush=True)

    # 2b. the same comparison for exact (Flat) shards, whose work splits between shards: what
    # scatter-gather itself costs, apart from the extra graph walks of HNSW shards
    flat_single = bg.FlatIndex(dim, metric=ds.metric)
    flat_single.add(x, ids)
    qps_one, _ = _batch(lambda z: flat_single.search(z, K), q, args.repeats)
    flat_path = build_sharded((ids, x), work / "flat", 2, index={"kind": "flat",
                                                                 "metric": ds.metric})
    with ShardedIndex.open(flat_path) as flat_sharded:
        qps_two, found = _batch(lambda z: flat_sharded.search(z, K), q, args.repeats)
    rows.append({"part": "flat", "qps_single": qps_one, "qps_2_shards": qps_two,
                 "same_ids": bool(np.array_equal(found, flat_single.search(q, K).ids))})
    print(rows[-1], flush=True)
    del flat_single

    # 3. hash vs k-means at 4 shards
    ef_route = next((r["ef"] for r in rows if r["part"] == "scatter"
                     and r["system"] == "2 shards" and r["recall"] >= args.target_recall), 64)
    for route in ("hash", "kmeans"):
        p = build_sharded((ids, x), work / f"r-{route}", 4, index=spec, route=route,
                          sample_size=min(n, 50_000))
        with ShardedIndex.open(p) as sh:
            counts = [i["count"] for i in sh.info()]
            choices = ([(None, None)] if route == "hash" else
                       [(p, None) for p in (1, 2, 3, 4)] + [(None, m) for m in MARGINS_4])
            for probe, margin in choices:
                # the smallest ef (from the 2-shard one up) reaching the target: k-means
                # shards hold a query's neighbours together, so one shard must find most
                # of the k and needs a larger ef than hash shards that each hold a few
                for ef in [e for e in EFS if e >= ef_route]:
                    qps, found = _batch(lambda z, probe=probe, ef=ef, margin=margin: sh.search(
                        z, K, ef=ef, probe=probe, probe_margin=margin), q, args.repeats)
                    rec = id_recall_at_k(found, ds.gt[: q.shape[0]], K)
                    if rec >= args.target_recall:
                        break
                visits = sh.router.visits(q, probe, margin)
                rows.append({"part": "route", "route": route, "probe": probe or 4,
                             "margin": margin, "shards": 4,
                             "visits": 4.0 if visits is None else float(visits.sum(1).mean()),
                             "ef": ef, "qps": qps, "recall": rec, "counts": counts})
                print(rows[-1], flush=True)

    # 4. per-shard figures for the sizing table (one shard = this n): bytes per vector and
    # batch QPS at the target recall, per storage (each measured, none borrowed)
    def at_target(search: Any, efs: tuple[int, ...]) -> float | None:
        found = _sweep("shard", search, ds, q, args.repeats, 0, efs, args.target_recall)
        point = point_at_target(found, "shard", args.target_recall)
        return point["qps"] if point else None

    for storage in ("float32", "float16"):
        idx = single if storage == "float32" else bg.HNSWIndex(
            dim, metric=ds.metric, M=16, ef_construction=200, storage=storage)
        if storage != "float32":
            idx.add(x, ids)
        rows.append({"part": "shard", "storage": storage, "n": n,
                     "ram_bytes_per_vector": idx.nbytes / n, "disk_bytes_per_vector": 0.0,
                     "qps": at_target(lambda z, ef, idx=idx: idx.search(z, K, ef=ef), EFS)})
        print(rows[-1], flush=True)
    (work / "rerank").mkdir()
    binz = bg.RecurrentBinarizer(dim, loops=5, code_dim=max(1, dim // 3)).fit(x[:20_000])
    bidx = bg.BinaryIndex(binz, graph="hnsw", M=32, rerank="mmap",
                          rerank_dir=str(work / "rerank"), metric=ds.metric)
    bidx.add(x, ids)
    rows.append({"part": "shard", "storage": "binary-2bit+mmap", "n": n,
                 "ram_bytes_per_vector": bidx.nbytes / n,
                 "disk_bytes_per_vector": (bidx.mapped_nbytes or 4 * dim * n) / n,
                 "qps": at_target(lambda z, ef: bidx.search(z, K, ef=ef), EFS)})
    print(rows[-1], flush=True)

    # 5. how QPS at the target recall falls with size: the same index kind on the first n/4
    # rows (its own exact ground truth), for the sizing table's exponent
    n_small = n // 4
    small = bg.HNSWIndex(dim, metric=ds.metric, M=16, ef_construction=200)
    small.add(x[:n_small], ids[:n_small])
    exact = bg.FlatIndex(dim, metric=ds.metric)
    exact.add(x[:n_small], ids[:n_small])
    gt_small = exact.search(q, K).ids
    qps_small = None
    for ef in EFS:  # timed as the scatter sweep times the full-size index: rounds >= 0.4 s
        rates, found = [], None
        for _ in range(args.repeats):
            rate, found = _timed_round(lambda z, e, ef=ef: small.search(z, K, ef=ef), q, ef)
            rates.append(rate)
        if id_recall_at_k(found, gt_small, K) >= args.target_recall:
            qps_small = statistics.median(rates)
            break
    best = point_at_target(rows, "single index", args.target_recall)
    meta = {"suite": "distributed", "command": "python -m bench.distributed "
            + " ".join(sys.argv[1:] if argv is None else argv), "date": time.strftime("%Y-%m-%d"),
            "commit": _commit(), "cpus": cores, "ray": ray.__version__,
            "platform": platform.platform(), "dataset": ds.describe(),
            "params": {"M": 16, "ef_construction": 200, "k": K, "shard_threads": shard_threads,
                       "shard_turns": shard_turns,
                       "target_recall": args.target_recall, "ef_route": ef_route},
            "per_shard_qps": best["qps"] if best else None,
            "size_scaling": {"n_small": n_small, "qps_small": qps_small}}
    ray.shutdown()
    result = {"meta": meta, "rows": rows}
    from .distributed_report import section

    print(section(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(f"wrote {args.out}")
    return result


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
