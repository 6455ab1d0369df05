"""The trained state of an IVFIndex beside its float rows: centroids, residual codebooks, each
slot's list and 4-bit code, and the packed lists the search kernels read.

Slots are the float core's (append-only: a replaced or removed item's slot is marked deleted
and never reused), so the per-slot arrays only grow. New slots are encoded and the lists
re-packed lazily, before the next search; a removal clears its packed rows in place.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import layout, training

#: Rows per list the automatic list count aims at (sqrt-scaled, as ScaNN and FAISS advise):
#: nlist = 1.6 sqrt(n). Measured on glove-50 (390k, 1 thread, rerank 40): 1,000 lists reached
#: recall@10 0.955 at 15.6k QPS, 1,873 lists (3 sqrt(n)) 0.960 at 13.4k, 600 lists 0.940 at
#: 15.7k, 3,000 lists 0.959 at 12.3k.
LISTS_PER_SQRT_N = 1.6
#: Fewest rows per list k-means trains with (FAISS warns below 39).
MIN_ROWS_PER_LIST = 39
#: k-means trains on at most this many rows per list (FAISS's default too; glove-50 390k,
#: nprobe 60: 64 rows per list -> recall@10 0.955, 256 -> 0.960, all 390 -> 0.961), the
#: codebooks on at most CODEBOOK_SAMPLE.
KMEANS_ROWS_PER_LIST = 256
CODEBOOK_SAMPLE = 65536


def auto_nlist(n: int) -> int:
    """The list count for ``n`` rows: 1.6 sqrt(n), at most n / 39, at least 1."""
    return int(max(1, min(round(LISTS_PER_SQRT_N * math.sqrt(max(n, 1))), n // MIN_ROWS_PER_LIST)))


class _Growing:
    """An array that grows along its first axis with amortised doubling."""

    def __init__(self, shape_tail: tuple[int, ...], dtype: Any) -> None:
        self._data = np.empty((0, *shape_tail), dtype=dtype)
        self.size = 0

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]

    def append(self, rows: np.ndarray) -> None:
        need = self.size + rows.shape[0]
        if need > self._data.shape[0]:
            grown = np.empty((max(need, 2 * self._data.shape[0], 16), *self._data.shape[1:]),
                             dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size:need] = rows
        self.size = need

    def set(self, rows: np.ndarray) -> None:
        self._data = np.ascontiguousarray(rows)
        self.size = rows.shape[0]


class Partition:
    """Coarse centroids and residual codebooks, trained once, and the per-slot codes."""

    def __init__(self, centroids: np.ndarray, codebooks: np.ndarray, metric: str,
                 trained_size: int) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.codebooks = np.ascontiguousarray(codebooks, dtype=np.float32)
        self.metric = metric  # "l2" or "ip" (cosine rows arrive normalised)
        self.trained_size = int(trained_size)
        self.tiles = layout.centroid_tiles(self.centroids)
        m = self.codebooks.shape[0]
        self._lists = _Growing((), np.int32)
        self._codes = _Growing((m,), np.uint8)
        self._sq_norms = _Growing((), np.float32)
        self._packed: layout.PackedLists | None = None
        self._pos_of_slot: np.ndarray | None = None
        self._list_min: np.ndarray | None = None

    # --- training --------------------------------------------------------------------------
    @classmethod
    def train(cls, rows: np.ndarray, metric: str, nlist: int | None, dims_per_code: int,
              seed: int) -> Partition:
        """Trains on ``rows`` (float32, already normalised for cosine): k-means lists, then
        16-entry codebooks of the residuals."""
        n = rows.shape[0]
        lists = min(auto_nlist(n) if nlist is None else int(nlist), n)
        rng = np.random.default_rng(seed)
        sample = rows if n <= KMEANS_ROWS_PER_LIST * lists else rows[
            np.sort(rng.choice(n, KMEANS_ROWS_PER_LIST * lists, replace=False))]
        centroids = training.kmeans(sample, lists, metric, seed=seed)
        pick = rows if n <= CODEBOOK_SAMPLE else rows[
            np.sort(rng.choice(n, CODEBOOK_SAMPLE, replace=False))]
        residuals = pick - centroids[training.assign(pick, centroids, metric)]
        codebooks = training.train_codebooks(residuals, dims_per_code, seed=seed)
        return cls(centroids, codebooks, metric, n)

    # --- per-slot codes --------------------------------------------------------------------
    @property
    def encoded_slots(self) -> int:
        return self._lists.size

    def encode(self, rows: np.ndarray) -> None:
        """Appends the codes of the next slots (their float rows, in slot order)."""
        lists = training.assign(rows, self.centroids, self.metric)
        codes = training.encode(rows - self.centroids[lists], self.codebooks)
        self._lists.append(lists)
        self._codes.append(codes)
        if self.metric == "l2":
            self._sq_norms.append(np.einsum("ij,ij->i", rows, rows).astype(np.float32))
        self._packed = None

    # --- packed lists ----------------------------------------------------------------------
    def packed(self, deleted: np.ndarray) -> layout.PackedLists:
        """The packed live slots (re-packed only after new slots were encoded)."""
        if self._packed is None:
            live = deleted[: self.encoded_slots] == 0
            nlist = self.centroids.shape[0]
            self._packed = layout.pack_lists(self._lists.view, self._codes.view, live, nlist)
            pos = np.full(self.encoded_slots, -1, dtype=np.int64)
            used = np.flatnonzero(self._packed.row_slots >= 0)
            pos[self._packed.row_slots[used]] = used
            self._pos_of_slot = pos
            if self.metric == "l2":
                self._list_min = layout.list_min_sq_norms(self._lists.view, self.sq_norms, live,
                                                          nlist)
        return self._packed

    def drop(self, slots: np.ndarray) -> None:
        """Removed slots: their packed rows become padding (slot -1) in place."""
        if self._packed is None or self._pos_of_slot is None:
            return
        slots = slots[(slots >= 0) & (slots < self._pos_of_slot.shape[0])]
        pos = self._pos_of_slot[slots]
        self._packed.row_slots[pos[pos >= 0]] = -1

    @property
    def sq_norms(self) -> np.ndarray | None:
        return self._sq_norms.view if self.metric == "l2" else None

    @property
    def list_min_sq_norms(self) -> np.ndarray | None:
        return self._list_min if self.metric == "l2" else None

    @property
    def nlist(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def nbytes(self) -> int:
        held = (self.centroids.nbytes + self.codebooks.nbytes + self.tiles.nbytes
                + self._lists.view.nbytes + self._codes.view.nbytes + self._sq_norms.view.nbytes)
        if self._packed is not None:
            held += self._packed.nbytes + (self._pos_of_slot.nbytes if self._pos_of_slot is not None
                                           else 0)
        return int(held)

    # --- persistence -----------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"trained_size": self.trained_size, "metric": self.metric}
        arrays = {"centroids": self.centroids, "codebooks": self.codebooks,
                  "lists": self._lists.view, "codes": self._codes.view}
        if self.metric == "l2":
            arrays["sq_norms"] = self._sq_norms.view
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], dim: int,
                   n_slots: int) -> Partition:
        """Raises ValueError when the arrays do not fit together or the index."""
        centroids = np.asarray(arrays["centroids"], dtype=np.float32)
        codebooks = np.asarray(arrays["codebooks"], dtype=np.float32)
        lists = np.asarray(arrays["lists"], dtype=np.int32)
        codes = np.asarray(arrays["codes"], dtype=np.uint8)
        metric = str(meta["metric"])
        if metric not in ("l2", "ip"):
            raise ValueError(f"IVF metric {metric!r}")
        if centroids.ndim != 2 or centroids.shape[1] != dim or centroids.shape[0] < 1:
            raise ValueError(f"IVF centroids have shape {centroids.shape}, dim {dim}")
        if codebooks.ndim != 3 or codebooks.shape[1] != training.PQ_CENTROIDS or (
                codebooks.shape[0] * codebooks.shape[2] < dim):
            raise ValueError(f"IVF codebooks have shape {codebooks.shape}")
        if not (np.isfinite(centroids).all() and np.isfinite(codebooks).all()):
            raise ValueError("IVF centroids or codebooks hold non-finite values")
        n = lists.shape[0]
        if n > n_slots or codes.shape != (n, codebooks.shape[0]):
            raise ValueError(f"IVF codes {codes.shape} / lists {lists.shape} do not fit "
                             f"{n_slots} slots")
        if n and (lists.min() < 0 or lists.max() >= centroids.shape[0] or codes.max() > 15):
            raise ValueError("IVF lists or codes out of range")
        part = cls(centroids, codebooks, metric, int(meta["trained_size"]))
        part._lists.set(lists.copy())
        part._codes.set(codes.copy())
        if metric == "l2":
            norms = np.asarray(arrays["sq_norms"], dtype=np.float32)
            if norms.shape != (n,):
                raise ValueError("IVF squared norms do not fit the codes")
            part._sq_norms.set(norms.copy())
        return part
