"""Markdown tables and the PNG of the filtered-search benchmark (rows written by bench.filtered).

Per workload and thread setting, one row per selectivity: each library's best QPS among its
points with recall@10 >= 0.95 (or 0.99), bitgraph-f32's ratio to the best graph peer (hnswlib,
faiss-hnsw) and to exact-subset, its plan and nodes visited at that point. A checks table
counts, per library, the non-matching ids returned and the queries that got fewer than
min(k, matches) results. The plot: best QPS at recall >= 0.95 against measured selectivity,
log-log, one panel per workload (a row of panels per thread setting).

    python -m bench.filter_report bench/results/filtered-glove-50-angular.json [-o out.png]
"""
from __future__ import annotations

import json
from pathlib import Path

from .filter_peers import BITGRAPH_MAIN, EXACT_PEER, GRAPH_PEERS
from .filter_workloads import WORKLOAD_TEXT

LEVELS = (0.95, 0.99)


def _search(rows):
    return [r for r in rows if r["kind"] == "filtered"]


def _libraries(rows) -> list[str]:
    return list(dict.fromkeys(r["library"] for r in _search(rows)))


def _workloads(rows) -> list[str]:
    return list(dict.fromkeys(r["workload"] for r in _search(rows)))


def best_point(rows, workload, target, library, threads, level) -> dict | None:
    """The highest-QPS row of ``library`` at this point with recall >= level."""
    pts = [r for r in _search(rows) if r["workload"] == workload and r["target"] == target
           and r["library"] == library and r["threads"] == threads and r["recall"] >= level]
    return max(pts, key=lambda r: r["qps"]) if pts else None


def max_recall(rows, workload, target, library, threads) -> float | None:
    rs = [r["recall"] for r in _search(rows) if r["workload"] == workload
          and r["target"] == target and r["library"] == library and r["threads"] == threads]
    return max(rs) if rs else None


def plan_text(row: dict | None) -> str:
    if not row or not row.get("plans"):
        return "—"
    total = sum(row["plans"].values())
    parts = sorted(row["plans"].items(), key=lambda kv: -kv[1])
    return " · ".join(f"{p} {100 * c / total:.0f}%" for p, c in parts)


def _qps(q):
    return f"{q:,.0f}"


def _ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def _points(rows, workload, threads):
    out = {}
    for r in _search(rows):
        if r["workload"] == workload and r["threads"] == threads:
            out.setdefault(r["target"], r)
    return sorted(out.items(), key=lambda kv: -kv[0])


def workload_table(rows: list[dict], workload: str, threads: int, level: float = 0.95) -> str:
    libs = _libraries(rows)
    head = (["s", "measured s"] + [f"{lib}" for lib in libs]
            + [f"{BITGRAPH_MAIN} vs best graph peer", f"vs {EXACT_PEER}",
               f"{BITGRAPH_MAIN} plan", "visited/q"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for target, any_row in _points(rows, workload, threads):
        cells = [f"{target:g}", f"{any_row['selectivity']:.4g}"]
        best = {}
        for lib in libs:
            b = best_point(rows, workload, target, lib, threads, level)
            best[lib] = b
            if b is not None:
                cells.append(_qps(b["qps"]))
            else:
                mr = max_recall(rows, workload, target, lib, threads)
                cells.append("—" if mr is None else f"— (R {mr:.2f})")
        bg = best.get(BITGRAPH_MAIN)
        peers = [(best[p]["qps"], p) for p in GRAPH_PEERS if best.get(p)]
        if bg is None:
            vs_peer = "—"
        elif peers:
            q, p = max(peers)
            vs_peer = f"{bg['qps'] / q:.2f}x ({p})"
        elif any(p in libs for p in GRAPH_PEERS):
            vs_peer = f"peers < R{level:.2f}"
        else:
            vs_peer = "—"
        ex = best.get(EXACT_PEER)
        cells += [vs_peer, _ratio(bg["qps"] if bg else None, ex["qps"] if ex else None)]
        if bg is None:       # plan where bitgraph got closest
            pts = [r for r in _search(rows) if r["workload"] == workload
                   and r["target"] == target and r["library"] == BITGRAPH_MAIN
                   and r["threads"] == threads]
            bg_show = max(pts, key=lambda r: r["recall"]) if pts else None
        else:
            bg_show = bg
        cells.append(plan_text(bg_show))
        v = bg_show.get("visited_mean") if bg_show else None
        cells.append("—" if v is None else f"{v:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks_table(rows: list[dict]) -> str:
    """Per library: points measured, the points / ids / queries breaking exact-filter
    semantics (non-matching id returned, fewer than min(k, matches) results)."""
    head = ["library", "ef points measured", "with a non-matching id", "non-matching ids",
            "short of min(k, matches)", "short queries (max share at one point)",
            "queries whose call raised"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lib in _libraries(rows):
        rs = [r for r in _search(rows) if r["library"] == lib]
        short = [r["short_queries"] / r["n_queries"] for r in rs]
        cells = [lib, str(len(rs)),
                 str(sum(r["nonmatching_ids"] > 0 for r in rs)),
                 f"{sum(r['nonmatching_ids'] for r in rs):,}",
                 str(sum(r["short_queries"] > 0 for r in rs)),
                 f"{sum(r['short_queries'] for r in rs):,} ({100 * max(short or [0]):.0f}%)",
                 f"{sum(r.get('errors', 0) for r in rs):,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(rows: list[dict], meta: dict | None = None) -> dict[str, str]:
    """Keyed ``"<workload> threads=<t> R>=<level>"`` and ``"checks"``, each with a heading."""
    meta = meta or {}
    ds = meta.get("dataset", {})
    size = f"{ds.get('n_base', 0):,} x {ds.get('dim', '?')}, {ds.get('metric', '?')}, " \
           f"{ds.get('n_queries', 0):,} queries" if ds else ""
    out = {}
    threads = sorted({r["threads"] for r in _search(rows)})
    for level in LEVELS:
        for w in _workloads(rows):
            for t in threads:
                out[f"{w} threads={t} R>={level:.2f}"] = (
                    f"### {ds.get('name', '')} {w}: {WORKLOAD_TEXT.get(w, w)} ({size}) — "
                    f"threads={t}, k={meta.get('k', 10)}, best QPS at recall@10 ≥ {level:.2f} "
                    f"(median of {meta.get('repeats', '?')})\n\n"
                    + workload_table(rows, w, t, level))
    out["checks"] = (f"### {ds.get('name', '')}: exact-filter semantics, all points\n\n"
                     + checks_table(rows))
    return out


def plot_rows(rows: list[dict], path: str | Path, title: str = "", level: float = 0.95) -> Path:
    """Best QPS at recall >= level against measured selectivity (log-log): one panel per
    workload, one row of panels per thread setting, one line per library."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = _workloads(rows)
    threads = sorted({r["threads"] for r in _search(rows)})
    libs = _libraries(rows)
    fig, axes = plt.subplots(len(threads), len(workloads),
                             figsize=(4.2 * len(workloads), 3.8 * len(threads)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ti, t in enumerate(threads):
        for wi, w in enumerate(workloads):
            ax = axes[ti][wi]
            for i, lib in enumerate(libs):
                xs, ys = [], []
                for target, row in _points(rows, w, t):
                    b = best_point(rows, w, target, lib, t, level)
                    if b is not None:
                        xs.append(row["selectivity"])
                        ys.append(b["qps"])
                if not xs:
                    continue
                order = sorted(range(len(xs)), key=lambda j: xs[j])
                bitgraph = lib.startswith("bitgraph")
                ax.plot([xs[j] for j in order], [ys[j] for j in order], color=cmap(i % 10),
                        label=lib, lw=2.2 if bitgraph else 1.4, ls="-" if bitgraph else "--",
                        marker="o", ms=4)
            ax.set_xscale("log")
            ax.set_yscale("log")
            xs_all = [row["selectivity"] for _, row in _points(rows, w, t)]
            if xs_all and min(xs_all) == max(xs_all):          # one point: give it room
                ax.set_xlim(min(xs_all) / 2, max(xs_all) * 2)
            ax.set_xlabel("selectivity (fraction passing)")
            if wi == 0:
                ax.set_ylabel(f"QPS at recall@10 ≥ {level:.2f}")
            ax.set_title(f"{title} {w} — threads={t}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def section(path: Path) -> str:
    """The RESULTS.md section for one filtered-search JSON."""
    data = json.loads(Path(path).read_text())
    meta, rows = data["meta"], data["rows"]
    ds = meta["dataset"]
    argv = " ".join(meta.get("argv", [])[1:])
    machine = meta.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    dirty = " (with uncommitted changes)" if meta.get("dirty") else ""
    builds = ", ".join(f"{r['library']} {r['build_s']:.0f} s" for r in rows
                       if r["kind"] == "build")
    parts = [
        f"## Filtered search: {path.stem} ({ds['n_base']:,} x {ds['dim']}, {ds['metric']}, "
        f"{ds['n_queries']:,} queries, k = {meta.get('k', 10)})",
        f"Command: `python -m bench.filtered {argv}`  \n"
        f"Date: {meta.get('date', '?')} · Commit: {(meta.get('commit') or '?')[:10]}{dirty} · "
        f"Machine: {machine.get('cores', '?')} cores, {machine.get('platform', '?')} · "
        f"Wall: {meta.get('wall_s', 0) / 60:.0f} min  \nVersions: {versions}  \n"
        f"Builds ({meta.get('build_threads', '?')} threads, one index per library with every "
        f"attribute field): {builds}",
        "Each cell: the library's best QPS among its ef points with filtered recall@10 ≥ the "
        "level (median of the rounds); `— (R x)`: the level was not reached, x = best recall. "
        "Selectivity = fraction of the base passing the filter (mean over queries for "
        "per-query filters). Ratios are bitgraph-f32 over the best graph peer "
        "(hnswlib, faiss-hnsw) and over brute force on the subset.",
    ]
    if meta.get("skipped"):
        parts.append(f"Skipped: {meta['skipped']}")
    parts += list(tables(rows, meta).values())
    png = Path(path).with_suffix(".png")
    if png.exists():
        parts.append(f"![{ds['name']} filtered QPS vs selectivity](results/{png.name})")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    from .cli_common import reprint_main

    reprint_main("re-plot / re-print a bench.filtered JSON", tables, plot_rows, argv)


if __name__ == "__main__":
    main()
