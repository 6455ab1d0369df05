"""Markdown tables from result rows.

Per thread setting: per library, the best QPS among points with recall@10 >= 0.90 / 0.95 /
0.99, build time (all cores), bytes per vector, and the ratio of the library's best QPS to the
best peer's (best non-bitgraph library, exact baselines included) at each level. A second table
gives single-query latency and memory; :func:`sweep_table` shows every ef with its recall@10
and QPS.
"""
from __future__ import annotations

LEVELS = (0.90, 0.95, 0.99)


def best_qps(rows: list[dict], library: str, threads: int, level: float) -> float | None:
    """Highest QPS of ``library`` at ``threads`` among points with recall >= level."""
    qps = [r["qps"] for r in rows if r["kind"] == "search" and r["library"] == library
           and r["threads"] == threads and r["recall"] >= level]
    return max(qps) if qps else None


def best_peer(rows: list[dict], threads: int, level: float) -> tuple[str | None, float | None]:
    """(library, QPS) of the fastest non-bitgraph library reaching ``level``."""
    libs = {r["library"] for r in rows if r["kind"] == "search" and not r.get("is_bitgraph")}
    best = (None, None)
    for lib in sorted(libs):
        q = best_qps(rows, lib, threads, level)
        if q is not None and (best[1] is None or q > best[1]):
            best = (lib, q)
    return best


def _libraries(rows: list[dict]) -> list[str]:
    seen = []
    for r in rows:
        if r["kind"] in ("build", "search") and r["library"] not in seen:
            seen.append(r["library"])
    return seen


def _fmt_qps(q: float | None) -> str:
    return "—" if q is None else f"{q:,.0f}"


def _fmt_ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}x"


def qps_table(rows: list[dict], threads: int) -> str:
    """The markdown best-QPS table for one thread setting."""
    builds = {r["library"]: r for r in rows if r["kind"] == "build"}
    peers = {lv: best_peer(rows, threads, lv) for lv in LEVELS}
    lv_names = " / ".join(f"{lv:.2f}" for lv in LEVELS)
    head = (["library"] + [f"QPS @R≥{lv:.2f}" for lv in LEVELS]
            + ["build s", "B/vector", f"vs best peer ({lv_names})"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lib in _libraries(rows):
        if not any(r["kind"] == "search" and r["library"] == lib and r["threads"] == threads
                   for r in rows):
            continue
        qs = [best_qps(rows, lib, threads, lv) for lv in LEVELS]
        b = builds.get(lib, {})
        ratio = " / ".join(_fmt_ratio(q, peers[lv][1]) for q, lv in zip(qs, LEVELS))
        cells = ([lib] + [_fmt_qps(q) for q in qs]
                 + [f"{b['build_s']:.1f}" if b else "—",
                    f"{b['bytes_per_vector']:.0f}" if b else "—", ratio])
        lines.append("| " + " | ".join(cells) + " |")
    foot = "; ".join(f"R≥{lv:.2f}: {p[0]} {_fmt_qps(p[1])}" if p[0] else f"R≥{lv:.2f}: none"
                     for lv, p in peers.items())
    return "\n".join(lines) + f"\n\nBest peer — {foot}."


def sweep_table(rows: list[dict], threads: int) -> str:
    """The ef sweep at one thread setting as a markdown table: a row per ef, a column per
    library, each cell ``recall@10 / QPS`` (exact baselines: one "exact" row)."""
    search = [r for r in rows if r["kind"] == "search" and r["threads"] == threads]
    libs = [lib for lib in _libraries(rows) if any(r["library"] == lib for r in search)]
    cell = {(r["library"], r["ef"]): r for r in search}
    efs = sorted({r["ef"] for r in search if r["ef"] is not None})
    if any(r["ef"] is None for r in search):
        efs.append(None)
    head = ["ef"] + libs
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ef in efs:
        cells = ["exact" if ef is None else str(ef)]
        for lib in libs:
            r = cell.get((lib, ef))
            cells.append("—" if r is None else f"{r['recall']:.3f} / {r['qps']:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_phrase(repeats: int | None) -> str:
    """How a QPS figure was obtained: "median of N interleaved runs" or a single-run warning."""
    if repeats is None:
        return "median of ? runs"
    if repeats == 1:
        return "a single run (--repeats 1), not a median: noisy"
    return f"median of {repeats} interleaved runs"


def latency_table(rows: list[dict]) -> str:
    """Single-query latency (1 thread) and memory per library."""
    builds = {r["library"]: r for r in rows if r["kind"] == "build"}
    head = ["library", "ef", "recall@10", "p50 µs", "p99 µs", "index MiB",
            "RSS growth MiB", "nbytes from"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["kind"] != "latency":
            continue
        b = builds.get(r["library"], {})
        ef = "exact" if r["ef"] is None else str(r["ef"]) + ("" if r["target_met"] else " (max)")
        rec = "—" if r["recall"] is None else f"{r['recall']:.3f}"
        cells = [r["library"], ef, rec, f"{r['p50_us']:.0f}", f"{r['p99_us']:.0f}",
                 f"{b['nbytes'] / 2**20:.1f}" if b else "—",
                 f"{b['rss_growth_bytes'] / 2**20:.1f}" if b else "—",
                 b.get("nbytes_method", "—")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(rows: list[dict], meta: dict | None = None) -> dict[str, str]:
    """All tables, keyed ``"threads=N"`` and ``"latency"``, each with a heading line."""
    out = {}
    ds = (meta or {}).get("dataset", {})
    title = ds.get("name", "")
    size = (f"{ds.get('n_base', 0):,} x {ds.get('dim', '?')}, "
            f"{ds.get('n_queries', 0):,} queries") if ds else ""
    for t in sorted({r["threads"] for r in rows if r["kind"] == "search"}):
        out[f"threads={t}"] = (f"### {title} ({size}): threads={t}, k=10, batch QPS, "
                               f"{runs_phrase((meta or {}).get('repeats'))}\n\n"
                               + qps_table(rows, t))
    if any(r["kind"] == "latency" for r in rows):
        out["latency"] = (f"### {title}: single-query latency (1 thread, "
                          f"{next(r['n'] for r in rows if r['kind'] == 'latency')} queries) "
                          f"and memory\n\n" + latency_table(rows))
    return out
