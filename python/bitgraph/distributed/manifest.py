"""The manifest of a sharded index: what it is, where its shards are, how ids are routed.

``<dir>/manifest.json`` is the commit point of a build or a checkpoint: it is written last,
atomically (temporary file, fsync, rename, fsync of the directory), after every shard file it
names is complete on disk. A directory without a manifest holds no sharded index; a manifest
always names complete shard files, each with its byte size and CRC-32, so a truncated or
swapped shard file is found before it is searched.

Shard files are named ``shard-<i>-g<generation>.bg``: a checkpoint writes the files of the next
generation beside the live ones, commits a new manifest, then deletes the files of the old one
(:func:`commit`), so a crash at any point leaves one complete generation that the manifest names.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__
from .errors import ManifestError

FORMAT = "bitgraph-sharded"
VERSION = 1
MANIFEST_NAME = "manifest.json"
KINDS = ("flat", "hnsw", "binary")
_CHUNK = 8 << 20
_SHARD_FILE = re.compile(r"^\.?shard-\d{5}-g(?P<gen>\d+)\.bg")


def shard_file_name(shard: int, generation: int) -> str:
    return f"shard-{shard:05d}-g{generation}.bg"


def file_crc32(path: str | os.PathLike[str]) -> str:
    """CRC-32 of a whole file, as 8 hex digits (read in 8 MiB chunks)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


@dataclass(frozen=True)
class ShardEntry:
    """One shard: its file (relative to the manifest), live items, bytes and CRC-32."""

    file: str
    count: int
    nbytes: int
    crc32: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "count": self.count, "nbytes": self.nbytes,
                "crc32": self.crc32}


@dataclass(frozen=True)
class Manifest:
    """A sharded index as stored: ``spec`` (the index kind and parameters every shard shares),
    ``router`` (:mod:`.router` JSON), the shards, the next automatic id and the generation."""

    spec: dict[str, Any]
    router: dict[str, Any]
    shards: list[ShardEntry]
    next_id: int = 0
    generation: int = 1
    name: str = "sharded"
    created: str = field(default_factory=lambda: datetime.datetime.now(
        datetime.UTC).isoformat(timespec="seconds"))

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @property
    def count(self) -> int:
        return sum(s.count for s in self.shards)

    @property
    def dim(self) -> int:
        return int(self.spec["dim"])

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "bitgraph_version": __version__,
                "name": self.name, "generation": self.generation, "created": self.created,
                "spec": self.spec, "router": self.router, "n_shards": self.n_shards,
                "count": self.count, "next_id": self.next_id,
                "shards": [s.to_json() for s in self.shards]}

    @classmethod
    def from_json(cls, data: Any, source: str = "manifest") -> Manifest:
        """The manifest of its JSON form; ManifestError naming what is wrong."""
        def bad(why: str) -> ManifestError:
            return ManifestError(f"{source}: {why}")

        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise bad(f"not a bitgraph sharded manifest (format {data.get('format')!r})")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise bad(f"manifest version {data.get('version')!r}; this bitgraph reads "
                      f"<= {VERSION}")
        try:
            spec, router = dict(data["spec"]), dict(data["router"])
            shards = [ShardEntry(str(s["file"]), int(s["count"]), int(s["nbytes"]),
                                 str(s["crc32"])) for s in data["shards"]]
            out = cls(spec=spec, router=router, shards=shards, next_id=int(data["next_id"]),
                      generation=int(data["generation"]), name=str(data.get("name", "sharded")),
                      created=str(data.get("created", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"missing or malformed field: {exc!r}") from None
        if spec.get("kind") not in KINDS:
            raise bad(f"spec.kind must be one of {', '.join(KINDS)}, got {spec.get('kind')!r}")
        if not isinstance(spec.get("dim"), int) or spec["dim"] < 1:
            raise bad(f"spec.dim must be a positive integer, got {spec.get('dim')!r}")
        if not shards:
            raise bad("no shards")
        if data.get("n_shards", len(shards)) != len(shards):
            raise bad(f"n_shards is {data.get('n_shards')} but {len(shards)} shards are listed")
        for i, s in enumerate(shards):
            if os.path.basename(s.file) != s.file or not s.file.endswith(".bg"):
                raise bad(f"shards[{i}].file must be a .bg file name in the manifest's "
                          f"directory, got {s.file!r}")
        return out


def manifest_path(path: str | os.PathLike[str]) -> Path:
    """The manifest file of a path that is the manifest or the directory holding it."""
    p = Path(path)
    return p / MANIFEST_NAME if p.is_dir() else p


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Reads and checks a manifest (the file, or its directory); ManifestError if it is
    missing or malformed, or a shard file is missing or of the wrong size."""
    p = manifest_path(path)
    try:
        data = json.loads(p.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"{p}: no manifest (not a sharded index, or its build did not "
                            "finish)") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{p}: cannot read the manifest: {exc}") from None
    m = Manifest.from_json(data, str(p))
    for i, s in enumerate(m.shards):
        f = p.parent / s.file
        try:
            size = f.stat().st_size
        except OSError as exc:
            raise ManifestError(f"{p}: shard {i} file {s.file} is missing ({exc.strerror})") \
                from None
        if size != s.nbytes:
            raise ManifestError(f"{p}: shard {i} file {s.file} has {size} bytes, the manifest "
                                f"says {s.nbytes}")
    return m


def verify_shard(directory: str | os.PathLike[str], entry: ShardEntry, shard: int) -> None:
    """Checks one shard file's size and CRC-32 against the manifest."""
    f = Path(directory) / entry.file
    size = f.stat().st_size
    if size != entry.nbytes:
        raise ManifestError(f"shard {shard} file {f} has {size} bytes, the manifest says "
                            f"{entry.nbytes}")
    crc = file_crc32(f)
    if crc != entry.crc32:
        raise ManifestError(f"shard {shard} file {f} has CRC-32 {crc}, the manifest says "
                            f"{entry.crc32} (corrupted or replaced)")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(directory: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Writes ``manifest.json`` atomically (the commit point), then deletes the shard files
    of other generations (those the previous manifest named, and leftovers). Returns its path."""
    d = Path(directory)
    target = d / MANIFEST_NAME
    tmp = d / f".{MANIFEST_NAME}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(json.dumps(manifest.to_json(), indent=1).encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(d)
    keep = {s.file for s in manifest.shards}
    remove_generation_files(d, lambda gen, name: name not in keep)
    return target


def remove_generation_files(directory: Path, which: Any) -> int:
    """Deletes shard files (and their temporaries) for which ``which(generation, name)`` is
    true; returns how many."""
    removed = 0
    for entry in os.listdir(directory):
        m = _SHARD_FILE.match(entry)
        if m is not None and which(int(m.group("gen")), entry):
            try:
                os.unlink(directory / entry)
                removed += 1
            except OSError:
                pass
    return removed


def existing_generation(directory: str | os.PathLike[str]) -> int:
    """The generation of the manifest in ``directory`` (0: none)."""
    p = Path(directory) / MANIFEST_NAME
    if not p.exists():
        return 0
    return read_manifest(p).generation
