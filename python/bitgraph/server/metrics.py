"""Prometheus metrics of one server: requests and latency per route, search queue depth,
batch sizes, and the size of every collection (read at scrape time)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _CollectionGauges:
    """Points, bytes and queue depth per collection, computed when scraped."""

    def __init__(self, source: Callable[[], Iterable[tuple[str, int, int, int]]]) -> None:
        self._source = source

    def collect(self) -> Iterable[GaugeMetricFamily]:
        points = GaugeMetricFamily("bitgraph_collection_points", "live points",
                                   labels=["collection"])
        nbytes = GaugeMetricFamily("bitgraph_collection_bytes", "bytes held in memory",
                                   labels=["collection"])
        depth = GaugeMetricFamily("bitgraph_search_queue_depth",
                                  "single-query searches waiting for a batch",
                                  labels=["collection"])
        for name, n, b, d in self._source():
            points.add_metric([name], n)
            nbytes.add_metric([name], b)
            depth.add_metric([name], d)
        return [points, nbytes, depth]


class Metrics:
    def __init__(self, collections: Callable[[], Iterable[tuple[str, int, int, int]]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("bitgraph_requests", "HTTP requests",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("bitgraph_request_seconds", "request latency",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("bitgraph_search_batch_size",
                                    "queries per coalesced index search",
                                    buckets=_BATCH_BUCKETS, registry=self.registry)
        self.registry.register(_CollectionGauges(collections))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._children.get(key)  # labels() costs a lock and a dict per call
        if child is None:
            child = (self.requests.labels(route, method, str(status)),
                     self.latency.labels(route))
            self._children[key] = child
        child[0].inc()
        child[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
