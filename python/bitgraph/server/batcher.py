"""Coalescing concurrent single-query searches into one batched index search.

One worker thread per collection takes every query waiting in its queue (up to ``max_batch``)
and answers them with one ``index.search`` call: while one batch runs (the GIL released), the
next one gathers. A lone query on an idle server is taken at once. The worker waits (at most
``max_wait_s``) for more only while requests are known to be on their way (parsed but not yet
queued), so waiting never adds latency when nothing else is coming. The queue is bounded:
beyond ``max_queue`` waiting queries a submit fails fast (the service answers 429).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import overloaded, unavailable

log = logging.getLogger("bitgraph.server")


@dataclass
class _Query:
    vector: np.ndarray
    k: int
    ef: int | None
    filter: Any
    oversample: float | None
    future: Any  # a concurrent Future, an asyncio Future of ``loop``, or None (callback)
    loop: asyncio.AbstractEventLoop | None = None
    callback: Callable[[Any, BaseException | None], None] | None = None


class SearchBatcher:
    """Batches the single-query searches of one collection (see the module docstring)."""

    def __init__(self, search: Callable[..., Any], *, max_batch: int = 256,
                 max_wait_s: float = 0.0002, max_queue: int = 4096, name: str = "",
                 on_batch: Callable[[int], None] | None = None) -> None:
        self._search = search
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._queue: deque[_Query] = deque()
        self._cond = threading.Condition()
        self._arriving = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"bitgraph-batch-{name}",
                                        daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Queries waiting for a batch."""
        return len(self._queue)

    # --- the request side ------------------------------------------------------------------
    def arriving(self) -> _Arrival:
        """A context for a request from the moment it is received until it is submitted (or
        fails): while any is open the worker may wait a little for it."""
        return _Arrival(self)

    def submit(self, vector: np.ndarray, k: int, ef: int | None, filt: Any,
               oversample: float | None, _arrived: bool = False) -> Future:
        """Queues one query; the Future gives ``(ids row, distances row)``."""
        fut: Future = Future()
        self._enqueue(_Query(vector, k, ef, filt, oversample, fut), _arrived)
        return fut

    def submit_async(self, loop: asyncio.AbstractEventLoop, vector: np.ndarray, k: int,
                     ef: int | None, filt: Any, oversample: float | None,
                     _arrived: bool = False) -> asyncio.Future:
        """As :meth:`submit`, with an asyncio Future of ``loop``: a batch wakes each loop once
        for all its answers (one call_soon_threadsafe per batch, not per query)."""
        fut = loop.create_future()
        self._enqueue(_Query(vector, k, ef, filt, oversample, fut, loop), _arrived)
        return fut

    def submit_callback(self, loop: asyncio.AbstractEventLoop, vector: np.ndarray, k: int,
                        ef: int | None, filt: Any, oversample: float | None,
                        callback: Callable[[Any, BaseException | None], None],
                        _arrived: bool = False) -> None:
        """As :meth:`submit_async`, calling ``callback(value, error)`` on ``loop`` instead of
        resolving a Future: no Future, no task wake-up, for a caller that answers from a
        protocol callback (the HTTP fast path)."""
        self._enqueue(_Query(vector, k, ef, filt, oversample, None, loop, callback), _arrived)

    def _enqueue(self, query: _Query, _arrived: bool) -> None:
        with self._cond:
            if _arrived:  # in the same critical section: never waited for by itself
                self._arriving -= 1
            if self._stopping:
                raise unavailable("the server is shutting down")
            if len(self._queue) >= self.max_queue:
                raise overloaded(f"search queue full ({self.max_queue} queries waiting)")
            self._queue.append(query)
            # Every enqueue wakes a gathering worker: notifying only when the batch is full or
            # nothing more is arriving measured 5-10% fewer QPS at 64 clients (the worker
            # then sleeps out its whole wait while the ASGI path keeps requests "arriving").
            self._cond.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Answers what is queued, then ends the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # --- the worker --------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return  # stopping and drained
                if (self._arriving and len(self._queue) < self.max_batch and self.max_wait_s > 0
                        and not self._stopping):
                    deadline = time.monotonic() + self.max_wait_s
                    while self._arriving and len(self._queue) < self.max_batch:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                n = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
            if self._on_batch is not None:
                self._on_batch(len(batch))
            self._answer(batch)

    def _answer(self, batch: list[_Query]) -> None:
        groups: dict[tuple[int, int | None, float | None], list[_Query]] = {}
        for q in batch:
            groups.setdefault((q.k, q.ef, q.oversample), []).append(q)
        for (k, ef, oversample), items in groups.items():
            live = [q for q in items if q.loop is not None
                    or q.future.set_running_or_notify_cancel()]
            if not live:
                continue
            outcomes: list[tuple[_Query, Any, BaseException | None]] = []
            try:
                queries = np.stack([q.vector for q in live])
                filters = [q.filter for q in live]
                if all(f is None for f in filters):
                    filters = None
                res = self._search(queries, k, ef, filters, oversample,
                                   threads=1 if len(live) == 1 else None)
            except BaseException as exc:  # every waiting request gets the error
                err = exc if isinstance(exc, Exception) else RuntimeError(str(exc))
                _deliver([(q, None, err) for q in live])
                if not isinstance(exc, Exception):
                    raise
                continue
            outcomes = [(q, (res.ids[row], res.distances[row]), None)
                        for row, q in enumerate(live)]
            _deliver(outcomes)


def _deliver(outcomes: list[tuple[_Query, Any, BaseException | None]]) -> None:
    """Resolves the futures: concurrent ones here, asyncio ones in one callback per loop."""
    per_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, BaseException | None]]] = {}
    for q, value, err in outcomes:
        if q.loop is None:
            if err is None:
                q.future.set_result(value)
            else:
                q.future.set_exception(err)
        else:
            per_loop.setdefault(q.loop, []).append((q, value, err))
    for loop, items in per_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_all, items)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _resolve_all(items: list[tuple[_Query, Any, BaseException | None]]) -> None:
    for q, value, err in items:
        if q.callback is not None:
            try:
                q.callback(value, err)
            except Exception:  # one failing answer must not stop the others
                log.exception("answering a search failed")
            continue
        fut = q.future
        if fut.done():  # the request was cancelled (client gone)
            continue
        if err is None:
            fut.set_result(value)
        else:
            fut.set_exception(err)


class _Arrival:
    """``with batcher.arriving() as a: ...parse...; fut = a.submit(...)``."""

    __slots__ = ("_b", "_open")

    def __init__(self, batcher: SearchBatcher) -> None:
        self._b = batcher
        self._open = False

    def __enter__(self) -> _Arrival:
        with self._b._cond:
            self._b._arriving += 1
            self._open = True
        return self

    def submit(self, vector: np.ndarray, k: int, ef: int | None, filt: Any,
               oversample: float | None) -> Future:
        self._open = False  # submit closes the arrival, even when it raises
        return self._b.submit(vector, k, ef, filt, oversample, _arrived=True)

    def submit_async(self, loop: asyncio.AbstractEventLoop, vector: np.ndarray, k: int,
                     ef: int | None, filt: Any, oversample: float | None) -> asyncio.Future:
        self._open = False
        return self._b.submit_async(loop, vector, k, ef, filt, oversample, _arrived=True)

    def submit_callback(self, loop: asyncio.AbstractEventLoop, vector: np.ndarray, k: int,
                        ef: int | None, filt: Any, oversample: float | None,
                        callback: Callable[[Any, BaseException | None], None]) -> None:
        self._open = False
        self._b.submit_callback(loop, vector, k, ef, filt, oversample, callback, _arrived=True)

    def __exit__(self, *exc: object) -> None:
        if self._open:
            with self._b._cond:
                self._b._arriving -= 1
                self._b._cond.notify()

