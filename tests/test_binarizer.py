"""RecurrentBinarizer: code layout, kernels vs the numpy reference, persistence, validation,
and learned-vs-fixed quality on small structured data."""
from __future__ import annotations

import numpy as np
import pytest

import bitgraph as bg
from bitgraph.binary import reference as R
from bitgraph.binary import training

RNG = np.random.default_rng(0)


def _structured(n, dim=32, rank=6, clusters=20, seed=0):
    """Clustered points in a low-rank subspace + isotropic noise (like text embeddings)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0]
    centres = rng.standard_normal((clusters, rank)) * 2
    lab = rng.integers(0, clusters, n)
    x = (centres[lab] + rng.standard_normal((n, rank))) @ basis.T
    x += 0.3 * rng.standard_normal((n, dim)) + 1.0
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _recall(b, base, queries, k=10):
    gt = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :k]
    ids = R.search(b.encode(queries), b.encode(base), b.loops, b.code_dim, k, "sdc")
    return np.mean([len(set(a) & set(g)) / k for a, g in zip(ids, gt)])


def _contract_params(planes, m, r, d, rng, learned):
    p = {"mean": rng.standard_normal(d).astype(np.float32) * 0.1,
         "proj": rng.standard_normal((d, r)).astype(np.float32),
         "phi_bias": rng.standard_normal((planes, m)).astype(np.float32) * 0.1,
         "psi_scale": rng.random(planes).astype(np.float32),
         "psi_bias": rng.standard_normal((planes, r)).astype(np.float32) * 0.1}
    if learned:
        p["phi"] = rng.standard_normal((planes, r, m)).astype(np.float32)
        p["psi"] = rng.standard_normal((planes, m, r)).astype(np.float32) * 0.1
    else:
        p["phi"] = np.zeros((0, 0, 0), np.float32)
        p["psi"] = np.zeros((0, 0, 0), np.float32)
    return p


def test_bit_order_and_shapes_hand_built():
    # 1 plane, m = 70 (2 words), identity everything: bit j set iff x[j] > 0
    d = m = 70
    b = bg.RecurrentBinarizer.from_state(
        {"kind": "binarizer", "dim": d, "loops": 1, "code_dim": m, "learned": False,
         "seed": 0, "normalize": False},
        {"mean": np.zeros(d, np.float32), "proj": np.eye(d, dtype=np.float32),
         "phi": np.zeros((0, 0, 0), np.float32), "phi_bias": np.zeros((1, m), np.float32),
         "psi": np.zeros((0, 0, 0), np.float32), "psi_scale": np.ones(1, np.float32),
         "psi_bias": np.zeros((1, m), np.float32)})
    assert (b.words_per_plane, b.code_bytes) == (2, 16)
    x = -np.ones((1, d), np.float32)
    x[0, [0, 3, 9, 64, 69]] = 1.0
    codes = b.encode(x)
    assert codes.shape == (1, 16) and codes.dtype == np.uint8
    words = codes.view("<u8")[0]
    assert words[0] == (1 << 0) | (1 << 3) | (1 << 9)
    assert words[1] == (1 << 0) | (1 << 5)
    # two planes with psi = identity * 1: plane 1 sees r - b
    b2 = bg.RecurrentBinarizer.from_state(
        dict(b.get_state()[0], loops=2),
        {"mean": np.zeros(d, np.float32), "proj": np.eye(d, dtype=np.float32),
         "phi": np.zeros((0, 0, 0), np.float32), "phi_bias": np.zeros((2, m), np.float32),
         "psi": np.zeros((0, 0, 0), np.float32), "psi_scale": np.array([0.5, 1], np.float32),
         "psi_bias": np.zeros((2, m), np.float32)})
    y = np.full((1, d), -0.25, np.float32)
    y[0, 1] = 0.75    # plane 0: + ; residual 0.25 -> +
    y[0, 2] = 0.25    # plane 0: + ; residual -0.25 -> -
    y[0, 4] = -0.75   # plane 0: - ; residual -0.25 -> -
    c2 = b2.encode(y).view("<u8")[0]
    assert c2.shape == (4,)
    assert c2[0] == (1 << 1) | (1 << 2) and c2[1] == 0
    # plane 1 residual: dims 2 and 4 are -0.25, every other dim +0.25
    assert int(c2[2]) == (2 ** 64 - 1) ^ (1 << 2) ^ (1 << 4)
    assert c2[3] == (1 << 6) - 1


@pytest.mark.parametrize("planes,m,learned", [(1, 70, False), (3, 40, True), (2, 130, True)])
def test_numba_encode_matches_reference_and_padding_zero(planes, m, learned):
    from bitgraph._numba import binary_encode

    rng = np.random.default_rng(planes * 100 + m)
    d = 33
    r = m if not learned else 17
    p = _contract_params(planes, m, r, d, rng, learned)
    x = rng.standard_normal((300, d)).astype(np.float32)
    for normalize in (True, False):
        got = binary_encode(x, normalize, **p, threads=2)
        bits, z = R.encode_bits(x, normalize, **p)
        want = R.pack_planes(bits)
        assert got.shape == want.shape == (300, planes * ((m + 63) // 64) * 8)
        gbits = R.unpack_planes(got, planes, m)
        diff = gbits != bits
        # only components with z within float rounding of 0 may flip (and then everything after)
        rows = np.flatnonzero(diff.any(axis=(1, 2)))
        for i in rows:
            t = int(np.flatnonzero(diff[i].any(axis=1))[0])
            assert np.abs(z[i, t][diff[i, t]]).max() < 1e-3
        assert len(rows) <= 3
        # padding bits are zero
        wb = ((m + 63) // 64) * 64
        allbits = np.unpackbits(got.reshape(300, planes, -1), axis=-1, bitorder="little")
        assert not allbits[:, :, m:wb].any()


def test_backend_encode_matches_reference():
    x = _structured(400, dim=48)
    for learned in (False, True):
        b = bg.RecurrentBinarizer(48, loops=2, learned=learned).fit(x, epochs=1)
        got = R.unpack_planes(b.encode(x), 2, 48)
        bits, _ = R.encode_bits(x, True, **b.params)
        assert (got != bits).any(axis=(1, 2)).mean() < 0.01


def test_distances_reference_agree():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (50, 3 * 16), dtype=np.uint8)
    codes = R.pack_planes(R.unpack_planes(codes, 3, 100))  # zero padding
    for kind, fn in (("sdc", R.sdc_matrix), ("hamming", R.hamming_matrix)):
        mat = fn(codes[:5], codes, 3, 100)
        for i in range(5):
            np.testing.assert_array_equal(mat[i], R.binary_distances(codes[i], codes, 3, kind))


def test_determinism_and_properties():
    x = _structured(500)
    a = bg.RecurrentBinarizer(32, loops=2, code_dim=48, seed=5).fit(x, epochs=2)
    b = bg.RecurrentBinarizer(32, loops=2, code_dim=48, seed=5).fit(x, epochs=2)
    np.testing.assert_array_equal(a.encode(x), b.encode(x))
    assert (a.dim, a.loops, a.code_dim, a.words_per_plane, a.code_bytes) == (32, 2, 48, 1, 16)
    assert a.bits_per_dim == 3.0 and a.learned and a.normalize and a.is_fitted and a.seed == 5
    c = bg.RecurrentBinarizer(32, loops=2, code_dim=48, seed=6).fit(x, epochs=2)
    assert not np.array_equal(a.encode(x), c.encode(x))
    for m in (20, 70):  # fixed projections with m < dim and m > dim
        f = bg.RecurrentBinarizer(32, loops=1, code_dim=m, learned=False).fit(x)
        assert f.encode(x).shape == (500, 8 * ((m + 63) // 64))
    assert a.decode(a.encode(x[:3])).shape == (3, a.params["proj"].shape[1])


def test_decode_error_shrinks_with_loops():
    x = _structured(1000)
    errs = []
    for loops in (1, 2, 4):
        b = bg.RecurrentBinarizer(32, loops=loops, learned=False).fit(x)
        errs.append(float(((b.decode(b.encode(x)) - b.project(x)) ** 2).sum(1).mean()))
    assert errs[0] > errs[1] > errs[2], errs


def test_save_load_and_state_round_trip(tmp_path):
    x = _structured(300)
    b = bg.RecurrentBinarizer(32, loops=3, seed=1).fit(x, epochs=1)
    path = tmp_path / "b.bgb"
    b.save(path)
    b2 = bg.RecurrentBinarizer.load(path)
    assert (b2.loops, b2.code_dim, b2.learned, b2.seed) == (3, 32, True, 1)
    np.testing.assert_array_equal(b.encode(x), b2.encode(x))
    meta, arrays = b.get_state()
    import json

    json.dumps(meta)
    b3 = bg.RecurrentBinarizer.from_state(meta, arrays)
    np.testing.assert_array_equal(b.encode(x), b3.encode(x))
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    bad = tmp_path / "bad.bgb"
    bad.write_bytes(bytes(raw))
    with pytest.raises(bg.IndexFileError):
        bg.RecurrentBinarizer.load(bad)
    bad.write_bytes(bytes(raw[:40]))
    with pytest.raises(bg.IndexFileError):
        bg.RecurrentBinarizer.load(bad)


def test_bad_inputs():
    x = _structured(100)
    with pytest.raises(bg.BitgraphValueError):
        bg.RecurrentBinarizer(32, loops=0)
    with pytest.raises(bg.BitgraphValueError):
        bg.RecurrentBinarizer(32, loops=9)
    with pytest.raises(bg.BitgraphValueError):
        bg.RecurrentBinarizer(32, code_dim=0)
    with pytest.raises(bg.BitgraphTypeError):
        bg.RecurrentBinarizer(32, loops=1.5)
    b = bg.RecurrentBinarizer(32, learned=False)
    with pytest.raises(bg.BitgraphValueError, match="before fit"):
        b.encode(x)
    with pytest.raises(bg.BitgraphValueError, match="at least 2"):
        b.fit(x[:1])
    b.fit(x)
    with pytest.raises(bg.BitgraphValueError, match="dimension"):
        b.encode(np.ones((3, 31), np.float32))
    y = x.copy()
    y[2, 3] = np.nan
    with pytest.raises(bg.BitgraphValueError, match="NaN"):
        b.encode(y)
    with pytest.raises(bg.BitgraphValueError, match="NaN"):
        bg.RecurrentBinarizer(32).fit(y)
    with pytest.raises(bg.BitgraphTypeError):
        b.encode("abc")
    with pytest.raises(bg.BitgraphValueError):
        b.decode(np.zeros((2, 7), np.uint8))


def test_learned_beats_fixed_on_structured_data():
    base = _structured(2000, dim=32, seed=1)
    queries = _structured(2200, dim=32, seed=1)[2000:]
    fixed = bg.RecurrentBinarizer(32, loops=2, learned=False).fit(base)
    learned = bg.RecurrentBinarizer(32, loops=2, learned=True).fit(base, epochs=1)
    rf, rl = _recall(fixed, base, queries), _recall(learned, base, queries)
    assert rl > rf + 0.02, (rl, rf)


def test_compatible_with():
    base = _structured(2000, dim=32, seed=2)
    queries = _structured(2200, dim=32, seed=2)[2000:]
    old = bg.RecurrentBinarizer(32, loops=2, learned=True, seed=0).fit(base, epochs=1)
    with pytest.raises(bg.BitgraphValueError, match="same"):
        bg.RecurrentBinarizer(32, loops=3, seed=1).fit(base, compatible_with=old)
    with pytest.raises(bg.BitgraphValueError, match="same"):
        bg.RecurrentBinarizer(32, loops=2, code_dim=40, seed=1).fit(base, compatible_with=old)
    with pytest.raises(bg.BitgraphTypeError):
        bg.RecurrentBinarizer(32, loops=2).fit(base, compatible_with="old")
    new = bg.RecurrentBinarizer(32, loops=2, seed=1).fit(base[::-1], compatible_with=old,
                                                         epochs=1)
    gt = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    ids = R.search(new.encode(queries), old.encode(base), 2, 32, 10, "sdc")
    cross = np.mean([len(set(a) & set(g)) / 10 for a, g in zip(ids, gt)])
    assert cross > 0.3 > 10 / 2000  # far better than chance


def _offset_ranking(b, base, queries, kind="sdc"):
    """Code distances + offsets (as the index adds them), numpy reference."""
    d = R.sdc_matrix(b.encode(queries), b.encode(base), b.loops, b.code_dim) if kind == "sdc" \
        else R.hamming_matrix(b.encode(queries), b.encode(base), b.loops, b.code_dim)
    return d + b.offsets(base, kind).astype(np.int64)[None, :] \
        + b.offsets(queries, kind).astype(np.int64)[:, None]


@pytest.mark.parametrize("learned", [False, True])
def test_offsets_shape_range_and_ranking(learned):
    """Offsets are uint32 in [0, 2 half], and code distance + offsets ranks the true neighbours
    better than the code distance alone on data with a strong common direction."""
    base = _structured(2000, dim=32, seed=3)
    queries = _structured(2100, dim=32, seed=3)[2000:]
    b = bg.RecurrentBinarizer(32, loops=2, learned=learned, seed=0).fit(base, epochs=0)
    assert b.has_offsets
    for kind in ("sdc", "hamming"):
        off = b.offsets(base, kind)
        assert off.dtype == np.uint32 and off.shape == (2000,)
        assert off.max() <= 2 * b._offsets[kind]["half"]
        assert off.max() > off.min()           # they carry information
    gt = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :10]

    def recall_at_40(dist):
        top = np.argsort(dist, axis=1, kind="stable")[:, :40]
        return np.mean([len(set(a) & set(g)) / 10 for a, g in zip(top, gt)])

    plain = R.sdc_matrix(b.encode(queries), b.encode(base), 2, 32)
    with_offsets = _offset_ranking(b, base, queries)
    assert recall_at_40(with_offsets) > recall_at_40(plain), (recall_at_40(with_offsets),
                                                              recall_at_40(plain))
    with pytest.raises(bg.BitgraphValueError, match="sdc"):
        b.offsets(base, "l2")


def test_offsets_persist_and_old_states_load_without_them(tmp_path):
    x = _structured(300)
    b = bg.RecurrentBinarizer(32, loops=2, learned=False).fit(x)
    b.save(tmp_path / "b.bgb")
    b2 = bg.RecurrentBinarizer.load(tmp_path / "b.bgb")
    np.testing.assert_array_equal(b.offsets(x), b2.offsets(x))
    meta, arrays = b.get_state()
    meta.pop("offsets")                                    # a state from before offsets
    old = bg.RecurrentBinarizer.from_state(meta, arrays)
    assert not old.has_offsets
    with pytest.raises(bg.BitgraphValueError, match="no code offsets"):
        old.offsets(x)
    meta, arrays = b.get_state()
    meta["offsets"] = {"sdc": {"unit": -1.0, "half": 3}, "hamming": {"unit": 1.0, "half": 3}}
    with pytest.raises(bg.BitgraphValueError, match="offset"):
        bg.RecurrentBinarizer.from_state(meta, arrays)


def test_fit_on_a_few_samples_and_absurd_shapes():
    """A learned fit on 20-50 samples used to fail inside numpy (kth out of bounds); shapes
    whose fit would need tens of GiB are refused before allocating."""
    x = np.random.default_rng(0).standard_normal((30, 8)).astype(np.float32)
    binz = bg.RecurrentBinarizer(8, loops=1, learned=True).fit(x)
    assert binz.encode(x).shape == (30, binz.code_bytes)
    with pytest.raises(bg.BitgraphValueError, match="working memory"):
        bg.RecurrentBinarizer(8, code_dim=1_000_000, learned=False).fit(
            np.random.default_rng(1).standard_normal((20_000, 8)))
    with pytest.raises(bg.BitgraphValueError, match="GiB of parameters"):
        bg.RecurrentBinarizer(100_000)
    with pytest.raises(bg.BitgraphValueError, match="float32 products overflow"):
        binz.encode(np.full((1, 8), 1e30))
