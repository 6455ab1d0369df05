"""Host side of device="cuda": selection errors, backend_info, array kinds, bitsets and result
keys. Runs with or without CuPy installed, on machines without a GPU."""

from __future__ import annotations

import subprocess
import sys

import bitgraph as bg
import numpy as np
import pytest
from bitgraph import _cuda, _device
from bitgraph._cuda import arrays, device, scan


@pytest.fixture
def no_cupy(monkeypatch):
    """As if CuPy were not installed."""
    def missing():
        raise ImportError("No module named 'cupy'")

    monkeypatch.setattr(device, "_import_cupy", missing)
    device.probe.cache_clear()
    yield
    device.probe.cache_clear()


needs_no_gpu = pytest.mark.skipif(_cuda.cuda_available(), reason="a CUDA device is present")


def test_import_bitgraph_does_not_import_cupy():
    code = ("import sys, numpy as np, bitgraph as bg\n"
            "i = bg.FlatIndex(4, metric='l2'); i.add(np.eye(4)); i.search(np.eye(4), k=2)\n"
            "print('cupy' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"


def test_backend_info_reports_the_device():
    info = bg.backend_info()
    assert {"cuda", "cuda_device", "cuda_error"} <= set(info)
    assert info["cuda"] is _cuda.cuda_available()
    if info["cuda"]:
        assert isinstance(info["cuda_device"], str) and info["cuda_error"] is None
    else:
        assert info["cuda_device"] is None and isinstance(info["cuda_error"], str)


def test_cupy_missing_is_named(no_cupy):
    assert not _cuda.cuda_available()
    assert "CuPy is not installed" in _cuda.device_info()["cuda_error"]
    with pytest.raises(bg.DeviceUnavailableError, match="CuPy is not installed.*cuda12"):
        bg.FlatIndex(8, device="cuda")
    assert bg.backend_info()["cuda"] is False


@needs_no_gpu
@pytest.mark.parametrize("make", [
    lambda: bg.FlatIndex(8, metric="l2", device="cuda"),
    lambda: bg.FlatIndex(8, storage="float16", device="CUDA"),
    lambda: bg.FlatIndex(8, device="cuda:0"),
])
def test_cuda_without_a_device_raises_instead_of_running_on_the_cpu(make):
    with pytest.raises(bg.DeviceUnavailableError, match="needs a CUDA device") as info:
        make()
    assert isinstance(info.value, bg.BackendUnavailableError)


@needs_no_gpu
def test_moving_to_cuda_without_a_device_keeps_the_index_on_the_cpu():
    index = bg.FlatIndex(4, metric="l2")
    index.add(np.eye(4, dtype=np.float32))
    with pytest.raises(bg.DeviceUnavailableError):
        index.to("cuda")
    assert index.device == "cpu"
    assert index.search(np.eye(4), k=1).ids[:, 0].tolist() == [0, 1, 2, 3]
    assert index.to("cpu") is index


@needs_no_gpu
def test_binary_index_cuda_without_a_device(tiny_binarizer):
    with pytest.raises(bg.DeviceUnavailableError):
        bg.BinaryIndex(tiny_binarizer, graph="flat", device="cuda")


@pytest.fixture(scope="module")
def tiny_binarizer():
    rng = np.random.default_rng(0)
    return bg.RecurrentBinarizer(16, loops=2, code_dim=16, learned=False).fit(
        rng.standard_normal((200, 16)).astype(np.float32))


@pytest.mark.parametrize("value", ["gpu", "cuda:1", "", "tpu"])
def test_unknown_device_names(value):
    with pytest.raises(bg.BitgraphValueError, match="device must be 'cpu' or 'cuda'"):
        bg.FlatIndex(8, device=value)


@pytest.mark.parametrize("value", [1, b"cuda", ["cuda"]])
def test_device_of_the_wrong_type(value):
    with pytest.raises(bg.BitgraphTypeError, match="device must be"):
        bg.FlatIndex(8, device=value)


def test_cpu_device_is_the_default():
    assert bg.FlatIndex(8).device == "cpu"
    assert bg.FlatIndex(8, device="cpu").device == "cpu"
    assert _device.check_device(None) == "cpu"


def test_kinds_without_device_kernels_say_so(tiny_binarizer):
    with pytest.raises(bg.BitgraphValueError, match="float32' and 'float16'"):
        bg.FlatIndex(8, storage="int8")._check_device_support()
    bg.FlatIndex(8, storage="float16")._check_device_support()
    with pytest.raises(bg.BitgraphValueError, match="graph='flat'"):
        bg.BinaryIndex(tiny_binarizer, graph="hnsw", distance="sdc")._check_device_support()
    bg.BinaryIndex(tiny_binarizer, graph="flat", distance="sdc")._check_device_support()
    with pytest.raises(bg.BitgraphValueError, match="symmetric code distances"):
        bg.BinaryIndex(tiny_binarizer, graph="flat",
                       distance="asymmetric")._check_device_support()


def test_env_cuda_backend_points_to_device_cuda():
    proc = subprocess.run([sys.executable, "-c", "import bitgraph"], check=False,
                          capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "BITGRAPH_BACKEND": "cuda"})
    assert proc.returncode != 0 and "device='cuda'" in proc.stderr


class _FakeDeviceArray:
    @property
    def __cuda_array_interface__(self):
        return {"shape": (1,), "typestr": "<f4", "data": (0, False), "version": 3}


class _FakeDLPack:
    def __init__(self, device_type):
        self._type = device_type

    def __dlpack_device__(self):
        return (self._type, 0)


def test_array_kinds():
    assert not arrays.is_device_array(np.zeros(3))
    assert not arrays.is_device_array([1.0, 2.0])
    assert arrays.is_device_array(_FakeDeviceArray())
    assert arrays.is_device_array(_FakeDLPack(2))
    assert not arrays.is_device_array(_FakeDLPack(1))  # kDLCPU
    assert arrays.output_kind(np.zeros(3)) == "numpy"
    assert arrays.output_kind(_FakeDeviceArray()) == "cupy"


def _key(dist: float, slot: int) -> int:
    """bg_common.cuh's bg_key in Python."""
    b = int(np.float32(0.0 if dist == 0 else dist).view(np.uint32))
    u = (~b & 0xFFFFFFFF) if b & 0x80000000 else (b | 0x80000000)
    return (u << 32) | slot


def test_keys_order_like_the_cpu_and_decode():
    dists = [-3.5, -0.0, 0.0, 1e-30, 0.5, 0.5, 2.0, 3.4e38]
    slots = [7, 9, 3, 1, 8, 2, 0, 5]
    keys = np.array([_key(d, s) for d, s in zip(dists, slots)], dtype=np.uint64)
    order = sorted(range(len(dists)), key=lambda i: (dists[i], slots[i]))  # CPU's closer
    assert np.argsort(keys, kind="stable").tolist() == order
    labels = np.arange(100, 110, dtype=np.int64)
    keys = np.append(keys, scan.EMPTY)
    ids, d = scan.keys_to_results(np, keys, labels)  # numpy stands in for CuPy here
    assert ids.tolist() == [100 + s for s in slots] + [-1]
    assert d[:-1].tolist() == [np.float32(x) for x in dists] and d[-1] == np.inf
    assert scan.key_slots(np, keys).tolist() == slots + [-1]


def test_bitsets():
    deleted = np.zeros(130, dtype=np.uint8)
    deleted[[0, 64, 129]] = 1
    bits = scan.live_bits(deleted, 130)
    assert bits.dtype == np.uint64 and bits.size == 3
    live = np.unpackbits(bits.view(np.uint8), bitorder="little")[:130].astype(bool)
    assert (live == (deleted == 0)).all()
    short = scan.pad_bits(np.array([0xFF], dtype=np.uint64), 200)  # filter words < slots
    assert short.size == 4 and short[0] == 0xFF and not short[1:].any()
    assert scan.pad_bits(np.zeros(0, np.uint8), 0).size == 1


def test_tf32_widens_the_rounding_bound(monkeypatch):
    monkeypatch.delenv("CUPY_TF32", raising=False)
    assert scan.unit_roundoff() == 2.0 ** -24
    monkeypatch.setenv("CUPY_TF32", "1")
    assert scan.unit_roundoff() == 2.0 ** -11


def test_int8_storage_is_refused_by_the_scan():
    with pytest.raises(bg.BitgraphValueError, match="int8"):
        scan.FloatScan(None, 8, "int8", "l2")
    with pytest.raises(bg.BitgraphValueError, match="distance"):
        scan.CodeScan(None, 1, 1, False, "jaccard", 8, False)
