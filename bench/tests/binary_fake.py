"""A tiny numpy stand-in for ``bitgraph.RecurrentBinarizer`` / ``bitgraph.BinaryIndex`` with
the documented contract (docs/backend-contract.md, "Binary codes"), so the harness can be
tested before (or without) the real implementation. Fixed binarizer only (centre, random
rotation, sign, residual scale); "hnsw" is a brute-force scan here. Not a benchmark subject.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


class FakeBinarizer:
    def __init__(self, dim, *, loops=2, code_dim=None, learned=True, seed=0, normalize=True):
        self.dim, self.loops = int(dim), int(loops)
        self.code_dim = int(code_dim or dim)
        self.learned, self.seed, self.normalize = learned, seed, normalize
        self.words = (self.code_dim + 63) // 64
        self.code_bytes = self.loops * self.words * 8

    def fit(self, sample, progress=False):
        x = self._norm(np.asarray(sample, np.float32))
        self.mean = x.mean(0)
        rng = np.random.default_rng(self.seed)
        g = rng.standard_normal((self.dim, max(self.dim, self.code_dim)))
        q, _ = np.linalg.qr(g.T)                        # orthonormal columns
        self.proj = q.T[:, :self.code_dim].astype(np.float32) if self.code_dim <= self.dim \
            else (g[:, :self.code_dim] / np.sqrt(self.dim)).astype(np.float32)
        r = (x - self.mean) @ self.proj
        self.alpha = []
        for _ in range(self.loops):
            a = float(np.abs(r).mean())
            self.alpha.append(a)
            r = r - a * np.where(r > 0, 1.0, -1.0)
        return self

    def _norm(self, x):
        if not self.normalize:
            return x
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return np.where(n > 0, x / np.maximum(n, 1e-30), 0).astype(np.float32)

    def encode(self, vectors):
        r = (self._norm(np.asarray(vectors, np.float32)) - self.mean) @ self.proj
        planes = []
        for t in range(self.loops):
            bits = r > 0
            packed = np.packbits(bits, axis=1, bitorder="little")
            pad = self.words * 8 - packed.shape[1]
            planes.append(np.pad(packed, ((0, 0), (0, pad))))
            r = r - self.alpha[t] * np.where(bits, 1.0, -1.0)
        return np.ascontiguousarray(np.concatenate(planes, axis=1), dtype=np.uint8)


def code_distances(qc: np.ndarray, codes: np.ndarray, planes: int, kind: str) -> np.ndarray:
    """(n,) exact integer SDC / Hamming of one query code against every code (reference)."""
    pb = codes.shape[1] // planes
    q = qc.reshape(planes, pb)
    c = codes.reshape(len(codes), planes, pb)
    out = np.zeros(len(codes), dtype=np.int64)
    for i in range(planes):
        for j in range(planes):
            if kind == "hamming" and i != j:
                continue
            w = 1 if kind == "hamming" else 2 ** (planes - 1 - i) * 2 ** (planes - 1 - j)
            out += w * _POP[np.bitwise_xor(c[:, j], q[i])].sum(1)
    return out


class FakeBinaryIndex:
    def __init__(self, binz, *, graph="flat", M=16, ef_construction=200, distance="sdc",
                 rerank="memory", metric="cosine"):
        self.binz, self.graph, self.distance, self.rerank = binz, graph, distance, rerank
        self.metric = metric
        self._codes = np.zeros((0, binz.code_bytes), np.uint8)
        self._floats = None

    def add(self, vectors, threads=None):
        x = np.asarray(vectors, np.float32)
        self._codes = self.binz.encode(x)
        self._floats = self.binz._norm(x)

    @property
    def codes(self):
        return self._codes

    @property
    def nbytes(self):
        return int(self._codes.nbytes + (self._floats.nbytes if self.rerank == "memory" else 0)
                   + 8 * len(self._codes))

    def search(self, queries, k=10, *, ef=None, oversample=4.0, threads=None):
        Q = np.asarray(queries, np.float32)
        qc = self.binz.encode(Q)
        c = k if self.rerank is None else max(k, int(np.ceil(k * oversample)))
        c = min(c, len(self._codes))
        ids = np.empty((len(Q), k), np.int64)
        qn = self.binz._norm(Q)
        for i in range(len(Q)):
            d = code_distances(qc[i], self._codes, self.binz.loops, self.distance)
            cand = np.argsort(d, kind="stable")[:c]
            if self.rerank is not None:
                cand = cand[np.argsort(-(self._floats[cand] @ qn[i]), kind="stable")]
            ids[i] = cand[:k]
        return SimpleNamespace(ids=ids, distances=None)


def install(monkeypatch, bitgraph_module) -> None:
    """Put the fakes on the bitgraph module (monkeypatch undoes it after the test)."""
    monkeypatch.setattr(bitgraph_module, "RecurrentBinarizer", FakeBinarizer, raising=False)
    monkeypatch.setattr(bitgraph_module, "BinaryIndex", FakeBinaryIndex, raising=False)
