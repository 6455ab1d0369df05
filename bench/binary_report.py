"""Markdown tables, the PNG and the RESULTS.md section of the binary-index benchmark
(rows written by bench.binary).

Tables: binarizer quality (recall@10 from the codes alone and after re-rank, fit seconds,
bytes per vector, with the spec's comparisons: 2-bit SDC against 1-bit Hamming of the same total
bits, learned against fixed); per thread setting the best QPS at recall@10 >= 0.90/0.95/0.99
per library with the point that gives it; and the key ratios: the flat code scan (no re-rank,
k = 10 and 40) against faiss IndexBinaryFlat on the same codes, with GB/s of codes scanned
against the measured memory bandwidth, and binary HNSW + re-rank against bitgraph's float HNSW
(QPS at recall >= 0.95 and memory).

    python -m bench.binary_report bench/results/binary-text-like-384.json [-o out.png]
"""
from __future__ import annotations

import json
from pathlib import Path

from .binary_peers import BINARY_HNSW, FLOAT_HNSW, SCAN_PAIRS

LEVELS = (0.90, 0.95, 0.99)
GRAPH_PEERS = ("faiss-binhnsw+rr", "faiss-hnswrabitq+rr", "faiss-hnswsq")


def _table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def _f(x, fmt="{:.4f}"):
    return "—" if x is None else fmt.format(x)


def _qps(q):
    return "—" if q is None else f"{q:,.0f}"


# --------------------------------------------------------------------------- quality

def _qrows(rows):
    return [r for r in rows if r["kind"] == "quality"]


def quality_table(rows: list[dict]) -> str:
    head = ["planes P", "m bits/plane", "bits/dim", "binarizer", "distance", "B/vector",
            "fit s", "recall@10 codes only", "recall@10 re-rank"]
    body = []
    for r in _qrows(rows):
        body.append([str(r["loops"]), str(r["code_dim"]), f"{r['bits_per_dim']:g}",
                     "learned" if r["learned"] else "fixed", r.get("distance", "—"),
                     str(r.get("bytes_per_vector", "—")), _f(r.get("fit_s"), "{:.1f}"),
                     _f(r.get("recall_codes")),
                     _f(r.get("recall_rerank"))
                     + (f" (error: {r['error']})" if r.get("error") else "")])
    return _table(head, body)


def _q(rows, loops, code_dim, learned, distance):
    for r in _qrows(rows):
        if (r["loops"], r["code_dim"], r["learned"], r.get("distance")) == \
                (loops, code_dim, learned, distance) and r.get("recall_codes") is not None:
            return r
    return None


def quality_checks(rows: list[dict], dim: int) -> str:
    """The spec's two claims, row by row: SDC (P planes, m = d) vs 1-plane Hamming with the
    same total bits; learned vs fixed at the same code; and the asymmetric distance against
    SDC on the same codes (after the re-rank: what a user gets)."""
    head = ["claim", "config", "recall codes", "vs", "recall codes", "diff", "holds"]
    body = []
    for learned in (False, True):
        for P in (2, 4):
            a = _q(rows, P, dim, learned, "sdc")
            b = _q(rows, 1, P * dim, learned, "hamming")
            if a and b:
                d = a["recall_codes"] - b["recall_codes"]
                body.append([f"{P}-bit SDC > 1-bit Hamming, same {P * dim} bits",
                             f"SDC P={P} m={dim} ({'learned' if learned else 'fixed'})",
                             f"{a['recall_codes']:.4f}", f"Hamming P=1 m={P * dim}",
                             f"{b['recall_codes']:.4f}", f"{d:+.4f}", "yes" if d > 0 else "NO"])
    for learned in (False, True):
        for P in (1, 2, 4):
            a = _q(rows, P, dim, learned, "asymmetric")
            b = _q(rows, P, dim, learned, "sdc")
            if a and b and a.get("recall_rerank") is not None and b.get("recall_rerank") is not None:
                d = a["recall_rerank"] - b["recall_rerank"]
                body.append([f"asymmetric > SDC after the x{a['oversample']:g} re-rank, same codes",
                             f"asymmetric P={P} m={dim} ({'learned' if learned else 'fixed'})",
                             f"{a['recall_rerank']:.4f} (re-ranked)", "SDC",
                             f"{b['recall_rerank']:.4f}", f"{d:+.4f}", "yes" if d > 0 else "NO"])
    seen = set()
    for r in _qrows(rows):
        key = (r["loops"], r["code_dim"], r.get("distance"))
        if key in seen or r.get("recall_codes") is None:
            continue
        seen.add(key)
        a, b = _q(rows, *key[:2], True, key[2]), _q(rows, *key[:2], False, key[2])
        if a and b:
            d = a["recall_codes"] - b["recall_codes"]
            body.append(["learned > fixed", f"P={key[0]} m={key[1]} {key[2]}",
                         f"{a['recall_codes']:.4f}", "fixed", f"{b['recall_codes']:.4f}",
                         f"{d:+.4f}", "yes" if d > 0 else "NO"])
    return _table(head, body) if body else ""


# --------------------------------------------------------------------------- index tables

def _search(rows, k: int | None = None):
    return [r for r in rows if r["kind"] == "search"
            and (k is None or r.get("k_search", r.get("k")) == k)]


def _libraries(rows) -> list[str]:
    return list(dict.fromkeys(r["library"] for r in rows if r["kind"] in ("build", "search")))


def point_text(r: dict) -> str:
    parts = []
    if r.get("ef") is not None:
        parts.append(f"ef {r['ef']}")
    if r.get("oversample") is not None:
        parts.append(f"os {r['oversample']:g}")
    return ", ".join(parts) or "—"


def best(rows, library, threads, level, k=10) -> dict | None:
    pts = [r for r in _search(rows, k) if r["library"] == library and r["threads"] == threads
           and r["recall"] >= level]
    return max(pts, key=lambda r: r["qps"]) if pts else None


def max_recall(rows, library, threads, k=10) -> float | None:
    rs = [r["recall"] for r in _search(rows, k) if r["library"] == library
          and r["threads"] == threads]
    return max(rs) if rs else None


def index_table(rows: list[dict], threads: int, k: int = 10) -> str:
    builds = {r["library"]: r for r in rows if r["kind"] == "build"}
    head = (["library", "re-rank"] + [f"QPS @R≥{lv:.2f} (point)" for lv in LEVELS]
            + ["max recall", "build s", "B/vector index", "B/vector RAM", "index MiB"])
    body = []
    for lib in _libraries(rows):
        if not any(r["library"] == lib and r["threads"] == threads for r in _search(rows, k)):
            continue
        b = builds.get(lib, {})
        cells = [lib, str(b.get("rerank") or "none")]
        for lv in LEVELS:
            p = best(rows, lib, threads, lv, k)
            cells.append("—" if p is None else f"{p['qps']:,.0f} ({point_text(p)})")
        mr = max_recall(rows, lib, threads, k)
        cells += [_f(mr, "{:.3f}"),
                  ("—" if not b else f"{b['build_s']:.1f}"
                   + (" (shared)" if b.get("shared_build") else "")),
                  "—" if not b else f"{b['bytes_per_vector']:.0f}",
                  "—" if not b else f"{b['ram_bytes_per_vector']:.0f}",
                  "—" if not b else f"{b['nbytes'] / 2**20:.1f}"]
        body.append(cells)
    return _table(head, body)


def _bw_for(meta: dict, threads: int) -> float | None:
    bw = meta.get("memory_bandwidth") or {}
    return bw.get(f"read_{threads}t_gbps") or (bw.get("read_1t_gbps") if threads == 1 else None)


def scan_table(rows: list[dict], meta: dict) -> str:
    """bitgraph flat code scans (no re-rank) vs faiss IndexBinaryFlat on the same codes."""
    n_base = meta.get("dataset", {}).get("n_base", 0)
    code_bytes = (meta.get("index_binarizer") or {}).get("code_bytes")
    head = ["threads", "k", "bitgraph scan", "QPS", "faiss-binflat QPS", "ratio",
            "codes GB/s", "% of read bandwidth", "recall@10 (bg / faiss)"]
    body = []
    threads = sorted({r["threads"] for r in _search(rows)})
    ks = sorted({r["k_search"] for r in _search(rows) if r.get("oversample") is None
                 and not r["is_graph"]})
    for t in threads:
        for k in ks:
            for bg_lib, peer in SCAN_PAIRS:
                a = [r for r in _search(rows, k) if r["library"] == bg_lib and r["threads"] == t]
                b = [r for r in _search(rows, k) if r["library"] == peer and r["threads"] == t]
                if not a:
                    continue
                a = a[0]
                b = b[0] if b else None
                gbps = a["qps"] * n_base * code_bytes / 1e9 if code_bytes else None
                bw = _bw_for(meta, t)
                body.append([str(t), str(k), bg_lib, _qps(a["qps"]),
                             _qps(b["qps"] if b else None),
                             "—" if not b else f"{a['qps'] / b['qps']:.2f}x",
                             _f(gbps, "{:.2f}"),
                             "—" if not (gbps and bw) else f"{100 * gbps / bw:.0f}%",
                             f"{a['recall']:.3f} / " + (_f(b['recall'], '{:.3f}') if b else "—")])
    return _table(head, body) if body else ""


def hnsw_table(rows: list[dict], level: float = 0.95) -> str:
    """Binary HNSW + re-rank vs bitgraph float HNSW (and the graph peers) at recall >= level."""
    builds = {r["library"]: r for r in rows if r["kind"] == "build"}
    head = ["threads", "binary index", f"QPS @R≥{level:.2f}", f"{FLOAT_HNSW} QPS", "QPS ratio",
            "nbytes ratio (binary / float)", "RAM ratio (incl. re-rank floats)",
            "best graph peer", "vs best graph peer"]
    body = []
    threads = sorted({r["threads"] for r in _search(rows)})
    fb = builds.get(FLOAT_HNSW)
    for t in threads:
        f = best(rows, FLOAT_HNSW, t, level)
        peers = [(best(rows, p, t, level), p) for p in GRAPH_PEERS]
        peers = [(b["qps"], p) for b, p in peers if b]
        bp = max(peers) if peers else None
        for lib in BINARY_HNSW:
            if lib not in builds:
                continue
            b = best(rows, lib, t, level)
            bb = builds[lib]
            mr = max_recall(rows, lib, t)
            body.append([str(t), lib,
                         (f"{b['qps']:,.0f} ({point_text(b)})" if b
                          else f"— (max R {_f(mr, '{:.3f}')})"),
                         _qps(f["qps"] if f else None),
                         "—" if not (b and f) else f"{b['qps'] / f['qps']:.2f}x",
                         "—" if not fb else f"{bb['nbytes'] / fb['nbytes']:.3f}",
                         "—" if not fb else
                         f"{(bb['nbytes'] + bb['rerank_bytes']) / fb['nbytes']:.3f}",
                         "—" if not bp else f"{bp[1]} {bp[0]:,.0f}",
                         "—" if not (b and bp) else f"{b['qps'] / bp[0]:.2f}x"])
    return _table(head, body) if body else ""


def tables(rows: list[dict], meta: dict | None = None) -> dict[str, str]:
    meta = meta or {}
    ds = meta.get("dataset", {})
    name = ds.get("name", "")
    size = (f"{ds.get('n_base', 0):,} x {ds.get('dim', '?')}, {ds.get('metric', '?')}, "
            f"{ds.get('n_queries', 0):,} queries") if ds else ""
    k = meta.get("k", 10)
    out = {}
    if _qrows(rows):
        out["quality"] = (f"### {name} ({size}): binarizer quality — flat scan, recall@10 from "
                          f"the codes alone and after re-rank (oversample "
                          f"{meta.get('quality_oversample', 4):g}), fit on "
                          f"{meta.get('fit_sample', '?'):,} rows\n\n" + quality_table(rows))
        checks = quality_checks(rows, ds.get("dim", 0))
        if checks:
            out["quality-checks"] = (f"### {name}: the spec's recall claims (codes only)\n\n"
                                     + checks)
    binz = meta.get("index_binarizer") or {}
    bdesc = (f"binarizer P={binz.get('loops')} m={binz.get('code_dim')} "
             f"({binz.get('bits_per_dim', 0):g} bits/dim, "
             f"{'learned' if binz.get('learned') else 'fixed'}, {binz.get('code_bytes')} B)"
             if binz else "no binarizer")
    for t in sorted({r["threads"] for r in _search(rows)}):
        out[f"threads={t}"] = (f"### {name} ({size}): indexes, threads={t}, k={k}, batch QPS "
                               f"(median of {meta.get('repeats', '?')}), {bdesc}\n\n"
                               + index_table(rows, t, k))
    scan = scan_table(rows, meta)
    if scan:
        bw = meta.get("memory_bandwidth") or {}
        bws = ", ".join(f"{key.replace('_gbps', '')} {v:.1f} GB/s" for key, v in bw.items())
        out["scan"] = (f"### {name}: flat code scan without re-rank vs faiss IndexBinaryFlat on "
                       f"the same codes (query encoding included on both sides); measured "
                       f"memory bandwidth (numpy sum): {bws or 'not measured'}\n\n" + scan)
    hn = hnsw_table(rows)
    if hn:
        out["hnsw"] = (f"### {name}: binary HNSW + re-rank vs float HNSW ({FLOAT_HNSW}) at "
                       f"recall@10 ≥ 0.95\n\n" + hn)
    return out


# --------------------------------------------------------------------------- plot

def plot_rows(rows: list[dict], path: str | Path, title: str = "", k: int = 10) -> Path:
    """Recall-QPS Pareto fronts (log QPS), one panel per thread setting (bench.plot's plot,
    with a palette for the many index configurations)."""
    from .plot import plot_rows as pareto_plot

    return pareto_plot(_search(rows, k), path, f"{title} binary indexes", palette="tab20",
                       legend_cols=2)


# --------------------------------------------------------------------------- RESULTS.md

def section(path: Path) -> str:
    """The "Binary indexes" section of RESULTS.md for one bench.binary JSON."""
    data = json.loads(Path(path).read_text())
    meta, rows = data["meta"], data["rows"]
    ds = meta["dataset"]
    argv = " ".join(meta.get("argv", [])[1:])
    machine = meta.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    dirty = " (with uncommitted changes)" if meta.get("dirty") else ""
    parts = [
        f"## Binary indexes: {path.stem} ({ds['n_base']:,} x {ds['dim']}, {ds['metric']}, "
        f"{ds['n_queries']:,} queries, k = {meta.get('k', 10)})",
        f"Command: `python -m bench.binary {argv}`  \n"
        f"Date: {meta.get('date', '?')} · Commit: {(meta.get('commit') or '?')[:10]}{dirty} · "
        f"Machine: {machine.get('cores', '?')} cores, {machine.get('platform', '?')} · "
        f"Wall: {meta.get('wall_s', 0) / 60:.0f} min  \nVersions: {versions}",
        "Each QPS cell: the library's best batch QPS among its points (ef, oversample) with "
        "recall@10 ≥ the level, median of interleaved rounds; `bg-bin-<graph>-<distance>-"
        "<re-rank>` are bitgraph `BinaryIndex` configurations, faiss binary peers search the "
        "same codes (`+rr`: their top oversample·k re-ranked with exact floats in numpy, "
        "timed inside the QPS; the parts are in the JSON `parts_s`). B/vector RAM adds the float "
        "vectors a re-rank keeps in memory to the index bytes (mmap floats are not counted).",
    ]
    if meta.get("skipped"):
        parts.append(f"Skipped: {meta['skipped']}")
    parts += list(tables(rows, meta).values())
    png = Path(path).with_suffix(".png")
    if png.exists():
        parts.append(f"![{ds['name']} binary recall-QPS](results/{png.name})")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    from .cli_common import reprint_main

    reprint_main("re-print / re-plot a bench.binary JSON", tables, plot_rows, argv)


if __name__ == "__main__":
    main()
