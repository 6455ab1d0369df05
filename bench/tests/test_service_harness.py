"""bench.service's harness: the lean HTTP client's parsing, the in-process loop, the summary
and its comparisons (no servers: those run in tests/server)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("orjson")

from bench import service, service_report  # noqa: E402
from bench.service_load import http_request, parse_response, run_threads  # noqa: E402


def _read(raw: bytes) -> tuple[int, bytes]:
    """Parses ``raw`` fed one byte at a time: incomplete until the last byte."""
    for cut in range(len(raw)):
        assert parse_response(raw[:cut]) is None, cut
    status, body, used = parse_response(raw + b"HTTP/1.1 200")  # the next answer's start
    assert used == len(raw)
    return status, body


def test_response_parsing():
    assert _read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello") == (200, b"hello")
    assert _read(b"HTTP/1.1 429 Too Many\r\ncontent-length: 2\r\n\r\n{}") == (429, b"{}")
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert _read(chunked) == (200, b"abcde")
    req = http_request("h", "/p", b'{"a":1}')
    assert req.startswith(b"POST /p HTTP/1.1\r\n") and req.endswith(b'\r\n\r\n{"a":1}')
    assert b"Content-Length: 7\r\n" in req


def test_in_process_loop_counts_and_keeps_answers():
    res = run_threads(lambda i: np.array([i], np.int64), 10, 3, duration_s=0.2, warmup_s=0.05)
    assert res.completed == len(res.bodies) > 0 and res.errors == 0
    assert all(np.frombuffer(b, np.int64)[0] == qi for qi, b in res.bodies)
    assert res.qps > 0 and res.p99_ms >= res.p50_ms


def test_choose_ef_and_recall():
    assert service.choose_ef(lambda ef: ef / 100, 0.3)[:2] == (32, 0.32)
    ef, rec, sweep = service.choose_ef(lambda ef: 0.5, 0.9)
    assert ef == service.EF_GRID[-1] and len(sweep) == len(service.EF_GRID)
    gt = np.arange(20).reshape(2, 10)
    assert service.recall_at_k(gt.copy(), gt) == 1.0
    assert service.recall_at_k(np.full((2, 10), -1), gt) == 0.0


def test_summary_and_section():
    rows = []
    for rep in range(3):
        for c in (1, 32, 64):
            for t, qps, p99 in ((service.SERVE, 1000 * c, 1.0), (service.SERVE_OFF, 400 * c, 2.0),
                                (service.CHROMA, 100 * c, 5.0)):
                rows.append({"target": t, "concurrency": c, "repeat": rep, "qps": qps + rep,
                             "p50_ms": 0.5 if t != service.SERVE else 0.6, "p99_ms": p99,
                             "recall": 0.96})
    summ = service.summarize(rows, [100_000.0, 90_000.0, 110_000.0])
    checks = summ["checks"]
    assert checks["serve_vs_chroma_qps_c32"] == pytest.approx(32_001 / 3_201)
    assert checks["serve_p99_below_chroma_every_c"] is True
    assert checks["batching_on_vs_off_qps_c64"] == pytest.approx(64_001 / 25_601)
    assert checks["batching_added_p50_ms_c1"] == pytest.approx(0.1)
    assert checks["serve_c64_vs_inprocess_batched"] == pytest.approx(64_001 / 100_000)
    result = {"meta": {"dataset": {"name": "d", "n_base": 10, "dim": 4, "metric": "l2",
                                   "n_queries": 5},
                       "command": "python -m bench.service", "date": "today", "commit": "x",
                       "cpus": 2, "ef": {"bitgraph": 24}, "build_s": {"bitgraph serve": 1.0},
                       "params": {"target_recall": 0.95}}, "rows": rows, "summary": summ}
    text = service_report.section(result, "results/x.png")
    assert "| bitgraph serve | 32 | 32,001 |" in text and "![service load](results/x.png)" in text
