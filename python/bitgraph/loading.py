"""bitgraph.load: open a saved index of any kind."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import persistence
from .errors import BitgraphTypeError, IndexFileError


def _index_class(kind: Any) -> Any:
    from .flat import FlatIndex
    from .hnsw import HNSWIndex

    from .binary.index import BinaryIndex

    classes = {"hnsw": HNSWIndex, "flat": FlatIndex, "binary": BinaryIndex}
    if not isinstance(kind, str) or kind not in classes:
        raise IndexFileError(f"unknown index kind {kind!r} in file")
    return classes[kind]


def load(path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True,
         backend: str | None = None) -> Any:
    """Loads an index saved with ``index.save(path)``.

    Args:
        path: the file.
        mmap: map the file into memory instead of reading it: loading is fast and the vectors
            and graph stay in the page cache (shared between processes). The first ``add`` or
            ``remove`` copies what it changes into memory; the file is never written.
        verify: check every section's CRC-32 (reads the whole file once). Only skip it for
            files you trust; the graph's links are range-checked either way.
        backend: "native" or "numba" to override the process-wide choice.

    Raises:
        IndexFileError (an OSError): truncated or corrupted file, wrong magic, or a format
            version newer than this bitgraph reads.
    """
    path = persistence.checked_path(path)
    mapped = persistence.read_header(path).get("mapped_sections") or []
    if not (isinstance(mapped, list) and all(isinstance(m, str) for m in mapped)):
        raise IndexFileError(f"{path}: malformed header (mapped_sections must be a list of "
                             f"section names, got {mapped!r:.60})")
    if mapped and not mmap:
        # Sections the index keeps on disk (BinaryIndex re-rank vectors with rerank="mmap")
        # stay memory-mapped; everything else is read into memory as usual.
        meta, arrays = persistence.read_index(path, mmap=True, verify=verify)
        arrays = {k: (v if k in mapped else np.array(v)) for k, v in arrays.items()}
    else:
        meta, arrays = persistence.read_index(path, mmap=mmap, verify=verify)
    return _index_class(meta.get("kind"))._from_saved(meta, arrays, backend, verify)


def loads(blob: bytes, backend: str | None = None) -> Any:
    """Rebuilds an index from the bytes of a saved index file (``Path(path).read_bytes()``).

    This is also what unpickling calls: ``pickle.loads(pickle.dumps(index))`` round-trips an
    index (the pickle stream itself is not such bytes; unpickle it with ``pickle.loads``).
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise BitgraphTypeError(
            f"loads expects the bytes of a saved index, got {type(blob).__name__}"
            + (": pass a path to bitgraph.load() instead" if isinstance(blob, (str, os.PathLike))
               else ""))
    meta, arrays = persistence.parse_index(bytearray(blob), "<bytes>")
    return _index_class(meta.get("kind"))._from_saved(meta, arrays, backend)
