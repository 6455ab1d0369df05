"""Graph quality: bitgraph's HNSW graph against hnswlib's, built the same way, searched the same way.

Recall at equal ef mixes two things: how good the graph is and how the search walks it. This
tool separates them. It builds bitgraph ``HNSWIndex`` and ``hnswlib.Index`` with the same M and
ef_construction (in one add or in chunks, with 1 or more threads), then

* searches each with its own code (recall@10 at each ef, 1 search thread), and
* reads each level-0 graph out (bitgraph's saved state; hnswlib's ``save_index`` file, whose
  layout is hnswalg.h's) and walks both with **one** beam search (the HNSW level-0 search,
  from the same start node: the base row nearest the mean), counting distance computations,
* and prints degree statistics (mean out-degree, share of full lists, nodes nobody links to,
  nodes the start cannot reach).

    python -m bench.graph_quality --dataset docs-minilm-384 --chunks 1,8 --threads 2
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.datasets import load_dataset
from bench.metrics import recall_at_k

K = 10


# --------------------------------------------------------------------------- graphs as CSR

def csr_from_rows(rows: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of a level-0 adjacency given per-node neighbour arrays."""
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate(rows).astype(np.int64) if n else np.zeros(0, np.int64)
    return indptr, indices


def bitgraph_level0(index) -> tuple[np.ndarray, np.ndarray]:
    """bitgraph's level-0 links in label space (labels are the row numbers 0..n-1 here)."""
    state = index._core.get_state()
    links0, labels = state["links0"], state["labels"]
    n = len(labels)
    by_label: list[np.ndarray] = [np.zeros(0, np.int64)] * n
    for slot in range(n):
        cnt = int(links0[slot, 0])
        by_label[int(labels[slot])] = labels[links0[slot, 1:1 + cnt]]
    return csr_from_rows(by_label, n)


def hnswlib_level0(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """hnswlib's level-0 links in label space, read from a ``save_index`` file (hnswalg.h:
    a header of size_t/int fields, then ``cur_element_count`` level-0 records of
    [u16 count, u16 pad, maxM0 x u32 links, vector, size_t label])."""
    raw = path.read_bytes()
    (off_level0, _max_el, count, size_per, label_off, _off_data) = struct.unpack_from("<6Q", raw, 0)
    pos = 48 + 4 + 4  # maxlevel_ (int), enterpoint_node_ (u32)
    _maxM, maxM0, _M = struct.unpack_from("<3Q", raw, pos)
    pos += 24 + 8 + 8  # mult_ (double), ef_construction_ (size_t)
    block = np.frombuffer(raw, dtype=np.uint8, count=count * size_per, offset=pos)
    block = block.reshape(count, size_per)
    cnts = block[:, off_level0:off_level0 + 2].copy().view(np.uint16)[:, 0].astype(np.int64)
    links = block[:, off_level0 + 4:off_level0 + 4 + 4 * maxM0].copy().view(np.uint32)
    labels = block[:, label_off:label_off + 8].copy().view(np.uint64)[:, 0].astype(np.int64)
    by_label: list[np.ndarray] = [np.zeros(0, np.int64)] * count
    for i in range(count):
        by_label[int(labels[i])] = labels[links[i, :cnts[i]].astype(np.int64)]
    return csr_from_rows(by_label, count)


def degree_stats(indptr: np.ndarray, indices: np.ndarray, start: int, cap: int) -> dict:
    n = len(indptr) - 1
    out_deg = np.diff(indptr)
    in_deg = np.bincount(indices, minlength=n)
    seen = np.zeros(n, dtype=bool)
    seen[start] = True
    frontier = np.array([start])
    while len(frontier):
        nxt = np.concatenate([indices[indptr[u]:indptr[u + 1]] for u in frontier])
        nxt = np.unique(nxt[~seen[nxt]])
        seen[nxt] = True
        frontier = nxt
    return {"mean_out_degree": round(float(out_deg.mean()), 2),
            "full_lists": round(float((out_deg >= cap).mean()), 3),
            "no_in_links": int((in_deg == 0).sum()),
            "unreachable": int((~seen).sum())}


# --------------------------------------------------------------------------- one beam search

def _beam_search_kernel():
    """The HNSW level-0 search (hnswlib's searchBaseLayerST without deletions), compiled."""
    import heapq

    import numba

    @numba.njit(cache=True)
    def search(indptr, indices, base, q, start, ef, k, is_l2, visited, stamp):
        def dist(i):
            acc = 0.0
            row = base[i]
            if is_l2:
                for j in range(row.shape[0]):
                    t = row[j] - q[j]
                    acc += t * t
                return acc
            for j in range(row.shape[0]):
                acc += row[j] * q[j]
            return 1.0 - acc

        res_d = np.full(ef, np.inf)   # the ef best so far, sorted
        res_i = np.full(ef, -1, np.int64)
        d0 = dist(start)
        visited[start] = stamp
        res_d[0], res_i[0] = d0, start
        n_res, computed = 1, 1
        heap = [(d0, start)]          # candidates to expand, closest first
        while heap:
            d, u = heapq.heappop(heap)
            if n_res == ef and d > res_d[n_res - 1]:
                break
            for p in range(indptr[u], indptr[u + 1]):
                v = indices[p]
                if visited[v] == stamp:
                    continue
                visited[v] = stamp
                dv = dist(v)
                computed += 1
                if n_res < ef or dv < res_d[n_res - 1]:
                    heapq.heappush(heap, (dv, v))
                    j = n_res if n_res < ef else ef - 1
                    while j > 0 and res_d[j - 1] > dv:
                        res_d[j] = res_d[j - 1]
                        res_i[j] = res_i[j - 1]
                        j -= 1
                    res_d[j], res_i[j] = dv, v
                    if n_res < ef:
                        n_res += 1
        return res_i[:k], computed

    return search


def common_search(indptr, indices, base, queries, start, ef, metric) -> tuple[np.ndarray, float]:
    """Top-K ids per query by one level-0 beam search, and the mean distances computed."""
    search = _beam_search_kernel()
    visited = np.zeros(len(base), dtype=np.int64)
    found = np.empty((len(queries), K), dtype=np.int64)
    total = 0
    b64, q64 = base.astype(np.float64), queries.astype(np.float64)
    for i in range(len(queries)):
        ids, computed = search(indptr, indices, b64, q64[i], start, max(ef, K), K,
                               metric == "l2", visited, i + 1)
        found[i] = ids
        total += computed
    return found, total / max(len(queries), 1)


# --------------------------------------------------------------------------- builds

def build_bitgraph(base, metric, M, efc, chunks, threads, seed):
    import bitgraph as bg
    idx = bg.HNSWIndex(base.shape[1], metric=metric, M=M, ef_construction=efc, seed=seed)
    for part in np.array_split(np.arange(len(base)), chunks):
        idx.add(base[part], ids=part, threads=threads)
    return idx


def build_hnswlib(base, metric, M, efc, chunks, threads, seed):
    import hnswlib
    idx = hnswlib.Index(space="cosine" if metric == "cosine" else "l2", dim=base.shape[1])
    idx.init_index(max_elements=len(base), M=M, ef_construction=efc, random_seed=seed)
    for part in np.array_split(np.arange(len(base)), chunks):
        idx.add_items(base[part], part, num_threads=threads)
    return idx


def native_recall(lib, idx, ds, ef) -> float:
    if lib == "bitgraph":
        found = idx.search(ds.queries, k=K, ef=ef, threads=1).ids
    else:
        idx.set_ef(ef)
        found, _ = idx.knn_query(ds.queries, k=K, num_threads=1)
    return recall_at_k(found, ds.gt, ds.base, ds.queries, ds.metric, k=K)


def run(dataset: str, max_base: int | None, max_queries: int, M: int, efc: int,
        chunks_list: list[int], threads: int, efs: list[int], seeds: list[int]) -> dict:
    ds = load_dataset(dataset, max_base=max_base, max_queries=max_queries)
    base = ds.base
    if ds.metric == "cosine":  # both libraries normalise; the common search needs it too
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        queries = ds.queries / np.linalg.norm(ds.queries, axis=1, keepdims=True)
    else:
        queries = ds.queries
    start = int(np.argmin(((base - base.mean(0)) ** 2).sum(1)))
    rows = []
    for seed in seeds:
        for chunks in chunks_list:
            for lib, build in (("bitgraph", build_bitgraph), ("hnswlib", build_hnswlib)):
                t0 = time.perf_counter()
                idx = build(ds.base, ds.metric, M, efc, chunks, threads, seed)
                secs = time.perf_counter() - t0
                if lib == "bitgraph":
                    indptr, indices = bitgraph_level0(idx)
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        path = Path(tmp) / "h.bin"
                        idx.save_index(str(path))
                        indptr, indices = hnswlib_level0(path)
                row = {"lib": lib, "seed": seed, "chunks": chunks, "build_s": round(secs, 1),
                       **degree_stats(indptr, indices, start, 2 * M), "ef": {}}
                for ef in efs:
                    found, computed = common_search(indptr, indices, base, queries, start, ef,
                                                    ds.metric)
                    row["ef"][ef] = {
                        "native": round(native_recall(lib, idx, ds, ef), 4),
                        "common": round(recall_at_k(found, ds.gt, ds.base, ds.queries,
                                                    ds.metric, k=K), 4),
                        "distances": round(computed, 1)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    return {"dataset": ds.describe(), "M": M, "ef_construction": efc, "threads": threads,
            "start": start, "rows": rows}


def print_table(out: dict) -> None:
    efs = list(out["rows"][0]["ef"])
    print(f"{out['dataset']['name']} n={out['dataset']['n_base']:,} M={out['M']} "
          f"efc={out['ef_construction']} build threads={out['threads']}")
    head = " | ".join(f"ef {e}: native / common (dists)" for e in efs)
    print(f"| lib | seed | chunks | out-deg | full | no in | unreach | {head} |")
    for r in out["rows"]:
        cells = " | ".join(f"{r['ef'][e]['native']:.4f} / {r['ef'][e]['common']:.4f} "
                           f"({r['ef'][e]['distances']:.0f})" for e in efs)
        print(f"| {r['lib']} | {r['seed']} | {r['chunks']} | {r['mean_out_degree']} | "
              f"{r['full_lists']} | {r['no_in_links']} | {r['unreachable']} | {cells} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="docs-minilm-384")
    ap.add_argument("--max-base", type=int, default=None)
    ap.add_argument("--max-queries", type=int, default=1000)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--chunks", default="1,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ef", default="16,32,64")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    out = run(a.dataset, a.max_base, a.max_queries, a.M, a.ef_construction,
              [int(c) for c in a.chunks.split(",")], a.threads,
              [int(e) for e in a.ef.split(",")], [int(s) for s in a.seeds.split(",")])
    out["command"] = "python -m bench.graph_quality " + " ".join(argv or sys.argv[1:])
    print_table(out)
    if a.out:
        a.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
