"""Library adapters, one module per library, and the registry the suite picks from.

``ADAPTERS`` maps the names accepted by ``--libs`` to ``(module, class)``; modules are
imported lazily so a missing library only removes its own entries (see :func:`available`).
"""
from __future__ import annotations

import importlib

from .base import BaseANN

ADAPTERS: dict[str, tuple[str, str]] = {
    "faiss-hnsw": ("faiss_adapter", "FaissHNSW"),
    "hnswlib": ("hnswlib_adapter", "Hnswlib"),
    "usearch": ("usearch_adapter", "Usearch"),
    "usearch-cos": ("usearch_adapter", "UsearchCos"),
    "faiss-flat": ("faiss_adapter", "FaissFlat"),
    "scann": ("scann_adapter", "Scann"),
    "scann-r4": ("scann_adapter", "ScannLongReorder"),
    "vsag": ("vsag_adapter", "Vsag"),
    "bitgraph-f32": ("bitgraph_adapter", "BitgraphHNSW"),
    "bitgraph-f16": ("bitgraph_adapter", "BitgraphHNSWF16"),
    "bitgraph-i8": ("bitgraph_adapter", "BitgraphHNSWI8"),
    "bitgraph-i8r": ("bitgraph_adapter", "BitgraphHNSWI8Rerank"),
    "bitgraph-i8rm": ("bitgraph_adapter", "BitgraphHNSWI8RerankMmap"),
    "bitgraph-flat": ("bitgraph_adapter", "BitgraphFlat"),
    "bitgraph-numba-f32": ("bitgraph_adapter", "BitgraphNumbaHNSW"),
    "bitgraph-bin4": ("bitgraph_adapter", "BitgraphBinaryHNSW"),
    "bitgraph-ivf": ("bitgraph_adapter", "BitgraphIVF"),
}

# what "--libs all" means; opt-in: bitgraph-i8 (int8 storage is not a like-for-like
# comparison), bitgraph-numba-f32 (our fallback backend, not a peer) and usearch-cos (a slower configuration of a peer already in the list)
DEFAULT_LIBS = ["bitgraph-f32", "bitgraph-f16", "bitgraph-ivf", "bitgraph-bin4", "bitgraph-flat",
                "faiss-hnsw", "hnswlib", "usearch", "scann", "scann-r4", "vsag", "faiss-flat"]
PEER_LIBS = ["faiss-hnsw", "hnswlib", "usearch", "scann", "scann-r4", "vsag", "faiss-flat"]


def adapter_class(name: str) -> type[BaseANN]:
    """The adapter class for ``name``; raises ImportError if its library is missing."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown library {name!r}; expected one of {sorted(ADAPTERS)}")
    module, cls = ADAPTERS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def make_adapter(name: str, metric: str, dim: int) -> BaseANN:
    """Instantiate ``name`` for the given metric and dimension."""
    return adapter_class(name)(metric, dim)


def available(name: str) -> tuple[bool, str]:
    """(True, "") if the library behind ``name`` imports, else (False, reason)."""
    try:
        make_adapter(name, "l2", 4)
        return True, ""
    except ImportError as e:
        return False, f"{type(e).__name__}: {e}"
    except Exception as e:  # a broken install should not stop the other libraries
        return False, f"{type(e).__name__}: {e}"
