"""Per-call cost of one single-query search: bitgraph beside hnswlib, FAISS and usearch.

    python -m bench.per_call                       # 200 x 64, k = 10, l2 and cosine
    python -m bench.per_call --n 200 --dim 64 --calls 20000 --repeats 3

A retrieval service sends one query per call, so what a call costs beyond the walk itself
(argument checks, result objects, thread start-up) is paid on every request. The index is
tiny (the default 200 vectors) so the walk is short and the figure is mostly that overhead.

Each library answers ``--calls`` calls of ``search(q, k)`` with a fresh ``(1, dim)`` float32
query per call (C-contiguous, the common case), 1 thread; a timing is the best of
``--best-of`` such loops (the quietest run of the loop on a shared machine). Libraries are
interleaved within a repetition, and the table gives the median over ``--repeats``
repetitions of each library's per-call time and its ratio to hnswlib's in the same
repetition.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

LIBRARIES = ("bitgraph", "hnswlib", "faiss-hnsw", "usearch")


def _data(n: int, dim: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    q = rng.standard_normal((n_queries, dim), dtype=np.float32)
    return x, q


def _make(lib: str, x: np.ndarray, metric: str, k: int, ef: int) -> Callable[[np.ndarray], Any]:
    """Builds the index and returns its one-query search call (None if not installed)."""
    n, dim = x.shape
    if lib == "bitgraph":
        import bitgraph as bg

        index = bg.HNSWIndex(dim, metric=metric, M=16, ef_construction=200)
        index.add(x, threads=1)
        return lambda q: index.search(q, k, ef=ef, threads=1)
    if lib == "hnswlib":
        import hnswlib

        h = hnswlib.Index(space="cosine" if metric == "cosine" else "l2", dim=dim)
        h.init_index(max_elements=n, M=16, ef_construction=200, random_seed=0)
        h.add_items(x, num_threads=1)
        h.set_ef(ef)
        h.set_num_threads(1)
        return lambda q: h.knn_query(q, k=k, num_threads=1)
    if lib == "faiss-hnsw":
        import faiss

        faiss.omp_set_num_threads(1)
        base = x
        if metric == "cosine":
            base = x / np.linalg.norm(x, axis=1, keepdims=True)
            f = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
        else:
            f = faiss.IndexHNSWFlat(dim, 16)
        f.hnsw.efConstruction = 200
        f.add(np.ascontiguousarray(base, dtype=np.float32))
        f.hnsw.efSearch = ef
        if metric == "cosine":  # the user's query is not normalised: FAISS needs it done
            return lambda q: f.search(q / np.linalg.norm(q, axis=1, keepdims=True), k)
        return lambda q: f.search(q, k)
    if lib == "usearch":
        from usearch.index import Index

        u = Index(ndim=dim, metric="cos" if metric == "cosine" else "l2sq", connectivity=16,
                  expansion_add=200, expansion_search=ef)
        u.add(np.arange(n), x, threads=1)
        return lambda q: u.search(q, k, threads=1)
    raise ValueError(f"unknown library {lib!r}")


def _time_calls(call: Callable[[np.ndarray], Any], queries: list[np.ndarray], calls: int,
                best_of: int) -> float:
    """Best-of-``best_of`` seconds per call over ``calls`` calls."""
    nq = len(queries)
    best = float("inf")
    for _ in range(best_of):
        t0 = time.perf_counter()
        for i in range(calls):
            call(queries[i % nq])
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def run(n: int = 200, dim: int = 64, k: int = 10, ef: int = 10, calls: int = 20000,
        best_of: int = 5, repeats: int = 3, metrics: tuple[str, ...] = ("l2", "cosine"),
        libraries: tuple[str, ...] = LIBRARIES, seed: int = 0,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    x, q = _data(n, dim, 256, seed)
    queries = [np.ascontiguousarray(q[i:i + 1]) for i in range(q.shape[0])]
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for metric in metrics:
        searches: dict[str, Callable[[np.ndarray], Any]] = {}
        for lib in libraries:
            try:
                searches[lib] = _make(lib, x, metric, k, ef)
            except ImportError as exc:
                skipped[lib] = f"not installed ({exc})"
        for call in searches.values():  # warm-up: lazy imports, JIT, first allocations
            _time_calls(call, queries, 200, 1)
        for rep in range(repeats):
            for lib, call in searches.items():
                sec = _time_calls(call, queries, calls, best_of)
                rows.append({"metric": metric, "library": lib, "repeat": rep,
                             "us_per_call": sec * 1e6})
                log(f"[{metric}] rep {rep} {lib:11s} {sec * 1e6:7.2f} us/call")
    meta = {"suite": "per-call", "n": n, "dim": dim, "k": k, "ef": ef, "calls": calls,
            "best_of": best_of, "repeats": repeats, "threads": 1, "skipped": skipped,
            "machine": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d")}
    return {"rows": rows, "meta": meta}


def summary(rows: list[dict[str, Any]], reference: str = "hnswlib") -> list[dict[str, Any]]:
    """Per (metric, library): median us/call and median ratio to ``reference`` (same rep)."""
    out = []
    for metric in dict.fromkeys(r["metric"] for r in rows):
        mine = [r for r in rows if r["metric"] == metric]
        ref = {r["repeat"]: r["us_per_call"] for r in mine if r["library"] == reference}
        for lib in dict.fromkeys(r["library"] for r in mine):
            times = [r for r in mine if r["library"] == lib]
            ratios = [r["us_per_call"] / ref[r["repeat"]] for r in times if r["repeat"] in ref]
            out.append({"metric": metric, "library": lib,
                        "us_per_call": statistics.median(r["us_per_call"] for r in times),
                        "ratio": statistics.median(ratios) if ratios else None})
    return out


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"### Per-call cost: one query per call, {meta['n']} x {meta['dim']}, k = "
             f"{meta['k']}, ef = {meta['ef']}, 1 thread (median of {meta['repeats']}, each the "
             f"best of {meta['best_of']} x {meta['calls']:,} calls)", "",
             "| metric | library | us per call | x hnswlib |", "| --- | --- | ---: | ---: |"]
    for s in summary(rows):
        ratio = "" if s["ratio"] is None else f"{s['ratio']:.2f}"
        lines.append(f"| {s['metric']} | {s['library']} | {s['us_per_call']:.2f} | {ratio} |")
    return "\n".join(lines)


def section(path: Path) -> str:
    """The RESULTS.md section of a per-call results JSON (bench.results_md)."""
    data = json.loads(Path(path).read_text())
    meta = data["meta"]
    return (f"## Per-call cost of one search ({Path(path).stem})\n\n"
            f"Command: `python -m bench.per_call`  \nDate: {meta['date']} · Machine: "
            f"{meta['machine']}  \n\n{table(data['rows'], meta)}\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--ef", type=int, default=10)
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--best-of", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--metrics", default="l2,cosine")
    p.add_argument("--libs", default=",".join(LIBRARIES))
    p.add_argument("--out", default="bench/results/per-call.json")
    a = p.parse_args(argv)
    res = run(a.n, a.dim, a.k, a.ef, a.calls, a.best_of, a.repeats,
              tuple(m for m in a.metrics.split(",") if m), tuple(a.libs.split(",")))
    print()
    print(table(res["rows"], res["meta"]))
    for lib, why in res["meta"]["skipped"].items():
        print(f"skipped {lib}: {why}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=1))
        print(f"results: {a.out}")


if __name__ == "__main__":
    main()
