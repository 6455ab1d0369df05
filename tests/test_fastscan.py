"""Fast-scan SDC (lookup tables over 32-document blocks) equals the popcount definition exactly:
the Numba version always, the native kernels when this build has them."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from bitgraph._numba import fastscan as nfs

try:
    from bitgraph import _core
except ImportError:  # pure-Python install
    _core = None

DIMS = (7, 64, 100, 384, 1024)
PLANES = (1, 2, 3, 4)


def random_codes(rng, n, planes, code_dim, fill=None):
    """Code rows per docs/backend-contract.md: little-endian bit order, zero padding bits."""
    w = (code_dim + 63) // 64
    if fill is None:
        bits = rng.integers(0, 2, size=(n, planes, code_dim), dtype=np.uint8)
    else:
        bits = np.full((n, planes, code_dim), fill, dtype=np.uint8)
    padded = np.zeros((n, planes, 64 * w), dtype=np.uint8)
    padded[:, :, :code_dim] = bits
    return np.packbits(padded, axis=-1, bitorder="little").reshape(n, planes * w * 8)


def cases():
    for planes in PLANES:
        for code_dim in DIMS:
            yield planes, code_dim


@pytest.mark.parametrize(("planes", "code_dim"), list(cases()))
def test_numba_matches_reference(planes, code_dim):
    rng = np.random.default_rng(planes * 10007 + code_dim)
    n = 77  # not a multiple of 32: a partial last block
    docs = random_codes(rng, n, planes, code_dim)
    blocks = nfs.fastscan_pack(docs, planes, code_dim)
    assert blocks.shape == (3, nfs.fastscan_block_bytes(planes, code_dim))
    for query in random_codes(rng, 3, planes, code_dim):
        want = nfs.sdc_reference(query, docs, planes, code_dim)
        got = nfs.fastscan_sdc(blocks, n, query, planes, code_dim)
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, want)
    # a prefix of the packed documents
    np.testing.assert_array_equal(nfs.fastscan_sdc(blocks, 40, docs[5], planes, code_dim),
                                  nfs.sdc_reference(docs[5], docs[:40], planes, code_dim))


@pytest.mark.parametrize("planes", PLANES)
def test_numba_extremes(planes):
    """All-ones documents against an all-zeros query: the largest distance, (2^P-1)^2 * m."""
    code_dim = 1024
    rng = np.random.default_rng(planes)
    ones = random_codes(rng, 33, planes, code_dim, fill=1)
    zero = random_codes(rng, 1, planes, code_dim, fill=0)[0]
    blocks = nfs.fastscan_pack(ones, planes, code_dim)
    got = nfs.fastscan_sdc(blocks, 33, zero, planes, code_dim)
    np.testing.assert_array_equal(got, np.full(33, (2**planes - 1) ** 2 * code_dim))


def test_numba_validation():
    docs = np.zeros((5, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match="planes"):
        nfs.fastscan_pack(docs, 5, 64)
    with pytest.raises(ValueError, match="columns"):
        nfs.fastscan_pack(docs, 1, 64)
    blocks = nfs.fastscan_pack(docs, 2, 64)
    with pytest.raises(ValueError, match="need"):
        nfs.fastscan_sdc(blocks, 40, docs[0], 2, 64)
    with pytest.raises(ValueError, match="query"):
        nfs.fastscan_sdc(blocks, 5, docs[0, :8], 2, 64)


def _native():
    if _core is None or not hasattr(_core, "fastscan_sdc"):
        pytest.skip("bitgraph._core has no fastscan_sdc (native fast-scan not built)")
    return _core


@pytest.mark.parametrize(("planes", "code_dim"), list(cases()))
def test_native_matches_reference_and_numba(planes, code_dim):
    core = _native()
    rng = np.random.default_rng(planes * 7919 + code_dim)
    n = 101
    docs = random_codes(rng, n, planes, code_dim)
    blocks = core.fastscan_pack(docs, planes, code_dim)
    # one block layout for both backends
    np.testing.assert_array_equal(blocks, nfs.fastscan_pack(docs, planes, code_dim))
    queries = random_codes(rng, 5, planes, code_dim)
    want = np.stack([nfs.sdc_reference(q, docs, planes, code_dim) for q in queries])
    for i, q in enumerate(queries):
        got = core.fastscan_sdc(blocks, n, q, planes, code_dim)
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, want[i])
    if hasattr(core, "fastscan_sdc_batch"):
        batch = core.fastscan_sdc_batch(blocks, n, queries, planes, code_dim)
        np.testing.assert_array_equal(batch, want)


def test_native_batch_boundaries():
    """More queries than one table group (64) and more documents than one cache tile."""
    core = _native()
    if not hasattr(core, "fastscan_sdc_batch"):
        pytest.skip("bitgraph._core has no fastscan_sdc_batch")
    rng = np.random.default_rng(11)
    planes, code_dim, n = 4, 1024, 1100
    docs = random_codes(rng, n, planes, code_dim)
    queries = random_codes(rng, 70, planes, code_dim)
    blocks = core.fastscan_pack(docs, planes, code_dim)
    got = core.fastscan_sdc_batch(blocks, n, queries, planes, code_dim)
    want = np.stack([nfs.sdc_reference(q, docs, planes, code_dim) for q in queries])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("planes", PLANES)
def test_native_extremes(planes):
    core = _native()
    code_dim = 1024  # P = 4: 230400 per document, far past the kernels' uint16 lanes
    rng = np.random.default_rng(planes)
    ones = random_codes(rng, 33, planes, code_dim, fill=1)
    zero = random_codes(rng, 1, planes, code_dim, fill=0)[0]
    blocks = core.fastscan_pack(ones, planes, code_dim)
    np.testing.assert_array_equal(core.fastscan_sdc(blocks, 33, zero, planes, code_dim),
                                  np.full(33, (2**planes - 1) ** 2 * code_dim))


def test_native_validation():
    core = _native()
    docs = np.zeros((5, 16), dtype=np.uint8)
    with pytest.raises(ValueError):
        core.fastscan_pack(docs, 5, 64)
    with pytest.raises(ValueError):
        core.fastscan_pack(docs, 1, 64)
    blocks = core.fastscan_pack(docs, 2, 64)
    with pytest.raises(ValueError):
        core.fastscan_sdc(blocks, 40, docs[0], 2, 64)
    with pytest.raises(ValueError):
        core.fastscan_sdc(blocks, 5, docs[0, :8], 2, 64)


_LEVEL_CHECK = """
import numpy as np
from bitgraph import _core
from bitgraph._numba import fastscan as nfs
assert _core.fastscan_level() == {level!r}, _core.fastscan_level()
rng = np.random.default_rng(3)
for planes in (1, 2, 3, 4):
    for code_dim in (100, 1024):
        w = (code_dim + 63) // 64
        bits = np.zeros((70, planes, 64 * w), dtype=np.uint8)
        bits[:, :, :code_dim] = rng.integers(0, 2, size=(70, planes, code_dim))
        docs = np.packbits(bits, axis=-1, bitorder="little").reshape(70, -1)
        blocks = _core.fastscan_pack(docs, planes, code_dim)
        for q in docs[:3]:
            got = _core.fastscan_sdc(blocks, 70, q, planes, code_dim)
            np.testing.assert_array_equal(got, nfs.sdc_reference(q, docs, planes, code_dim))
"""


@pytest.mark.parametrize("level", ["generic", "avx2"])
def test_native_lower_levels(level):
    """The level the CPU picks is covered above; the lower ones run forced (BITGRAPH_SIMD)."""
    core = _native()
    if not core.simd_level_supported(level):
        pytest.skip(f"{level} not supported on this CPU/build")
    if core.fastscan_level() == level:
        pytest.skip(f"{level} is already the active level")
    env = dict(os.environ, BITGRAPH_SIMD=level)
    proc = subprocess.run([sys.executable, "-c", _LEVEL_CHECK.format(level=level)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
