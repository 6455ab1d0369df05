"""Beyond one machine: a sharded bitgraph index on Ray (optional extra ``bitgraph[ray]``).

* :func:`build_sharded` routes rows to shards (a stable hash of the id, or k-means centroids),
  builds each shard in a Ray task and commits a manifest last.
* :class:`ShardedIndex` opens a manifest as one Ray actor per shard and answers ``search``
  (scatter-gather, merged by distance then id), ``add`` / ``remove`` (to the owning shard),
  ``save`` (every shard, then a new manifest).
* ``bitgraph serve --ray MANIFEST`` (:mod:`.serve`) serves it over the HTTP API of
  ``bitgraph serve`` on Ray Serve.

Built on the public API only; nothing outside this package imports Ray. Importing this package
does not import Ray either: the first call that needs it does (an ImportError naming the extra
when it is missing).
"""

from __future__ import annotations

from .build import build_sharded
from .errors import ManifestError, RoutingError, ShardUnavailableError
from .manifest import Manifest, read_manifest
from .router import HashRouter, KMeansRouter, stable_hash
from .sharded_index import ShardedIndex

__all__ = [
           "HashRouter",
           "KMeansRouter",
           "Manifest",
           "ManifestError",
           "RoutingError",
           "ShardUnavailableError",
           "ShardedIndex",
           "build_sharded",
           "read_manifest",
           "stable_hash",
]
