"""Process memory readings (a cross-check of the adapters' ``nbytes``).

RSS is read from /proc/self/statm on Linux; elsewhere ``resource.getrusage`` peak RSS is used
(a peak, so only its growth is meaningful, and only as an upper bound).
"""
from __future__ import annotations

import gc
import os


def rss_bytes() -> int:
    """Current resident set size of this process in bytes (0 if unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except Exception:  # pragma: no cover - exotic platforms
        return 0


def settled_rss() -> int:
    """RSS after a garbage collection, so freed temporaries do not count."""
    gc.collect()
    return rss_bytes()
