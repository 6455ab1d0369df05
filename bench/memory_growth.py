"""Memory of an index built by a streaming ingest: bitgraph beside hnswlib, FAISS and usearch.

    python -m bench.memory_growth                       # text-like-384 (61,678) and GloVe
    python -m bench.memory_growth --datasets text-like-384:61678 --chunk 5000 --repeats 3

A retrieval service adds vectors as they arrive, in chunks, not in one call. Each
(library, way of adding) is built in a fresh child process that first loads the base vectors,
so the figures are the index alone: ``nbytes`` (what the library says it holds; bitgraph's
``index.nbytes``, the others from bench.adapters' layout estimates where they have one) and the
growth of the process's resident set (RSS) from before the index is made (the library already
imported) to after the last add, after a garbage collection. Ways of adding:

* ``one call``: every vector in one ``add`` (hnswlib: ``max_elements`` = n);
* ``chunks``: ``--chunk`` vectors per call (hnswlib still sized to n up front, as it must be:
  its ``max_elements`` is a capacity; FAISS and usearch grow as they go);
* ``reserve + chunks`` (bitgraph): ``index.reserve(n)`` first, the equivalent of max_elements.

Graph libraries use M = 16 and ``--ef-construction`` (default 40: memory does not depend on it,
build time does). The libraries are interleaved within each repetition; the table gives the
median of the repetitions and the ratio to hnswlib's RSS growth in the same run.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .memory import rss_bytes

DEFAULT_DATASETS = ("text-like-384:61678", "glove-50-angular")
MODES = {
    "bitgraph": ("one call", "chunks", "reserve + chunks"),
    "hnswlib": ("one call", "chunks"),
    "faiss-hnsw": ("chunks",),
    "usearch": ("chunks",),
}


# --------------------------------------------------------------------------- child process

def _build(lib: str, mode: str, x: np.ndarray, metric: str, chunk: int, efc: int,
           threads: int) -> tuple[object, int | None]:
    """Builds the index; returns (index, nbytes the library reports or None)."""
    n, dim = x.shape
    parts = [x] if mode == "one call" else [x[i:i + chunk] for i in range(0, n, chunk)]
    if lib == "bitgraph":
        import bitgraph as bg

        index = bg.HNSWIndex(dim, metric=metric, M=16, ef_construction=efc)
        if mode == "reserve + chunks":
            index.reserve(n)
        for p in parts:
            index.add(p, threads=threads)
        return index, int(index.nbytes)
    if lib == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="cosine" if metric == "cosine" else "l2", dim=dim)
        index.init_index(max_elements=n, M=16, ef_construction=efc, random_seed=100)
        start = 0
        for p in parts:
            index.add_items(p, np.arange(start, start + len(p)), num_threads=threads)
            start += len(p)
        return index, None
    if lib == "faiss-hnsw":
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT if metric == "cosine"
                                    else faiss.METRIC_L2)
        index.hnsw.efConstruction = efc
        for p in parts:
            index.add(np.ascontiguousarray(p))
        return index, None
    if lib == "usearch":
        from usearch.index import Index

        index = Index(ndim=dim, metric="ip" if metric == "cosine" else "l2sq", dtype="f32",
                      connectivity=16, expansion_add=efc)
        start = 0
        for p in parts:
            index.add(np.arange(start, start + len(p)), p, threads=threads)
            start += len(p)
        return index, None
    raise ValueError(f"unknown library {lib!r}")


_MODULES = {"bitgraph": "bitgraph", "hnswlib": "hnswlib", "faiss-hnsw": "faiss",
            "usearch": "usearch.index"}


def child(args: argparse.Namespace) -> None:
    import importlib

    importlib.import_module(_MODULES[args.lib])  # the module's own memory is not the index's
    x = np.load(args.vectors)  # read into RAM before the baseline
    x = np.ascontiguousarray(x, dtype=np.float32)
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    index, nbytes = _build(args.lib, args.mode, x, args.metric, args.chunk,
                           args.ef_construction, args.threads)
    seconds = time.perf_counter() - start
    gc.collect()
    growth = rss_bytes() - before
    print(json.dumps({"lib": args.lib, "mode": args.mode, "nbytes": nbytes,
                      "rss_growth": growth, "build_s": seconds, "n": int(len(x))}))
    del index


# --------------------------------------------------------------------------- parent

def _dataset(spec: str) -> tuple[str, np.ndarray, str]:
    from .datasets import GENERATORS

    name, _, size = spec.partition(":")
    base, _, metric = GENERATORS[name]()
    if size:
        base = base[: int(size)]
    return f"{name} ({len(base):,} x {base.shape[1]})", np.ascontiguousarray(base), metric


def _available(lib: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(_MODULES[lib].split(".")[0]) is not None


def run(datasets: list[str], libs: list[str], chunk: int, repeats: int, efc: int,
        threads: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in datasets:
            label, base, metric = _dataset(spec)
            path = Path(tmp) / "base.npy"
            np.save(path, base)
            jobs = [(lib, mode) for lib in libs for mode in MODES[lib]]
            for rep in range(repeats):
                order = jobs[rep % len(jobs):] + jobs[:rep % len(jobs)]  # rotate: interleave
                for lib, mode in order:
                    out = subprocess.run(
                        [sys.executable, "-m", "bench.memory_growth", "--child",
                         "--vectors", str(path), "--lib", lib, "--mode", mode,
                         "--metric", metric, "--chunk", str(chunk),
                         "--ef-construction", str(efc), "--threads", str(threads)],
                        capture_output=True, text=True, check=True)
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                    row.update(dataset=label, repeat=rep)
                    rows.append(row)
                    print(f"[{label} run {rep + 1}/{repeats}] {lib:10s} {mode:16s} RSS "
                          f"+{row['rss_growth'] / 2**20:7.1f} MiB"
                          + (f", nbytes {row['nbytes'] / 2**20:7.1f} MiB" if row["nbytes"]
                             else "") + f" ({row['build_s']:.0f} s)", file=sys.stderr)
    return rows


def table(rows: list[dict], chunk: int) -> str:
    """Markdown: median nbytes / RSS growth per dataset, library and mode, and the ratio of
    RSS growth to hnswlib's (same mode where hnswlib has it, else its chunked build)."""
    lines = []
    for label in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == label]
        groups: dict[tuple[str, str], list[dict]] = {}
        for r in sub:
            groups.setdefault((r["lib"], r["mode"]), []).append(r)

        def med(key: str, rs: list[dict]) -> float | None:
            vals = [r[key] for r in rs if r[key] is not None]
            return statistics.median(vals) if vals else None

        ref = {mode: med("rss_growth", rs) for (lib, mode), rs in groups.items()
               if lib == "hnswlib"}
        n_rep = len({r["repeat"] for r in sub})
        lines += [f"### {label}: adds of {chunk:,} (median of {n_rep} interleaved runs)", "",
                  "| library | adding | nbytes MiB | RSS growth MiB | RSS / hnswlib's | build s |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for (lib, mode), rs in groups.items():
            nb, rss = med("nbytes", rs), med("rss_growth", rs)
            base = ref.get(mode) or ref.get("chunks")
            ratio = f"{rss / base:.2f}x" if base else "-"
            lines.append(f"| {lib} | {mode} | {'-' if nb is None else f'{nb / 2**20:.1f}'} | "
                         f"{rss / 2**20:.1f} | {ratio} | {med('build_s', rs):.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DEFAULT_DATASETS),
                   help="comma list of NAME[:N] (first N base vectors)")
    p.add_argument("--libs", default="bitgraph,hnswlib,faiss-hnsw,usearch")
    p.add_argument("--chunk", type=int, default=5000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ef-construction", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench/results/memory-growth.json")
    # child mode (one build in this process)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--vectors", help=argparse.SUPPRESS)
    p.add_argument("--lib", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--metric", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(a)
        return
    libs = [lib for lib in a.libs.split(",") if lib]
    missing = [lib for lib in libs if lib not in MODES or not _available(lib)]
    for lib in missing:
        print(f"skipped {lib}: not installed (pip install -e '.[bench]')", file=sys.stderr)
    libs = [lib for lib in libs if lib not in missing]
    start = time.perf_counter()
    rows = run([d for d in a.datasets.split(",") if d], libs, a.chunk, a.repeats,
               a.ef_construction, a.threads)
    text = table(rows, a.chunk)
    print(text)
    if a.out:
        meta = _meta(sys.argv if argv is None else ["bench.memory_growth", *argv])
        meta.update(chunk=a.chunk, ef_construction=a.ef_construction, threads=a.threads,
                    repeats=a.repeats, wall_s=time.perf_counter() - start)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(f"results: {a.out}")


def _meta(argv: list[str]) -> dict:
    """Command, date, commit and machine of a run (as the other suites record them)."""
    import datetime
    import platform

    from .run_suite import _git_commit

    return {"suite": "memory", "argv": list(argv),
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), **_git_commit(),
            "machine": {"platform": platform.platform(), "cores": len(os.sched_getaffinity(0))
                        if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                        "python": platform.python_version(), "numpy": np.__version__}}


def section(path: Path) -> str:
    """The RESULTS.md section of a memory-growth JSON (bench.results_md)."""
    data = json.loads(Path(path).read_text())
    meta, rows = data["meta"], data["rows"]
    machine = meta.get("machine", {})
    dirty = " (with uncommitted changes)" if meta.get("dirty") else ""
    head = [f"## Memory of a streaming ingest ({path.stem})",
            f"Command: `{' '.join(['python -m bench.memory_growth', *meta.get('argv', [])[1:]])}`"
            "  \n"
            f"Date: {meta.get('date', '?')} · Commit: {(meta.get('commit') or '?')[:10]}{dirty}"
            f" · Machine: {machine.get('cores', '?')} cores, {machine.get('platform', '?')} · "
            f"M = 16, ef_construction = {meta.get('ef_construction')}, "
            f"{meta.get('threads')} build threads · Wall: {meta.get('wall_s', 0) / 60:.0f} min",
            "Each build runs in a fresh process that has loaded the vectors and imported the "
            "library; RSS growth is measured from before the index is made to after the last "
            "add (after a garbage collection). nbytes: bitgraph's `index.nbytes`."]
    return "\n\n".join(head + [table(rows, meta.get("chunk", 0))])


if __name__ == "__main__":
    main()
