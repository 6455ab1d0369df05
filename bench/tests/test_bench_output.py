"""What `bitgraph bench` (the README's main job) prints: progress per library build, the ef
sweep with recall next to QPS, a legend of the library labels, and a headline that says how
many interleaved runs it is the median of (no timing claims are checked).

    pytest bench/tests/test_bench_output.py -q
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bench import summary
from bench.adapters import available, make_adapter
from bench.protocol import build
from bench.datasets import load_dataset
from bench.report import sweep_table, tables
from bench.run_suite import run_suite


def _rows(repeats: int) -> tuple[list[dict], dict]:
    """Hand-made rows: bitgraph-f32 and one peer, two ef points, ``repeats`` runs."""
    rows = []
    for lib, bitgraph, speed in (("bitgraph-f32", True, 2.0), ("hnswlib", False, 1.0)):
        rows.append({"kind": "build", "library": lib, "build_s": 1.0, "bytes_per_vector": 300,
                     "nbytes": 3000, "rss_growth_bytes": 0, "nbytes_method": "x"})
        for ef, recall in ((16, 0.91), (64, 0.99)):
            secs = [100 / (speed * 1000 * (1 + 0.1 * r) / ef * 16) for r in range(repeats)]
            med = sorted(secs)[len(secs) // 2]
            rows.append({"kind": "search", "library": lib, "is_bitgraph": bitgraph,
                         "is_graph": True, "threads": 1, "ef": ef, "recall": recall,
                         "qps": 100 / med, "seconds_runs": secs, "n_queries": 100})
    rows.append({"kind": "search", "library": "faiss-flat", "is_bitgraph": False,
                 "is_graph": False, "threads": 1, "ef": None, "recall": 1.0, "qps": 10.0,
                 "seconds_runs": [10.0] * repeats, "n_queries": 100})
    meta = {"repeats": repeats, "dataset": {"name": "toy", "n_base": 1000, "dim": 8,
                                            "n_queries": 100},
            "legend": {"bitgraph-f32": "bitgraph HNSWIndex, float32", "hnswlib": "hnswlib"}}
    return rows, meta


def test_sweep_table_has_recall_and_qps_per_ef():
    rows, _ = _rows(3)
    text = sweep_table(rows, 1)
    lines = text.splitlines()
    assert lines[0] == "| ef | bitgraph-f32 | hnswlib | faiss-flat |"
    assert lines[2].startswith("| 16 | 0.910 / ") and lines[3].startswith("| 64 | 0.990 / ")
    assert lines[4].startswith("| exact | — | — | 1.000 / 10 |")


def test_headline_says_median_of_n_interleaved_runs():
    rows, meta = _rows(3)
    text = summary.headline(rows, meta)
    assert "median of 3 interleaved runs" in text
    line = next(x for x in text.splitlines() if "bitgraph-f32:" in x)
    assert "2.00x [" in line                       # 2x the peer in every run: range shown
    assert "best peer:" in text and "hnswlib" in text
    assert "median of 3 interleaved runs" in tables(rows, meta)["threads=1"]


def test_single_run_headline_says_so():
    rows, meta = _rows(1)
    text = summary.headline(rows, meta)
    assert "single run" in text and "median of" not in text and "--repeats 3" in text
    assert "single run" in tables(rows, meta)["threads=1"]


def test_console_tables_order_and_legend():
    rows, meta = _rows(3)
    out = summary.console_tables(rows, meta)
    assert list(out) == ["legend", "sweep threads=1", "threads=1", "headline"]
    assert "bitgraph-f32  bitgraph HNSWIndex, float32" in out["legend"]
    assert "M = 16, ef_construction = 200" in out["legend"]


@pytest.mark.parametrize("name", ["bitgraph-f32", "bitgraph-f16", "bitgraph-ivf", "bitgraph-bin4",
                                  "faiss-hnsw", "hnswlib", "usearch", "faiss-flat"])
def test_every_default_label_describes_itself(name):
    if not available(name)[0]:
        pytest.skip(f"{name} is not installed")
    text = make_adapter(name, "cosine", 50).describe()
    assert text and text != name
    if name == "bitgraph-bin4":     # what the adapter really builds
        assert "BinaryIndex" in text and "4 bits per dimension" in text
        assert "not learned" in text and "re-ranked" in text and "16 x k" in text
    if name == "bitgraph-f16":
        assert "float16" in text
    if name == "bitgraph-ivf":
        assert "IVFIndex" in text and "re-rank" in text


def test_build_logs_before_and_after(tmp_path):
    if not available("bitgraph-f32")[0]:
        pytest.skip("bitgraph is not importable")
    ds = load_dataset("clustered-small", cache_dir=tmp_path, max_base=500, max_queries=10)
    lines: list[str] = []
    build(make_adapter("bitgraph-f32", ds.metric, ds.dim), ds, 1, log=lines.append)
    assert lines[0] == "[build] building bitgraph-f32 on 500 x 32 (1 thread) ..."
    assert lines[1].startswith("[build] bitgraph-f32 done in ") and " s: " in lines[1]


def _tiny_libs() -> list[str]:
    libs = [n for n in ("bitgraph-f32", "hnswlib", "faiss-hnsw") if available(n)[0]]
    if "bitgraph-f32" not in libs or len(libs) < 2:
        pytest.skip("needs bitgraph and one peer")
    return libs[:2]


def test_runs_are_interleaved_and_reported(tmp_path):
    libs = _tiny_libs()
    lines: list[str] = []
    res = run_suite(dataset="clustered-small", libs=libs, threads="1", efs=[10, 64], repeats=3,
                    max_base=2000, max_queries=50, latency_queries=0, min_time=0.0,
                    cache_dir=tmp_path, out=False, log=lines.append)
    runs = [x for x in lines if x.startswith("[threads=1 run ")]
    assert len(runs) == 3 * len(libs)
    firsts = [x.split("] ")[1].split()[0] for x in runs[::len(libs)]]
    assert firsts == [libs[0], libs[1], libs[0]]          # the order rotates per run
    assert all("recall@10" in x for x in runs)
    assert list(res["tables"])[:2] == ["legend", "sweep threads=1"]
    assert "median of 3 interleaved runs" in res["tables"]["headline"]
    assert set(res["meta"]["legend"]) == set(libs)
    search = [r for r in res["rows"] if r["kind"] == "search"]
    assert all(len(r["seconds_runs"]) == 3 for r in search)


def test_bitgraph_bench_command_output(tmp_path, monkeypatch):
    """The console command end to end on a tiny set: progress on stderr, tables on stdout."""
    from bitgraph import cli

    libs = _tiny_libs()
    monkeypatch.setenv("BITGRAPH_BENCH_CACHE", str(tmp_path))
    out = tmp_path / "r.json"
    runner = CliRunner()
    result = runner.invoke(cli.main, ["bench", "--dataset", "clustered-small", "--libs",
                                      ",".join(libs), "--ef", "10,64", "--max-base", "2000",
                                      "--max-queries", "50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    stdout = result.stdout
    assert "Libraries (" in stdout and "### ef sweep, threads=1: recall@10 / QPS" in stdout
    assert "Headline:" in stdout and "median of 3 interleaved runs" in stdout
    assert f"[build] building {libs[0]} on 2,000 x 32" in result.stderr
    data = json.loads(out.read_text())
    assert data["meta"]["repeats"] == 3 and "headline" in data["tables"]
    assert out.with_suffix(".png").exists()


def test_per_call_times_every_library_and_reports_ratios(tmp_path):
    from bench import per_call, results_md

    res = per_call.run(n=50, dim=8, calls=50, best_of=1, repeats=2, metrics=("l2",),
                       libraries=("bitgraph", "hnswlib"), log=lambda _: None)
    libs = {r["library"] for r in res["rows"]}
    assert "bitgraph" in libs and all(r["us_per_call"] > 0 for r in res["rows"])
    assert len([r for r in res["rows"] if r["library"] == "bitgraph"]) == 2  # one per repeat
    table = per_call.table(res["rows"], res["meta"])
    assert "| l2 | bitgraph |" in table and "median of 2" in table
    if "hnswlib" in libs:  # the ratio column is against hnswlib in the same repetition
        ref = next(s for s in per_call.summary(res["rows"]) if s["library"] == "hnswlib")
        assert ref["ratio"] == pytest.approx(1.0)
    (tmp_path / "per-call.json").write_text(json.dumps(res))
    text = results_md.main(["--results", str(tmp_path), "--out", str(tmp_path / "R.md"),
                            "--notes", ""])
    assert "## Per-call cost of one search (per-call)" in text


def test_ab_search_table_gives_medians_and_ratios():
    from bench import ab_search

    rows = [{"dataset": "d", "build": b, "repeat": r, "qps": qps}
            for r, (a, b2) in enumerate([(100.0, 110.0), (100.0, 90.0), (100.0, 120.0)])
            for b, qps in (("A", a), ("B", b2))]
    table = ab_search.table(rows)
    assert "| d | qps | 100 | 110 | 1.100 |" in table


def test_ab_search_section_gives_the_whole_command_and_what_was_compared(tmp_path):
    from bench import ab_search

    rows = [{"dataset": d, "build": b, "repeat": 0, "qps": 1.0}
            for d in ("second", "first") for b in ("A", "B")]
    meta = {"suite": "ab-search", "a": "/a/python", "b": "/b/python", "max_base": 123,
            "max_queries": 45, "repeats": 1, "date": "2026-12-03", "what": "A: old; B: new"}
    path = tmp_path / "ab-x.json"
    path.write_text(json.dumps({"rows": rows, "meta": meta}))
    text = ab_search.section(path)
    assert text.startswith("## Two builds side by side (ab-x)")
    assert ("--a /a/python --b /b/python --datasets second,first --max-base 123 "
            "--max-queries 45 --repeats 1`") in text
    assert "A: old; B: new" in text


def test_ivf_adapter_rerank_follows_its_mapping():
    """ef -> nprobe = ef and rerank = clip(0.4 ef, 40, 250), as its docstring says."""
    if not available("bitgraph-ivf")[0]:
        pytest.skip("bitgraph is not importable")
    algo = make_adapter("bitgraph-ivf", "cosine", 8)
    got = {}
    for ef in (10, 100, 144, 1000):
        algo.set_query_arguments(ef)
        got[ef] = algo._rerank()
    assert got == {10: 40, 100: 40, 144: 58, 1000: 250}
