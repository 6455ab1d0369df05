"""The servers bench.service measures: `bitgraph serve` (batching on / off) and Chroma's own
server (`chroma run`, hnswlib inside), each a real process on 127.0.0.1, fed precomputed
vectors over its own HTTP API; with the request bodies each one takes and the parsing of its
answers."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

from .service_load import http_request

HOST = "127.0.0.1"
_CHROMA_COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wait(url: str, path: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {timeout} s")


class Server:
    """A server process: ``url``, ``port``, ``stop()``."""

    def __init__(self, cmd: list[str], port: int, ready_path: str) -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._cmd, self._ready_path = cmd, ready_path
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _wait(self.url, self._ready_path, self.proc)

    def restart(self) -> None:
        self.stop()
        self._start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- bitgraph serve ----------------------------------------------------------------------------

def start_bitgraph(data_dir: Path, batching: bool) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "bitgraph.server", "--data-dir", str(data_dir), "--port",
           str(port), "--log-level", "warning", "--batching" if batching else "--no-batching"]
    return Server(cmd, port, "/readyz")


def build_bitgraph(server: Server, base: np.ndarray, metric: str, M: int,
                   ef_construction: int) -> float:
    """Creates collection "bench" and upserts ``base`` (ids 0..n-1); returns seconds."""
    import bitgraph as bg

    t0 = time.perf_counter()
    with bg.Client(server.url, timeout=600) as client:
        coll = client.create_collection("bench", dim=base.shape[1], metric=metric, M=M,
                                        ef_construction=ef_construction)
        coll.add(base, np.arange(len(base)))
        coll.checkpoint()
    return time.perf_counter() - t0


def bitgraph_requests(queries: np.ndarray, k: int, ef: int, encoding: str) -> list[bytes]:
    out = []
    for q in queries:
        vec = (base64.b64encode(q.astype("<f4").tobytes()).decode() if encoding == "base64"
               else q.tolist())
        body = orjson.dumps({"vector": vec, "k": k, "ef": ef})
        out.append(http_request(HOST, "/collections/bench/points/search", body))
    return out


def bitgraph_ids(body: bytes) -> list[int]:
    return orjson.loads(body)["ids"]


def bitgraph_batch_ids(server: Server, queries: np.ndarray, k: int, ef: int) -> np.ndarray:
    import bitgraph as bg

    with bg.Client(server.url, timeout=600) as client:
        return client.collection("bench").search(queries, k=k, ef=ef).ids


# --- Chroma -------------------------------------------------------------------------------------

def chroma_binary(given: str | None) -> str | None:
    return given or shutil.which("chroma")


def start_chroma(chroma_bin: str, path: Path) -> Server:
    port = free_port()
    cmd = [chroma_bin, "run", "--path", str(path), "--host", HOST, "--port", str(port)]
    return Server(cmd, port, "/api/v2/heartbeat")


class ChromaCollection:
    """One Chroma collection driven over its REST API (no Chroma Python client needed)."""

    def __init__(self, server: Server, name: str, metric: str, M: int, ef_construction: int,
                 ef_search: int) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=600)
        space = {"cosine": "cosine", "l2": "l2", "ip": "ip"}[metric]
        r = self.http.post(_CHROMA_COLLECTIONS, content=orjson.dumps({
            "name": name, "configuration": {"hnsw": {
                "space": space, "max_neighbors": M, "ef_construction": ef_construction,
                "ef_search": ef_search}}}))
        r.raise_for_status()
        self.id = r.json()["id"]
        self.path = f"{_CHROMA_COLLECTIONS}/{self.id}"

    def add(self, base: np.ndarray, chunk: int = 5000) -> float:
        t0 = time.perf_counter()
        for s in range(0, len(base), chunk):
            part = base[s:s + chunk]
            r = self.http.post(self.path + "/add", content=orjson.dumps({
                "ids": [str(i) for i in range(s, s + len(part))],
                "embeddings": part}, option=orjson.OPT_SERIALIZE_NUMPY))
            r.raise_for_status()
        return time.perf_counter() - t0

    def set_ef(self, ef_search: int) -> None:
        """Sets ef_search. Chroma (1.5) stores the new value at once but a loaded collection
        keeps searching with the old one until the server restarts (measured: recall did not
        move until then), so the server is restarted."""
        r = self.http.put(self.path, content=orjson.dumps(
            {"new_configuration": {"hnsw": {"ef_search": ef_search}}}))
        r.raise_for_status()
        self.http.close()
        self.server.restart()
        self.http = httpx.Client(base_url=self.server.url, timeout=600)

    def query_ids(self, queries: np.ndarray, k: int, chunk: int = 100) -> np.ndarray:
        rows = []
        for s in range(0, len(queries), chunk):
            r = self.http.post(self.path + "/query", content=orjson.dumps({
                "query_embeddings": queries[s:s + chunk], "n_results": k,
                "include": ["distances"]}, option=orjson.OPT_SERIALIZE_NUMPY))
            r.raise_for_status()
            rows += [[int(i) for i in row] for row in r.json()["ids"]]
        return np.asarray(rows, dtype=np.int64)

    def requests(self, queries: np.ndarray, k: int) -> list[bytes]:
        return [http_request(HOST, self.path + "/query", orjson.dumps({
            "query_embeddings": [q.tolist()], "n_results": k, "include": ["distances"]}))
            for q in queries]


def chroma_ids(body: bytes) -> list[int]:
    return [int(i) for i in orjson.loads(body)["ids"][0]]
