"""Float32 vectors kept for re-ranking binary-code candidates, one row per index slot.

Two stores with the same small interface (``append``, ``vectors``, ``nbytes``,
``mapped_nbytes``, ``reserve``, ``shrink``):

* :class:`MemoryVectors`: a growing in-memory array (``rerank="memory"``).
* :class:`MappedVectors`: rows on disk behind a read-only memory map (``rerank="mmap"``).
  An unsaved index spills its rows to a temporary file; a loaded index maps the
  ``rerank_vectors`` section of its own file, and its first ``append`` copies that section to a
  temporary file (the index file is never written in place). The temporary file is unlinked
  as soon as it is open (POSIX), so it disappears with the process even after ``kill -9``.

Rows are appended before the core learns about their slots, so a search never sees a slot
without its vector. ``vectors`` is replaced, never resized in place: a search holding the
previous array keeps a valid one.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._growth import grown_capacity
from .persistence import file_error, is_mapped


class MemoryVectors:
    """Re-rank vectors in RAM (amortised growth)."""

    mapped = False

    def __init__(self, dim: int, base: np.ndarray | None = None) -> None:
        self._dim = dim
        # A loaded index's rows are used in place (possibly a read-only memory map) until the
        # first append copies them into an owned, growable buffer.
        self._owned = base is None
        self._buf = np.empty((0, dim), dtype=np.float32) if base is None else base
        self._n = self._buf.shape[0]
        self.vectors = self._buf[: self._n]

    def append(self, rows: np.ndarray, n_total_before: int) -> None:
        """Stores ``rows`` at slots ``n_total_before ..`` (drops rows of slots never made)."""
        n0 = min(self._n, n_total_before)
        need = n0 + rows.shape[0]
        if need > self._buf.shape[0] or not self._owned:
            have = self._buf.shape[0] if self._owned else n0
            self._resize(n0, grown_capacity(have, need, 4 * self._dim))
        self._buf[n0:need] = rows
        self._n = need
        self.vectors = self._buf[:need]

    def _resize(self, keep: int, capacity: int) -> None:
        buf = np.empty((max(capacity, keep), self._dim), dtype=np.float32)
        buf[:keep] = self._buf[:keep]
        self._buf = buf  # a search holding the previous array keeps a valid one
        self._owned = True

    def reserve(self, n: int) -> None:
        """Room for ``n`` rows without slack."""
        if n > self._buf.shape[0] or (not self._owned and n > self._n):
            self._resize(self._n, n)
            self.vectors = self._buf[: self._n]

    def shrink(self) -> None:
        """Gives unused capacity back."""
        if self._owned and self._buf.shape[0] > self._n:
            self._resize(self._n, self._n)
            self.vectors = self._buf[: self._n]

    def truncate(self, n: int) -> None:
        self._n = min(self._n, n)
        self.vectors = self._buf[: self._n]

    @property
    def nbytes(self) -> int:
        return 0 if not self._owned and is_mapped(self._buf) else int(self._buf.nbytes)

    @property
    def mapped_nbytes(self) -> int:
        return int(self._buf.nbytes) if not self._owned and is_mapped(self._buf) else 0

    def close(self) -> None:
        pass


class MappedVectors:
    """Re-rank vectors on disk: reads go through a memory map, RAM holds only the page cache."""

    mapped = True

    def __init__(self, dim: int, base: np.ndarray | None = None, directory: str | None = None
                 ) -> None:
        self._dim = dim
        self._directory = directory
        self._file: Any = None  # our temporary file, once we write (unlinked where possible)
        self._path: str | None = None  # its name while it still has one (not POSIX)
        self._base = base  # rows we do not own (a section of a loaded file)
        self._n = 0 if base is None else int(base.shape[0])
        self.vectors = (np.empty((0, dim), dtype=np.float32) if base is None else base)

    def _spill(self, n_keep: int) -> None:
        import tempfile  # here: its imports cost ~1 MiB of every process's memory

        try:
            fp = tempfile.NamedTemporaryFile(prefix="bitgraph-rerank-", suffix=".f32",
                                             dir=self._directory, delete=False)
        except OSError as exc:
            raise file_error(exc, "create the re-rank vectors' file",
                             self._directory or tempfile.gettempdir()) from exc
        try:
            os.unlink(fp.name)  # POSIX: the open file stays; nothing is left after a crash
        except OSError:  # pragma: no cover - Windows keeps the name until close()
            self._path = fp.name
        if self._base is not None and n_keep:
            step = max(1, (64 << 20) // (4 * self._dim))
            for i in range(0, n_keep, step):
                fp.write(np.ascontiguousarray(self._base[i:min(n_keep, i + step)]).tobytes())
        fp.flush()
        self._file = fp
        self._base = None

    def append(self, rows: np.ndarray, n_total_before: int) -> None:
        n0 = min(self._n, n_total_before)
        if self._file is None:
            self._spill(n0)
        fp = self._file
        try:
            fp.seek(n0 * 4 * self._dim)
            # Never shrink the file: an older map held by a running search may still cover it.
            fp.write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
            fp.flush()
        except OSError as exc:  # e.g. the disk is full: nothing was added
            raise file_error(exc, "write the re-rank vectors", self._directory or "") from exc
        self._n = n0 + rows.shape[0]
        self._remap()

    def truncate(self, n: int) -> None:
        self._n = min(self._n, n)
        if self._file is None:
            self.vectors = self.vectors[: self._n]
        else:
            self._remap()

    def _remap(self) -> None:
        if self._n == 0:
            self.vectors = np.empty((0, self._dim), dtype=np.float32)
            return
        self.vectors = np.memmap(self._file, dtype=np.float32, mode="r",
                                 shape=(self._n, self._dim))

    def reserve(self, n: int) -> None:
        """Nothing to do: the rows live in a file."""

    def shrink(self) -> None:
        """Nothing to do: the rows live in a file."""

    @property
    def nbytes(self) -> int:
        return 0  # memory-mapped: the OS pages rows in and out

    @property
    def mapped_nbytes(self) -> int:
        return int(self.vectors.nbytes)

    def close(self) -> None:
        """Closes (and so deletes) the temporary file; searches holding the old map keep it
        readable."""
        fp, self._file = self._file, None
        path, self._path = self._path, None
        if fp is not None:
            try:
                fp.close()
            except OSError:  # pragma: no cover
                pass
        if path is not None:  # pragma: no cover - not POSIX
            try:
                os.unlink(path)
            except OSError:
                pass

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        self.close()


def make_store(kind: str, dim: int, base: Any = None, directory: str | None = None
               ) -> MemoryVectors | MappedVectors:
    """The store for ``rerank`` = "memory" | "mmap" (``base``: rows of a loaded index)."""
    if kind == "memory":
        return MemoryVectors(dim, base)
    return MappedVectors(dim, base, directory)
