"""Recall-QPS Pareto plot: one panel per thread setting, one curve per library, log QPS axis.

    python -m bench.plot bench/results/glove-50-angular.json [-o out.png]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points (recall, qps) not dominated by a point with higher recall and higher QPS,
    sorted by recall."""
    front, best = [], -1.0
    for rec, qps in sorted(points, key=lambda p: (-p[0], -p[1])):
        if qps > best:
            front.append((rec, qps))
            best = qps
    return sorted(front)


def plot_rows(rows: list[dict], path: str | Path, title: str = "", *, palette: str = "tab10",
              legend_cols: int = 1) -> Path:
    """Write the PNG for ``rows`` (search rows of one dataset) to ``path``; ``palette`` is a
    matplotlib colour map with enough colours for the libraries (tab20 for many)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    search = [r for r in rows if r["kind"] == "search"]
    threads = sorted({r["threads"] for r in search})
    libs = list(dict.fromkeys(r["library"] for r in search))
    fig, axes = plt.subplots(1, len(threads), figsize=(6.5 * len(threads), 5), squeeze=False)
    cmap = plt.get_cmap(palette)
    n_colors = getattr(cmap, "N", 10)
    for ax, t in zip(axes[0], threads):
        for i, lib in enumerate(libs):
            pts = [(r["recall"], r["qps"]) for r in search
                   if r["library"] == lib and r["threads"] == t]
            if not pts:
                continue
            front = pareto(pts)
            bitgraph = any(r.get("is_bitgraph") for r in search if r["library"] == lib)
            style = dict(color=cmap(i % n_colors), label=lib, lw=2.2 if bitgraph else 1.4,
                         ls="-" if bitgraph else "--", marker="o" if len(front) > 1 else "*",
                         ms=4 if len(front) > 1 else 11)
            ax.plot([p[0] for p in front], [p[1] for p in front], **style)
        ax.set_yscale("log")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second (log)")
        ax.set_title(f"{title} — threads={t}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8 if legend_cols == 1 else 7, ncol=legend_cols)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", help="JSON file written by bench.run_suite")
    p.add_argument("-o", "--out", help="PNG path (default: next to the JSON)")
    a = p.parse_args(argv)
    data = json.loads(Path(a.results).read_text())
    out = a.out or str(Path(a.results).with_suffix(".png"))
    print(plot_rows(data["rows"], out, data.get("meta", {}).get("dataset", {}).get("name", "")))


if __name__ == "__main__":
    main()
