"""``bitgraph serve``: an HTTP service of named, durable collections (optional extra
``bitgraph[server]``).

Layers, top down: :mod:`.main` (the process), :mod:`.app` (HTTP routes, keys, limits, metrics),
:mod:`.batcher` (coalescing searches), :mod:`.registry` / :mod:`.collection` (collections, their
log and snapshots; no HTTP), :mod:`.requests` (checking request values), :mod:`.wal`.
"""

from .app import ServerConfig, create_app
from .collection import Collection
from .main import serve

__all__ = ["Collection", "ServerConfig", "create_app", "serve"]
