"""On a GPU: device searches equal the CPU indexes (skipped with a reason elsewhere).

Data are small integers (float32 and float16 hold them exactly and every partial sum is an
exact integer), so l2 / ip distances are exact on both sides whatever the summation order:
ids must then equal the CPU's exactly, ties broken by slot (insertion order), and distances
bit for bit. Cosine normalises, so its distances differ in the last bits between the CPU's
SIMD sums and the GPU's warp sums: there distances are compared with rtol=1e-5 / atol=1e-6
and ids exactly wherever the CPU's distance is separated from its neighbours in the row by
more than 1e-5 (anywhere closer, the two sides may legitimately swap a near-tie).
"""

from __future__ import annotations

import bitgraph as bg
import numpy as np
import pytest

pytestmark = pytest.mark.gpu

DIM = 24
N = 3_001           # not a multiple of any tile (256-row aligned tiles, 1024 minimum)
KS = (1, 10, 100, 1000)
TOL = 1e-5


def _data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-3, 4, size=(n, DIM)).astype(np.float32)


def _assert_same(cpu, gpu, exact: bool) -> None:
    cid, cd = cpu.ids, cpu.distances
    gid, gd = np.asarray(gpu.ids), np.asarray(gpu.distances)
    assert gid.shape == cid.shape and gid.dtype == np.int64 and gd.dtype == np.float32
    assert ((gid < 0) == (cid < 0)).all()
    if exact:
        np.testing.assert_array_equal(gid, cid)
        np.testing.assert_array_equal(gd, cd)
        return
    finite = np.isfinite(cd)
    np.testing.assert_allclose(gd[finite], cd[finite], rtol=TOL, atol=1e-6)
    gap = np.diff(np.where(finite, cd, np.float32(1e30)), axis=1)
    separated = np.ones_like(finite)
    separated[:, 1:] &= gap > TOL
    separated[:, :-1] &= gap > TOL
    separated[:, -1] = False  # the next one (k+1) is not known: may tie with the last
    np.testing.assert_array_equal(gid[separated & finite], cid[separated & finite])


@pytest.fixture(scope="module")
def base():
    return _data(N, 1), _data(40, 2)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
@pytest.mark.parametrize("storage", ["float32", "float16"])
@pytest.mark.parametrize("k", KS)
def test_flat_equals_cpu(base, metric, storage, k):
    x, q = base
    cpu = bg.FlatIndex(DIM, metric=metric, storage=storage)
    gpu = bg.FlatIndex(DIM, metric=metric, storage=storage, device="cuda")
    cpu.add(x)
    gpu.add(x)
    assert gpu.device == "cuda"
    _assert_same(cpu.search(q, k=k), gpu.search(q, k=k), exact=metric != "cosine")


@pytest.mark.parametrize("k", [5, 1000])
def test_flat_padding_removed_and_empty(base, k):
    x, q = base
    cpu = bg.FlatIndex(DIM, metric="l2")
    gpu = bg.FlatIndex(DIM, metric="l2", device="cuda")
    r = gpu.search(q, k=k)  # empty index: all -1 / +inf
    assert (np.asarray(r.ids) == -1).all() and np.isinf(np.asarray(r.distances)).all()
    for idx in (cpu, gpu):
        idx.add(x[:7])
        idx.remove([1, 3])
        idx.add(x[7:9], ids=[0, 100])  # id 0 replaced: its old row never comes back
    _assert_same(cpu.search(q, k=k), gpu.search(q, k=k), exact=True)
    assert (np.asarray(gpu.search(q, k=k).counts) == min(k, 6)).all()


def test_flat_filters(base):
    x, q = base
    tags = np.arange(N) % 5
    cpu = bg.FlatIndex(DIM, metric="l2")
    gpu = bg.FlatIndex(DIM, metric="l2", device="cuda")
    for idx in (cpu, gpu):
        idx.add(x, attributes={"t": tags})
    f = bg.Filter.eq("t", 3)
    _assert_same(cpu.search(q, k=10, filter=f), gpu.search(q, k=10, filter=f), exact=True)
    per = [f if i % 2 else None for i in range(len(q))]
    _assert_same(cpu.search(q, k=10, filter=per), gpu.search(q, k=10, filter=per), exact=True)


def test_cupy_in_cupy_out_and_numpy_in_numpy_out(base):
    import cupy as cp

    x, q = base
    gpu = bg.FlatIndex(DIM, metric="l2", device="cuda")
    gpu.add(x)
    host = gpu.search(q, k=10)
    assert isinstance(host.ids, np.ndarray) and isinstance(host.distances, np.ndarray)
    dev = gpu.search(cp.asarray(q), k=10)
    assert isinstance(dev.ids, cp.ndarray) and isinstance(dev.distances, cp.ndarray)
    np.testing.assert_array_equal(dev.ids.get(), host.ids)
    np.testing.assert_array_equal(dev.distances.get(), host.distances)
    with pytest.raises(bg.BitgraphValueError, match="dimension"):
        gpu.search(cp.zeros((2, DIM + 1), cp.float32), k=1)
    with pytest.raises(bg.BitgraphValueError, match="NaN"):
        gpu.search(cp.full((2, DIM), cp.nan, cp.float32), k=1)


def test_moves_between_devices_and_save_load(base, tmp_path):
    x, q = base
    index = bg.FlatIndex(DIM, metric="ip")
    index.add(x)
    want = index.search(q, k=10)
    assert index.to("cuda") is index and index.device == "cuda"
    _assert_same(want, index.search(q, k=10), exact=True)
    index.add(x[:5] + 1)  # the device copy follows adds
    after = index.search(q, k=10)
    index.save(tmp_path / "f.bg")
    loaded = bg.load(tmp_path / "f.bg")
    assert loaded.device == "cpu"
    _assert_same(loaded.search(q, k=10), after, exact=True)
    _assert_same(loaded.to("cuda").search(q, k=10), after, exact=True)
    assert index.to("cpu").device == "cpu"
    _assert_same(index.search(q, k=10), after, exact=True)


def test_large_k_radix_path(base):
    x, q = base
    cpu = bg.FlatIndex(DIM, metric="l2")
    gpu = bg.FlatIndex(DIM, metric="l2", device="cuda")
    cpu.add(x)
    gpu.add(x)
    _assert_same(cpu.search(q, k=2500), gpu.search(q, k=2500), exact=True)


# --- binary ------------------------------------------------------------------------------------

def _margin_rows(binz, x, margin=1e-4):
    """Rows whose every pre-sign value is at least ``margin`` from 0: the device encoder
    gives them the CPU's exact bits (encode.cu), so results can be compared exactly."""
    from bitgraph.binary import reference

    _, z = reference.encode_bits(x, binz.normalize, **binz.params)
    return x[np.abs(z).min(axis=(1, 2)) > margin]


@pytest.fixture(scope="module")
def binary_setup():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    binz = bg.RecurrentBinarizer(DIM, loops=2, code_dim=32, learned=False).fit(x[:1000])
    q = _margin_rows(binz, rng.standard_normal((200, DIM)).astype(np.float32))[:40]
    return binz, x, q


@pytest.mark.parametrize("distance", ["sdc", "hamming"])
@pytest.mark.parametrize("rerank", ["memory", None])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("k", KS)
def test_binary_flat_equals_cpu(binary_setup, distance, rerank, metric, k):
    binz, x, q = binary_setup
    kw = {"graph": "flat", "distance": distance, "rerank": rerank, "metric": metric}
    cpu = bg.BinaryIndex(binz, **kw)
    gpu = bg.BinaryIndex(binz, **kw, device="cuda")
    cpu.add(x)
    gpu.add(x)
    exact = rerank is None  # integer code distances; re-ranked ones are float sums
    _assert_same(cpu.search(q, k=k), gpu.search(q, k=k), exact=exact)


def test_binary_device_queries_and_encode(binary_setup):
    import cupy as cp

    binz, x, q = binary_setup
    np.testing.assert_array_equal(binz.encode(cp.asarray(q)).get(), binz.encode(q))
    cpu = bg.BinaryIndex(binz, graph="flat")
    gpu = bg.BinaryIndex(binz, graph="flat", device="cuda")
    cpu.add(x)
    gpu.add(x)
    res = gpu.search(cp.asarray(q), k=10)
    assert isinstance(res.ids, cp.ndarray)
    _assert_same(cpu.search(q, k=10), res, exact=False)


def test_binary_empty_and_padded(binary_setup):
    binz, x, q = binary_setup
    gpu = bg.BinaryIndex(binz, graph="flat", device="cuda")
    assert (gpu.search(q, k=3).ids == -1).all()
    cpu = bg.BinaryIndex(binz, graph="flat")
    for idx in (cpu, gpu):
        idx.add(x[:4])
        idx.remove([2])
    _assert_same(cpu.search(q, k=10), gpu.search(q, k=10), exact=False)
    assert (gpu.search(q, k=10).counts == 3).all()
