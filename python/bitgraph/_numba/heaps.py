"""Binary max-heaps over parallel ``(keys float32, values int32)`` arrays, for jitted code.

Jitted functions cannot mutate an integer argument, so every operation takes the current size
and returns the new one. A min-heap (the candidate queue of a beam search) is the same max-heap
holding negated keys, as in hnswlib.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def heap_push(keys, vals, n, key, val):
    """Pushes ``(key, val)`` onto a heap of size ``n`` (capacity must allow it); returns n+1."""
    i = n
    while i > 0:
        p = (i - 1) >> 1
        if keys[p] >= key:
            break
        keys[i] = keys[p]
        vals[i] = vals[p]
        i = p
    keys[i] = key
    vals[i] = val
    return n + 1


@njit(cache=True, nogil=True)
def heap_replace_top(keys, vals, n, key, val):
    """Replaces the largest entry of a non-empty heap of size ``n`` by ``(key, val)``."""
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and keys[c + 1] > keys[c]:
            c += 1
        if keys[c] <= key:
            break
        keys[i] = keys[c]
        vals[i] = vals[c]
        i = c
    keys[i] = key
    vals[i] = val


@njit(cache=True, nogil=True)
def heap_pop(keys, vals, n):
    """Removes the largest entry of a non-empty heap of size ``n``; returns n-1."""
    n -= 1
    if n > 0:
        heap_replace_top(keys, vals, n, keys[n], vals[n])
    return n


@njit(cache=True, nogil=True)
def grown(keys, vals):
    """Copies of a full heap's arrays with twice the capacity (same entries, same order).

    Candidate queues are bounded only by the number of visited nodes, so they grow on demand.
    Callers test ``n == keys.shape[0]`` themselves: calling a function that returns arrays on
    every push would cost reference-count traffic in the hottest loop.
    """
    n = keys.shape[0]
    nk = np.empty(2 * n + 16, dtype=keys.dtype)
    nv = np.empty(2 * n + 16, dtype=vals.dtype)
    nk[:n] = keys
    nv[:n] = vals
    return nk, nv


@njit(cache=True, nogil=True)
def heap_drain_sorted(keys, vals, n, out_keys, out_vals):
    """Empties a heap of size ``n`` into ``out_*[:n]`` in ascending key order."""
    for i in range(n - 1, -1, -1):
        out_keys[i] = keys[0]
        out_vals[i] = vals[0]
        n = heap_pop(keys, vals, n)
