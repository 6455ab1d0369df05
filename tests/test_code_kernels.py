"""SDC and Hamming kernels over packed binary codes: every SIMD level and the Numba backend
equal a numpy popcount reference exactly (docs/backend-contract.md, "Binary codes")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bg_testutil import BACKENDS

LEVELS = ("generic", "avx2", "avx512")


def code_distances_reference(query: np.ndarray, codes: np.ndarray, planes: int,
                             kind: str) -> np.ndarray:
    """sum_{i,j} 2^(2(P-1)-i-j) popcount(q_i ^ d_j) (SDC) or sum_t popcount(q_t ^ d_t)."""
    words = query.size // (8 * planes)
    qp = query.reshape(planes, 8 * words)
    dp = codes.reshape(codes.shape[0], planes, 8 * words)
    out = np.zeros(codes.shape[0], dtype=np.int64)
    for i in range(planes):
        for j in range(planes):
            if kind == "hamming" and i != j:
                continue
            weight = 1 if kind == "hamming" else 2 ** (2 * (planes - 1) - i - j)
            ones = np.unpackbits(qp[i][None, :] ^ dp[:, j, :], axis=1).sum(axis=1)
            out += weight * ones.astype(np.int64)
    return out


def _modules():
    from bitgraph import _backend

    return [(name, _backend.get_backend(name)) for name in BACKENDS]


def _max_words(planes: int) -> int:
    """Longest plane (in words) whose SDC distances stay exact in float32."""
    return min(12, max(1, (2**24 - 1) // (64 * (2**planes - 1) ** 2)))


@settings(max_examples=60, deadline=None)
@given(planes=st.integers(1, 8), words=st.integers(1, 12), n=st.integers(0, 40),
       seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["sdc", "hamming"]))
def test_code_kernels_equal_reference(planes, words, n, seed, kind):
    """Every supported loop count (1 to 8 planes), every level, both backends."""
    words = min(words, _max_words(planes))
    rng = np.random.default_rng(seed)
    rb = planes * words * 8
    codes = rng.integers(0, 256, (n, rb), dtype=np.uint8)
    query = rng.integers(0, 256, rb, dtype=np.uint8)
    expected = code_distances_reference(query, codes, planes, kind)
    for name, module in _modules():
        if name == "native":
            for level in LEVELS:
                if module.code_level_supported(level):
                    got = module.binary_distances(query, codes, planes, kind, level)
                    np.testing.assert_array_equal(got, expected, err_msg=f"{level} {kind}")
        got = module.binary_distances(query, codes, planes, kind)
        np.testing.assert_array_equal(got, expected, err_msg=f"{name} {kind}")


@pytest.mark.parametrize("words", [1, 2])
@pytest.mark.parametrize("planes", range(1, 9))
def test_one_and_two_word_kernels_equal_reference(planes, words):
    """The broadcast kernels for one- and two-word planes, every plane count, 8-row blocks and
    tails (n = 21)."""
    test_code_kernels_equal_reference.hypothesis.inner_test(planes, words, 21, planes * 7 + words,
                                                            "sdc")


def test_identical_codes_have_zero_hamming_and_sdc_counts_cross_planes(core_module):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (3, 2 * 8), dtype=np.uint8)
    assert (core_module.binary_distances(codes[0], codes[:1], 2, "hamming") == 0).all()
    # SDC compares plane 0 with plane 1 too: a code's distance to itself is that cross term.
    self_sdc = core_module.binary_distances(codes[0], codes[:1], 2, "sdc")[0]
    cross = np.unpackbits(codes[0, :8] ^ codes[0, 8:]).sum()
    assert self_sdc == 2 * 2 * cross


@pytest.mark.parametrize("bad", [dict(planes=0), dict(planes=3), dict(distance="l2")])
def test_code_kernel_arguments_are_checked(core_module, bad):
    query = np.zeros(16, dtype=np.uint8)
    codes = np.zeros((2, 16), dtype=np.uint8)
    args = dict(planes=2, distance="sdc") | bad
    with pytest.raises(ValueError):
        core_module.binary_distances(query, codes, args["planes"], args["distance"])


def test_codes_too_long_for_exact_float_distances_are_refused(core_module):
    query = np.zeros(8 * 8 * 8, dtype=np.uint8)  # 8 planes of 512 bits: > 2^24 worst case
    with pytest.raises(ValueError, match="too long"):
        core_module.binary_distances(query, query[None, :], 8, "sdc")


def test_float_kernels_refuse_binary_storage(native_module):
    with pytest.raises(ValueError):
        native_module.distances(np.zeros(4, np.float32), np.zeros((1, 16), np.uint8), 4, "sdc",
                                "binary")


@pytest.mark.parametrize("storage,metric", [("binary", "l2"), ("float32", "sdc"),
                                            ("float32", "hamming"), ("binary", "ip")])
def test_cores_refuse_mismatched_storage_and_metric(core_module, storage, metric):
    with pytest.raises(ValueError):
        core_module.FlatCore(4, metric, storage)
    with pytest.raises(ValueError):
        core_module.HNSWCore(4, metric, storage, 8, 20, 0)


def test_binary_core_needs_a_valid_layout(core_module):
    with pytest.raises(ValueError):
        core_module.FlatCore(0, "sdc", "binary", 2)  # no bits
    with pytest.raises(ValueError):
        core_module.FlatCore(64, "sdc", "binary", 9)  # at most 8 planes


@pytest.mark.parametrize("distance", ["sdc", "hamming"])
@pytest.mark.parametrize("planes", [1, 2, 4])
def test_flat_binary_core_is_an_exact_code_scan(core_module, planes, distance):
    rng = np.random.default_rng(planes)
    words = 3
    rb = planes * words * 8
    codes = rng.integers(0, 256, (500, rb), dtype=np.uint8)
    queries = rng.integers(0, 256, (7, rb), dtype=np.uint8)
    core = core_module.FlatCore(64 * words, distance, "binary", planes)
    core.add(codes, np.arange(500, dtype=np.int64) + 10, 1, None)
    ids, d = core.search(queries, 12, 12, 2, None)
    for qi in range(7):
        ref = code_distances_reference(queries[qi], codes, planes, distance)
        np.testing.assert_array_equal(d[qi], np.sort(ref)[:12])
        np.testing.assert_array_equal(ref[ids[qi] - 10], d[qi])
