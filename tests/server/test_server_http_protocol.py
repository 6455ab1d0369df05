"""The search route answered from the HTTP protocol's callbacks (server/http_protocol.py),
over raw sockets: the framing cases a client library would hide (pipelining, chunked bodies,
HTTP/1.0, oversized and bad Content-Length, a client that leaves). Every test runs against a
server with that protocol and one with every request through the ASGI app
(BITGRAPH_SERVE_ASGI_ONLY=1): both must answer the same."""

from __future__ import annotations

import base64
import socket
import time

import numpy as np
import orjson
import pytest

import bitgraph as bg
from server_process import ServerProcess

DIM = 8
PATH = "/collections/proto/points/search"


@pytest.fixture(scope="module", params=["protocol", "asgi"])
def server(request, tmp_path_factory):
    env = {"BITGRAPH_SERVE_ASGI_ONLY": "1"} if request.param == "asgi" else {}
    srv = ServerProcess(tmp_path_factory.mktemp(request.param) / "data", env=env).start()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, DIM)).astype(np.float32)
    with bg.Client(srv.url) as c:
        coll = c.create_collection("proto", dim=DIM, metric="l2", kind="flat")
        coll.add(x, np.arange(300), payloads=[{"n": i} for i in range(300)])
    srv.mode = request.param
    yield srv, x
    srv.stop(30)


def _body(q: np.ndarray, **extra: object) -> bytes:
    return orjson.dumps({"vector": base64.b64encode(q.astype("<f4").tobytes()).decode(),
                         "k": 5, **extra})


def _request(body: bytes, *, version: str = "1.1", headers: str = "") -> bytes:
    return (f"POST {PATH} HTTP/{version}\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n").encode() + body


def _read_answers(sock: socket.socket, n: int, timeout: float = 10.0) -> list[tuple[int, dict, bytes]]:
    """n responses: (status, JSON body, raw head)."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {len(out)} answers: {buf!r}")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside a body")
            rest += chunk
        out.append((int(head[9:12]), orjson.loads(rest[:length]), head.lower()))
        buf = rest[length:]
    return out


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


def _closed(sock: socket.socket) -> bool:
    """Closed by the server at once (well before uvicorn's 5 s keep-alive timeout)."""
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _expected(x: np.ndarray, q: np.ndarray) -> list[int]:
    d = ((x - q) ** 2).sum(1)
    return sorted(range(len(x)), key=lambda i: (d[i], i))[:5]


def test_pipelined_requests_answer_in_order(server):
    srv, x = server
    qs = x[[3, 50, 120, 7]] + 0.01
    with _connect(srv.url) as s:
        s.sendall(b"".join(_request(_body(q)) for q in qs))  # all four in one write
        answers = _read_answers(s, 4)
    for (status, body, _), q in zip(answers, qs, strict=True):
        assert status == 200 and body["ids"] == _expected(x, q)


def test_keep_alive_many_requests_one_connection_with_payloads(server):
    srv, x = server
    with _connect(srv.url) as s:
        for i in range(30):
            s.sendall(_request(_body(x[i], with_payload=True)))
            [(status, body, head)] = _read_answers(s, 1)
            assert status == 200 and body["ids"][0] == i
            assert body["payloads"][0] == {"n": i}
            assert b"connection: close" not in head


def test_chunked_request_body(server):
    srv, x = server
    body = _body(x[9])
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                      for part in (body[:10], body[10:25], body[25:]))
    raw = (f"POST {PATH} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
           + chunks + b"0\r\n\r\n")
    with _connect(srv.url) as s:
        s.sendall(raw)
        [(status, out, _)] = _read_answers(s, 1)
    assert status == 200 and out["ids"][0] == 9


def test_http_10_gets_its_answer_and_a_close(server):
    srv, x = server
    with _connect(srv.url) as s:
        s.sendall(_request(_body(x[11]), version="1.0"))
        [(status, out, head)] = _read_answers(s, 1)
        assert status == 200 and out["ids"][0] == 11
        assert b"connection: close" in head and _closed(s)


def test_body_limits_and_bad_length_are_4xx_json_and_close(server):
    srv, _ = server
    with _connect(srv.url) as s:  # declared too large: refused before the body is read
        s.sendall(f"POST {PATH} HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\n\r\n"
                  .encode())
        [(status, out, head)] = _read_answers(s, 1)
        assert status == 413 and out["error"]["code"] == "too_large"
        if srv.mode == "protocol":  # closes rather than read and drop the declared body
            assert b"connection: close" in head and _closed(s)
    with _connect(srv.url) as s:  # a chunked body that grows past the limit
        s.sendall(f"POST {PATH} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  .encode())
        part = b"x" * 65536
        try:
            for _ in range(2000):  # 128 MiB, beyond the default limit
                s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        [(status, out, _)] = _read_answers(s, 1)
        assert status == 413
    for bad in (b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n" % PATH.encode(),):
        with _connect(srv.url) as s:
            s.sendall(bad)
            s.settimeout(5)
            head = s.recv(65536)
            assert head.startswith(b"HTTP/1.1 400"), head  # httptools or our check: a 400


def test_errors_match_the_asgi_route(server):
    srv, x = server
    cases = [
        (_body(x[0])[:-3], 400),  # cut JSON
        (orjson.dumps({"vector": [1.0] * (DIM - 1), "k": 5}), 400),  # wrong dimension
        (orjson.dumps({"vector": "not base64!", "k": 5}), 400),
        (orjson.dumps({"vector": [1.0] * DIM, "k": 0}), 400),
        (orjson.dumps({"vector": [1.0] * DIM, "nope": 1}), 400),
    ]
    with _connect(srv.url) as s:
        for body, status in cases:
            s.sendall(_request(body))
            [(got, out, _)] = _read_answers(s, 1)
            assert got == status and out["error"]["message"], (body, out)
        # the same connection still serves after errors
        s.sendall(_request(_body(x[4])))
        assert _read_answers(s, 1)[0][1]["ids"][0] == 4
        s.sendall(_request(_body(x[4])).replace(b"/proto/", b"/missing/"))
        [(status, out, _)] = _read_answers(s, 1)
        assert status == 404 and "missing" in out["error"]["message"]


def test_batch_request_on_the_same_route_matches_single(server):
    srv, x = server
    qs = x[[1, 2]] + 0.02
    with _connect(srv.url) as s:
        s.sendall(_request(orjson.dumps({"vectors": qs.tolist(), "k": 5})))
        [(status, batch, _)] = _read_answers(s, 1)
        s.sendall(_request(_body(qs[0])))
        [(_, one, _)] = _read_answers(s, 1)
    assert status == 200 and batch["ids"][0] == one["ids"] == _expected(x, qs[0])
    assert batch["ids"][1] == _expected(x, qs[1])


def test_a_client_that_leaves_mid_request_does_not_hurt_the_server(server):
    srv, x = server
    for _ in range(20):
        with _connect(srv.url) as s:
            s.sendall(_request(_body(x[0]))[:-5])  # body incomplete, then gone
        with _connect(srv.url) as s:
            s.sendall(_request(_body(x[0])))  # sent whole, gone before the answer
    time.sleep(0.2)
    with _connect(srv.url) as s:
        s.sendall(_request(_body(x[8])))
        assert _read_answers(s, 1)[0][1]["ids"][0] == 8
