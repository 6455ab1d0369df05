"""Binary-index benchmark (protocol: bench/README.md, "Binary indexes"): binarizer quality,
then binary indexes (bitgraph BinaryIndex flat / HNSW) against bitgraph's float HNSW and faiss
on the same codes.

    python -m bench.binary                                   # text-like-384, everything
    python -m bench.binary --dataset glove-50-angular
    python -m bench.binary --dataset text-like-small --max-base 10000 --max-queries 200 \\
        --repeats 1 --ef 16,64,256 --fit-sample 5000 --fixed --quality-binarizers fixed
                                                             # quick, ~1 min (git-ignored)

Part 1, **binarizer quality** (all cores, no timing but fit time): for each binarizer
(loops P, code_dim m, fixed / learned) a ``BinaryIndex(graph="flat")`` per distance, recall@10
without re-rank (``rerank=None``, the top 10 by code distance) and with re-rank
(``rerank="memory"``, ``oversample`` 4); fit seconds, bytes per vector. Default grid: P = 1/2/4
at m = d (1/2/4 bits per dimension) plus Hamming at equal total bits (P = 1, m = 2d and 4d),
each fixed and learned; SDC and Hamming for P > 1.

Part 2, **indexes** (bench.binary_peers): one build per library (all cores, timed; RSS
growth as a cross-check), then per thread setting ``repeats`` interleaved rounds (library
order rotates). Each point runs the query set as one batch, repeated until ``min_time``; a
point whose batch is projected (from a ``probe``-query run, also the warm-up) past
``max_seconds`` is timed on a prefix of the queries (``n_queries`` in its row, at least
``min_queries``), fixed in round 1. recall@10 (bench.metrics, ties count) from round 1.
QPS = queries / median seconds per batch. The binarizer of part 2 is ``--loops`` / ``--code-dim``
/ ``--fixed`` (default 2 bits/dim, learned), fitted once and shared by every binary index;
faiss binary peers get ``BinaryIndex.codes`` of the bitgraph flat index (the SAME codes).

Output: ``bench/results/binary-<dataset>.json`` (``-b<n>-q<nq>`` appended for subsampled or
``*-small`` runs: git-ignored, not published), markdown tables on stdout, the recall-QPS PNG
next to the JSON. ``bench.binary_report.section`` renders the RESULTS.md section.

Importable core: :func:`run_binary`.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):                     # run as a file: make "bench" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

import numpy as np

from bench import binary_report
from bench.cli_common import float_list, int_list, print_run
from bench.binary_peers import (DEFAULT_LIBS, LIBS, Context, available, make_runner,
                                needs_binarizer)
from bench.datasets import dataset_names, load_dataset
from bench.memory import settled_rss
from bench.metrics import id_recall_at_k, recall_at_k
from bench.protocol import rotated
from bench.run_suite import _git_commit, all_cores, parse_threads

DEFAULT_DATASET = "text-like-384"
DEFAULT_EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
DEFAULT_OVERSAMPLES = [1, 2, 4, 8, 16]
DEFAULT_HNSW_OVERSAMPLES = [2, 4, 8]
QUALITY_OVERSAMPLE = 4.0
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def have_binary() -> tuple[bool, str]:
    try:
        import bitgraph
    except Exception as e:                      # pragma: no cover - broken install
        return False, f"bitgraph does not import: {type(e).__name__}: {e}"
    missing = [n for n in ("RecurrentBinarizer", "BinaryIndex") if not hasattr(bitgraph, n)]
    if missing:
        return False, f"this bitgraph has no {', '.join(missing)}"
    return True, ""


# --------------------------------------------------------------------------- binarizers

def default_quality_grid(dim: int, kinds=("fixed", "learned")) -> list[dict]:
    """(loops, code_dim, learned, distances): 1/2/4 bits per dim at m = dim, fixed and learned,
    plus 1-plane codes with the same total bits as the 2- and 4-plane codes; the asymmetric
    distance (4-bit queries) beside the symmetric ones on each."""
    grid = []
    for learned in [k == "learned" for k in kinds]:
        for loops in (1, 2, 4):  # RecurrentBinarizer(dim, bits=loops): planes of dim bits
            grid.append({"loops": loops, "code_dim": dim, "learned": learned,
                         "distances": (["asymmetric", "sdc"] if loops == 1
                                       else ["asymmetric", "sdc", "hamming"])})
        for mult in (2, 4):
            grid.append({"loops": 1, "code_dim": mult * dim, "learned": learned,
                         "distances": ["asymmetric", "hamming"]})
        # the same bits as more planes of fewer dimensions: finer levels per code dimension
        # for data of low intrinsic dimension (1 bit/dim: 6 x dim/6, 4 x dim/4; 2 bits/dim:
        # 4 x dim/2, 6 x dim/3, 8 x dim/4)
        for loops, div in ((6, 6), (4, 4), (4, 2), (6, 3), (8, 4)):
            if dim % div == 0:
                grid.append({"loops": loops, "code_dim": dim // div, "learned": learned,
                             "distances": ["sdc"]})
    return grid


def fit_binarizer(dim: int, loops: int, code_dim: int | None, learned: bool, sample: np.ndarray,
                  seed: int = 0):
    """A fitted ``bitgraph.RecurrentBinarizer`` and its fit seconds."""
    import bitgraph as bg
    binz = bg.RecurrentBinarizer(dim, loops=loops, code_dim=code_dim, learned=learned,
                                 seed=seed, normalize=True)
    t0 = time.perf_counter()
    binz.fit(np.ascontiguousarray(sample, np.float32), progress=False)
    return binz, time.perf_counter() - t0


def fit_sample(base: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray:
    if n is None or n >= len(base):
        return base
    idx = np.sort(np.random.default_rng(seed).choice(len(base), n, replace=False))
    return base[idx]


def binarizer_key(loops, code_dim, learned) -> tuple:
    return int(loops), int(code_dim), bool(learned)


def quality(ds, grid: list[dict], sample: np.ndarray, k: int, oversample: float, threads: int,
            binarizers: dict, seed: int = 0, log=_log) -> list[dict]:
    """Part 1: one row per (binarizer, distance). Fitted binarizers are kept in
    ``binarizers`` (keyed by :func:`binarizer_key`) for part 2."""
    import bitgraph as bg
    rows = []
    Q, base = ds.queries, np.ascontiguousarray(ds.base, np.float32)
    for g in grid:
        key = binarizer_key(g["loops"], g["code_dim"], g["learned"])
        if key in binarizers:
            binz, fit_s = binarizers[key]
        else:
            try:
                binz, fit_s = fit_binarizer(ds.dim, g["loops"], g["code_dim"], g["learned"],
                                            sample, seed)
            except Exception as e:
                log(f"[quality] P={g['loops']} m={g['code_dim']} learned={g['learned']}: "
                    f"fit failed: {type(e).__name__}: {e}")
                rows.append({"kind": "quality", **_qkey(g, ds.dim), "error":
                             f"fit failed: {type(e).__name__}: {e}"})
                continue
            binarizers[key] = (binz, fit_s)
        for dist in g["distances"]:
            row = {"kind": "quality", **_qkey(g, ds.dim), "distance": dist,
                   "code_bytes": int(binz.code_bytes), "bytes_per_vector": int(binz.code_bytes),
                   "fit_s": fit_s, "fit_sample": int(len(sample)), "k": int(k),
                   "oversample": oversample}
            try:
                for rr, col in ((None, "recall_codes"), ("memory", "recall_rerank")):
                    idx = bg.BinaryIndex(binz, graph="flat", distance=dist, rerank=rr,
                                         metric=ds.metric)
                    # rows carry a 4-byte code offset when the index uses offsets
                    offsets = bool(getattr(idx, "offsets", False))  # older bitgraph: none
                    row["offsets"] = offsets
                    row["bytes_per_vector"] = int(binz.code_bytes) + (4 if offsets else 0)
                    t0 = time.perf_counter()
                    idx.add(base, threads=threads)
                    add_s = time.perf_counter() - t0
                    kw = {} if rr is None else {"oversample": oversample}
                    t0 = time.perf_counter()
                    ids = np.asarray(idx.search(Q, k, threads=threads, **kw).ids)
                    row[col.replace("recall", "search_s")] = time.perf_counter() - t0
                    row[col] = recall_at_k(ids, ds.gt, ds.base, Q, ds.metric, k)
                    row[col.replace("recall", "id_recall")] = id_recall_at_k(ids, ds.gt, k)
                    row.setdefault("add_s", add_s)
                    if rr is None:
                        row["nbytes_codes_index"] = int(idx.nbytes)
                    del idx
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {e}"
            rows.append(row)
            log(f"[quality] P={row['loops']} m={row['code_dim']} ({row['bits_per_dim']:g} b/dim) "
                f"{'learned' if row['learned'] else 'fixed  '} {dist:7s} "
                f"{row['bytes_per_vector']} B  fit {fit_s:6.1f} s  recall codes "
                f"{row.get('recall_codes', float('nan')):.4f}  rerank x{oversample:g} "
                f"{row.get('recall_rerank', float('nan')):.4f}"
                + (f"  ERROR {row['error']}" if "error" in row else ""))
    return rows


def _qkey(g: dict, dim: int) -> dict:
    return {"loops": int(g["loops"]), "code_dim": int(g["code_dim"]),
            "learned": bool(g["learned"]), "bits_per_dim": g["loops"] * g["code_dim"] / dim}


# --------------------------------------------------------------------------- timing

def _timed(runner, Q, k, point, threads, min_time):
    """First ids and wall / CPU seconds per batch, plus the mean of the runner's timed parts."""
    c0, t0 = time.process_time(), time.perf_counter()
    ids = runner.search(Q, k, point, threads)
    parts = dict(runner.parts)
    n = 1
    while time.perf_counter() - t0 < min_time:
        runner.search(Q, k, point, threads)
        for key, v in runner.parts.items():
            parts[key] = parts.get(key, 0.0) + v
        n += 1
    wall = time.perf_counter() - t0
    return ids, wall / n, (time.process_time() - c0) / n, {key: v / n for key, v in parts.items()}


def _batch_size(runner, Q, k, point, threads, probe, max_seconds, min_queries):
    nq = len(Q)
    p = min(probe, nq)
    runner.search(Q[:p], k, point, threads)                 # warm-up (JIT, pools, pages)
    t0 = time.perf_counter()
    runner.search(Q[:p], k, point, threads)
    projected = (time.perf_counter() - t0) * nq / max(p, 1)
    if projected <= max_seconds or p >= nq:
        return nq
    return min(nq, max(min_queries, p, int(nq * max_seconds / projected)))


def point_label(point: dict) -> str:
    parts = []
    if point["ef"] is not None:
        parts.append(f"ef={point['ef']}")
    if point["oversample"] is not None:
        parts.append(f"os={point['oversample']:g}")
    else:
        parts.append(f"k={point['k_search']}")
    return " ".join(parts)


def sweep(runners, ds, threads: int, k: int, repeats: int, min_time: float, max_seconds: float,
          probe: int, min_queries: int, log=_log) -> list[dict]:
    """Interleaved repeated sweep of every runner's points at one thread setting."""
    Q = ds.queries
    nq = len(Q)
    recs: dict = {}
    pts = {r.name: r.points(k) for r in runners}
    for rnd in range(repeats):
        for runner in rotated(runners, rnd):
            shown = []
            for pi, point in enumerate(pts[runner.name]):
                key = (runner.name, pi)
                if rnd == 0:
                    n = _batch_size(runner, Q, k, point, threads, probe, max_seconds,
                                    min_queries)
                    ids, wall, cpu, parts = _timed(runner, Q[:n], k, point, threads, min_time)
                    rec = recall_at_k(ids, ds.gt[:n], ds.base, Q[:n], ds.metric, k)
                    recs[key] = {"n": n, "walls": [wall], "cpus": [cpu], "parts": [parts],
                                 "recall": rec, "id_recall": id_recall_at_k(ids, ds.gt[:n], k)}
                else:
                    r = recs[key]
                    _, wall, cpu, parts = _timed(runner, Q[:r["n"]], k, point, threads,
                                                 min_time)
                    r["walls"].append(wall)
                    r["cpus"].append(cpu)
                    r["parts"].append(parts)
                r = recs[key]
                shown.append(f"{point_label(point)}:{r['recall']:.3f}/"
                             f"{r['n'] / r['walls'][-1]:.0f}")
            log(f"[t={threads} round {rnd + 1}/{repeats}] {runner.name}: recall/QPS "
                + ", ".join(shown))
    rows = []
    for runner in runners:
        for pi, point in enumerate(pts[runner.name]):
            r = recs[(runner.name, pi)]
            w, c = np.asarray(r["walls"]), np.asarray(r["cpus"])
            med = float(np.median(w))
            parts = {key: float(np.median([p.get(key, 0.0) for p in r["parts"]]))
                     for key in r["parts"][0]}
            rows.append({"kind": "search", "library": runner.name, "family": runner.family,
                         "is_bitgraph": runner.is_bitgraph, "is_graph": runner.is_graph,
                         "rerank": runner.rerank, "threads": int(threads), **point,
                         "k": int(k), "recall": r["recall"], "id_recall": r["id_recall"],
                         "qps": r["n"] / med, "seconds_median": med,
                         "seconds_runs": w.tolist(), "rounds": len(w),
                         "cpu_util": float(np.median(c / np.maximum(w, 1e-12))),
                         "parts_s": parts, "n_queries": int(r["n"]),
                         "truncated": bool(r["n"] < nq)})
    return rows


def build(runner, threads: int, n_base: int, log=_log) -> dict:
    rss0 = settled_rss()
    t0 = time.perf_counter()
    runner.build(threads)
    build_s = time.perf_counter() - t0
    rss1 = settled_rss()
    nb = runner.nbytes()
    rr = runner.rerank_bytes()
    row = {"kind": "build", "library": runner.name, "family": runner.family,
           "is_bitgraph": runner.is_bitgraph, "is_graph": runner.is_graph,
           "rerank": runner.rerank, "version": runner.version(), "params": runner.params(),
           "threads": int(threads), "build_s": build_s, "shared_build": runner.shared_build,
           "nbytes": nb, "nbytes_method": runner.nbytes_method, "rerank_bytes": rr,
           "bytes_per_vector": nb / n_base, "ram_bytes_per_vector": (nb + rr) / n_base,
           "rss_growth_bytes": rss1 - rss0, "n_base": int(n_base)}
    log(f"[build] {runner.name:24s} {build_s:8.2f} s{' (shared)' if runner.shared_build else ''}"
        f"  {nb / 2**20:8.1f} MiB ({row['bytes_per_vector']:.0f} B/vec"
        + (f", +{rr / n_base:.0f} B/vec floats for the re-rank" if rr else "")
        + f")  RSS +{(rss1 - rss0) / 2**20:.1f} MiB")
    return row


def index_codes(index, ctx, log=_log) -> np.ndarray | None:
    """``index.codes`` as (n, code_bytes) uint8, checked against the binarizer's own encoding
    of the first rows (row i must be id i for faiss to return the same ids); None (the faiss
    peers then encode the base themselves) if it does not match."""
    codes = np.asarray(index.codes)
    if codes.dtype != np.uint8:
        codes = codes.view(np.uint8)
    codes = np.ascontiguousarray(codes.reshape(len(codes), -1))
    n = min(256, len(ctx.base))
    if codes.shape != (len(ctx.base), ctx.binz.code_bytes) or \
            not np.array_equal(codes[:n], ctx.encode(ctx.base[:n])):
        log("[codes] BinaryIndex.codes does not match the binarizer's encoding row for row; "
            "the faiss peers use binz.encode(base)")
        return None
    return codes


# --------------------------------------------------------------------------- memory bandwidth

def memory_bandwidth(mib: int = 512, threads: int = 1, repeats: int = 5) -> float:
    """Read bandwidth in GB/s: the best of ``repeats`` ``np.sum`` passes over a ``mib`` MiB
    float64 array (``threads`` Python threads each summing a contiguous slice; numpy releases
    the GIL in the reduction)."""
    from concurrent.futures import ThreadPoolExecutor
    a = np.ones(mib * 2**20 // 8, dtype=np.float64)
    chunks = np.array_split(a, max(threads, 1))
    best = np.inf
    pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
    try:
        for _ in range(repeats + 1):                   # first pass faults the pages in
            t0 = time.perf_counter()
            if pool is None:
                a.sum()
            else:
                list(pool.map(np.sum, chunks))
            best = min(best, time.perf_counter() - t0)
    finally:
        if pool is not None:
            pool.shutdown()
    return a.nbytes / best / 1e9


# --------------------------------------------------------------------------- the run

def _default_out(dataset: str, ds_info: dict, n_base: int, nq: int) -> Path:
    if "max_base" in ds_info or "max_queries" in ds_info or dataset.endswith("-small"):
        return RESULTS_DIR / f"binary-{dataset}-b{n_base}-q{nq}.json"      # git-ignored
    return RESULTS_DIR / f"binary-{dataset}.json"


def parse_libs(spec) -> list[str]:
    if spec in (None, "all"):
        return list(DEFAULT_LIBS)
    libs = [x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip()]
    bad = [x for x in libs if x not in LIBS]
    if bad:
        raise ValueError(f"unknown libraries {bad}; expected some of {sorted(LIBS)}")
    return libs


def run_binary(dataset: str = DEFAULT_DATASET, *, ds=None, max_base: int | None = None,
               max_queries: int | None = None, cache_dir: str | None = None,
               parts: str = "quality,index", quality_grid: list[dict] | None = None,
               quality_binarizers=("fixed", "learned"),
               libs=None, threads="1,all", efs: list[int] | None = None,
               oversamples: list[float] | None = None,
               hnsw_oversamples: list[float] | None = None, scan_ks=(10, 40),
               loops: int = 2, code_dim: int | None = None, learned: bool = True,
               fit_sample_n: int | None = None, k: int = 10, repeats: int = 3,
               min_time: float = 0.1, max_seconds: float = 1.0, probe: int = 20,
               min_queries: int = 200, seed: int = 0, membw: bool = True,
               out: str | Path | None | bool = None, plot: bool = True, log=_log) -> dict:
    """Run the binary benchmark; returns ``{"meta", "rows", "tables", "out", "plot"}``.

    ``ds``: a ready :class:`bench.datasets.Dataset` (tests) instead of ``dataset``.
    ``parts``: "quality", "index" or both. ``out``: JSON path (None: default name; False: do
    not write). ``plot``: also write the PNG next to the JSON.
    """
    t_start = time.perf_counter()
    if ds is None:
        ds = load_dataset(dataset, cache_dir=cache_dir, max_base=max_base,
                          max_queries=max_queries)
    dataset = ds.name
    log(f"[data] {ds.describe()}")
    part_set = {p.strip() for p in parts.split(",")} if isinstance(parts, str) else set(parts)
    efs = sorted(set(int(e) for e in (efs or DEFAULT_EFS)))
    oversamples = [float(o) for o in (oversamples or DEFAULT_OVERSAMPLES)]
    hnsw_oversamples = [float(o) for o in (hnsw_oversamples or DEFAULT_HNSW_OVERSAMPLES)]
    thread_list = parse_threads(threads)
    cores = all_cores()
    code_dim = int(code_dim or ds.dim)
    ok_bin, why_bin = have_binary()
    skipped: dict[str, str] = {}
    rows: list[dict] = []
    binarizers: dict = {}
    sample = fit_sample(ds.base, fit_sample_n, seed)

    bw = {}
    if membw:
        bw = {"read_1t_gbps": memory_bandwidth(threads=1),
              f"read_{cores}t_gbps": memory_bandwidth(threads=cores)}
        log(f"[membw] numpy sum over 512 MiB: {bw}")

    # ---- part 1: binarizer quality
    if "quality" in part_set:
        if ok_bin:
            grid = quality_grid or default_quality_grid(ds.dim, quality_binarizers)
            rows += quality(ds, grid, sample, k, QUALITY_OVERSAMPLE, cores, binarizers, seed,
                            log=log)
        else:
            skipped["quality"] = why_bin
            log(f"[skip] quality: {why_bin}")

    # ---- part 2: indexes
    index_binz = {}
    if "index" in part_set:
        ctx = Context(base=ds.base, metric=ds.metric)
        if ok_bin:
            key = binarizer_key(loops, code_dim, learned)
            if key not in binarizers:
                binarizers[key] = fit_binarizer(ds.dim, loops, code_dim, learned, sample, seed)
            ctx.binz, fit_s = binarizers[key]
            ctx.binz_params = {"loops": loops, "code_dim": code_dim, "learned": learned}
            index_binz = {**ctx.binz_params, "bits_per_dim": loops * code_dim / ds.dim,
                          "code_bytes": int(ctx.binz.code_bytes), "fit_s": fit_s,
                          "fit_sample": int(len(sample))}
            t0 = time.perf_counter()
            ctx.encode(ds.queries)
            index_binz["query_encode_s"] = time.perf_counter() - t0   # all queries, once
            log(f"[binarizer] {index_binz}")
        runners = []
        for name in parse_libs(libs):
            if needs_binarizer(name) and not ok_bin:
                skipped[name] = why_bin
                log(f"[skip] {name}: {why_bin}")
                continue
            ok, why = available(name, ctx)
            if not ok:
                skipped[name] = why
                log(f"[skip] {name}: {why}")
                continue
            runners.append(make_runner(name, ctx, efs, oversamples, hnsw_oversamples,
                                       scan_ks))
        # the bitgraph flat index first: its codes feed the faiss binary peers
        runners.sort(key=lambda r: 0 if r.name.startswith("bg-bin-flat") else 1)
        built = []
        for r in runners:
            try:
                rows.append(build(r, cores, len(ds.base), log=log))
            except Exception as e:                 # one broken library must not end the run
                skipped[r.name] = f"build failed: {type(e).__name__}: {e}"
                log(f"[skip] {r.name}: {skipped[r.name]}")
                r.close()
                continue
            built.append(r)
            if ctx.codes is None and r.name.startswith("bg-bin-flat"):
                ctx.codes = index_codes(r.index, ctx, log)
        for t in thread_list:
            rows += sweep(built, ds, t, k, repeats, min_time, max_seconds, probe, min_queries,
                          log=log)
        for r in built:
            r.close()

    versions = {}
    try:
        from bench.binary_peers import bitgraph_version
        versions["bitgraph"] = bitgraph_version()
    except Exception:                               # pragma: no cover - broken install
        pass
    try:
        import faiss
        versions["faiss"] = faiss.__version__
    except ImportError:
        pass
    meta = {"suite": "binary", "dataset": ds.describe(), "k": k, "parts": sorted(part_set),
            "efs": efs, "oversamples": oversamples, "hnsw_oversamples": hnsw_oversamples,
            "scan_ks": list(scan_ks), "threads": thread_list, "build_threads": cores,
            "repeats": repeats, "min_time": min_time, "max_seconds": max_seconds,
            "probe": probe, "min_queries": min_queries, "quality_oversample": QUALITY_OVERSAMPLE,
            "index_binarizer": index_binz, "fit_sample": int(len(sample)),
            "memory_bandwidth": bw, "versions": versions, "skipped": skipped,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cores": cores, "python": platform.python_version(),
                        "numpy": np.__version__},
            **_git_commit(), "argv": sys.argv, "wall_s": None}
    meta["wall_s"] = time.perf_counter() - t_start
    tabs = binary_report.tables(rows, meta)
    result = {"meta": meta, "rows": rows, "tables": tabs, "out": None, "plot": None}
    if out is not False:
        out = Path(out) if out else _default_out(dataset, ds.info, len(ds.base), len(ds.queries))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "rows": rows, "tables": tabs}, indent=1))
        result["out"] = str(out)
        if plot and any(r["kind"] == "search" for r in rows):
            result["plot"] = str(binary_report.plot_rows(rows, out.with_suffix(".png"),
                                                         dataset))
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="bitgraph binary-index benchmark",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default=DEFAULT_DATASET, choices=dataset_names())
    p.add_argument("--max-base", type=int, default=None, help="subsample the base")
    p.add_argument("--max-queries", type=int, default=None, help="subsample the queries")
    p.add_argument("--cache-dir", default=None, help="ground-truth cache")
    p.add_argument("--parts", default="quality,index", help="quality, index, or both")
    p.add_argument("--quality-binarizers", default="fixed,learned",
                   help="binarizer kinds of the quality grid: fixed, learned or both")
    p.add_argument("--libs", default="all",
                   help=f"comma list from {sorted(LIBS)}, or 'all' = {','.join(DEFAULT_LIBS)}")
    p.add_argument("--threads", default="1,all", help="comma list of thread counts; 'all' = cores")
    p.add_argument("--ef", type=int_list, default=DEFAULT_EFS, help="graph search ef sweep")
    p.add_argument("--oversample", type=float_list, default=DEFAULT_OVERSAMPLES,
                   help="flat re-rank oversample sweep")
    p.add_argument("--hnsw-oversample", type=float_list, default=DEFAULT_HNSW_OVERSAMPLES,
                   help="graph re-rank oversample sweep")
    p.add_argument("--scan-k", type=int_list, default=[10, 40],
                   help="k of the no-re-rank flat scans (the scan-speed ratio)")
    p.add_argument("--loops", type=int, default=2, help="bit planes of the part-2 binarizer")
    p.add_argument("--code-dim", type=int, default=None, help="bits per plane (default dim)")
    p.add_argument("--fixed", action="store_true", help="part 2 uses the fixed binarizer")
    p.add_argument("--fit-sample", type=int, default=0,
                   help="rows the binarizers are fitted on (0 = the whole base: the target "
                        "is a fit on 200k x 384 in under 5 minutes; the library may "
                        "subsample)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    p.add_argument("--min-time", type=float, default=0.1,
                   help="seconds a point repeats its batch for within a round")
    p.add_argument("--max-seconds", type=float, default=1.0,
                   help="a batch projected past this is timed on a prefix of the queries")
    p.add_argument("--min-queries", type=int, default=200, help="smallest such prefix")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-membw", action="store_true", help="skip the bandwidth measurement")
    p.add_argument("--out", default=None, help="JSON path (default bench/results/binary-"
                   "<dataset>.json; -b<n>-q<nq> appended for quick runs, git-ignored)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    a = p.parse_args(argv)
    res = run_binary(a.dataset, max_base=a.max_base, max_queries=a.max_queries,
                     cache_dir=a.cache_dir, parts=a.parts,
                     quality_binarizers=[x.strip() for x in a.quality_binarizers.split(",")
                                         if x.strip()],
                     libs=a.libs, threads=a.threads,
                     efs=a.ef, oversamples=a.oversample, hnsw_oversamples=a.hnsw_oversample,
                     scan_ks=tuple(a.scan_k), loops=a.loops, code_dim=a.code_dim,
                     learned=not a.fixed, fit_sample_n=a.fit_sample or None, k=a.k,
                     repeats=a.repeats, min_time=a.min_time, max_seconds=a.max_seconds,
                     min_queries=a.min_queries, seed=a.seed, membw=not a.no_membw,
                     out=a.out, plot=not a.no_plot)
    print_run(res)
    return res


if __name__ == "__main__":
    main()
