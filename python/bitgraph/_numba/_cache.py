"""Keeps Numba's on-disk cache consistent with this package's sources.

Numba keys a cached function by its own file's timestamp only. A jitted function inlines the
kernels it calls from other files, so after a change to ``kernels.py`` (an upgrade, or an edit
in a checkout) a caller in an unchanged file would load stale machine code and compute with the
old kernel. The cache is therefore dropped whenever any source of the package changes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

STAMP = "bitgraph-numba-sources.sha1"


def sources_digest(package_dir: Path) -> str:
    """SHA-1 over the names and bytes of the package's Python sources."""
    h = hashlib.sha1()
    for path in sorted(package_dir.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def drop_stale_cache(package_dir: Path) -> bool:
    """Deletes the package's cached Numba functions if its sources changed since they were
    compiled; returns True when it deleted. Best effort: an unwritable install is left alone."""
    cache = package_dir / "__pycache__"
    stamp = cache / STAMP
    digest = sources_digest(package_dir)
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for entry in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            entry.unlink()
        stamp.write_text(digest)
    except OSError:
        return False
    return True
