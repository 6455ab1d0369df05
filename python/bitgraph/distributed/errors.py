"""The errors of the sharded layer (all are :class:`bitgraph.BitgraphError` subclasses)."""

from __future__ import annotations

from ..errors import BitgraphError, BitgraphValueError, IndexFileError


class ManifestError(IndexFileError):
    """A manifest that is missing, malformed, or does not match its shard files."""


class ShardUnavailableError(BitgraphError):
    """A shard did not answer, also after one retry (its actor is being restarted, or its
    node is gone). ``shards``: the indexes of the shards that failed."""

    def __init__(self, message: str, shards: list[int]) -> None:
        super().__init__(message)
        self.shards = shards


class RoutingError(BitgraphValueError):
    """A request the router cannot serve (e.g. ``probe`` without k-means routing)."""
