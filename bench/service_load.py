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


def parse_response(buf: bytes | bytearray) -> tuple[int, bytes, int] | None:
    """(status, body, bytes used) of the first complete response in ``buf``, or None while
    it is incomplete. Content-Length and chunked bodies."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buf[:head_end + 4])
    status = int(head[9:12])
    lower = head.lower()
    i = lower.find(b"content-length:")
    if i >= 0:
        n = int(lower[i + 15:lower.index(b"\r\n", i)])
        end = head_end + 4 + n
        return (status, bytes(buf[head_end + 4:end]), end) if len(buf) >= end else None
    if b"transfer-encoding: chunked" in lower:
        parts, pos = [], head_end + 4
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
            if size == 0:
                end = buf.find(b"\r\n", line_end + 2)  # no trailers are sent to us
                return (status, b"".join(parts), end + 2) if end >= 0 else None
            if len(buf) < line_end + 2 + size + 2:
                return None
            parts.append(bytes(buf[line_end + 2:line_end + 2 + size]))
            pos = line_end + 2 + size + 2
    return status, b"", head_end + 4


class _Worker(asyncio.Protocol):
    """One closed-loop client on its own keep-alive connection, driven from the transport's
    callbacks (no coroutine per request: on a 2-core machine the load generator's CPU is
    taken from the server it measures; measured 18 us per request with asyncio streams)."""

    def __init__(self, w: int, requests: list[bytes], concurrency: int, measure_from: float,
                 stop_at: float, out: _Outcome, done: asyncio.Future) -> None:
        self.requests, self.measure_from, self.stop_at = requests, measure_from, stop_at
        self.out, self.done = out, done
        self.i = w * max(1, len(requests) // concurrency)
        self.buf = bytearray()
        self.t0 = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        self.t0 = time.perf_counter()
        if self.t0 >= self.stop_at:
            self.transport.close()  # type: ignore[union-attr]
            return
        self.transport.write(self.requests[self.i % len(self.requests)])  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        got = parse_response(self.buf)
        if got is None:
            return
        t1 = time.perf_counter()
        status, body, used = got
        del self.buf[:used]
        if self.t0 >= self.measure_from:
            if status == 200:
                self.out.latencies.append(t1 - self.t0)
                self.out.bodies.append((self.i % len(self.requests), body))
            else:
                self.out.errors += 1
        self.i += 1
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class _Outcome:
    latencies: list[float]
    bodies: list[tuple[int, bytes]]
    errors: int = 0


async def _run_http(host: str, port: int, requests: list[bytes], concurrency: int,
                    duration_s: float, warmup_s: float) -> LoadResult:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    out = _Outcome([], [])
    dones = [loop.create_future() for _ in range(concurrency)]
    for w in range(concurrency):
        await loop.create_connection(
            lambda w=w: _Worker(w, requests, concurrency, measure_from, stop_at, out, dones[w]),
            host, port)
    await asyncio.gather(*dones)
    return _result(out.latencies, out.bodies, out.errors, duration_s)


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
