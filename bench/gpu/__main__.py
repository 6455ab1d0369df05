"""QPS and effective bandwidth of bitgraph's CUDA scans beside faiss-gpu and plain CuPy.

    python -m bench.gpu                                   # n = 1M and 10M, the full grid
    python -m bench.gpu --sizes 100000 --nq 1,100 --k 10 --repeats 3 --out /tmp/gpu.json

Float: exact k-NN (l2, float32, dim 128) through bitgraph's device scan (FloatScan: cuBLAS
GEMM tiles, the fused select, the exact re-score), faiss ``GpuIndexFlatL2`` and a CuPy
baseline (matmul per base chunk + argpartition + merge). Binary: the SDC scan (2 planes of
128 bits, 32 bytes per vector) through bitgraph's CodeScan, faiss ``GpuIndexBinaryFlat``
(Hamming over the same 256 bits, 32 bytes per vector), and bitgraph's Hamming scan.

Data are random (the scans' cost does not depend on the values); device arrays in and out
for bitgraph and CuPy, numpy for faiss (its Python API; queries and results are small).
Each figure is the median of ``--repeats`` repetitions, the systems and cases interleaved
within a repetition. Effective bandwidth = bytes of the base read per second (the base once
per query block of the plan). Peers that are not installed are skipped with a message.
Writes JSON (``--out``, default $OUT/gpu.json or bench/results/gpu.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _parse_ints(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",") if v.strip()]


def _timed(cp: Any, fn: Callable[[], Any]) -> float:
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    fn()
    cp.cuda.Device().synchronize()
    return time.perf_counter() - t0


def _cupy_topk(cp: Any, x: Any, q: Any, k: int, chunk: int = 1 << 20) -> Any:
    """The plain baseline: l2 by matmul per base chunk, argpartition, merge."""
    qn = (q * q).sum(1)[:, None]
    best_d = best_i = None
    for s in range(0, x.shape[0], chunk):
        xc = x[s:s + chunk]
        d = qn - 2 * (q @ xc.T) + (xc * xc).sum(1)[None, :]
        kk = min(k, d.shape[1])
        part = cp.argpartition(d, kk - 1, axis=1)[:, :kk]
        dd = cp.take_along_axis(d, part, 1)
        ii = part + s
        if best_d is not None:
            dd, ii = cp.concatenate([best_d, dd], 1), cp.concatenate([best_i, ii], 1)
            part = cp.argpartition(dd, k - 1, axis=1)[:, :k]
            dd, ii = cp.take_along_axis(dd, part, 1), cp.take_along_axis(ii, part, 1)
        best_d, best_i = dd, ii
    order = cp.argsort(best_d, axis=1)
    return cp.take_along_axis(best_i, order, 1)


def _systems(cp: Any, n: int, dim: int, kinds: set[str], notes: list[str]) -> dict[str, Any]:
    """name -> (kind, search(q_host, q_dev, k), base bytes per row, plan passes fn)."""
    from bitgraph._cuda import plan, scan

    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    if "float" in kinds:
        x = cp.asarray(rng.standard_normal((n, dim), dtype=np.float32))
        fs = scan.FloatScan(cp, dim, "float32", "l2")
        fs.rows.data, fs.rows.n = x, n
        fs.sqnorms.data = cp.einsum("ij,ij->i", x, x)
        fs.sqnorms.n = n
        fs.max_norm = float(cp.sqrt(fs.sqnorms.data.max()))
        fs.labels = cp.arange(n, dtype=cp.int64)
        fs.live = cp.asarray(scan.live_bits(np.zeros(n, np.uint8), n))
        fs.n = n
        out["bitgraph float"] = ("float", lambda qh, qd, k: fs.search(qd, k, fs.live), 4 * dim)
        out["cupy matmul+argpartition"] = ("float", lambda qh, qd, k: _cupy_topk(cp, x, qd, k),
                                           4 * dim)
        try:
            import faiss

            res = faiss.StandardGpuResources()
            fi = faiss.GpuIndexFlatL2(res, dim)
            fi.add(cp.asnumpy(x))
            out["faiss GpuIndexFlatL2"] = ("float", lambda qh, qd, k: fi.search(qh, k), 4 * dim)
        except Exception as exc:  # noqa: BLE001 - not installed, or no GPU build
            notes.append(f"faiss-gpu float peer skipped: {exc}")
    if "binary" in kinds:
        planes, bits = 2, 128
        words = bits // 64
        codes = rng.integers(0, 2**63, size=(n, planes * words), dtype=np.int64).view(np.uint64)
        for dist in ("sdc", "hamming"):
            cs = scan.CodeScan(cp, planes, words, False, dist, dim, False)
            cs.codes.data = cp.ascontiguousarray(cp.asarray(codes).T)
            cs.codes.n = n
            cs.labels = cp.arange(n, dtype=cp.int64)
            cs.live = cp.asarray(scan.live_bits(np.zeros(n, np.uint8), n))
            cs.n = n
            out[f"bitgraph binary {dist}"] = (
                "binary", lambda qh, qd, k, cs=cs: cs.select(qd, None, k, cs.live), 8 * planes * words)
        try:
            import faiss

            res_b = faiss.StandardGpuResources()
            fb = faiss.GpuIndexBinaryFlat(res_b, planes * bits)
            fb.add(codes.view(np.uint8).reshape(n, -1))
            out["faiss GpuIndexBinaryFlat"] = ("binary", lambda qh, qd, k: fb.search(qh, k),
                                               8 * planes * words)
        except Exception as exc:  # noqa: BLE001 - not installed, or no GPU build
            notes.append(f"faiss-gpu binary peer skipped: {exc}")
    _ = plan
    return out


def _queries(cp: Any, kind: str, nq: int, dim: int, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    if kind == "float":
        qh = rng.standard_normal((nq, dim), dtype=np.float32)
        return qh, cp.asarray(qh)
    qh = rng.integers(0, 256, size=(nq, 32), dtype=np.uint8)
    return qh, cp.asarray(qh).view(cp.uint64)


def run(sizes: list[int], nqs: list[int], ks: list[int], dim: int, repeats: int,
        kinds: set[str]) -> dict[str, Any]:
    import cupy as cp
    from bitgraph._cuda import plan

    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    props = cp.cuda.runtime.getDeviceProperties(0)
    for n in sizes:
        systems = _systems(cp, n, dim, kinds, notes)
        cases = [(name, nq, k) for name in systems for nq in nqs for k in ks]
        times: dict[tuple[str, int, int], list[float]] = {c: [] for c in cases}
        qs = {(kind, nq): _queries(cp, kind, nq, dim, nq) for kind in kinds for nq in nqs}
        for name, nq, k in cases:  # warm-up: compiles kernels, cuBLAS handles, faiss temp
            kind, fn, _ = systems[name]
            fn(*qs[(kind, nq)], k)
        for _ in range(repeats):
            for case in cases:
                name, nq, k = case
                kind, fn, _ = systems[name]
                q = qs[(kind, nq)]
                times[case].append(_timed(cp, lambda fn=fn, q=q, k=k: fn(*q, k)))
        for name, nq, k in cases:
            kind, _, row_bytes = systems[name]
            t = statistics.median(times[(name, nq, k)])
            passes = -(-nq // plan.plan_scan(n, nq, k + (plan.candidate_margin(k)
                                                       if kind == "float" else 0)).query_block)
            rows.append({"system": name, "kind": kind, "n": n, "nq": nq, "k": k,
                         "seconds": t, "qps": nq / t,
                         "base_gb_per_s": n * row_bytes * passes / t / 1e9,
                         "times": times[(name, nq, k)]})
        del systems
        cp.get_default_memory_pool().free_all_blocks()
    return {"benchmark": "gpu", "device": props["name"].decode() if isinstance(
                props["name"], bytes) else str(props["name"]),
            "memory_gb": cp.cuda.Device().mem_info[1] / 1e9, "dim": dim, "repeats": repeats,
            "host": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "notes": notes, "results": rows}


def table(report: dict[str, Any]) -> str:
    lines = [f"{report['device']}: dim {report['dim']}, median of {report['repeats']}",
             f"{'system':28} {'n':>10} {'nq':>6} {'k':>4} {'QPS':>12} {'base GB/s':>10}"]
    for r in report["results"]:
        lines.append(f"{r['system']:28} {r['n']:>10} {r['nq']:>6} {r['k']:>4} "
                     f"{r['qps']:>12.1f} {r['base_gb_per_s']:>10.1f}")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000000,10000000", help="base sizes n")
    ap.add_argument("--nq", default="1,10,100,1000,10000", help="queries per call")
    ap.add_argument("--k", default="10,100")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", default="float,binary")
    default_out = Path(os.environ["OUT"]) / "gpu.json" if os.environ.get("OUT") else \
        Path(__file__).resolve().parents[1] / "results" / "gpu.json"
    ap.add_argument("--out", type=Path, default=default_out)
    args = ap.parse_args(argv)
    if args.repeats < 3:
        ap.error("--repeats must be >= 3 (figures are medians of interleaved repeats)")
    import bitgraph as bg

    info = bg.backend_info()
    if not info["cuda"]:
        print(f"no CUDA device: {info['cuda_error']}")
        return 2
    report = run(_parse_ints(args.sizes), _parse_ints(args.nq), _parse_ints(args.k),
                 args.dim, args.repeats, set(args.kinds.split(",")))
    report["backend_info"] = info
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
