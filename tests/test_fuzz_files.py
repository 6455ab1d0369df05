"""Property-based fuzzing of index files: damaged files must be refused or load into an index
that gives finite, well-formed, correct results.

Small indexes of every kind (HNSW float32 / float16 / int8, Flat, BinaryIndex flat / hnsw with
re-rank "memory" / "mmap" / None; with attributes, removals and re-adds; both backends) are
saved once, then hypothesis damages a copy:

- raw damage: bit flips, random bytes, zeroed runs, truncation, extension;
- **valid-checksum damage**: the header is parsed, inf / NaN / huge / negative / random values
  are written into a section (float32 / float16 rows, int8 codes and the row scales and squared
  norms stored after them, binary codes and their offsets, re-rank vectors, binarizer arrays,
  labels, deleted flags, link counts and targets, levels, attribute values and offsets), and
  that section's CRC-32 and the header CRC are recomputed so the file passes every checksum;
- header damage with a recomputed header CRC (scalars, parameters, dims, next_id, kinds,
  binarizer settings, section dtypes / shapes).

Invariant: ``bg.load`` (with and without mmap) raises ``bg.IndexFileError``, or the index it
returns searches with well-formed results (ids live per the file's labels / deleted flags,
distances finite, sorted, equal to the recomputed distance to the stored vector, filtered
searches matching the file's attributes and finding min(k, matches), FlatIndex exact), and keeps
working (add, remove, pickle). Loads run in a worker process (this file run as a script) so a
segfault or a hang is a test failure, not a dead test run; the worker is restarted after one.

Run: ``python -m pytest tests/test_fuzz_files.py``; ``BITGRAPH_FUZZ=long`` for 20x the examples.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import traceback
import zlib
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as the worker script
    sys.path.insert(0, str(HERE))

import bitgraph as bg  # noqa: E402
from bitgraph import persistence  # noqa: E402

from fuzz_support import (BACKENDS, INT64_MAX, INT64_MIN, INT_MISSING, Worker,  # noqa: E402
                          attempt, check_well_formed, distinct_failure, failure_kind, float_distances,
                          fuzz_settings, serve)

_PREFIX = struct.Struct("<8sIIII")
# a job takes ~10 ms; the first numba load in a fresh checkout compiles the backend first
JOB_TIMEOUT_S = float(os.environ.get("BITGRAPH_FUZZ_JOB_TIMEOUT", "300"))


# =============================================================================================
# base files (built once per process, deterministic)
# =============================================================================================

def _data(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim)) * 2
    return (centres[rng.integers(0, 6, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def _specs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for be in BACKENDS:
        out[f"hnsw-f32-l2-{be}"] = dict(kind="hnsw", storage="float32", metric="l2", backend=be)
        out[f"hnsw-f16-cos-{be}"] = dict(kind="hnsw", storage="float16", metric="cosine", backend=be)
        out[f"hnsw-i8-ip-{be}"] = dict(kind="hnsw", storage="int8", metric="ip", backend=be)
        out[f"hnsw-i8-l2-{be}"] = dict(kind="hnsw", storage="int8", metric="l2", backend=be)
        out[f"flat-f32-ip-{be}"] = dict(kind="flat", storage="float32", metric="ip", backend=be)
        out[f"flat-f16-l2-{be}"] = dict(kind="flat", storage="float16", metric="l2", backend=be)
        out[f"flat-i8-cos-{be}"] = dict(kind="flat", storage="int8", metric="cosine", backend=be)
        out[f"bin-flat-mem-{be}"] = dict(kind="binary", graph="flat", rerank="memory",
                                         metric="cosine", distance="sdc", loops=2, backend=be)
        out[f"bin-hnsw-mem-{be}"] = dict(kind="binary", graph="hnsw", rerank="memory",
                                         metric="l2", distance="hamming", loops=1, backend=be)
        out[f"bin-flat-none-{be}"] = dict(kind="binary", graph="flat", rerank=None,
                                          metric="ip", distance="sdc", loops=3, backend=be)
        out[f"bin-hnsw-none-{be}"] = dict(kind="binary", graph="hnsw", rerank=None,
                                          metric="cosine", distance="sdc", loops=2, backend=be,
                                          learned=True)
        out[f"bin-hnsw-mmap-{be}"] = dict(kind="binary", graph="hnsw", rerank="mmap",
                                          metric="cosine", distance="sdc", loops=2, backend=be)
        out[f"hnsw-empty-{be}"] = dict(kind="hnsw", storage="float32", metric="l2", backend=be,
                                       n=0)
        out[f"flat-one-{be}"] = dict(kind="flat", storage="int8", metric="l2", backend=be, n=1)
    return out


SPECS = _specs()
_BASE: dict[str, bytes] = {}
_BASE_DIR = tempfile.mkdtemp(prefix="bitgraph-fuzz-files-base-")


def base_file(key: str) -> bytes:
    """The saved bytes of index ``key`` (with removals, re-added ids and attributes)."""
    if key in _BASE:
        return _BASE[key]
    s = SPECS[key]
    dim = 8
    n = s.get("n", 60)
    x = _data(max(n, 2), dim, seed=len(key))
    if s["kind"] == "hnsw":
        index = bg.HNSWIndex(dim, metric=s["metric"], storage=s["storage"], M=4,
                             ef_construction=16, seed=3, backend=s["backend"])
    elif s["kind"] == "flat":
        index = bg.FlatIndex(dim, metric=s["metric"], storage=s["storage"], backend=s["backend"])
    else:
        binz = bg.RecurrentBinarizer(dim, loops=s["loops"], learned=s.get("learned", False),
                                     seed=1).fit(_data(64, dim, seed=99))
        index = bg.BinaryIndex(binz, graph=s["graph"], M=4, ef_construction=16,
                               distance=s["distance"], rerank=s["rerank"], metric=s["metric"],
                               rerank_dir=_BASE_DIR, backend=s["backend"])
    if n:
        rng = np.random.default_rng(5)
        index.add(x[:n], ids=np.arange(n) * 2 + 1, threads=1, attributes={
            "cat": rng.integers(0, 4, n), "score": rng.random(n),
            "tags": [list(rng.integers(0, 5, rng.integers(0, 3))) for _ in range(n)]})
        if n > 3:
            index.remove([1, 5, 9])
            index.add(x[:2] + 0.5, ids=[3, 7], threads=1, attributes={"cat": [9, 9]})
    path = os.path.join(_BASE_DIR, f"{key}.bg")
    index.save(path)
    _BASE[key] = Path(path).read_bytes()
    return _BASE[key]


# =============================================================================================
# file surgery (parent side)
# =============================================================================================

def parse(blob: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    _, _, header_len, _, _ = _PREFIX.unpack_from(blob, 0)
    header = json.loads(blob[24:24 + header_len])
    return header, header["sections"]


def with_header(data: bytearray, header: dict[str, Any]) -> bytearray | None:
    """Writes ``header`` (recomputed CRC) into the file; None if it no longer fits before the
    first section."""
    blob = json.dumps(header, sort_keys=True).encode()
    starts = [int(s["offset"]) for s in header.get("sections", []) if isinstance(s, dict)
              and isinstance(s.get("offset"), int)]
    limit = min(starts) if starts else len(data)
    if 24 + len(blob) > limit:
        return None
    _, version, old_len, _, reserved = _PREFIX.unpack_from(data, 0)
    data[24:24 + max(old_len, len(blob))] = blob + b" " * max(0, old_len - len(blob))
    _PREFIX.pack_into(data, 0, persistence.MAGIC, version, len(blob), zlib.crc32(blob), reserved)
    return data


def section_view(data: bytearray, s: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(s["dtype"])
    shape = tuple(s["shape"])
    count = int(np.prod(shape)) if shape else 1
    return np.frombuffer(data, dtype=dtype, count=count, offset=int(s["offset"])).reshape(shape)


def recrc(data: bytearray, header: dict[str, Any], name: str) -> None:
    for s in header["sections"]:
        if s["name"] == name:
            s["crc32"] = zlib.crc32(bytes(data[s["offset"]:s["offset"] + s["nbytes"]]))


VALUES = {
    "f4": [np.inf, -np.inf, np.nan, 3.4e38, -3.4e38, 1e30, -1e20, 1e-45, 0.0, -0.0, -1.0, 1e4],
    "f2": [np.inf, -np.inf, np.nan, 65504.0, -65504.0, 6e-8, 0.0, -1.0],
    "f8": [np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324, 0.0, -1.0, 2.0 ** 63],
    "i1": [-128, 127, 0, -1],
    "u1": [0, 1, 2, 127, 128, 255],
    "u4": [0, 2 ** 22 - 1, 2 ** 22, 2 ** 23, 2 ** 31, 2 ** 32 - 1],
    "i4": [-1, 0, 1, 2 ** 31 - 1, -(2 ** 31), "n", "n-1", "n+1"],
    "i8": [-1, 0, 1, INT64_MAX, INT64_MIN, INT64_MIN + 1, "n", "n-1", "n+1", 2 ** 31],
}


def targets(header: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, part, value kind) that valid-checksum damage can hit."""
    out: list[tuple[str, str, str]] = []
    storage = header.get("storage")
    kind = header.get("kind")
    dim = int(header.get("dim", 0))
    for s in header["sections"]:
        name, dt = s["name"], np.dtype(s["dtype"])
        if int(np.prod(s["shape"])) == 0:
            continue
        if name == "vectors":
            if kind == "binary":
                out.append((name, "codes", "u1"))
                if header.get("params", {}).get("offsets"):
                    out.append((name, "offsets", "u4"))
            elif storage == "float32":
                out.append((name, "f32 rows", "f4"))
            elif storage == "float16":
                out.append((name, "f16 rows", "f2"))
            elif storage == "int8":
                out += [(name, "int8 codes", "i1"), (name, "int8 scale", "f4"),
                        (name, "int8 sqnorm", "f4")]
            continue
        if name == "links0":
            out += [(name, "counts", "i4"), (name, "targets", "i4")]
            continue
        if name == "upper":
            out += [(name, "counts", "i4"), (name, "targets", "i4")]
            continue
        key = {("f", 4): "f4", ("f", 8): "f8", ("f", 2): "f2", ("i", 4): "i4", ("i", 8): "i8",
               ("u", 1): "u1", ("i", 1): "i1"}.get((dt.kind, dt.itemsize))
        if key:
            out.append((name, "all", key))
    del dim
    return out


def part_view(arr: np.ndarray, part: str, header: dict[str, Any]) -> np.ndarray:
    dim = int(header["dim"])
    if part == "f32 rows":
        return arr.view("<f4")
    if part == "f16 rows":
        return arr.view("<f2")
    if part == "int8 codes":
        return arr[:, :dim].view(np.int8)
    if part == "int8 scale":
        return arr[:, dim:dim + 4].view("<f4")
    if part == "int8 sqnorm":
        return arr[:, dim + 4:dim + 8].view("<f4")
    if part == "codes":
        cb = arr.shape[1] - (4 if header.get("params", {}).get("offsets") else 0)
        return arr[:, :cb]
    if part == "offsets":
        return arr[:, arr.shape[1] - 4:].view("<u4")
    if part in ("counts", "targets"):
        if arr.ndim == 2:  # links0
            return arr[:, :1] if part == "counts" else arr[:, 1:]
        width = 1 + int(header["params"]["M"])
        blocks = arr.reshape(-1, width)
        return blocks[:, :1] if part == "counts" else blocks[:, 1:]
    return arr


def section_damage(blob: bytes, target: tuple[str, str, str], value: Any, where: str,
                   rng: np.random.Generator) -> bytes | None:
    data = bytearray(blob)
    header, sections = parse(blob)
    s = next(x for x in sections if x["name"] == target[0])
    view = part_view(section_view(data, s), target[1], header)
    if view.size == 0:
        return None
    n_slots = next((int(x["shape"][0]) for x in sections if x["name"] == "labels"), 1)
    if isinstance(value, str) and value != "random":
        value = {"n": n_slots, "n-1": n_slots - 1, "n+1": n_slots + 1}[value]
    if value == "random":  # one random value per element (only as many as are written)
        if view.dtype.kind == "f":
            value = rng.standard_normal(view.size) * 10.0 ** rng.integers(-3, 5)
        else:
            info = np.iinfo(view.dtype)
            lo, hi = max(info.min, -3), min(info.max, n_slots + 3)
            value = rng.integers(lo, hi + 1, view.size)
    if where == "row" and view.ndim == 1:
        where = "few"
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.asarray(value).astype(view.dtype)
    flat_values = cast.reshape(-1)
    if where == "all":
        view[...] = cast.reshape(view.shape) if cast.ndim else cast
    elif where == "row":
        r = int(rng.integers(0, view.shape[0]))
        view[r] = flat_values[: view[r].size].reshape(view[r].shape) if cast.ndim else cast
    else:
        count = 1 if where == "one" else int(rng.integers(2, 6))
        idx = np.unravel_index(rng.integers(0, view.size, count), view.shape)
        view[idx] = np.resize(flat_values, count) if cast.ndim else cast
    recrc(data, header, target[0])
    out = with_header(data, header)
    return None if out is None else bytes(out)


HEADER_VALUES: list[Any] = [-1, 0, 1, 3, 2 ** 31, 2 ** 32 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64,
                            -(2 ** 63), 1.5, float("nan"), float("inf"), "x", None, [], {}, True]


def header_paths(header: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [("dim",), ("next_id",), ("metric",), ("storage",), ("kind",),
                                    ("mapped_sections",)]
    for k in header.get("scalars", {}):
        paths.append(("scalars", k))
    for k in header.get("params", {}):
        paths.append(("params", k))
    for k in header.get("attributes", {}):
        paths.append(("attributes", k))
    if "binarizer" in header:
        for k in ("dim", "loops", "code_dim", "learned", "normalize", "seed", "state_version"):
            paths.append(("binarizer", k))
        for d in ("sdc", "hamming"):
            for u in ("unit", "half"):
                if header["binarizer"].get("offsets"):
                    paths.append(("binarizer", "offsets", d, u))
    for i, s in enumerate(header["sections"]):
        paths += [("sections", str(i), "dtype"), ("sections", str(i), "shape")]
    return paths


def header_damage(blob: bytes, path: tuple[str, ...], value: Any, choice: int) -> bytes | None:
    data = bytearray(blob)
    header, _ = parse(blob)
    node: Any = header
    for p in path[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    last = path[-1]
    if path[0] == "sections" and last == "dtype":
        # same item size, another meaning (keeps nbytes consistent)
        old = np.dtype(node["dtype"])
        swap = {1: ["|i1", "|u1", "|b1", "|S1"], 2: ["<f2", "<i2", "<u2", ">f2"],
                4: ["<f4", "<i4", "<u4", ">i4", "<U1"], 8: ["<f8", "<i8", "<u8", ">i8", "<M8[s]", "<c8"]}
        choices = [d for d in swap.get(old.itemsize, []) if np.dtype(d) != old]
        if not choices:
            return None
        value = choices[choice % len(choices)]
        node["dtype"] = value
    elif path[0] == "sections" and last == "shape":
        shape = list(node["shape"])
        if not shape:
            return None
        # another shape with the same element count, or a wrong one
        total = int(np.prod(shape))
        options = [[total], [1, total], shape[::-1], shape + [1], [total + 1], [0] * len(shape)]
        node["shape"] = options[choice % len(options)]
    else:
        if isinstance(node, dict):
            node[last] = value
        else:
            return None
    out = with_header(data, header)
    return None if out is None else bytes(out)


def raw_damage(blob: bytes, op: str, rng: np.random.Generator) -> bytes:
    data = bytearray(blob)
    if op == "flip":
        for _ in range(int(rng.integers(1, 9))):
            pos = int(rng.integers(0, len(data)))
            data[pos] ^= 1 << int(rng.integers(0, 8))
    elif op == "bytes":
        pos = int(rng.integers(0, max(1, len(data) - 8)))
        data[pos:pos + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
    elif op == "zero":
        pos = int(rng.integers(0, len(data)))
        end = min(len(data), pos + int(rng.integers(1, 512)))
        data[pos:end] = bytes(end - pos)
    elif op == "truncate":
        data = data[: int(rng.integers(0, len(data)))]
    elif op == "extend":
        data += rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
    elif op == "header-byte":
        hl = _PREFIX.unpack_from(data, 0)[2]
        pos = int(rng.integers(0, 24 + hl))
        data[pos] = int(rng.integers(0, 256))
    return bytes(data)


# =============================================================================================
# the worker (this file run as a script): load, search, check against the file's own arrays
# =============================================================================================

def _prepared(x: np.ndarray, metric: str) -> np.ndarray:
    from bitgraph._validation import normalized

    x = np.ascontiguousarray(x, dtype=np.float32)
    return normalized(x, "q") if metric == "cosine" else x


def _decode_rows(rows: np.ndarray, dim: int, storage: str) -> np.ndarray:
    rows = np.ascontiguousarray(rows)
    if storage == "float32":
        return rows.view("<f4").reshape(len(rows), dim).astype(np.float32)
    if storage == "float16":
        return rows.view("<f2").reshape(len(rows), dim).astype(np.float32)
    codes = rows[:, :dim].view(np.int8).astype(np.float32)
    scale = rows[:, dim:dim + 4].copy().view("<f4").reshape(-1)
    return codes * scale[:, None]


class Oracle:
    """What a loaded index must answer, computed from the arrays in its file."""

    def __init__(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.meta, self.arrays = meta, arrays
        self.kind = meta["kind"]
        self.dim = int(meta["dim"])
        self.metric = meta["metric"]
        self.storage = meta["storage"]
        params = meta.get("params", {})
        self.params = params
        # the numba backend accepts sections of another shape holding the same bytes (a known,
        # tested difference: see _corrupt_worker.py "vectors 3-d"); read them as it does
        labels = np.asarray(arrays["labels"]).reshape(-1).astype(np.int64)
        deleted = np.asarray(arrays["deleted"]).reshape(-1)
        arrays = dict(arrays)
        vec = np.asarray(arrays["vectors"])
        if vec.size:
            arrays["vectors"] = vec.reshape(labels.shape[0], -1)
        self.arrays = arrays
        self.live_slots = np.flatnonzero(deleted == 0)
        self.labels = labels
        self.live = labels[self.live_slots]
        self.slot_of = {int(labels[s]): int(s) for s in self.live_slots}
        self.rerank = params.get("rerank") if self.kind == "binary" else None
        self.exact = self.kind == "flat" or (self.kind == "binary" and params.get("graph") == "flat")

    def distances(self, index: Any, q: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qp = _prepared(q, self.metric)
        if self.kind == "binary" and self.rerank is None:
            from bitgraph.binary import reference as ref

            binz = index.binarizer
            rows = np.asarray(self.arrays["vectors"])[slots]
            cb = binz.code_bytes
            qc = binz.encode(qp, threads=1)
            d = np.stack([ref.binary_distances(qc[j], rows[:, :cb], binz.loops,
                                               self.params["distance"]) for j in range(len(qc))])
            d = d.astype(np.float64)
            if self.params.get("offsets"):
                qo = (binz.offsets(qp, self.params["distance"]).astype(np.int64)
                      if binz.has_offsets else np.zeros(len(qp), np.int64))
                do = np.ascontiguousarray(rows[:, cb:cb + 4]).view("<u4").reshape(-1).astype(np.int64)
                d += qo[:, None] + do[None, :]
            return d, np.zeros_like(d)
        if self.kind == "binary":
            x = np.asarray(self.arrays["rerank_vectors"], dtype=np.float32)[slots]
        else:
            x = _decode_rows(np.asarray(self.arrays["vectors"])[slots], self.dim, self.storage)
        with np.errstate(all="ignore"):
            return float_distances(qp, x, self.metric)

    def matches(self, filt: tuple[str, Any]) -> np.ndarray:
        """Live slots matching one of the worker's filters."""
        field, arg = filt
        out = []
        for s in self.live_slots:
            if field == "cat":
                v = int(self.arrays["attr.cat.values"][s])
                ok = v != INT_MISSING and v == arg
            elif field == "score":
                v = float(self.arrays["attr.score.values"][s])
                ok = not np.isnan(v) and arg[0] <= v <= arg[1]
            else:
                off = self.arrays["attr.tags.offsets"]
                ok = bool(np.isin(arg, self.arrays["attr.tags.labels"][off[s]:off[s + 1]]).any())
            if ok:
                out.append(s)
        return np.asarray(out, dtype=np.int64)


def _check_results(index: Any, oracle: Oracle, q: np.ndarray, k: int, res: Any,
                   filt: tuple[str, Any] | None, failures: list[str], label: str) -> None:
    try:
        check_well_formed(res, len(q), k, set(oracle.live.tolist()), filt is not None, label)
    except AssertionError as exc:
        failures.append(str(exc))
        return
    cand = oracle.live_slots if filt is None else oracle.matches(filt)
    d_all, tol_all = oracle.distances(index, q, cand) if len(cand) else (None, None)
    pos = {int(s): j for j, s in enumerate(cand)}
    for r in range(len(q)):
        ids = res.ids[r][res.ids[r] >= 0]
        d = res.distances[r][: ids.size].astype(np.float64)
        slots = [oracle.slot_of.get(int(i), -1) for i in ids]
        bad = [int(i) for i, s in zip(ids, slots) if s not in pos]
        if bad:
            failures.append(f"{label}: query {r}: ids not live / not matching the filter {filt}: {bad[:5]}")
            continue
        if filt is not None or oracle.exact:
            want_n = min(k, len(cand))
            if ids.size != want_n:
                failures.append(f"{label}: query {r}: {ids.size} results, expected min(k={k}, "
                                f"matches={len(cand)}) = {want_n}")
        if not ids.size:
            continue
        cols = np.array([pos[s] for s in slots])
        want = d_all[r, cols]
        tol = tol_all[r, cols]
        with np.errstate(invalid="ignore"):
            off = ~(np.abs(d - want) <= tol)
        if off.any():
            failures.append(f"{label}: query {r}: distances {d[off][:4]} != recomputed distance "
                            f"to the stored vector {want[off][:4]} (ids {ids[off][:4]})")
        if oracle.exact and ids.size == min(k, len(cand)) and (oracle.kind != "binary"
                                                               or oracle.rerank is None):
            best = np.sort(d_all[r])[: ids.size]
            finite = tol_all[r][np.isfinite(tol_all[r])]
            slack = (finite.max() if finite.size else 0.0) * 2 + 1e-30
            with np.errstate(invalid="ignore"):
                if not (np.abs(best - d) <= slack).all():
                    failures.append(f"{label}: query {r}: not the exact nearest: {d[:5]} vs {best[:5]}")


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    failures: list[str] = []
    path, backend = job["path"], job["backend"]
    try:
        ok, index = attempt("load", bg.load, path, mmap=job["mmap"], verify=job["verify"],
                            backend=backend)
    except AssertionError as exc:
        return {"status": "bad", "failures": [str(exc)]}
    if not ok:
        if not isinstance(index, bg.IndexFileError):
            return {"status": "bad", "failures": [
                f"load raised {type(index).__name__} (a BitgraphError, but not IndexFileError): {index}"]}
        return {"status": "refused", "failures": [], "error": str(index)[:200]}
    if job.get("lenient"):  # verify=False: only crashes and non-BitgraphErrors count
        try:
            q = np.random.default_rng(0).standard_normal((2, int(index.dim))).astype(np.float32)
            attempt("search (verify=False)", index.search, q, k=5)
        except AssertionError as exc:
            failures.append(str(exc))
        return {"status": "loaded", "failures": failures}
    meta, arrays = persistence.read_index(path, verify=False)
    try:
        oracle = Oracle(meta, arrays)
    except Exception as exc:  # noqa: BLE001 - the file loaded, so its arrays must be usable
        return {"status": "bad", "failures": [f"loaded, but its arrays are unusable: {exc!r}"]}
    if not (isinstance(index.dim, int) and index.dim >= 1) or index.dim != oracle.dim:
        return {"status": "bad", "failures": [
            f"loaded an index with dim={index.dim!r} (header dim {meta.get('dim')!r})"]}
    if oracle.dim > 65536:  # an empty index with an absurd dim: nothing to search with
        return {"status": "loaded", "failures": []}
    if oracle.kind == "binary" and index.dim != index.binarizer.dim:
        return {"status": "bad", "failures": [
            f"loaded a BinaryIndex with dim={index.dim} but a binarizer of dim {index.binarizer.dim}"]}
    if oracle.kind == "binary":  # NaN / inf parameters encode every later vector as garbage
        bad = sorted(k for k, v in index.binarizer.params.items()
                     if v.size and not np.isfinite(v).all())
        if bad:
            failures.append(f"loaded a binarizer whose {', '.join(bad)} hold NaN / inf")
    try:
        n = attempt("len", len, index)[1]
        if n != len(oracle.live):
            failures.append(f"len(index) = {n}, the file has {len(oracle.live)} live labels")
        rng = np.random.default_rng(job["seed"])
        q = rng.standard_normal((3, oracle.dim)).astype(np.float32)
        for k in (1, 4, len(oracle.live) + 2):
            ok, res = attempt(f"search k={k}", index.search, q, k=k, ef=32)
            if not ok:
                failures.append(f"search k={k} of a loaded index raised {type(res).__name__}: {res}")
                continue
            _check_results(index, oracle, q, k, res, None, failures, f"search k={k}")
        fields = meta.get("attributes", {})
        filters: list[tuple[bg.Filter, tuple[str, Any]]] = []
        live = oracle.live_slots
        if len(live) and fields.get("cat") == "int":
            v = int(arrays["attr.cat.values"][live[len(live) // 2]])
            if v != INT_MISSING:
                filters.append((bg.Filter.eq("cat", v), ("cat", v)))
        if fields.get("score") == "float":
            filters.append((bg.Filter.range("score", 0.2, 0.7), ("score", (0.2, 0.7))))
        if fields.get("tags") == "tags":
            filters.append((bg.Filter.has_any("tags", [1, 3]), ("tags", [1, 3])))
        for f, desc in filters:
            for k in (3, len(live) + 1):
                ok, res = attempt(f"search filter={desc}", index.search, q, k=k, filter=f)
                if not ok:
                    failures.append(f"filtered search {desc} raised {type(res).__name__}: {res}")
                    continue
                _check_results(index, oracle, q, k, res, desc, failures, f"search k={k} filter={desc}")
            ok, c = attempt("count", index.count, f)
            want = len(oracle.matches(desc))
            if ok and c != want:
                failures.append(f"count({desc}) = {c}, the file's attributes give {want}")
        # it keeps working: add, remove, search, pickle
        x = rng.standard_normal((3, oracle.dim)).astype(np.float32)
        ok, new = attempt("add to a loaded index", index.add, x)
        if len(oracle.live):
            attempt("remove from a loaded index", index.remove, [int(oracle.live[0])])
        ok, res = attempt("search after add/remove", index.search, q, k=len(oracle.live) + 5)
        if ok:
            check_well_formed(res, len(q), len(oracle.live) + 5, None, False, "after add/remove")
        attempt("pickle a loaded index", lambda: __import__("pickle").loads(
            __import__("pickle").dumps(index)))
    except AssertionError as exc:
        failures.append(str(exc))
    return {"status": "loaded", "failures": failures}


def _warm_up() -> None:
    """Every base file once through a job: numba compiles / loads all the code the jobs use
    before the address space is capped and jobs are timed."""
    for key in sorted(SPECS):
        try:
            p = os.path.join(tempfile.gettempdir(), f"bitgraph-fuzz-warm-{os.getpid()}.bg")
            Path(p).write_bytes(base_file(key))
            run_job({"path": p, "backend": SPECS[key]["backend"], "mmap": False, "verify": True,
                     "seed": 0})
            os.unlink(p)
        except Exception:  # noqa: BLE001 - warming only
            traceback.print_exc()


if __name__ != "__main__":
    import pytest
    from hypothesis import assume, given, note, strategies as st

    @pytest.fixture(scope="module")
    def worker():
        w = Worker(Path(__file__).resolve(), JOB_TIMEOUT_S)
        yield w
        w.close()

    @pytest.fixture(scope="module")
    def scratch():
        d = tempfile.mkdtemp(prefix="bitgraph-fuzz-files-")
        yield d
        import shutil

        shutil.rmtree(d, ignore_errors=True)

    _counter = [0]

    def _submit(worker: Worker, scratch: str, data: bytes, key: str, *, mmap: bool,
                verify: bool = True, lenient: bool = False, seed: int = 0) -> dict[str, Any]:
        _counter[0] += 1
        path = os.path.join(scratch, f"damaged-{_counter[0]}.bg")
        Path(path).write_bytes(data)
        reply = worker.run({"path": path, "backend": SPECS[key]["backend"], "mmap": mmap,
                            "verify": verify, "lenient": lenient, "seed": seed})
        try:
            os.unlink(path)  # a mapped file stays readable for the worker until it drops it
        except OSError:
            pass
        return reply

    def _assert_ok(reply: dict[str, Any], what: str, in_test: bool = True,
                   where: str = "") -> None:
        """``where``: the part of the file damaged (tells distinct failures apart)."""
        if in_test:
            note(f"{what}: {reply.get('status')} {reply.get('error', '')}")
        if reply["failures"]:
            raise distinct_failure(f"{where} {reply['status']} {failure_kind(reply['failures'][0])}",
                                   f"{what}: {reply['status']}:\n" + "\n".join(reply["failures"]))

    KEYS = sorted(SPECS)

    @fuzz_settings(150)
    @given(key=st.sampled_from(KEYS), data=st.data(), mmap=st.booleans(),
           seed=st.integers(0, 2 ** 32 - 1))
    def test_valid_checksum_section_damage(worker, scratch, key, data, mmap, seed):
        """Values written into a section whose CRC (and the header's) are recomputed."""
        blob = base_file(key)
        header, _ = parse(blob)
        tlist = targets(header)
        assume(tlist)
        target = data.draw(st.sampled_from(tlist), label="target")
        value = data.draw(st.sampled_from(VALUES[target[2]] + ["random"]), label="value")
        where = data.draw(st.sampled_from(["one", "few", "row", "all"]), label="where")
        rng = np.random.default_rng(seed)
        damaged = section_damage(blob, target, value, where, rng)
        assume(damaged is not None and damaged != blob)
        _assert_ok(_submit(worker, scratch, damaged, key, mmap=mmap, seed=seed),
                   f"{key}: {target} := {value!r} ({where}), mmap={mmap}",
                   where=f"{target[0]} {target[1]}")

    @fuzz_settings(100)
    @given(key=st.sampled_from(KEYS), data=st.data(), mmap=st.booleans(),
           seed=st.integers(0, 2 ** 32 - 1))
    def test_valid_checksum_header_damage(worker, scratch, key, data, mmap, seed):
        """Header fields changed, with the header CRC recomputed."""
        blob = base_file(key)
        header, _ = parse(blob)
        path = data.draw(st.sampled_from(header_paths(header)), label="field")
        value = data.draw(st.sampled_from(HEADER_VALUES), label="value")
        damaged = header_damage(blob, path, value, data.draw(st.integers(0, 5), label="choice"))
        assume(damaged is not None and damaged != blob)
        _assert_ok(_submit(worker, scratch, damaged, key, mmap=mmap, seed=seed),
                   f"{key}: header {'.'.join(path)} := {value!r}, mmap={mmap}",
                   where="header " + ".".join(p for p in path if not p.isdigit()))

    @fuzz_settings(100)
    @given(key=st.sampled_from(KEYS), op=st.sampled_from(["flip", "bytes", "zero", "truncate",
                                                          "extend", "header-byte"]),
           mmap=st.booleans(), verify=st.sampled_from([True, True, True, False]),
           seed=st.integers(0, 2 ** 32 - 1))
    def test_raw_damage(worker, scratch, key, op, mmap, verify, seed):
        """Bit flips, random bytes, truncation, extension. With verify=False (checksums not
        read: files one trusts) only crashes and non-BitgraphErrors count."""
        blob = base_file(key)
        damaged = raw_damage(blob, op, np.random.default_rng(seed))
        reply = _submit(worker, scratch, damaged, key, mmap=mmap, verify=verify,
                        lenient=not verify, seed=seed)
        _assert_ok(reply, f"{key}: {op} (seed {seed}) verify={verify} mmap={mmap}", where=op)
        if op == "truncate" and damaged != blob and verify:
            assert reply["status"] == "refused", f"{key}: a truncated file loaded"

    def test_undamaged_files_load(worker, scratch):
        """The base files themselves pass the worker's checks (the oracle is right)."""
        for key in KEYS:
            for mmap in (False, True):
                _assert_ok(_submit(worker, scratch, base_file(key), key, mmap=mmap),
                           f"{key} undamaged, mmap={mmap}", in_test=False)


if __name__ == "__main__" and "--worker" in sys.argv:
    serve(run_job, _warm_up)
