"""The collections one server owns, under ``<data-dir>/collections/``: loading them at start,
creating and deleting them, and closing them (with a checkpoint) at shutdown."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
from typing import Any
from pathlib import Path

from .collection import CHECKPOINT_LOG_BYTES, Collection
from .errors import ApiError, conflict, not_found, unavailable
from .spec import CollectionSpec
from .wal import fsync_dir

log = logging.getLogger("bitgraph.server")


class DataDirInUse(RuntimeError):
    """Another server process owns this data directory."""


def lock_data_dir(data_dir: Path) -> Any:
    """An exclusive lock on ``data_dir`` held for the life of the process: two servers
    writing the same logs would interleave their records and lose writes."""
    f = open(data_dir / ".lock", "a+b")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise DataDirInUse(f"{data_dir} is in use by another bitgraph server") from None
    return f


class Registry:
    """Named collections; ``ready`` once every collection on disk is loaded."""

    def __init__(self, data_dir: str | os.PathLike[str],
                 checkpoint_bytes: int = CHECKPOINT_LOG_BYTES) -> None:
        self.root = Path(data_dir) / "collections"
        self.checkpoint_bytes = checkpoint_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._dir_lock = lock_data_dir(Path(data_dir))
        self.collections: dict[str, Collection] = {}
        self.failed: dict[str, str] = {}
        self.loading = True
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return not self.loading and not self.failed

    def load_all(self) -> None:
        """Opens every collection on disk (snapshot + log replay); a collection that fails to
        open is reported by /readyz, not dropped."""
        for p in sorted(self.root.iterdir()):
            if p.name.startswith("."):  # an interrupted create or delete
                shutil.rmtree(p, ignore_errors=True)
                continue
            if not p.is_dir():
                continue
            try:
                coll = Collection.open(p, self.checkpoint_bytes)
                with self._lock:
                    self.collections[coll.spec.name] = coll
                log.info("loaded collection %s (%d points)", coll.spec.name, coll.count())
            except Exception as exc:
                log.exception("could not load collection %s", p.name)
                self.failed[p.name] = f"{type(exc).__name__}: {exc}"
        self.loading = False

    def get(self, name: str) -> Collection:
        coll = self.collections.get(name)
        if coll is not None:
            return coll
        if name in self.failed:
            raise ApiError(503, "unavailable", f"collection {name!r} failed to load: "
                           f"{self.failed[name]}")
        if self.loading:
            raise unavailable(f"collections are still loading (asked for {name!r})")
        raise not_found(f"no collection named {name!r}")

    def names(self) -> list[str]:
        return sorted(self.collections)

    def create(self, spec: CollectionSpec) -> Collection:
        with self._lock:
            if self.loading:
                raise unavailable("collections are still loading")
            if spec.name in self.collections or spec.name in self.failed:
                raise conflict(f"collection {spec.name!r} already exists")
            coll = Collection.create(self.root / spec.name, spec, self.checkpoint_bytes)
            self.collections[spec.name] = coll
            return coll

    def delete(self, name: str) -> None:
        """Deletes a collection and its files (also one that failed to load)."""
        with self._lock:
            if name in self.failed:
                del self.failed[name]
                path = self.root / name
            else:
                coll = self.get(name)
                del self.collections[name]
                coll.close(checkpoint=False)
                path = coll.path
        trash = self.root / f".deleted-{name}-{os.urandom(4).hex()}"
        os.rename(path, trash)  # gone at once, durable after the fsync
        fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)

    def close_all(self) -> None:
        """Checkpoints and closes every collection (graceful shutdown)."""
        for coll in list(self.collections.values()):
            try:
                coll.close(checkpoint=True)
            except Exception:
                log.exception("checkpoint of %s at shutdown failed (its log is kept)",
                              coll.spec.name)
