"""The hot route without the framework: ``POST /collections/{name}/points/search`` answered
straight from the ASGI scope.

A single-query search is the request a retrieval service sends most, and on a small machine
the event loop's Python per request, not the search, limits throughput. Starlette's layers
(error and exception middleware, the router's regex matching, Request and Response objects)
cost more than the search itself at low ef (profiled: about a fifth of the server's CPU at 64
concurrent clients). This path reads the body from ``receive``, checks the key from the raw
headers, runs the same :func:`~bitgraph.server.app.search_json` the Starlette route runs, and
sends the answer in two messages. Every other request goes to Starlette unchanged.

Under ``bitgraph serve`` most one-query searches never get here: the HTTP protocol of
http_protocol.py answers them from its parser callbacks. This path serves what that protocol
hands on (pipelined requests, ``Expect: 100-continue``, escaped paths), servers without
httptools, and the app when it runs under another ASGI server.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable

from .auth import check_access
from .errors import bad_request, too_large

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_PREFIX, _SUFFIX = "/collections/", "/points/search"
_ROUTE = "/collections/{name}/points/search"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class RawHeaders:
    """The two headers auth reads, looked up in the raw ASGI header list."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def get(self, name: str) -> str | None:
        key = name.encode()
        for k, v in self._raw:
            if k == key:
                return v.decode("latin-1")
        return None


class SearchFastPath:
    """ASGI app: the search route itself, everything else by ``app``."""

    def __init__(self, app: Any, service: Any, search_json: Callable[..., Awaitable[bytes]],
                 error_parts: Callable[[Exception, str], tuple[int, bytes, dict[str, str]]]
                 ) -> None:
        self.app = app
        self.service = service
        self._search_json = search_json
        self._error_parts = error_parts
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (scope.get("method") != "POST" or not path.startswith(_PREFIX)
                or not path.endswith(_SUFFIX)):
            await self.app(scope, receive, send)
            return
        name = path[len(_PREFIX):-len(_SUFFIX)]
        if not name or "/" in name:
            await self.app(scope, receive, send)
            return
        await self._search(name, scope, receive, send)

    async def _search(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        service = self.service
        headers: list[tuple[bytes, bytes]] = []
        try:
            check_access(service.config.api_keys, RawHeaders(scope["headers"]), False)
            coll = service.registry.get(name)
            limit = service.config.limits.max_body_bytes

            async def read() -> bytes:
                return await _read_body(scope, receive, limit)

            status, body = 200, await self._search_json(service, coll, read)
        except _Disconnected:
            service.metrics.observe(_ROUTE, "POST", 499, time.perf_counter() - t0)
            return
        except Exception as exc:  # noqa: BLE001 - every error becomes an answer
            status, body, extra = self._error_parts(exc, f"POST {path_of(scope)}")
            headers = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status,
                    "headers": _JSON_HEADERS + headers
                    + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        service.metrics.observe(_ROUTE, "POST", status, time.perf_counter() - t0)


class _Disconnected(Exception):
    """The client went away before its body arrived."""


def path_of(scope: Scope) -> str:
    return str(scope.get("path", ""))


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for k, v in scope["headers"]:
        if k == b"content-length":
            if not v.isdigit():
                raise bad_request("Content-Length must be a number")
            if int(v) > limit:
                raise too_large(f"the body is {int(v)} bytes; at most {limit} are accepted")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
