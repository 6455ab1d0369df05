"""Giving the C heap's free memory back to the operating system after a large add.

An add prepares its batch (a float32 copy, normalised for cosine) and the core allocates
per-call bookkeeping; once freed, glibc keeps such blocks in its heap for reuse, so a streaming
ingest leaves ~10% of the index size resident as free heap (61,678 x 384 in chunks of 5,000:
RSS 110 MiB for an index holding 101 MiB; malloc_trim gives back 9 MiB). ``malloc_trim`` only
returns free pages, it never moves live data; it runs after adds of at least a megabyte, where
its cost (a walk over the free lists) is small beside the add.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Callable

TRIM_AFTER_BYTES = 1 << 20


def _find_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # the process's own symbols include libc's (ctypes.util.find_library would cost
        # 1.7 MiB of imports)
        trim = ctypes.CDLL(None).malloc_trim  # glibc only (musl has none)
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _find_trim()


def release_free_heap(batch_bytes: int) -> None:
    """Returns free heap memory to the OS after an operation that handled ``batch_bytes``."""
    if _TRIM is not None and batch_bytes >= TRIM_AFTER_BYTES:
        _TRIM(0)
