"""Epoch-tagged visited sets and a pool that reuses them across calls.

A slot counts as visited when its uint16 tag equals the current epoch, so starting a new search
is one increment instead of clearing an array the size of the index; the array is cleared only
when the epoch wraps (once every 65535 searches). Allocating and zeroing a fresh array per call
would dominate small searches on large indexes, hence the pool.
"""
import threading

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def next_epoch(tags, epochs, row):
    """Starts a new search on ``tags[row]``; returns the epoch that marks "visited"."""
    e = epochs[row] + 1
    if e > 65535:
        tags[row, :] = 0
        e = 1
    epochs[row] = e
    return e


class VisitedPool:
    """Hands out ``(tags (rows, size) uint16, epochs (rows,) int64)`` pairs; thread-safe.

    A pair is used by one call at a time (acquire ... release), so concurrent searches never
    share tags.
    """

    def __init__(self):
        self._free = []
        self._lock = threading.Lock()

    def acquire(self, rows, size):
        """A pair with at least ``rows`` rows of at least ``size`` tags."""
        with self._lock:
            for i, (tags, epochs) in enumerate(self._free):
                if tags.shape[0] >= rows and tags.shape[1] >= size:
                    return self._free.pop(i)
        # Slack so that a growing index does not reallocate at every call.
        return (np.zeros((rows, max(size + size // 4, 64)), dtype=np.uint16),
                np.zeros(rows, dtype=np.int64))

    def release(self, pair):
        """Returns a pair; keeps only a few, preferring the largest."""
        with self._lock:
            self._free.append(pair)
            if len(self._free) > 4:
                self._free.sort(key=lambda p: p[0].size)
                del self._free[0]

    def clear(self):
        """Drops every pooled pair (e.g. when the index is reset)."""
        with self._lock:
            self._free.clear()

    @property
    def nbytes(self):
        """Bytes held by the pooled pairs."""
        with self._lock:
            return sum(t.nbytes + e.nbytes for t, e in self._free)
