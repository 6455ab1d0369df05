"""Closed-loop load: ``concurrency`` workers, each with its own HTTP/1.1 keep-alive connection,
send one request, wait for its answer, send the next. A worker is a real HTTP client (request
line, headers, Content-Length or chunked bodies) kept lean on purpose: on a 2-core machine the
load generator shares the CPUs with the server it measures, so what it spends per request is
taken from the server.

Latency is measured per request from just before the write to the end of the body; QPS is
requests completed in the measured window over its length (a warm-up before it is not counted).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class LoadResult:
    qps: float
    p50_ms: float
    p99_ms: float
    completed: int
    errors: int
    bodies: list[tuple[int, bytes]]  # (query number, response body) of the measured requests

    def summary(self) -> dict:
        return {"qps": self.qps, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "completed": self.completed, "errors": self.errors}


def http_request(host: str, path: str, body: bytes, extra_headers: str = "") -> bytes:
    """The bytes of one POST request (built once per query, before the clock runs)."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra_headers}\r\n")
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    i = lower.find(b"content-length:")
    if i >= 0:
        n = int(lower[i + 15:lower.index(b"\r\n", i)])
        return status, await reader.readexactly(n)
    if b"transfer-encoding: chunked" in lower:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    return status, b""


async def _run_http(host: str, port: int, requests: list[bytes], concurrency: int,
                    duration_s: float, warmup_s: float) -> LoadResult:
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    latencies: list[float] = []
    bodies: list[tuple[int, bytes]] = []
    errors = 0

    async def worker(w: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        i = w * max(1, len(requests) // concurrency)
        try:
            while True:
                qi = i % len(requests)
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                writer.write(requests[qi])
                status, body = await _read_response(reader)
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    if status == 200:
                        latencies.append(t1 - t0)
                        bodies.append((qi, body))
                    else:
                        errors += 1
                i += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return _result(latencies, bodies, errors, duration_s)


def run_http(host: str, port: int, requests: list[bytes], concurrency: int,
             duration_s: float, warmup_s: float = 0.5) -> LoadResult:
    """Closed-loop HTTP load (uvloop when installed: a cheaper client loop)."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(_run_http(host, port, requests, concurrency, duration_s, warmup_s))


def run_threads(search_one: Callable[[int], np.ndarray], n_queries: int, concurrency: int,
                duration_s: float, warmup_s: float = 0.5) -> LoadResult:
    """The same closed loop in-process: ``concurrency`` threads calling ``search_one(i)``
    (which returns the ids of query i)."""
    start = time.perf_counter()
    measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    got: list[list[tuple[int, bytes]]] = [[] for _ in range(concurrency)]

    def worker(w: int) -> None:
        i = w * max(1, n_queries // concurrency)
        while True:
            qi = i % n_queries
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            ids = search_one(qi)
            t1 = time.perf_counter()
            if t0 >= measure_from:
                lat[w].append(t1 - t0)
                got[w].append((qi, ids.tobytes()))
            i += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _result([x for ls in lat for x in ls], [x for g in got for x in g], 0, duration_s)


def _result(latencies: list[float], bodies: list[tuple[int, bytes]], errors: int,
            duration_s: float) -> LoadResult:
    lat = np.asarray(latencies) * 1e3
    return LoadResult(qps=len(lat) / duration_s,
                      p50_ms=float(np.percentile(lat, 50)) if lat.size else float("nan"),
                      p99_ms=float(np.percentile(lat, 99)) if lat.size else float("nan"),
                      completed=int(lat.size), errors=errors, bodies=bodies)
