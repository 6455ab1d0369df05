"""Fast checks of the binary-index harness (bench.binary): the numpy re-rank, the code
distances faiss computes on our codes, the bandwidth probe, and tiny end-to-end runs — with the
real ``bitgraph.BinaryIndex`` when this build has it, with a numpy stand-in of the same contract
(bench/tests/binary_fake.py) otherwise, and with no binary index at all (clean skips).

    pytest bench/tests/test_binary_harness.py -q
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import binary_fake
from bench import binary_report
from bench.binary import default_quality_grid, memory_bandwidth, run_binary
from bench.binary_peers import Context, available, rerank_numpy
from bench.datasets import Dataset, exact_knn, text_like


def _has_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _has_binary() -> bool:
    try:
        import bitgraph
    except Exception:
        return False
    return hasattr(bitgraph, "BinaryIndex") and hasattr(bitgraph, "RecurrentBinarizer")


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    base, q = text_like(1500, 25, 64, seed=3, rank=16, clusters=16)
    return Dataset("tiny", base, q, "cosine", exact_knn(base, q, "cosine", 100))


QUALITY_GRID = [{"loops": 1, "code_dim": 64, "learned": False, "distances": ["sdc"]},
                {"loops": 2, "code_dim": 64, "learned": False, "distances": ["sdc", "hamming"]},
                {"loops": 1, "code_dim": 128, "learned": False, "distances": ["hamming"]}]
FAST = dict(threads="1", efs=[16, 64], oversamples=[1, 4], hnsw_oversamples=[4], repeats=1,
            min_time=0.0, probe=5, min_queries=10, fit_sample_n=1000, membw=False)


def test_rerank_numpy_is_exact():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 16)).astype(np.float32)
    Q = rng.standard_normal((9, 16)).astype(np.float32)
    cand = np.stack([rng.choice(300, 40, replace=False) for _ in range(9)])
    cand[0, :5] = -1
    for metric in ("cosine", "l2"):
        b = base / np.linalg.norm(base, axis=1, keepdims=True) if metric == "cosine" else base
        q = Q / np.linalg.norm(Q, axis=1, keepdims=True) if metric == "cosine" else Q
        got = rerank_numpy(b, q, cand, 5, metric, threads=2, chunk=4)
        for i in range(9):
            c = cand[i][cand[i] >= 0]
            d = -(b[c] @ q[i]) if metric == "cosine" else ((b[c] - q[i]) ** 2).sum(1)
            np.testing.assert_array_equal(got[i], c[np.argsort(d, kind="stable")[:5]])


def test_code_distances_follow_the_contract():
    """SDC ranks as the descending weighted code inner product; Hamming = whole-row popcount."""
    rng = np.random.default_rng(1)
    binz = binary_fake.FakeBinarizer(40, loops=3, code_dim=70).fit(
        rng.standard_normal((200, 40)))
    codes = binz.encode(rng.standard_normal((50, 40)))
    assert codes.shape == (50, binz.code_bytes) and binz.code_bytes == 3 * 2 * 8
    bits = np.unpackbits(codes.reshape(50, 3, 16), axis=2, bitorder="little")[:, :, :70]
    signs = 2.0 * bits - 1.0
    B = (signs * (2.0 ** np.arange(2, -1, -1))[None, :, None]).sum(1)      # (50, 70)
    sdc = binary_fake.code_distances(codes[0], codes, 3, "sdc")
    ip = B @ B[0]
    np.testing.assert_array_equal(np.argsort(sdc, kind="stable"),
                                  np.argsort(-ip, kind="stable"))
    ham = binary_fake.code_distances(codes[0], codes, 3, "hamming")
    np.testing.assert_array_equal(ham, np.unpackbits(codes ^ codes[0], axis=1).sum(1))


@pytest.mark.skipif(not _has_faiss(), reason="faiss not installed")
def test_faiss_binary_flat_is_hamming_on_the_same_codes():
    import faiss
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (300, 24), dtype=np.uint8)           # P=3, W=1
    idx = faiss.IndexBinaryFlat(8 * codes.shape[1])
    idx.add(codes)
    D, I = idx.search(codes[:4], 300)
    for i in range(4):
        ref = binary_fake.code_distances(codes[i], codes, 3, "hamming")
        np.testing.assert_array_equal(np.sort(D[i]), np.sort(ref))
        np.testing.assert_array_equal(D[i], ref[I[i]])


def test_memory_bandwidth_probe():
    assert memory_bandwidth(mib=16, threads=1, repeats=1) > 0.1
    assert memory_bandwidth(mib=16, threads=2, repeats=1) > 0.1


def test_default_quality_grid():
    g = default_quality_grid(384)
    bits = {(x["loops"], x["code_dim"], x["learned"]) for x in g}
    for learned in (False, True):
        assert {(1, 384, learned), (2, 384, learned), (4, 384, learned),
                (1, 768, learned), (1, 1536, learned)} <= bits


def _check_run(res, tmp_path, expect_binary: bool):
    rows = res["rows"]
    search = [r for r in rows if r["kind"] == "search"]
    assert search and all(0.0 <= r["recall"] <= 1.0 and r["qps"] > 0 for r in search)
    libs = {r["library"] for r in search}
    if expect_binary:
        assert any(r["kind"] == "quality" and "recall_codes" in r for r in rows)
        assert "quality" in res["tables"] and "threads=1" in res["tables"]
        if "faiss-binflat" in libs:
            assert "scan" in res["tables"]
            # the scan pairs see the same codes: Hamming recall identical up to ties
            a = next(r for r in search if r["library"] == "bg-bin-flat-hamming-norr")
            b = next(r for r in search if r["library"] == "faiss-binflat")
            assert abs(a["recall"] - b["recall"]) < 0.1
        if "bitgraph-f32" in libs and "bg-bin-hnsw-sdc-mmap" in libs:
            assert "hnsw" in res["tables"]
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["meta"]["suite"] == "binary" and "commit" in data["meta"]
    assert (tmp_path / "out.png").exists()
    text = binary_report.section(tmp_path / "out.json")
    assert text.startswith("## Binary indexes") and "| library |" in text
    # results_md picks the file up as a binary section
    from bench import results_md
    page = results_md.main(["--results", str(tmp_path), "--out", str(tmp_path / "R.md"),
                            "--notes", str(tmp_path / "none.md")])
    assert "## Binary indexes: out" in page


def _libs() -> str:
    want = ["bg-bin-flat-sdc-norr", "bg-bin-flat-hamming-norr", "bg-bin-flat-sdc-memory",
            "bg-bin-hnsw-sdc-mmap", "bitgraph-f32", "faiss-binflat", "faiss-binflat+rr",
            "faiss-binhnsw+rr", "faiss-sq8"]
    return ",".join(want)


def test_end_to_end_with_stand_in(tiny, tmp_path, monkeypatch):
    """The whole pipeline on the numpy stand-in (always runs: harness logic only)."""
    import bitgraph
    binary_fake.install(monkeypatch, bitgraph)
    res = run_binary(ds=tiny, quality_grid=QUALITY_GRID, libs=_libs(), code_dim=64,
                     learned=False, out=tmp_path / "out.json", **FAST)
    _check_run(res, tmp_path, expect_binary=True)
    q = [r for r in res["rows"] if r["kind"] == "quality"]
    assert len(q) == 4 and all(r["recall_rerank"] >= r["recall_codes"] - 0.05 for r in q)
    assert "quality-checks" in res["tables"]


@pytest.mark.skipif(not _has_binary(), reason="this bitgraph has no BinaryIndex yet")
def test_end_to_end_real_bitgraph(tiny, tmp_path):
    res = run_binary(ds=tiny, quality_grid=QUALITY_GRID, libs=_libs(), code_dim=64,
                     learned=False, out=tmp_path / "out.json", **FAST)
    assert not {k for k in res["meta"]["skipped"] if k.startswith("bg-")}, res["meta"]["skipped"]
    _check_run(res, tmp_path, expect_binary=True)
    # rerank=memory with oversample 4 should not lose to the codes alone
    q = {(r["loops"], r["code_dim"], r["distance"]): r for r in res["rows"]
         if r["kind"] == "quality"}
    assert q[(2, 64, "sdc")]["recall_rerank"] >= q[(2, 64, "sdc")]["recall_codes"] - 0.02


def test_without_binary_index_skips_cleanly(tiny, tmp_path, monkeypatch):
    import bitgraph
    monkeypatch.delattr(bitgraph, "BinaryIndex", raising=False)
    libs = "bg-bin-flat-sdc-norr,faiss-binflat,bitgraph-f32" + (",faiss-sq8" if _has_faiss()
                                                                else "")
    res = run_binary(ds=tiny, libs=libs, out=tmp_path / "out.json", **FAST)
    sk = res["meta"]["skipped"]
    assert "quality" in sk and "bg-bin-flat-sdc-norr" in sk and "faiss-binflat" in sk
    assert {r["library"] for r in res["rows"] if r["kind"] == "search"} >= {"bitgraph-f32"}
    _check_run(res, tmp_path, expect_binary=False)


def test_available_reports_missing_faiss_features():
    ctx = Context(base=np.zeros((4, 8), np.float32), metric="cosine")
    ok, why = available("faiss-binflat", ctx)          # no binarizer in this context
    assert not ok and why
