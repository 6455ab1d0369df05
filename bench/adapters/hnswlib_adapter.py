"""hnswlib peer: ``hnswlib.Index(space="cosine"|"l2")``, M=16, ef_construction=200.

Threads: ``num_threads=`` on every add/knn_query call (and ``set_num_threads``).
Memory: the size of a ``save_index`` file. hnswlib writes its level-0 block
(``max_elements * size_data_per_element``: links, vector, label) plus every upper-level link
list, which is its in-memory layout minus per-element bookkeeping that is not saved; that is
added from hnswlib's documented layout (hnswalg.h), see ``_PER_ELEMENT`` and ``_FIXED``.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from .base import BaseANN, as_f32

# per element, not in the file: linkLists_ pointer (8), element_levels_ int (4),
# link_list_locks_ std::mutex (40 on glibc x86-64), label_lookup_ unordered_map node + bucket
# (~40); fixed: label_op_locks_ = 65536 std::mutex.
_PER_ELEMENT = 8 + 4 + 40 + 40
_FIXED = 65536 * 40


class Hnswlib(BaseANN):
    family = "hnswlib"
    nbytes_method = "hnswlib save_index + layout"

    def __init__(self, metric: str, dim: int):
        super().__init__(metric, dim)
        import hnswlib
        self._hnswlib = hnswlib
        self.index = None

    def describe(self) -> str:
        space = "cosine" if self.metric == "cosine" else "l2"
        return f'hnswlib Index(space="{space}"), float32 vectors'

    def version(self) -> str:
        return getattr(self._hnswlib, "__version__", "0.8")

    def set_threads(self, threads: int) -> None:
        super().set_threads(threads)
        if self.index is not None:
            self.index.set_num_threads(self.threads)

    def fit(self, X: np.ndarray) -> None:
        X = as_f32(X)
        self.index = self._hnswlib.Index(space="cosine" if self.metric == "cosine" else "l2",
                                         dim=self.dim)
        self.index.init_index(max_elements=len(X), M=self.M,
                              ef_construction=self.ef_construction, random_seed=100)
        self.index.set_num_threads(self.threads)
        self.index.add_items(X, np.arange(len(X)), num_threads=self.threads)

    def set_query_arguments(self, ef):
        super().set_query_arguments(ef)
        self.index.set_ef(int(ef))

    def batch_query(self, Q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.knn_query(as_f32(Q), k=k, num_threads=self.threads)
        return ids.astype(np.int64, copy=False)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        ids, _ = self.index.knn_query(q, k=k, num_threads=self.threads)
        return ids[0]

    def nbytes(self) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "index.bin")
            self.index.save_index(path)
            size = os.path.getsize(path)
        return int(size + _PER_ELEMENT * self.index.get_current_count() + _FIXED)

    def close(self) -> None:
        self.index = None
