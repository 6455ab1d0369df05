"""uvicorn's httptools protocol, answering one-query searches from its parser callbacks.

At 64 concurrent clients on a small machine the event loop, not the search, limits
throughput, and most of its Python per request is the ASGI machinery: a Task and a
RequestResponseCycle per request, an asyncio Event, message dicts, and two socket writes per
answer (uvicorn writes the head at ``http.response.start`` and the body at
``http.response.body``: two syscalls and two TCP segments, so the client wakes twice).

For ``POST /collections/{name}/points/search`` this protocol keeps the parse in the callbacks:
when the body is complete it checks the key, parses the body and queues the query in the
collection's batcher with a callback; the batch's one loop wake-up calls it, and it writes head
and body in one ``transport.write``. No Task, no Future. Everything else (other routes,
batched queries, batching off, pipelined or ``Expect: 100-continue`` requests, escaped paths)
goes through uvicorn and the ASGI app unchanged, and errors come from the same
:func:`~bitgraph.server.app.error_parts` with the same JSON bodies.

The in-flight request poses as uvicorn's ``cycle`` (the attributes uvicorn's own callbacks
read: ``body``, ``more_body``, ``response_complete``, ``keep_alive``, ``disconnected``,
``message_event``), so keep-alive, pipelining, disconnects and graceful shutdown (uvicorn asks
every connection to finish its response and waits for it to close) keep working.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .app import Service, error_parts, search_json, search_params, single_answer
from .auth import check_access
from .errors import bad_request, too_large
from .fast_path import RawHeaders
from .requests import parse_body

log = logging.getLogger("bitgraph.server")

_PREFIX, _SUFFIX = b"/collections/", b"/points/search"
_ROUTE = "/collections/{name}/points/search"
_JSON_HEAD = b"content-type: application/json\r\n"
# uvicorn internals this protocol relies on; checked once so that a uvicorn that changed them
# gets its own protocol (and the ASGI fast path) instead of a broken one.
_NEEDED = ("on_headers_complete", "on_body", "on_message_complete", "on_response_complete",
           "shutdown")


class _NoEvent:
    """uvicorn's callbacks ``set()`` the cycle's event after every body chunk; nothing waits
    on this one."""

    __slots__ = ()

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class _DirectSearch:
    """One search request answered by the protocol (stands in for uvicorn's cycle)."""

    __slots__ = (
        "body",
        "disconnected",
        "keep_alive",
        "limit",
        "message_event",
        "more_body",
        "name",
        "path",
        "protocol",
        "response_complete",
        "t0",
        "with_payload",
    )

    def __init__(self, protocol: SearchProtocol, name: str, path: str, keep_alive: bool,
                 limit: int) -> None:
        self.protocol = protocol
        self.name, self.path = name, path
        self.body = bytearray()
        self.more_body = True
        self.response_complete = False
        self.keep_alive = keep_alive
        self.disconnected = False
        self.message_event = _NO_EVENT
        self.t0 = time.perf_counter()
        self.limit = limit
        self.with_payload = False

    # --- answering ----------------------------------------------------------------------------
    def answer(self, value: Any, err: BaseException | None) -> None:
        """The batcher's callback (on the loop): a row of (ids, distances) or an error."""
        if err is not None:
            self.fail(err)
            return
        try:
            coll = self.protocol.service.registry.get(self.name)
            body = single_answer(coll, value, self.with_payload)
        except Exception as exc:  # noqa: BLE001 - every error becomes an answer
            self.fail(exc)
            return
        self.write(200, body, {})

    def fail(self, exc: BaseException) -> None:
        if not isinstance(exc, Exception):
            exc = RuntimeError(str(exc))
        status, body, headers = error_parts(exc, f"POST {self.path}")
        self.write(status, body, headers)

    def write(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        p = self.protocol
        self.response_complete = True
        p.service.metrics.observe(_ROUTE, "POST", status, time.perf_counter() - self.t0)
        if self.disconnected or p.transport.is_closing():
            return
        parts = [STATUS_LINE[status]]
        for name, value in p.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        parts.append(_JSON_HEAD)
        for name, value in headers.items():
            parts += [name.lower().encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
        parts += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", body]
        p.transport.write(b"".join(parts))
        if not self.keep_alive:
            p.transport.close()
        p.on_response_complete()


class SearchProtocol(HttpToolsProtocol):
    """Set ``service`` on a subclass (:func:`protocol_for`)."""

    service: Service

    def on_headers_complete(self) -> None:
        route = self._direct_route()
        if route is None:
            super().on_headers_complete()
            return
        name, path = route
        keep_alive = (self.parser.get_http_version() != "1.0"
                      and self.parser.should_keep_alive())
        limit = self.service.config.limits.max_body_bytes
        cycle = _DirectSearch(self, name, path, keep_alive, limit)
        self.cycle = cycle  # type: ignore[assignment]
        for k, v in self.headers:
            if k == b"content-length":
                if not v.isdigit():
                    cycle.keep_alive = False
                    cycle.fail(bad_request("Content-Length must be a number"))
                elif int(v) > limit:
                    cycle.keep_alive = False  # the rest of the body is not read
                    cycle.fail(too_large(f"the body is {int(v)} bytes; at most {limit} are "
                                         "accepted"))
                break

    def _direct_route(self) -> tuple[str, str] | None:
        """(collection name, path) when this request is answered here."""
        url = self.url
        if (self.parser.get_method() != b"POST" or not url.startswith(_PREFIX)
                or self.expect_100_continue or self.parser.should_upgrade()):
            return None
        if self.cycle is not None and not self.cycle.response_complete:
            return None  # pipelined behind a request in flight: uvicorn queues it
        path = url.split(b"?", 1)[0]
        if not path.endswith(_SUFFIX) or b"%" in path:
            return None
        name = path[len(_PREFIX):-len(_SUFFIX)]
        if not name or b"/" in name:
            return None
        try:
            return name.decode("ascii"), path.decode("ascii")
        except UnicodeDecodeError:
            return None

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle, _DirectSearch):
            super().on_body(body)
            return
        if cycle.response_complete:
            return
        cycle.body += body
        if len(cycle.body) > cycle.limit:
            cycle.keep_alive = False
            cycle.fail(too_large(f"the body exceeds {cycle.limit} bytes"))

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if not isinstance(cycle, _DirectSearch):
            super().on_message_complete()
            return
        cycle.more_body = False
        if not cycle.response_complete:
            self._dispatch(cycle)

    def _dispatch(self, cycle: _DirectSearch) -> None:
        service = self.service
        try:
            check_access(service.config.api_keys, RawHeaders(self.headers), False)
            coll = service.registry.get(cycle.name)
            raw = bytes(cycle.body)
            if service.config.batching:
                batcher = service.batcher(coll)
                with batcher.arriving() as arrival:
                    params = search_params(parse_body(raw), coll, service.config.limits)
                    if params[0] is not None:
                        vec, k, ef, filt, oversample, with_payload = params
                        cycle.with_payload = with_payload
                        arrival.submit_callback(self.loop, vec, k, ef, filt, oversample,
                                                cycle.answer)
                        return
        except Exception as exc:  # noqa: BLE001 - every error becomes an answer
            cycle.fail(exc)
            return
        # A batch of queries, or batching off: the ASGI route's own coroutine, in a task.
        self._run_task(cycle, search_json(service, coll, _body_of(raw)))

    def _run_task(self, cycle: _DirectSearch, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self.tasks.discard(t)
            if t.cancelled():
                cycle.fail(RuntimeError("the search was cancelled"))
            elif t.exception() is not None:
                cycle.fail(t.exception())  # type: ignore[arg-type]
            else:
                cycle.write(200, t.result(), {})

        task.add_done_callback(done)


def _body_of(raw: bytes) -> Any:
    async def read() -> bytes:
        return raw

    return read


def protocol_for(service: Service) -> type[asyncio.Protocol] | None:
    """The protocol class for uvicorn's ``http=``, or None (uvicorn's default) when this
    uvicorn lacks the callbacks it overrides."""
    if not all(callable(getattr(HttpToolsProtocol, n, None)) for n in _NEEDED):
        log.warning("uvicorn's httptools protocol changed: searches go through ASGI")
        return None
    return type("BoundSearchProtocol", (SearchProtocol,), {"service": service})
