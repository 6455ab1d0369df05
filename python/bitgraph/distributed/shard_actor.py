"""One shard: an index loaded from its file, answering the calls of the sharded layer.

A plain class, so the same code runs as a Ray actor (:class:`~.sharded_index.ShardedIndex`,
``ray.remote(Shard)``) and as a Ray Serve deployment (:mod:`.serve`). It takes the manifest's
path and its shard number, not a file: a restarted actor (Ray's ``max_restarts``) reads the
manifest as it is *then* and loads the file of the latest checkpoint, memory-mapped.

Arguments and results are compact numpy arrays; filters travel as their JSON form.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

import bitgraph as bg

from .manifest import manifest_path, read_manifest, shard_file_name, verify_shard
from .node_turns import NodeTurns

FilterArg = str | list[str | None] | None


def filter_of(arg: FilterArg) -> Any:
    """A filter (or per-query list) from its JSON form."""
    if arg is None:
        return None
    if isinstance(arg, list):
        return [None if f is None else bg.Filter.from_json(f) for f in arg]
    return bg.Filter.from_json(arg)


def filter_arg(filt: Any) -> FilterArg:
    """The JSON form of a filter (or per-query list) for the wire."""
    if filt is None:
        return None
    if isinstance(filt, list):
        return [None if f is None else f.to_json() for f in filt]
    return filt.to_json()


def _node_id() -> str | None:
    """The Ray node this shard runs on (None outside Ray)."""
    import sys

    ray = sys.modules.get("ray")
    try:
        return ray.get_runtime_context().get_node_id() if ray is not None else None
    except Exception:  # noqa: BLE001 - not in a Ray worker
        return None


class Shard:
    """Shard ``shard`` of the sharded index whose manifest is ``manifest``.

    ``threads``: search / add threads (default: every core of the node). With more than one,
    the shards of one node take turns at batches that fill their threads (``turns``, see
    :mod:`.node_turns`); with one thread each they run side by side."""

    def __init__(self, manifest: str, shard: int, threads: int | None = None,
                 mmap: bool = True, verify: bool = False, turns: bool = True) -> None:
        path = manifest_path(manifest)
        m = read_manifest(path)
        entry = m.shards[shard]
        self.directory = path.parent
        self.shard = shard
        if verify:
            verify_shard(self.directory, entry, shard)
        self.index = bg.load(self.directory / entry.file, mmap=mmap)
        cores = os.cpu_count() or 1
        self.threads = max(1, min(cores, threads or cores))
        self.turns = NodeTurns(_node_id(), self.threads, enabled=turns)
        self.incarnation = uuid.uuid4().hex  # changes when the actor restarts
        self.generation = m.generation

    # --- reads ------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, ef: int | None, filt: FilterArg,
               oversample: float | None = None) -> tuple[np.ndarray, ...]:
        """(ids, distances, plans or None, visited or None) of a batch."""
        kwargs: dict[str, Any] = {"ef": ef, "filter": filter_of(filt), "threads": self.threads}
        if oversample is not None:
            kwargs["oversample"] = oversample
        with self.turns.turn(queries.shape[0]):
            res = self.index.search(queries, k, **kwargs)
        return res.ids, res.distances, res.plans, res.visited

    def contains(self, ids: np.ndarray) -> np.ndarray:
        return self.index.contains(ids)

    def count(self, filt: FilterArg = None) -> int:
        return int(self.index.count(filter_of(filt)))

    def ids(self, filt: FilterArg = None) -> np.ndarray:
        return self.index.ids(filter_of(filt))

    def get_vectors(self, ids: np.ndarray) -> np.ndarray:
        return self.index.get_vectors(ids)

    def get_attributes(self, ids: np.ndarray) -> dict[str, list[Any]]:
        return self.index.get_attributes(ids)

    def info(self) -> dict[str, Any]:
        return {"node": _node_id(), "shard": self.shard, "count": len(self.index), "nbytes": self.index.nbytes,
                "mapped_nbytes": self.index.mapped_nbytes, "threads": self.threads,
                "turns": self.turns.enabled, "incarnation": self.incarnation, "pid": os.getpid(),
                "generation": self.generation, "fields": self.index.attribute_fields}

    # --- writes -----------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, ids: np.ndarray,
            attributes: dict[str, Any] | None = None) -> int:
        with self.turns.turn(vectors.shape[0]):
            self.index.add(vectors, ids, attributes=attributes, threads=self.threads)
        return len(self.index)

    def remove(self, ids: np.ndarray) -> int:
        self.index.remove(ids)
        return len(self.index)

    def save(self, generation: int) -> dict[str, Any]:
        """Saves the shard as the file of ``generation`` (atomic save) and returns its
        manifest entry (the manifest is committed by the caller once every shard saved)."""
        from .manifest import file_crc32

        name = shard_file_name(self.shard, generation)
        target = Path(self.directory) / name
        self.index.save(target)
        self.generation = generation
        return {"file": name, "count": len(self.index), "nbytes": target.stat().st_size,
                "crc32": file_crc32(target)}
