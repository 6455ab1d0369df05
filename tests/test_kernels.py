"""Codec and distance kernels (docs/backend-contract.md) against numpy, at every SIMD level
the native build supports, and the numba kernels against the same references."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bg_testutil import BACKENDS, STORAGES, clustered, decode_reference, encode_int8_reference

LEVELS = ("avx512", "avx2", "generic")
# tails of every vector width (4, 8, 16 floats) and odd int8 rows (unaligned scale)
DIMS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 131, 515)


def _supported_levels():
    if "native" not in BACKENDS:
        return []
    from bitgraph import _core

    return [level for level in LEVELS if _core.simd_level_supported(level)]


SUPPORTED = _supported_levels()


def _rows_case(dim, seed, n=64):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, dim)) * rng.lognormal(size=(n, 1))).astype(np.float32)
    x[0] = 0.0  # an all-zero row (int8: scale 1.0)
    x[1] = x[2]  # duplicates
    q = (rng.normal(size=dim) * 1.5).astype(np.float32)
    return x, q


def _reference(q, decoded, metric):
    """(reference distances, per-row tolerance) in float64 on what the row stores.

    The tolerance is the float32 summation bound: ~dim * eps * (sum of the magnitudes the
    kernel adds up), with int8 l2 computed as |q|^2 - 2<q,x> + |x|^2 (hence the norms).
    Dropping or doubling one coordinate changes a distance by far more.
    """
    q64 = q.astype(np.float64)
    d64 = decoded.astype(np.float64)
    terms = np.abs(d64 * q64).sum(axis=1)
    if metric == "l2":
        ref = ((d64 - q64) ** 2).sum(axis=1)
        magnitude = (q64 ** 2).sum() + (d64 ** 2).sum(axis=1) + 2 * terms
    else:
        ref = -(d64 @ q64)
        magnitude = terms
    return ref, 2 * (len(q) + 4) * 6e-8 * magnitude + 1e-12


def _check_distances(got, q, rows, dim, metric, storage):
    ref, tol = _reference(q, _decoded_rows(rows, dim, storage), metric)
    assert got.dtype == np.float32 and got.shape == (rows.shape[0],)
    bad = np.abs(got.astype(np.float64) - ref) > tol
    assert not bad.any(), (dim, np.flatnonzero(bad)[:5], got[bad][:5], ref[bad][:5])


def _decoded_rows(rows, dim, storage):
    """Independent numpy decode of storage rows (the contract's byte layout)."""
    rows = np.ascontiguousarray(rows)
    if storage == "float32":
        return rows.view("<f4").reshape(-1, dim)
    if storage == "float16":
        return rows.view("<f2").reshape(-1, dim).astype(np.float32)
    codes = rows[:, :dim].view(np.int8).astype(np.float32)
    scale = rows[:, dim:dim + 4].copy().view("<f4")[:, 0]
    return codes * scale[:, None]


# --- encode / decode -----------------------------------------------------------------------------

@pytest.mark.parametrize("dim", (1, 3, 8, 17, 33, 64))
@pytest.mark.parametrize("storage", STORAGES)
def test_encode_rows_matches_contract(core_module, storage, dim):
    x, _ = _rows_case(dim, seed=dim)
    rows = core_module.encode_rows(x, storage)
    row_bytes = {"float32": 4 * dim, "float16": 2 * dim, "int8": dim + 8}[storage]
    assert rows.dtype == np.uint8 and rows.shape == (len(x), row_bytes)
    if storage == "float32":
        assert np.array_equal(rows.view("<f4"), x)
    elif storage == "float16":
        assert np.array_equal(rows.view("<u2"), x.astype("<f2").view("<u2"))
    else:
        codes, scale, sqnorm = encode_int8_reference(x)
        assert np.array_equal(rows[:, :dim].view(np.int8), codes)
        assert np.array_equal(rows[:, dim:dim + 4].copy().view("<f4")[:, 0], scale)
        assert np.array_equal(rows[:, dim + 4:].copy().view("<f4")[:, 0], sqnorm)
        assert scale[0] == 1.0 and (codes[0] == 0).all() and sqnorm[0] == 0.0
    decoded = core_module.decode_rows(rows, dim, storage)
    assert decoded.dtype == np.float32 and decoded.shape == x.shape
    assert np.array_equal(decoded, decode_reference(x, storage))


def test_int8_rounding_and_clipping(core_module):
    # amax 127 -> scale 1: x/scale are the values themselves; rint rounds half to even
    x = np.array([[127.0, 2.5, 3.5, -2.5, -0.5, 0.5, 1.49999, -127.0]], dtype=np.float32)
    rows = core_module.encode_rows(x, "int8")
    assert rows[0, :8].view(np.int8).tolist() == [127, 2, 4, -2, 0, 0, 1, -127]
    assert rows[0, 8:12].view("<f4")[0] == 1.0
    tiny = np.array([[1e-30, -1e-30, 0.0]], dtype=np.float32)  # codes +-127, scale tiny
    rows = core_module.encode_rows(tiny, "int8")
    assert rows[0, :3].view(np.int8).tolist() == [127, -127, 0]


def test_float16_encoding_is_round_to_nearest_even(core_module):
    """Every finite float32 (random bit patterns plus the edge values) encodes exactly as
    numpy's cast: subnormals, ties, and the overflow boundary 65504 / 65520 -> inf."""
    rng = np.random.default_rng(0)
    f = rng.integers(0, 2**32, 40000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    f = f[np.isfinite(f)]
    edges = np.float32([65504, 65519, 65519.996, 65520, -65520, 1e6, 5.96e-8, 2.98e-8,
                        2.9802322e-08, 1e-45, 0.0, -0.0, 1.00048828125, 1.000732421875])
    f = np.concatenate([edges, f])
    x = f[: len(f) // 4 * 4].reshape(-1, 4)
    with np.errstate(over="ignore"):
        expected = x.astype("<f2").view("<u2")
        got = core_module.encode_rows(x, "float16").view("<u2")
    assert np.array_equal(got, expected)


def test_float16_decoding_of_every_bit_pattern(core_module):
    bits = np.arange(65536, dtype=np.uint16)
    rows = bits.view(np.uint8).reshape(1, -1)
    got = core_module.decode_rows(rows, 65536, "float16")[0]
    ref = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint32), ref[~nan].view(np.uint32))  # bit exact


def test_numba_half_to_float_scalar(numba_module):
    """The scalar decoder inlined into the numba graph walks is bit exact too."""
    from numba import njit

    from bitgraph._numba.kernels import half_to_float

    @njit
    def decode_all(bits, out):
        for i in range(bits.shape[0]):
            out[i] = half_to_float(bits[i])

    bits = np.arange(65536, dtype=np.uint16)
    got = np.empty(65536, dtype=np.float32)
    decode_all(bits, got)
    ref = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint32), ref[~nan].view(np.uint32))


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both backends")
@pytest.mark.parametrize("storage", STORAGES)
def test_backends_encode_identical_bytes(native_module, numba_module, storage):
    for dim in (1, 13, 32, 77):
        x, _ = _rows_case(dim, seed=100 + dim, n=200)
        a = native_module.encode_rows(x, storage)
        b = numba_module.encode_rows(x, storage)
        assert np.array_equal(a, b)
        assert np.array_equal(native_module.decode_rows(a, dim, storage),
                              numba_module.decode_rows(b, dim, storage))


# --- distances ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not SUPPORTED, reason="native extension not built")
@pytest.mark.parametrize("level", SUPPORTED)
@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("metric", ("l2", "ip"))
def test_native_distances_every_level(native_module, level, storage, metric):
    for dim in DIMS:
        x, q = _rows_case(dim, seed=dim)
        rows = native_module.encode_rows(x, storage)
        got = native_module.distances(q, rows, dim, metric, storage, level)
        _check_distances(got, q, rows, dim, metric, storage)
        if metric == "l2":  # a row against itself (float32 storage: exactly 0)
            self_d = native_module.distances(_decoded_rows(rows, dim, storage)[3], rows[3:4],
                                             dim, metric, storage, level)
            assert self_d[0] >= 0 and (storage != "float32" or self_d[0] == 0)


@pytest.mark.skipif(len(SUPPORTED) < 2, reason="only one SIMD level here")
@pytest.mark.parametrize("storage", STORAGES)
def test_simd_levels_agree_with_generic(native_module, storage):
    """The SIMD kernels match the portable one within float32 summation-order rounding."""
    for metric in ("l2", "ip"):
        for dim in DIMS:
            x, q = _rows_case(dim, seed=7 * dim)
            rows = native_module.encode_rows(x, storage)
            generic = native_module.distances(q, rows, dim, metric, storage, "generic")
            scale = np.abs(generic).max() + 1.0
            for level in SUPPORTED:
                got = native_module.distances(q, rows, dim, metric, storage, level)
                np.testing.assert_allclose(got, generic, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("metric", ("l2", "ip"))
def test_numba_distances(numba_module, storage, metric):
    for dim in DIMS:
        x, q = _rows_case(dim, seed=dim + 1)
        rows = numba_module.encode_rows(x, storage)
        got = numba_module.distances(q, rows, dim, metric, storage)
        _check_distances(got, q, rows, dim, metric, storage)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both backends")
def test_numba_generic_order_matches_native_generic(native_module, numba_module):
    """numba's float32 kernel sums in the order of the native generic kernel: bit equal."""
    for dim in DIMS:
        x, q = _rows_case(dim, seed=dim + 2)
        rows = native_module.encode_rows(x, "float32")
        for metric in ("l2", "ip"):
            a = native_module.distances(q, rows, dim, metric, "float32", "generic")
            b = numba_module.distances(q, rows, dim, metric, "float32")
            assert np.array_equal(a, b), (dim, metric)


def test_empty_rows(core_module):
    rows = core_module.encode_rows(np.zeros((0, 5), np.float32), "int8")
    assert rows.shape == (0, 13)
    assert core_module.decode_rows(rows, 5, "int8").shape == (0, 5)
    assert core_module.distances(np.ones(5, np.float32), rows, 5, "l2", "int8").shape == (0,)


def test_native_kernel_argument_errors(native_module):
    import bitgraph as bg

    rows = native_module.encode_rows(np.ones((3, 4), np.float32), "float32")
    with pytest.raises(ValueError, match="level|SIMD"):
        native_module.distances(np.ones(4, np.float32), rows, 4, "l2", "float32", "avx9000")
    with pytest.raises(ValueError):
        native_module.distances(np.ones(5, np.float32), rows, 4, "l2", "float32")
    with pytest.raises(ValueError):
        native_module.decode_rows(rows, 5, "float32")  # wrong row length for dim 5
    with pytest.raises(bg.BitgraphError):
        native_module.encode_rows(np.ones((3, 4), np.float32), "int4")
    assert native_module.simd_level_supported("generic")
    assert not native_module.simd_level_supported("avx9000")
    assert native_module.simd_level() in SUPPORTED


_finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None, database=None)
@given(dim=st.integers(1, 70), data=st.data())
def test_distances_property(dim, data):
    """Random shapes and values (hypothesis): every backend and level within tolerance."""
    n = data.draw(st.integers(1, 5))
    x = np.array(data.draw(st.lists(st.lists(_finite, min_size=dim, max_size=dim),
                                    min_size=n, max_size=n)), dtype=np.float32)
    q = np.array(data.draw(st.lists(_finite, min_size=dim, max_size=dim)), dtype=np.float32)
    storage = data.draw(st.sampled_from(("float32", "int8")))
    metric = data.draw(st.sampled_from(("l2", "ip")))
    from bitgraph import _backend

    for name in BACKENDS:
        mod = _backend.get_backend(name)
        rows = mod.encode_rows(x, storage)
        levels = SUPPORTED if name == "native" else [None]
        for level in levels:
            got = (mod.distances(q, rows, dim, metric, storage, level) if level
                   else mod.distances(q, rows, dim, metric, storage))
            _check_distances(got, q, rows, dim, metric, storage)


# --- forced SIMD level for whole indexes (the gather kernels of the graph walk) --------------

_LEVEL_SCRIPT = r"""
import json, sys
import numpy as np
import bitgraph as bg
sys.path.insert(0, {tests!r})
from bg_testutil import clustered
x = clustered(1500, 19, seed=3)          # odd dim: every kernel tail runs
q = clustered(50, 19, seed=4)
out = {{"simd": bg.backend_info()["simd"]}}
for storage in ("float32", "float16", "int8"):
    f = bg.FlatIndex(19, metric="l2", storage=storage)
    f.add(x)
    h = bg.HNSWIndex(19, metric="cosine", storage=storage, M=8, ef_construction=64)
    h.add(x, threads=1)
    r = f.search(q, k=10)
    out[storage] = {{"flat_ids": r.ids.tolist(), "flat_d": r.distances.tolist(),
                    "hnsw_ids": h.search(q, k=10, ef=64).ids.tolist()}}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def per_level_results():
    if not SUPPORTED:
        pytest.skip("native extension not built")
    here = os.path.dirname(os.path.abspath(__file__))
    results = {}
    for level in SUPPORTED:
        env = dict(os.environ, BITGRAPH_SIMD=level, BITGRAPH_BACKEND="native")
        proc = subprocess.run([sys.executable, "-c", _LEVEL_SCRIPT.format(tests=here)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[level] = json.loads(proc.stdout)
    return results


def test_forced_simd_level_is_reported(per_level_results):
    for level, res in per_level_results.items():
        assert res["simd"] == level


@pytest.mark.parametrize("storage", STORAGES)
def test_indexes_agree_across_simd_levels(per_level_results, storage):
    from bg_testutil import recall

    x = clustered(1500, 19, seed=3)
    q = clustered(50, 19, seed=4)
    from bg_testutil import reference_search

    truth_ids, truth_d = reference_search(x, q, 10, "l2", storage)
    truth_cos = reference_search(x, q, 10, "cosine")[0]
    for level, res in per_level_results.items():
        r = res[storage]
        np.testing.assert_allclose(r["flat_d"], truth_d, rtol=1e-5, atol=2e-3)
        assert (np.array(r["flat_ids"]) == truth_ids).all(axis=1).mean() >= 0.98, level
        assert recall(np.array(r["hnsw_ids"]), truth_cos) >= 0.95, level


def test_unsupported_forced_level_is_a_clear_error():
    if not SUPPORTED:
        pytest.skip("native extension not built")
    env = dict(os.environ, BITGRAPH_SIMD="avx9000", BITGRAPH_BACKEND="native")
    code = "import bitgraph as bg\nbg.FlatIndex(4)\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode != 0
    assert "BITGRAPH_SIMD=avx9000" in proc.stderr and "not supported" in proc.stderr
    assert "Segmentation" not in proc.stderr
