"""Exact float32 re-ranking beside a compact index: the part BinaryIndex and HNSWIndex share.

An index that searches compact rows (binary codes, int8) keeps the float32 vectors beside its
core, in RAM or memory-mapped (:mod:`bitgraph._rerank_store`), and asks the core to
re-score its best candidates with them in the same native call. This mixin holds that store
and its plumbing: adding rows before the core sees their slots, the core's re-rank request,
memory figures, and the ``rerank_vectors`` section of the index file.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from . import state_checks
from ._rerank_store import make_store
from ._validation import check_number
from .errors import BitgraphValueError, IndexFileError
from .persistence import checked_path

RERANKS = ("memory", "mmap", None)
RERANK_SECTION = "rerank_vectors"


def checked_rerank(rerank: Any) -> str | None:
    if rerank not in RERANKS:
        raise BitgraphValueError(f"rerank must be 'memory', 'mmap' or None, got {rerank!r}")
    return rerank


def checked_rerank_dir(directory: Any) -> str | None:
    """None, or an existing directory (where an unsaved rerank="mmap" index spills)."""
    if directory is None:
        return None
    path = checked_path(directory, "rerank_dir")
    if not os.path.isdir(path):
        raise BitgraphValueError(f"rerank_dir must be an existing directory, got {path!r}")
    return path


class Reranking:
    """Mixin for a ``_VectorIndex`` subclass: ``_rerank_kind`` / ``_rerank`` and the hooks."""

    _rerank_kind: str | None
    _rerank_dir: str | None
    _rerank: Any

    def _init_rerank(self, rerank: Any, rerank_dir: Any, dim: int) -> None:
        self._rerank_kind = checked_rerank(rerank)
        self._rerank_dir = checked_rerank_dir(rerank_dir)
        self._rerank = None if rerank is None else make_store(rerank, dim, None,
                                                              self._rerank_dir)

    @property
    def rerank(self) -> str | None:
        """Where the float32 re-rank vectors live: "memory", "mmap" or None (none kept)."""
        return self._rerank_kind

    # --- memory (the mixin precedes _VectorIndex: super() is the index's own account) -----------
    @property
    def nbytes(self) -> int:
        """Bytes in RAM: rows or codes, graph, ids, attributes and in-memory re-rank vectors
        (memory-mapped ones excluded: see ``mapped_nbytes``)."""
        extra = self._rerank.nbytes if self._rerank is not None else 0
        return super().nbytes + extra  # type: ignore[misc]

    @property
    def mapped_nbytes(self) -> int:
        """Bytes memory-mapped from files: a mapped index's arrays, re-rank vectors on disk."""
        extra = self._rerank.mapped_nbytes if self._rerank is not None else 0
        return super().mapped_nbytes + extra  # type: ignore[misc]

    def _reserve_extra(self, n: int) -> None:
        if self._rerank is not None:
            self._rerank.reserve(n)

    def _shrink_extra(self) -> None:
        if self._rerank is not None:
            self._rerank.shrink()

    # --- add -------------------------------------------------------------------------------------
    def _add_rows_then(self, arr: np.ndarray, first: int, add: Any) -> None:
        """Stores the float rows of slots ``first ..`` and then runs ``add()`` (the core's
        add): a search must never see a slot without its vector. Rows of slots the core did
        not make (an interrupted add) are dropped."""
        if self._rerank is None:
            add()
            return
        self._rerank.append(arr, first)
        try:
            add()
        finally:
            self._rerank.truncate(int(self._core.n_slots))  # type: ignore[attr-defined]

    # --- search ----------------------------------------------------------------------------------
    def _rerank_candidates(self, k: int, oversample: float | None, default: float) -> int:
        """Candidates the core re-ranks to k: ``ceil(oversample * k)`` (``default`` when None),
        k without re-rank. Checked even then: a wrong argument is wrong whatever the index."""
        factor = check_number("oversample", default if oversample is None else oversample, 1.0)
        if self._rerank is None:
            return k
        # At most one candidate per slot: the caller clamps to the index size (1e12 * k must
        # not allocate).
        return max(k, int(min(math.ceil(factor * k), 2**62)))

    def _rerank_request(self, q: np.ndarray, k: int) -> tuple[Any, ...] | None:
        if self._rerank is None:
            return None
        # The core maps its candidates to slots and keeps the k closest by float distance.
        return (q, self._rerank.vectors, k, self._core_metric)  # type: ignore[attr-defined]

    def _rerank_rows(self, slots: np.ndarray) -> np.ndarray:
        return np.array(self._rerank.vectors[slots], dtype=np.float32)

    # --- persistence -----------------------------------------------------------------------------
    def _save_rerank(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if self._rerank is None:
            return
        arrays[RERANK_SECTION] = self._rerank.vectors[: int(self._core.n_slots)]  # type: ignore[attr-defined]
        if self._rerank.mapped:
            meta["mapped_sections"] = [RERANK_SECTION]

    def _restore_rerank(self, arrays: dict[str, np.ndarray], verify: bool) -> None:
        """The re-rank store of a loaded file (after the core: its slot count is checked)."""
        self._rerank_dir = None
        self._rerank = None
        if self._rerank_kind is None:
            return
        base = arrays.get(RERANK_SECTION)
        n = int(self._core.n_slots)  # type: ignore[attr-defined]
        dim = self._dim  # type: ignore[attr-defined]
        if base is None or base.ndim != 2 or base.shape != (n, dim) or base.dtype != np.float32:
            raise IndexFileError("index file's re-rank vectors are missing or inconsistent")
        if verify:
            try:
                state_checks.check_float_rows("re-rank vectors", base,
                                              self._metric)  # type: ignore[attr-defined]
            except ValueError as exc:
                raise IndexFileError(f"index file is inconsistent: {exc}") from exc
        self._rerank = make_store(self._rerank_kind, dim, base, None)
