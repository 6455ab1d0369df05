"""bench.distributed's report: the equal-recall overhead, k-means summary and the sizing
table's arithmetic (no Ray: a made-up result)."""

from __future__ import annotations

import math

from bench import distributed_report as dr


def _result(exponent: float | None) -> dict:
    rows = [
        {"part": "scatter", "system": "single index", "ef": 16, "qps": 1000.0, "recall": 0.96,
         "p50_ms": 0.1},
        {"part": "scatter", "system": "single index", "ef": 10, "qps": 2000.0, "recall": 0.90,
         "p50_ms": 0.05},
        {"part": "scatter", "system": "2 shards", "ef": 12, "qps": 800.0, "recall": 0.97,
         "p50_ms": 2.0},
        {"part": "scatter", "system": "2 shards in one process", "ef": 12, "qps": 900.0,
         "recall": 0.97, "p50_ms": 0.2},
        {"part": "scatter", "system": "2 shards in one process", "ef": 10, "qps": 1900.0,
         "recall": 0.94, "p50_ms": 0.1},
        {"part": "route", "route": "kmeans", "probe": 2, "shards": 4, "ef": 12, "qps": 900.0,
         "recall": 0.955, "counts": [1, 2, 3, 4]},
        {"part": "route", "route": "kmeans", "probe": 1, "shards": 4, "ef": 12, "qps": 1500.0,
         "recall": 0.80, "counts": [1, 2, 3, 4]},
        {"part": "flat", "qps_single": 100.0, "qps_2_shards": 90.0, "same_ids": True},
        {"part": "shard", "storage": "float32", "n": 1000, "ram_bytes_per_vector": 1024.0,
         "disk_bytes_per_vector": 0.0, "qps": 1000.0},
        {"part": "shard", "storage": "binary", "n": 1000, "ram_bytes_per_vector": 128.0,
         "disk_bytes_per_vector": 1536.0, "qps": None},
    ]
    meta = {"cpus": 2, "per_shard_qps": 1000.0, "command": "python -m bench.distributed",
            "date": "2026-12-02", "commit": "abc", "ray": "2.60.0",
            "dataset": {"name": "made-up", "n_base": 1000, "dim": 384, "metric": "cosine",
                        "n_queries": 10},
            "params": {"target_recall": 0.95, "k": 10, "M": 16, "ef_construction": 200,
                       "shard_threads": 1, "ef_route": 12},
            "size_scaling": {"n_small": 250, "qps_small": 1500.0, "exponent": exponent}}
    return {"meta": meta, "rows": rows}


def test_overhead_is_at_equal_recall_and_kmeans_takes_the_smallest_probe():
    s = dr.summary(_result(0.3))
    assert math.isclose(s["batch_overhead"], 1000 / 800 - 1)  # ef 10 is below the target
    assert (s["single_ef"], s["shards_ef"]) == (16, 12)
    # the in-process shards split the overhead into sharding's own cost and Ray's
    assert math.isclose(s["inprocess_overhead"], 1000 / 900 - 1)
    assert math.isclose(s["ray_overhead"], 900 / 800 - 1)
    text = dr.section(_result(0.3))
    assert "+11.1% against the single index" in text and "Ray calls add +12.5%" in text
    assert s["kmeans_probe"] == 2 and s["kmeans_visited_ratio"] == 0.5
    assert math.isclose(s["flat_overhead"], 100 / 90 - 1) and s["flat_same_ids"]


def test_sizing_uses_the_measured_exponent_and_each_storages_own_qps():
    rows = dr.sizing(_result(0.3))
    f32 = [r for r in rows if r["storage"] == "float32"]
    per_shard = int(0.75 * 256 * (1 << 30) // 1024)
    for r in f32:
        size = min(per_shard, r["N"])
        assert r["shards"] == math.ceil(r["N"] / per_shard)
        want = 1000 * 32 / 2 * (1000 / size) ** 0.3 / 1.25
        assert math.isclose(r["qps"], want)
    assert all(r["qps"] is None for r in rows if r["storage"] == "binary")
    assert all(r["qps"] is None for r in dr.sizing(_result(None)))
    text = dr.section(_result(0.3))
    assert "below the target recall" in text and "size exponent a = 0.30" in text
