"""Binary-code kernel micro-benchmarks (pytest-benchmark): SDC / Hamming scans, fast-scan SDC,
the flat BinaryIndex scan, faiss IndexBinaryFlat on the same codes, and encode throughput,
each with GB/s set against the machine's measured read bandwidth.

    python -m pytest bench/micro/test_binary_kernels.py --benchmark-only \\
        --benchmark-json bench/results/micro-binary.json

* ``test_memory_read_bandwidth``: numpy ``sum`` over 512 MiB (1 thread, and all cores in
  threads): the yardstick. Every other benchmark stores ``extra_info["membw_GB/s"]`` (the
  1-thread figure, measured once per session) and ``extra_info["%membw"]``.
* ``test_binary_distances``: ``binary_distances(query, codes, planes, kind)`` of
  ``bitgraph._core`` (native) and ``bitgraph._numba``, m = 384 bits per plane, P = 1/2/4,
  "sdc" / "hamming", over 200,000 codes (P <= 2 fit the 32 MiB L3 of the dev box) and
  1,000,000 codes (all larger than the L3). GB/s = code bytes scanned per call.
* ``test_fastscan_sdc``: native ``fastscan_sdc`` (one query) and ``fastscan_sdc_batch``
  (32 queries) over ``fastscan_pack``-ed blocks; GB/s = queries x code bytes.
* ``test_faiss_binary_flat``: ``faiss.IndexBinaryFlat.search`` (32 queries, k = 10, 1 thread)
  on the same code bytes; the peer of the scans above.
* ``test_binary_index_scan``: ``bitgraph.BinaryIndex(graph="flat", rerank=None).search`` of
  32 queries, k = 10, on 200,000 encoded vectors (fixed binarizer, so no training time),
  1 thread and all cores; GB/s = queries x code bytes (query encoding included).
* ``test_encode``: ``RecurrentBinarizer.encode`` of 50,000 x 384 float32 (fixed P = 1/2/4, and
  learned P = 2); GB/s = float bytes read.

Every scan is first checked against a numpy popcount reference on a slice, so a wrong kernel
fails instead of posting a figure. Parts whose function is missing in this build are skipped.
"""
from __future__ import annotations

import importlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kernel_helpers import gbps

M_BITS = 384
PLANES = [1, 2, 4]
KINDS = ["sdc", "hamming"]
SIZES = {"200k": 200_000, "1M": 1_000_000}
NQ = 32
CHECK_ROWS = 2_000
INDEX_N = int(os.environ.get("BITGRAPH_MICRO_BINARY_N", "200000"))
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- yardstick

def read_bandwidth(mib: int = 512, threads: int = 1, repeats: int = 5) -> float:
    a = np.ones(mib * 2**20 // 8, dtype=np.float64)
    chunks = np.array_split(a, threads)
    best = np.inf
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            if threads == 1:
                a.sum()
            else:
                list(pool.map(np.sum, chunks))
            best = min(best, time.perf_counter() - t0)
    return a.nbytes / best / 1e9


_BW: dict = {}
_SCANS: list = []


def membw() -> float:
    if "1t" not in _BW:
        _BW["1t"] = read_bandwidth(threads=1)
    return _BW["1t"]


@pytest.fixture(scope="module", autouse=True)
def _print_bandwidth(pytestconfig):
    """Measure the read bandwidth once and print it (capture off), then each scan's GB/s."""
    yield
    if not _BW and not _SCANS:
        return
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")
    lines = [f"[membw] numpy sum over 512 MiB, 1 thread: {membw():.1f} GB/s"]
    lines += [f"[GB/s]  {name}: {g:.2f} GB/s ({100 * g / membw():.0f}% of it)"
              for name, g in _SCANS]
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print("\n" + "\n".join(lines))
    else:                                                   # pragma: no cover
        print("\n".join(lines))


def record(benchmark, nbytes: int) -> None:
    gbps(benchmark, nbytes)
    bw = membw()
    benchmark.extra_info["membw_GB/s"] = round(bw, 2)
    if "GB/s" in benchmark.extra_info:
        benchmark.extra_info["%membw"] = round(100 * benchmark.extra_info["GB/s"] / bw, 1)
        _SCANS.append((benchmark.name, benchmark.extra_info["GB/s"]))


# --------------------------------------------------------------------------- data + reference

def code_bytes(planes: int) -> int:
    return planes * ((M_BITS + 63) // 64) * 8


_CODES: dict = {}


def random_codes(n: int, planes: int) -> np.ndarray:
    key = (n, planes)
    if key not in _CODES:
        _CODES.clear()                                     # keep one large array alive
        _CODES[key] = np.random.default_rng(planes).integers(0, 256, (n, code_bytes(planes)),
                                                             dtype=np.uint8)
    return _CODES[key]


def reference(query: np.ndarray, codes: np.ndarray, planes: int, kind: str) -> np.ndarray:
    """Exact integer SDC / Hamming (docs/backend-contract.md, "Binary codes")."""
    pb = codes.shape[1] // planes
    q = query.reshape(planes, pb)
    c = codes.reshape(len(codes), planes, pb)
    out = np.zeros(len(codes), dtype=np.int64)
    for i in range(planes):
        for j in range(planes):
            if kind == "hamming" and i != j:
                continue
            w = 1 if kind == "hamming" else 2 ** (2 * planes - 2 - i - j)
            out += w * _POP8[np.bitwise_xor(c[:, j], q[i])].sum(1)
    return out


def _find(module_name: str, fn: str):
    """``fn`` from the module or its ``kernels`` / ``codes`` submodule (skip if absent)."""
    try:
        mod = importlib.import_module(module_name)
    except Exception as e:
        pytest.skip(f"{module_name} does not import: {e}")
    for sub in ("", ".kernels", ".codes"):
        try:
            m = importlib.import_module(module_name + sub) if sub else mod
        except ImportError:
            continue
        if hasattr(m, fn):
            return getattr(m, fn)
    pytest.skip(f"{module_name} has no {fn}")


# --------------------------------------------------------------------------- benchmarks

@pytest.mark.parametrize("threads", [1, "all"])
def test_memory_read_bandwidth(benchmark, threads):
    t = 1 if threads == 1 else _cores()
    a = np.ones(512 * 2**20 // 8, dtype=np.float64)
    chunks = np.array_split(a, t)
    pool = ThreadPoolExecutor(max_workers=t)
    try:
        fn = a.sum if t == 1 else (lambda: list(pool.map(np.sum, chunks)))
        fn()
        benchmark.group = "binary-membw"
        benchmark(fn)
    finally:
        pool.shutdown()
    record(benchmark, a.nbytes)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("planes", PLANES)
@pytest.mark.parametrize("backend", ["bitgraph._core", "bitgraph._numba"],
                         ids=["native", "numba"])
def test_binary_distances(benchmark, backend, planes, kind, size):
    fn = _find(backend, "binary_distances")
    codes = random_codes(SIZES[size], planes)
    q = codes[7].copy()
    got = np.asarray(fn(q, codes[:CHECK_ROWS], planes, kind))      # also the JIT warm-up
    np.testing.assert_array_equal(got.astype(np.int64), reference(q, codes[:CHECK_ROWS],
                                                                 planes, kind))
    benchmark.group = f"binary-scan-P{planes}-{size}"
    benchmark(fn, q, codes, planes, kind)
    record(benchmark, codes.nbytes)


@pytest.mark.parametrize("batch", [1, NQ], ids=["1q", f"{NQ}q"])
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("planes", PLANES)
def test_fastscan_sdc(benchmark, planes, size, batch):
    pack = _find("bitgraph._core", "fastscan_pack")
    one = _find("bitgraph._core", "fastscan_sdc")
    many = _find("bitgraph._core", "fastscan_sdc_batch")
    codes = random_codes(SIZES[size], planes)
    n = len(codes)
    blocks = pack(codes, planes, M_BITS)
    Q = codes[:batch].copy()
    got = np.asarray(many(blocks, n, Q[:2], planes, M_BITS))
    for i in range(min(2, batch)):
        np.testing.assert_array_equal(got[i, :CHECK_ROWS].astype(np.int64),
                                      reference(Q[i], codes[:CHECK_ROWS], planes, "sdc"))
    benchmark.group = f"binary-scan-P{planes}-{size}"
    if batch == 1:
        benchmark(one, blocks, n, Q[0], planes, M_BITS)
    else:
        benchmark(many, blocks, n, Q, planes, M_BITS)
    record(benchmark, batch * codes.nbytes)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("planes", PLANES)
def test_faiss_binary_flat(benchmark, planes, size):
    faiss = pytest.importorskip("faiss")
    codes = random_codes(SIZES[size], planes)
    index = faiss.IndexBinaryFlat(8 * codes.shape[1])
    index.add(codes)
    Q = codes[:NQ].copy()
    faiss.omp_set_num_threads(1)
    D, _ = index.search(Q[:2], 10)
    ref = np.sort(reference(Q[0], codes, planes, "hamming"))[:10]
    np.testing.assert_array_equal(np.sort(D[0]), ref)
    benchmark.group = f"binary-scan-P{planes}-{size}"
    benchmark(index.search, Q, 10)
    record(benchmark, NQ * codes.nbytes)


_INDEX: dict = {}


def _encoded_index(planes: int, kind: str):
    bg = pytest.importorskip("bitgraph")
    if not (hasattr(bg, "BinaryIndex") and hasattr(bg, "RecurrentBinarizer")):
        pytest.skip("this bitgraph has no BinaryIndex")
    key = (planes, kind)
    if key not in _INDEX:
        _INDEX.clear()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((INDEX_N, M_BITS), dtype=np.float32)
        binz = bg.RecurrentBinarizer(M_BITS, loops=planes, learned=False, seed=0)
        binz.fit(x[:5_000], progress=False)
        idx = bg.BinaryIndex(binz, graph="flat", distance=kind, rerank=None, metric="cosine")
        idx.add(x)
        Q = rng.standard_normal((NQ, M_BITS), dtype=np.float32)
        _INDEX[key] = (binz, idx, Q)
    return _INDEX[key]


@pytest.mark.parametrize("threads", [1, "all"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("planes", PLANES)
def test_binary_index_scan(benchmark, planes, kind, threads):
    binz, idx, Q = _encoded_index(planes, kind)
    t = 1 if threads == 1 else _cores()
    codes = np.asarray(idx.codes)
    res = idx.search(Q[:2], 10, threads=t)
    qc = binz.encode(Q[:1])
    d = reference(qc[0], codes, planes, kind)
    np.testing.assert_array_equal(np.sort(d[np.asarray(res.ids)[0]]), np.sort(d)[:10])
    benchmark.group = f"binary-index-scan-P{planes}"
    benchmark(idx.search, Q, 10, threads=t)
    record(benchmark, NQ * codes.nbytes)


@pytest.mark.parametrize("config", ["fixed-P1", "fixed-P2", "fixed-P4", "learned-P2"])
def test_encode(benchmark, config):
    bg = pytest.importorskip("bitgraph")
    if not hasattr(bg, "RecurrentBinarizer"):
        pytest.skip("this bitgraph has no RecurrentBinarizer")
    learned, planes = config.startswith("learned"), int(config[-1])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50_000, M_BITS), dtype=np.float32)
    binz = bg.RecurrentBinarizer(M_BITS, loops=planes, learned=learned, seed=0)
    try:
        binz.fit(x[:2_000], progress=False, epochs=1)          # the shapes matter, not quality
    except TypeError:
        binz.fit(x[:2_000], progress=False)
    codes = binz.encode(x[:100])                                # warm-up / JIT
    assert codes.shape == (100, binz.code_bytes) and codes.dtype == np.uint8
    benchmark.group = "binary-encode"
    benchmark(binz.encode, x)
    record(benchmark, x.nbytes)
    benchmark.extra_info["rows/s"] = round(len(x) / benchmark.stats.stats.mean)
