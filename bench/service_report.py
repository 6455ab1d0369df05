"""The RESULTS.md section and the plot of a bench.service run (no server dependencies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

K = 10


def section(result: dict[str, Any], image: str | None = None) -> str:
    """The markdown of one run (tables and the comparisons), for RESULTS.md and stdout."""
    meta, summ = result["meta"], result["summary"]
    ds = meta["dataset"]
    lines = [f"## Retrieval service: {ds['name']} ({ds['n_base']:,} x {ds['dim']}, "
             f"{ds['metric']}, {ds['n_queries']:,} queries, k = {K})", "",
             f"`{meta['command']}` — {meta['date']}, commit {meta['commit']}, {meta['cpus']} "
             f"CPUs, median of {len({r['repeat'] for r in result['rows']})} interleaved "
             "repetitions. Closed-loop single-query requests; ef per system: "
             + ", ".join(f"{k} {v}" for k, v in meta["ef"].items())
             + f" (smallest reaching recall@10 >= {meta['params']['target_recall']}); build: "
             + ", ".join(f"{k} {v:.0f} s" for k, v in meta["build_s"].items()) + ".", "",
             "| system | concurrency | QPS | p50 ms | p99 ms | recall@10 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in summ["cells"]:
        lines.append(f"| {c['target']} | {c['concurrency']} | {c['qps']:,.0f} | "
                     f"{c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['recall']:.4f} |")
    lines += ["", f"In-process batched search (one call, all cores): "
                  f"{summ['inprocess_batched_qps']:,.0f} QPS.", ""]
    for name, v in summ["checks"].items():
        lines.append(f"- {name}: {v:.3f}" if isinstance(v, float) else f"- {name}: {v}")
    if image:
        lines += ["", f"![service load]({image})"]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    targets = sorted({c["target"] for c in result["summary"]["cells"]})
    for t in targets:
        cells = sorted((c for c in result["summary"]["cells"] if c["target"] == t),
                       key=lambda c: c["concurrency"])
        xs = [c["concurrency"] for c in cells]
        ax1.plot(xs, [c["qps"] for c in cells], marker="o", label=t)
        ax2.plot(xs, [c["p99_ms"] for c in cells], marker="o", label=t)
    for ax, label in ((ax1, "QPS"), (ax2, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax2.set_yscale("log")
    ax1.legend(fontsize=8)
    ds = result["meta"]["dataset"]
    fig.suptitle(f"Single-query requests, {ds['name']} {ds['n_base']:,} x {ds['dim']}, "
                 "recall@10 >= 0.95")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
