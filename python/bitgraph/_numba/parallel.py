"""Running prange kernels with a per-call thread count.

``numba.set_num_threads`` is thread-local, so setting it for one call and restoring it after
does not disturb other Python threads. Numba's fallback "workqueue" threading layer cannot run
two parallel kernels at once (it aborts the process), so launches are serialised unless the
layer in use is known to be thread-safe (OpenMP, TBB).
"""
import threading

import numba

_LAUNCH_LOCK = threading.Lock()
_SAFE_LAYERS = ("omp", "tbb")


def max_threads():
    """Upper bound for ``numba.set_num_threads`` in this process."""
    return int(numba.config.NUMBA_NUM_THREADS)


def clamp_threads(threads, work_items):
    """Threads worth using for ``work_items`` independent items."""
    return max(1, min(int(threads), max_threads(), int(work_items)))


def _layer_is_safe():
    try:
        return numba.threading_layer() in _SAFE_LAYERS
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        return False


def run_parallel(kernel, threads, *args):
    """Calls the prange ``kernel(*args)`` with ``threads`` numba threads."""
    def call():
        prev = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return kernel(*args)
        finally:
            numba.set_num_threads(prev)

    if _layer_is_safe():
        return call()
    with _LAUNCH_LOCK:
        return call()
