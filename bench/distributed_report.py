"""The RESULTS.md section of a bench.distributed run, with the sizing table (no Ray needed)."""

from __future__ import annotations

import math
from typing import Any

NODE_RAM_GIB, USABLE, NODE_CORES = 256, 0.75, 32
SIZES = (100_000_000, 1_000_000_000)
FORMULA = (
    "vectors per shard = floor(0.75 x 256 GiB / RAM bytes per vector), one shard per node; "
    "shards = nodes = ceil(N / vectors per shard); expected batch QPS = the storage's measured "
    "QPS at the target recall x (32 / measured cores) x (n measured / vectors per shard)^a / "
    "(1 + scatter-gather overhead), where a is measured: the fall of QPS at the target recall "
    "from n/4 to n rows (QPS ~ n^-a); every query visits every shard (hash routing; k-means "
    "with probe p < shards divides the work per query by about shards / p); replicas multiply "
    "QPS, not capacity. An extrapolation over 3-4 orders of magnitude from one small machine: "
    "a planning figure, not a measurement (at 100M rows memory latency, not cores, may bound it)")


LOCAL = "2 shards in one process"
# the hash shards as before node turns: each with cores / shards threads, searching at once
SIDE_BY_SIDE = "2 shards, side by side"
# probe_margin of the k-means systems: beside the 2 hash shards, and at 4 shards (0.15 missed
# recall 0.95 at every ef there: its border queries rarely reach the second shard)
MARGINS_2, MARGINS_4 = (0.3,), (0.2, 0.3, 0.5)


def kmeans_system(margin: float) -> str:
    return f"2 shards, k-means, probe_margin {margin:g}"


def point_at_target(rows: list[dict], system: str, target: float) -> dict | None:
    """A system's point at the target recall: its head-to-head row when the run has one (the
    chosen points timed again, interleaved), else its smallest ef reaching the target in the
    sweep. Not the fastest point at or above the target: QPS falls with ef, so a faster point
    at a larger ef is a noise spike, and taking the maximum picks spikes."""
    final = next((r for r in rows if r["part"] == "at_target" and r["system"] == system
                  and r["recall"] >= target), None)
    if final is not None:
        return final
    return min((r for r in rows if r["part"] == "scatter" and r["system"] == system
                and r["recall"] >= target), key=lambda r: r["ef"], default=None)


def size_exponent(result: dict[str, Any]) -> float | None:
    """a in QPS ~ n^-a: from the single index's QPS at the target on n/4 rows (meta) to its QPS
    at the target on n rows (the scatter sweep)."""
    meta = result["meta"]
    sc = meta.get("size_scaling") or {}
    one = point_at_target(result["rows"], "single index", meta["params"]["target_recall"])
    if not sc.get("qps_small") or one is None:
        return None
    ratio = meta["dataset"]["n_base"] / sc["n_small"]
    return max(0.0, math.log(sc["qps_small"] / one["qps"]) / math.log(ratio))


def summary(result: dict[str, Any]) -> dict[str, Any]:
    rows, target = result["rows"], result["meta"]["params"]["target_recall"]
    one = point_at_target(rows, "single index", target)
    two = point_at_target(rows, "2 shards", target)
    out: dict[str, Any] = {}
    if one and two:
        out["batch_overhead"] = one["qps"] / two["qps"] - 1
        out["single_query_p50_ratio"] = two["p50_ms"] / one["p50_ms"]
        out["single_ef"], out["shards_ef"] = one["ef"], two["ef"]
    side = point_at_target(rows, SIDE_BY_SIDE, target)
    if one and side:
        out["side_by_side_overhead"] = one["qps"] / side["qps"] - 1
    local = point_at_target(rows, LOCAL, target)
    if one and local:  # the same shard files in this process: sharding's own cost
        out["inprocess_overhead"] = one["qps"] / local["qps"] - 1
        if two:  # and what the Ray calls add to it
            out["ray_overhead"] = local["qps"] / two["qps"] - 1
    km2 = []
    for v in (r for r in rows if r["part"] == "visits"):
        at = point_at_target(rows, v["system"], target)
        if one and at:
            km2.append({"margin": v["margin"], "visits": v["visits"], "ef": at["ef"],
                        "recall": at["recall"], "overhead": one["qps"] / at["qps"] - 1})
    if km2:
        out["kmeans_2_shards"] = km2
    flat = next((r for r in rows if r["part"] == "flat"), None)
    if flat:
        out["flat_overhead"] = flat["qps_single"] / flat["qps_2_shards"] - 1
        out["flat_same_ids"] = flat["same_ids"]
    hashed = next((r for r in rows if r["part"] == "route" and r["route"] == "hash"
                   and r["recall"] >= target), None)
    km = [r for r in rows if r["part"] == "route" and r["route"] == "kmeans"
          and r["recall"] >= target and r["probe"] < r["shards"] and not r.get("margin")]
    if km:
        best = min(km, key=lambda r: r["probe"])
        out["kmeans_probe"] = best["probe"]
        out["kmeans_visited_ratio"] = best["probe"] / best["shards"]
        out["kmeans_recall"] = best["recall"]
        if hashed:
            out["kmeans_qps_vs_hash"] = best["qps"] / hashed["qps"]
    margins = [r for r in rows if r["part"] == "route" and r.get("margin")
               and r["recall"] >= target]
    if margins:
        best = max(margins, key=lambda r: r["qps"])
        out["kmeans_margin"] = {k: best[k] for k in ("margin", "visits", "recall", "ef", "qps")}
        if hashed:
            out["kmeans_margin"]["qps_vs_hash"] = best["qps"] / hashed["qps"]
    return out


def sizing(result: dict[str, Any]) -> list[dict[str, Any]]:
    meta, out = result["meta"], []
    n_meas = meta["dataset"]["n_base"]
    exponent = size_exponent(result)
    overhead = max(0.0, summary(result).get("batch_overhead", 0.0))
    for r in (r for r in result["rows"] if r["part"] == "shard"):
        per_shard = int(USABLE * NODE_RAM_GIB * (1 << 30) // r["ram_bytes_per_vector"])
        for n in SIZES:
            shards = math.ceil(n / per_shard)
            size = min(per_shard, n)
            qps = r.get("qps")
            est = (None if qps is None or exponent is None else
                   qps * NODE_CORES / meta["cpus"] * (n_meas / size) ** exponent
                   / (1 + overhead))
            out.append({"storage": r["storage"], "N": n, "ram_bpv": r["ram_bytes_per_vector"],
                        "disk_bpv": r["disk_bytes_per_vector"],
                        "node_bytes": size * r["ram_bytes_per_vector"], "shards": shards,
                        "nodes": shards, "qps": est})
    return out


def section(result: dict[str, Any]) -> str:
    meta, rows = result["meta"], result["rows"]
    ds, p = meta["dataset"], meta["params"]
    lines = [f"## Beyond one machine: {ds['name']} ({ds['n_base']:,} x {ds['dim']}, "
             f"{ds['metric']}, {ds['n_queries']:,} queries, k = {p['k']})", "",
             f"`{meta['command']}` — {meta['date']}, commit {meta['commit']}, {meta['cpus']} "
             f"CPUs, Ray {meta['ray']}, HNSW M = {p['M']}, ef_construction = "
             f"{p['ef_construction']}; shards search with {p['shard_threads']} thread(s) each"
             + (", the shards of the node taking turns at batches" if p.get("shard_turns")
                else " (cores / shards)")
             + (f" (\"{SIDE_BY_SIDE}\": {max(1, meta['cpus'] // 2)} each, at once)"
                if any(r.get("system") == SIDE_BY_SIDE for r in rows) else "")
             + ", the single index with all cores.", "",
             "| build | workers | threads per shard | seconds |", "| --- | ---: | ---: | ---: |"]
    for r in rows:
        if r["part"] == "build":
            lines.append(f"| {r['system']} | {r['workers']} | {r['threads']} | "
                         f"{r['seconds']:.1f} |")
    lines += ["", "| search | ef | recall@10 | batch QPS | single-query p50 ms |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if r["part"] == "scatter":
            lines.append(f"| {r['system']} | {r['ef']} | {r['recall']:.4f} | {r['qps']:,.0f} | "
                         f"{r['p50_ms']:.2f} |")
    final = [r for r in rows if r["part"] == "at_target"]
    if final:
        lines += ["", f"At recall@10 >= {p['target_recall']}, head to head: each system at its "
                  "first ef reaching the target, timed again with the systems interleaved "
                  f"round by round (median of {len(final[0]['rounds'])} rounds of >= 0.4 s):",
                  "", "| system | ef | recall@10 | batch QPS | against the single index |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        base = next((r["qps"] for r in final if r["system"] == "single index"), None)
        for r in final:
            vs = f"{100 * (base / r['qps'] - 1):+.1f}%" if base else "-"
            lines.append(f"| {r['system']} | {r['ef']} | {r['recall']:.4f} | {r['qps']:,.0f} | "
                         f"{'-' if r['system'] == 'single index' else vs} |")
    lines += ["", "| routing (4 shards) | probe | probe_margin | shards visited per query | "
              "ef (smallest reaching the target) | recall@10 | batch QPS | items per shard |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if r["part"] == "route":
            margin = "-" if r.get("margin") is None else f"{r['margin']:g}"
            visits = r.get("visits", float(r["probe"]))
            lines.append(f"| {r['route']} | {r['probe'] if r.get('margin') is None else '-'} | "
                         f"{margin} | {visits:.2f} | {r['ef']} | {r['recall']:.4f} | "
                         f"{r['qps']:,.0f} | {', '.join(f'{c:,}' for c in r['counts'])} |")
    s = summary(result)
    lines.append("")
    if "batch_overhead" in s:
        lines.append(f"- batched scatter-gather overhead at recall@10 >= {p['target_recall']} "
                     f"(2 shards against one index of the same size): "
                     f"{100 * s['batch_overhead']:+.1f}% (negative: the shards are faster); "
                     f"single-query p50 ratio {s['single_query_p50_ratio']:.2f}x "
                     f"(ef {s['single_ef']} single, {s['shards_ef']} per shard)")
    if "side_by_side_overhead" in s:
        lines.append(f"- the same hash shards side by side (one actor per shard, cores / "
                     f"shards threads each, searching at once: before node turns): "
                     f"{100 * s['side_by_side_overhead']:+.1f}%")
    if "inprocess_overhead" in s:
        ray_part = (f"; the Ray calls add {100 * s['ray_overhead']:+.1f}% on top of the "
                    "in-process shards" if "ray_overhead" in s else "")
        lines.append(f"- the same two shard files searched in one process (in turn, all "
                     f"threads, the same merge, no Ray): {100 * s['inprocess_overhead']:+.1f}% against the "
                     f"single index: the cost of splitting the graph itself (each query walks "
                     f"two graphs, each at an ef >= k){ray_part}")
    if "flat_overhead" in s:
        lines.append(f"- the same for exact (Flat) shards, whose work splits between shards: "
                     f"{100 * s['flat_overhead']:+.1f}% (ids identical to the single Flat "
                     f"index: {'yes' if s['flat_same_ids'] else 'no'}): the scatter-gather cost "
                     "itself; the rest of the HNSW figure is each shard walking its own graph")
    if "kmeans_probe" in s:
        vs = (f"; its batch QPS {s['kmeans_qps_vs_hash']:.2f}x hash routing's at the target"
              if "kmeans_qps_vs_hash" in s else "")
        lines.append(f"- k-means routing: recall@10 {s['kmeans_recall']:.4f} at probe "
                     f"{s['kmeans_probe']} of 4 (visits {s['kmeans_visited_ratio']:.2f} of the "
                     f"shards){vs}")
    for km in s.get("kmeans_2_shards", []):
        lines.append(f"- 2 k-means shards with probe_margin {km['margin']:g} (a query visits "
                     f"{km['visits']:.2f} shards on average): {100 * km['overhead']:+.1f}% "
                     f"against the single index at recall@10 >= {p['target_recall']} (ef "
                     f"{km['ef']}, recall {km['recall']:.4f})")
    if "kmeans_margin" in s:
        m = s["kmeans_margin"]
        vs = (f"; {m['qps_vs_hash']:.2f}x hash routing's batch QPS" if "qps_vs_hash" in m
              else "")
        lines.append(f"- 4 k-means shards with probe_margin {m['margin']:g}: recall@10 "
                     f"{m['recall']:.4f} visiting {m['visits']:.2f} of 4 shards per query{vs}")
    lines += ["", f"Sizing for {ds['dim']}-dim vectors from the measured per-shard figures "
              f"(bytes per vector and batch QPS at recall@10 >= {p['target_recall']} per "
              f"storage at n = {ds['n_base']:,} on {meta['cpus']} cores; size exponent a = "
              f"{_exponent(result)}). Node: {NODE_RAM_GIB} GiB RAM, {NODE_CORES} cores.", "",
              f"Formula: {FORMULA}.", "",
              "| storage | N | RAM B/vector | disk B/vector (mmap) | RAM per node | shards = "
              "nodes | expected batch QPS |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sizing(result):
        lines.append(f"| {r['storage']} | {r['N']:,} | {r['ram_bpv']:.0f} | {r['disk_bpv']:.0f} "
                     f"| {r['node_bytes'] / (1 << 30):.0f} GiB | {r['shards']} | "
                     f"{'below the target recall' if r['qps'] is None else format(r['qps'], ',.0f')} |")
    return "\n".join(lines) + "\n"


def _exponent(result: dict[str, Any]) -> str:
    meta = result["meta"]
    a = size_exponent(result)
    if a is None:
        return "not measured"
    one = point_at_target(result["rows"], "single index", meta["params"]["target_recall"])
    sc = meta["size_scaling"]
    return (f"{a:.2f}, from {sc['qps_small']:,.0f} QPS at {sc['n_small']:,} rows to "
            f"{one['qps']:,.0f} at {meta['dataset']['n_base']:,}")
