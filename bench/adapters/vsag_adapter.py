"""VSAG peer: ``pyvsag.Index("hgraph", ...)`` with sq8 codes for the graph walk and fp32
re-ordering (``use_reorder``), max_degree = 2M = 32 (its bottom-level degree, as hnswlib's
level 0), ef_construction = 200; ef -> ``{"hgraph": {"ef_search": ef}}``.

Metric: cosine -> ``"ip"`` on L2-normalised rows (the treatment every peer gets), l2 -> ``"l2"``.
Threads: ``build_thread_count`` for the build. pyvsag 0.18 has only a one-query
``knn_search``, so a batch is a loop of calls in this thread (a few microseconds of call cost
each) and runs on one core whatever the thread setting. Memory: the size of ``save``'s file.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from .base import BaseANN, as_f32, normalize_rows


def _ids_of(result: tuple) -> np.ndarray:
    """The id array of a ``knn_search`` answer: its docstring says (distances, ids), 0.18.5
    returns (ids, distances); the integer array is the ids either way."""
    a, b = (np.asarray(r) for r in result)
    return (a if a.dtype.kind in "iu" else b).astype(np.int64, copy=False)


class Vsag(BaseANN):
    family = "vsag"
    nbytes_method = "pyvsag save file"

    def __init__(self, metric: str, dim: int):
        super().__init__(metric, dim)
        import pyvsag
        self._pyvsag = pyvsag
        self.index = None
        self._search_params = json.dumps({"hgraph": {"ef_search": 64}})

    def version(self) -> str:
        from importlib import metadata
        return metadata.version("pyvsag")

    def describe(self) -> str:
        return "VSAG hgraph, sq8 walk + fp32 re-order, max_degree 32"

    def _prep(self, x: np.ndarray) -> np.ndarray:
        return normalize_rows(x) if self.metric == "cosine" else as_f32(x)

    def fit(self, X: np.ndarray) -> None:
        X = self._prep(X)
        params = {"dtype": "float32", "metric_type": "ip" if self.metric == "cosine" else "l2",
                  "dim": self.dim,
                  "index_param": {"base_quantization_type": "sq8", "use_reorder": True,
                                  "precise_quantization_type": "fp32",
                                  "max_degree": 2 * self.M,
                                  "ef_construction": self.ef_construction,
                                  "build_thread_count": max(1, self.threads)}}
        self.index = self._pyvsag.Index("hgraph", json.dumps(params))
        self.index.build(vectors=X.reshape(-1), ids=np.arange(len(X), dtype=np.int64),
                         num_elements=len(X), dim=self.dim)

    def set_query_arguments(self, ef):
        super().set_query_arguments(ef)
        self._search_params = json.dumps({"hgraph": {"ef_search": int(ef)}})

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        Q = self._prep(Q)
        out = np.full((len(Q), k), -1, dtype=np.int64)
        search, params = self.index.knn_search, self._search_params
        for i in range(len(Q)):
            ids = _ids_of(search(vector=Q[i], k=k, parameters=params))
            out[i, :len(ids)] = ids
        return out

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        return _ids_of(self.index.knn_search(vector=self._prep(q.reshape(-1)), k=k,
                                             parameters=self._search_params))

    def nbytes(self) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "vsag.index")
            self.index.save(path)
            if os.path.isdir(path):
                return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
            return os.path.getsize(path)

    def close(self) -> None:
        self.index = None
