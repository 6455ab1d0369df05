"""What the recall-QPS suite prints around :mod:`bench.report`'s tables: a legend of the
library labels, the ef sweep per thread setting, and the headline ratios.

The headline is each bitgraph library's best QPS at recall@10 >= 0.90 / 0.95 / 0.99 divided by
the best peer's, from the median over the interleaved runs (``meta["repeats"]``), with the
range of the same ratio computed run by run; a single run is said to be one.
"""
from __future__ import annotations

from .report import LEVELS, best_peer, best_qps, runs_phrase, sweep_table, tables

GRAPH_PARAMS = "graph libraries: M = 16, ef_construction = 200; ef = search breadth per query"


def legend(meta: dict) -> str:
    """One line per library label of the run (``meta["legend"]``: label -> description)."""
    labels = meta.get("legend") or {}
    if not labels:
        return ""
    width = max(len(name) for name in labels)
    lines = [f"  {name:<{width}}  {text}" for name, text in labels.items()]
    return "Libraries (" + GRAPH_PARAMS + "):\n" + "\n".join(lines)


def _best_qps_in_run(rows: list[dict], library: str, threads: int, level: float,
                     run: int) -> float | None:
    """Best QPS of ``library`` among points with recall >= level, timed in run ``run`` only."""
    qps = [r["n_queries"] / r["seconds_runs"][run] for r in rows
           if r["kind"] == "search" and r["library"] == library and r["threads"] == threads
           and r["recall"] >= level and len(r["seconds_runs"]) > run]
    return max(qps) if qps else None


def _peer_qps_in_run(rows: list[dict], threads: int, level: float, run: int) -> float | None:
    peers = {r["library"] for r in rows if r["kind"] == "search" and not r.get("is_bitgraph")}
    qps = [q for lib in peers
           if (q := _best_qps_in_run(rows, lib, threads, level, run)) is not None]
    return max(qps) if qps else None


def ratio_range(rows: list[dict], library: str, threads: int, level: float,
                repeats: int) -> tuple[float, float] | None:
    """(min, max) over the runs of ``library``'s best QPS / the best peer's in that run."""
    ratios = []
    for run in range(repeats):
        mine = _best_qps_in_run(rows, library, threads, level, run)
        peer = _peer_qps_in_run(rows, threads, level, run)
        if mine is not None and peer:
            ratios.append(mine / peer)
    return (min(ratios), max(ratios)) if ratios else None


def _bitgraph_libraries(rows: list[dict], threads: int) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if (r["kind"] == "search" and r.get("is_bitgraph") and r["threads"] == threads
                and r.get("is_graph", True) and r["library"] not in seen):
            seen.append(r["library"])
    return seen


def headline(rows: list[dict], meta: dict) -> str:
    """The headline ratios per thread setting, saying how many runs they are the median of."""
    repeats = int(meta.get("repeats") or 1)
    levels = " / ".join(f"{lv:.2f}" for lv in LEVELS)
    spread = "; [range over the runs]" if repeats > 1 else ""
    out = [f"Headline: best QPS at recall@10 >= {levels} as a multiple of the best peer's, "
           f"{runs_phrase(repeats)}{spread}"]
    for t in sorted({r["threads"] for r in rows if r["kind"] == "search"}):
        peers = {lv: best_peer(rows, t, lv) for lv in LEVELS}
        libs = _bitgraph_libraries(rows, t)
        width = max([len("best peer"), *map(len, libs)])
        for lib in libs:
            parts = []
            for lv in LEVELS:
                mine, (_, peer_q) = best_qps(rows, lib, t, lv), peers[lv]
                if mine is None or not peer_q:
                    parts.append("—")
                    continue
                text = f"{mine / peer_q:.2f}x"
                rng = ratio_range(rows, lib, t, lv, repeats) if repeats > 1 else None
                if rng is not None:
                    text += f" [{rng[0]:.2f}-{rng[1]:.2f}]"
                parts.append(text)
            out.append(f"  threads={t}  {lib + ':':<{width + 1}} " + " / ".join(parts))
        names = " / ".join(p[0] or "none" for p in peers.values())
        out.append(f"  threads={t}  {'best peer:':<{width + 1}} {names}")
    if repeats == 1:
        out.append("  (one run on a shared, noisy machine: use --repeats 3 or more before "
                   "quoting a ratio)")
    return "\n".join(out)


def console_tables(rows: list[dict], meta: dict) -> dict[str, str]:
    """Everything the suite prints, in order: legend, the ef sweep per thread setting, the
    best-QPS and latency tables of :func:`bench.report.tables`, then the headline."""
    out: dict[str, str] = {}
    text = legend(meta)
    if text:
        out["legend"] = text
    repeats = meta.get("repeats")
    for t in sorted({r["threads"] for r in rows if r["kind"] == "search"}):
        out[f"sweep threads={t}"] = (f"### ef sweep, threads={t}: recall@10 / QPS "
                                     f"({runs_phrase(repeats)})\n\n" + sweep_table(rows, t))
    out.update(tables(rows, meta))
    if any(r["kind"] == "search" for r in rows):
        out["headline"] = headline(rows, meta)
    return out


__all__ = ["console_tables", "headline", "legend", "ratio_range"]
