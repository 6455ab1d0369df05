"""Fast checks of the filtered-search harness (bench.filtered): filter masks, workload
selectivities, the filtered ground truth against a naive computation, the recall / exact-filter
checks, and tiny end-to-end runs (peers that import; bitgraph only when it has ``Filter``).

    pytest bench/tests/test_filtered_harness.py -q
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench.datasets import gaussian_mixture
from bench.filter_peers import available
from bench.filter_workloads import (FilterPoint, FilterSpec, GRID, evaluate, field_label,
                                    filtered_ground_truth, make_attributes, make_points,
                                    prepare_vectors)
from bench.filtered import run_filtered


def _has_bitgraph_filter() -> bool:
    try:
        import bitgraph
    except Exception:
        return False
    return hasattr(bitgraph, "Filter")


def _naive_gt(base, queries, metric, masks, qgroup, k):
    """Per query: all distances, non-matching items at +inf, stable argsort."""
    out = np.full((len(queries), k), -1, dtype=np.int64)
    b = base.astype(np.float64)
    for i, q in enumerate(queries.astype(np.float64)):
        if metric == "cosine":
            d = 1 - (b @ q) / (np.linalg.norm(b, axis=1) * np.linalg.norm(q))
        else:
            d = ((b - q) ** 2).sum(1)
        m = masks[0 if qgroup is None else qgroup[i]]
        d = np.where(m, d, np.inf)
        order = np.argsort(d, kind="stable")[:k]
        order = order[np.isfinite(d[order])]
        out[i, :len(order)] = order
    return out


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("use_faiss", [True, False])
def test_filtered_ground_truth_matches_naive(metric, use_faiss):
    if use_faiss:
        pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    base = rng.standard_normal((600, 12)).astype(np.float32)
    queries = rng.standard_normal((25, 12)).astype(np.float32)
    masks = [rng.random(600) < 0.3, rng.random(600) < 0.02, np.zeros(600, bool)]
    masks[2][[5, 17, 300]] = True                                  # fewer than k matches
    qgroup = rng.integers(0, 3, 25)
    specs = [FilterSpec.ids(np.flatnonzero(m)) for m in masks]
    for point, qg in [(FilterPoint.from_masks("t", 0.3, specs[:1], masks[:1]), None),
                      (FilterPoint.from_masks("t", 0.1, specs, masks, qgroup=qgroup), qgroup)]:
        gt = filtered_ground_truth(prepare_vectors(base, metric), prepare_vectors(queries, metric),
                                   point, metric, 10, use_faiss=use_faiss)
        np.testing.assert_array_equal(gt, _naive_gt(base, queries, metric, masks, qg, 10))


def test_filter_spec_masks_match_per_item_logic():
    rng = np.random.default_rng(1)
    n = 400
    attrs = make_attributes(rng.standard_normal((n, 8)).astype(np.float32), "l2",
                            grid=(0.5, 0.1), workloads=("label", "range", "tags-any"))
    lab, price = attrs.ints[field_label(0.1)], attrs.floats["price"]
    tags = attrs.tags_lists("tags")
    cases = [
        (FilterSpec.eq(field_label(0.1), 2), lambda i: lab[i] == 2),
        (FilterSpec.isin(field_label(0.1), [0, 3]), lambda i: lab[i] in (0, 3)),
        (FilterSpec.range("price", 0.25, 0.5), lambda i: 0.25 <= price[i] <= 0.5),
        (FilterSpec.range("price", None, 0.1), lambda i: price[i] <= 0.1),
        (FilterSpec.has_any("tags", [0, 5]), lambda i: 0 in tags[i] or 5 in tags[i]),
        (FilterSpec.has_all("tags", [0, 1]), lambda i: 0 in tags[i] and 1 in tags[i]),
        (FilterSpec.ids([3, 7, 399]), lambda i: i in (3, 7, 399)),
        (FilterSpec.eq(field_label(0.1), 0) & ~FilterSpec.range("price", 0.5, None),
         lambda i: lab[i] == 0 and not price[i] >= 0.5),
        (FilterSpec.eq(field_label(0.1), 0) | FilterSpec.has_any("tags", [2]),
         lambda i: lab[i] == 0 or 2 in tags[i]),
    ]
    for spec, fn in cases:
        expect = np.array([bool(fn(i)) for i in range(n)])
        np.testing.assert_array_equal(spec.mask(attrs), expect, err_msg=spec.describe())


def test_workload_selectivities():
    base, queries = gaussian_mixture(5000, 40, 16, 8, seed=2)
    attrs = make_attributes(base, "l2", grid=GRID)
    points = make_points(attrs, queries, "l2", grid=GRID)
    by = {(p.workload, p.target): p for p in points}
    for s in GRID:                      # uncorrelated: exactly round(s n) items pass
        m = max(1, round(s * 5000))
        assert by[("label", s)].sizes[0] == m
        assert by[("range", s)].sizes[0] == m
    # correlated: positive = each query's own k-means cluster, negative = never its own
    from bench.filter_workloads import nearest_centroid
    for s in (0.1, 0.01):
        K = round(1 / s)
        own = nearest_centroid(queries, attrs.centroids[K], "l2")
        pos, neg = by[("corr-pos", s)], by[("corr-neg", s)]
        assert [pos.spec_of(i).args[0] for i in range(40)] == own.tolist()
        assert all(neg.spec_of(i).args[0] != own[i] for i in range(40))
        assert 0.3 * s < pos.selectivity(40)["selectivity"] < 3 * s
    for w in ("tags-any", "tags-all"):
        pts = [p for p in points if p.workload == w]
        assert pts
        for p in pts:
            got = p.sizes[0] / 5000
            assert p.target / 1.5 <= got <= p.target * 1.5


def test_evaluate_counts_violations():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((50, 4)).astype(np.float32)
    q = rng.standard_normal((3, 4)).astype(np.float32)
    mask = np.zeros(50, bool)
    mask[:20] = True
    point = FilterPoint.from_masks("t", 0.4, [FilterSpec.ids(range(20))], [mask])
    gt = filtered_ground_truth(base, q, point, "l2", 5)
    ok = evaluate(gt, point, gt, base, q, "l2", 5)
    assert ok["recall"] == 1.0 and ok["complete"]
    bad = gt.copy()
    bad[0, 4] = 30                     # a non-matching id
    bad[1, 3:] = -1                    # short
    bad[2, 1] = bad[2, 0]              # duplicate
    ev = evaluate(bad, point, gt, base, q, "l2", 5)
    assert ev["nonmatching_ids"] == 1 and ev["nonmatching_queries"] == 1
    assert ev["short_queries"] == 1 and ev["missing_results"] == 2
    assert ev["dup_ids"] == 1 and not ev["complete"]
    assert ev["recall"] == pytest.approx((4 + 3 + 4) / 15)
    # fewer matches than k: min(k, matches) is the target, padding is not short
    few = np.zeros(50, bool)
    few[[1, 2]] = True
    p2 = FilterPoint.from_masks("t", 0.04, [FilterSpec.ids([1, 2])], [few])
    gt2 = filtered_ground_truth(base, q, p2, "l2", 5)
    ev2 = evaluate(gt2, p2, gt2, base, q, "l2", 5)
    assert ev2["complete"] and ev2["recall"] == 1.0 and (gt2[:, 2:] == -1).all()


def _tiny_run(tmp_path, libs, workloads="all"):
    base, queries = gaussian_mixture(3000, 20, 16, 8, seed=1)
    out = tmp_path / "filtered-tiny.json"
    res = run_filtered(base=base, queries=queries, metric="l2", dataset="tiny",
                       workloads=workloads, selectivities=[0.5, 0.01], libs=libs, threads="1",
                       efs=[10, 64], repeats=2, min_time=0.0, out=out, log=lambda m: None)
    return res, json.loads(out.read_text())


def test_end_to_end_peers(tmp_path):
    libs = [n for n in ("hnswlib", "faiss-hnsw", "exact-subset") if available(n)[0]]
    res, data = _tiny_run(tmp_path, libs)
    assert (tmp_path / "filtered-tiny.png").exists()
    rows = [r for r in data["rows"] if r["kind"] == "filtered"]
    points = [r for r in data["rows"] if r["kind"] == "point"]
    assert {r["workload"] for r in points} == {"label", "range", "corr-pos", "corr-neg",
                                               "tags-any", "tags-all"}
    assert {r["library"] for r in rows} == set(libs) == set(data["meta"]["libraries"])
    for p in points:                         # every library measured every point
        assert {r["library"] for r in rows if r["workload"] == p["workload"]
                and r["target"] == p["target"]} == set(libs)
    for r in rows:
        assert 0.0 <= r["recall"] <= 1.0 and r["qps"] > 0 and r["n_queries"] == 20
        assert r["nonmatching_ids"] == 0 and r["bad_ids"] == 0     # peers filter exactly
        assert len(r["seconds_runs"]) == r["rounds"] >= 1
        if r["recall"] >= 0.95:
            assert r["rounds"] == 2                                 # re-timed in round 2
    ex = [r for r in rows if r["library"] == "exact-subset"]
    assert all(r["recall"] == 1.0 and r["complete"] and r["ef"] is None for r in ex)
    for r in rows:
        if r["library"] == "faiss-hnsw":
            assert r["visited_mean"] is None or r["visited_mean"] > 0
    assert "checks" in res["tables"] and "label threads=1 R>=0.95" in res["tables"]
    assert "| 0.01 |" in res["tables"]["label threads=1 R>=0.95"]


def test_results_md_has_filtered_section(tmp_path):
    from bench import results_md
    libs = [n for n in ("exact-subset",) if available(n)[0]]
    _tiny_run(tmp_path, libs, workloads="label")
    text = results_md.main(["--results", str(tmp_path), "--out", str(tmp_path / "R.md"),
                            "--notes", str(tmp_path / "none.md")])
    assert "## Filtered search: filtered-tiny" in text
    assert "exact-filter semantics" in text and "filtered-tiny.png" in text


@pytest.mark.skipif(not _has_bitgraph_filter(), reason="bitgraph has no Filter yet")
def test_end_to_end_bitgraph(tmp_path):
    libs = ["bitgraph-f32", "bitgraph-flat"] + [n for n in ("exact-subset",)
                                                if available(n)[0]]
    res, data = _tiny_run(tmp_path, libs)
    assert not data["meta"]["skipped"], data["meta"]["skipped"]
    rows = [r for r in data["rows"] if r["kind"] == "filtered"]
    known = {"exact", "acorn", "post-filter", "exact-fallback"}
    for r in rows:
        if r["library"].startswith("bitgraph"):
            assert r["plans"] and set(r["plans"]) <= known, r["plans"]
            assert sum(r["plans"].values()) == r["n_queries"]
            assert r["visited_mean"] is not None and r["visited_mean"] >= 0
            # exact-filter semantics: never a non-matching id, min(k, matches) results
            assert r["nonmatching_ids"] == 0 and r["complete"], r
        if r["library"] == "bitgraph-flat":
            assert r["recall"] == 1.0 and set(r["plans"]) == {"exact"}
    assert any(r["recall"] >= 0.95 for r in rows if r["library"] == "bitgraph-f32")


@pytest.mark.skipif(not _has_bitgraph_filter(), reason="bitgraph has no Filter yet")
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_bitgraph_filter_ops_match_masks(kind):
    """Every FilterSpec op, converted to bitgraph.Filter, passes exactly the items of its numpy
    mask: with k = n the search must return all of them and nothing else."""
    import bitgraph as bg
    rng = np.random.default_rng(5)
    n = 300
    base = rng.standard_normal((n, 8)).astype(np.float32)
    attrs = make_attributes(base, "l2", grid=(0.5, 0.1), workloads=("label", "range", "tags-any"))
    index = bg.FlatIndex(8, metric="l2") if kind == "flat" else bg.HNSWIndex(8, metric="l2")
    index.add(base, attributes=attrs.bitgraph_dict(), threads=1)
    lab = field_label(0.1)
    specs = [FilterSpec.eq(lab, 2), FilterSpec.isin(lab, [0, 3]),
             FilterSpec.range("price", 0.25, 0.5), FilterSpec.range("price", None, 0.1),
             FilterSpec.range("price", 0.9, None), FilterSpec.has_any("tags", [0, 5]),
             FilterSpec.has_all("tags", [0, 1]), FilterSpec.ids([3, 7, 299]),
             FilterSpec.eq(lab, 0) & ~FilterSpec.range("price", 0.5, None),
             FilterSpec.eq(lab, 0) | FilterSpec.has_any("tags", [2]),
             FilterSpec.eq(lab, 10_000)]                          # matches nothing
    q = rng.standard_normal((2, 8)).astype(np.float32)
    for spec in specs:
        want = set(np.flatnonzero(spec.mask(attrs)).tolist())
        res = index.search(q, k=n, ef=n, filter=spec.to_bitgraph(bg), threads=1)
        for row in np.asarray(res.ids):
            got = set(row[row >= 0].tolist())
            assert got == want, (spec.describe(), len(got), len(want))
    # one filter per query, as the correlated workloads pass them
    per_query = [FilterSpec.eq(lab, 1).to_bitgraph(bg), FilterSpec.ids([4, 5]).to_bitgraph(bg)]
    res = index.search(q, k=n, ef=n, filter=per_query, threads=1)
    ids = np.asarray(res.ids)
    assert set(ids[0][ids[0] >= 0].tolist()) == set(np.flatnonzero(attrs.ints[lab] == 1).tolist())
    assert set(ids[1][ids[1] >= 0].tolist()) == {4, 5}
    assert len(res.plans) == 2 and len(res.visited) == 2
