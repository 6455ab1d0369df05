"""One named collection: a bitgraph index, its payloads, and the log that makes writes durable.

Independent of HTTP (the service and the Ray front both drive it). Writes are serialised by one
lock and follow one order: check everything that can be checked, append the write to the
write-ahead log and fsync it, apply it to the index, answer. Searches take no lock (the index
allows searching while it is written).

On disk (``<data-dir>/collections/<name>/``)::

    collection.json     the spec, written once at create
    CURRENT             the generation of the live snapshot ("0": none yet)
    snap-<gen>/         index.bg (the atomic index save), payloads.bin, state.json
    wal.log             the writes since that snapshot

A checkpoint writes ``snap-<gen+1>/`` completely, fsyncs it, switches CURRENT (atomic rename),
then empties the log. Each log record carries a sequence number and the snapshot records the
last one it holds, so a crash between the switch and the emptying replays nothing twice.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

import bitgraph as bg

from .errors import ApiError, bad_request
from .payloads import read_payloads, write_payloads
from .spec import CollectionSpec
from .wal import WriteAheadLog, fsync_dir

log = logging.getLogger("bitgraph.server")

_LEN = struct.Struct("<I")
CHECKPOINT_LOG_BYTES = 256 << 20  # by default a log this long is folded into a new snapshot


@dataclass
class Upsert:
    """A checked upsert: ids, float32 vectors, per-point attributes and payload JSON bytes."""

    ids: np.ndarray
    vectors: np.ndarray
    attributes: list[dict[str, Any]]
    payloads: list[bytes | None]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Collection:
    """A durable, searchable collection (see the module docstring for the files)."""

    def __init__(self, path: Path, spec: CollectionSpec) -> None:
        self.path = Path(path)
        self.spec = spec
        self.index: Any = None  # None: a binary collection before its first upsert
        self.payloads: dict[int, bytes] = {}
        self.next_id = 0
        self.last_seq = 0
        self.generation = 0
        self.closed = False
        self.checkpoint_bytes = CHECKPOINT_LOG_BYTES
        self._lock = threading.Lock()
        self._wal: WriteAheadLog | None = None

    # --- create / open / close --------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, spec: CollectionSpec,
               checkpoint_bytes: int = CHECKPOINT_LOG_BYTES) -> Collection:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.creating")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _write_atomic(tmp / "collection.json", orjson.dumps(spec.to_json()))
        _write_atomic(tmp / "CURRENT", b"0")
        os.rename(tmp, path)  # the collection exists once complete
        fsync_dir(path.parent)
        return cls.open(path, checkpoint_bytes)

    @classmethod
    def open(cls, path: Path, checkpoint_bytes: int = CHECKPOINT_LOG_BYTES) -> Collection:
        """Loads the snapshot and replays the log (a torn last record is ignored).
        ``checkpoint_bytes``: the log size at which a write folds it into a new snapshot."""
        path = Path(path)
        spec = CollectionSpec.from_saved(orjson.loads((path / "collection.json").read_bytes()))
        self = cls(path, spec)
        self.checkpoint_bytes = int(checkpoint_bytes)
        self.generation = int((path / "CURRENT").read_text().strip() or 0)
        if self.generation > 0:
            snap = path / f"snap-{self.generation}"
            state = orjson.loads((snap / "state.json").read_bytes())
            self.last_seq, self.next_id = int(state["last_seq"]), int(state["next_id"])
            if state.get("has_index", True):
                self.index = bg.load(snap / "index.bg")
            self.payloads = read_payloads(snap / "payloads.bin")
        elif spec.kind != "binary":
            self.index = spec.new_index()
        self._remove_stale_snapshots()
        self._wal = WriteAheadLog(path / "wal.log")
        if self._wal.dropped_tail_bytes:
            log.warning("%s: ignored a torn last log record (%d bytes, never acknowledged)",
                        spec.name, self._wal.dropped_tail_bytes)
        replayed = 0
        for record in self._wal.records:
            if record.seq <= self.last_seq:
                continue  # already in the snapshot
            try:
                self._apply(decode_record(record.body, spec.dim))
            except Exception as exc:  # the same error the write answered with
                log.warning("%s: log record %d failed again on replay: %s", spec.name,
                            record.seq, exc)
            self.last_seq = record.seq
            replayed += 1
        self._wal.records = []
        if replayed:
            log.info("%s: replayed %d log records", spec.name, replayed)
        return self

    def _remove_stale_snapshots(self) -> None:
        for p in self.path.iterdir():
            if p.name.startswith("snap-") and p.name != f"snap-{self.generation}" or p.name.startswith(".snap-"):
                shutil.rmtree(p, ignore_errors=True)

    def close(self, checkpoint: bool = True) -> None:
        with self._lock:
            if self.closed:
                return
            if checkpoint and self._wal is not None and self._wal.nbytes > len(b"BGWAL\x00\x01\n"):
                self._checkpoint_locked()
            if self._wal is not None:
                self._wal.close()
            self.closed = True

    # --- writes -----------------------------------------------------------------------------
    def upsert(self, batch: Upsert | None, vectors: np.ndarray | None = None,
               attributes: list[dict[str, Any]] | None = None,
               payloads: list[bytes | None] | None = None) -> np.ndarray:
        """Adds or replaces points (vector, attributes and payload together). ``batch=None``:
        ids are assigned after the largest id used so far. Returns the ids."""
        with self._lock:
            self._check_open()
            if batch is None:
                assert vectors is not None
                n = vectors.shape[0]
                ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
                batch = Upsert(ids, vectors, attributes or [{}] * n, payloads or [None] * n)
            self._check_upsert(batch)
            self._log(encode_upsert(batch))
            self._apply(batch)
            if self.spec.kind == "binary" and self.generation == 0:
                self._checkpoint_locked()  # the trained binarizer goes to disk at once
            else:
                self._maybe_checkpoint()
            return batch.ids

    def delete(self, ids: np.ndarray, strict: bool = False) -> int:
        """Deletes the points with these ids; returns how many. Unknown ids are skipped, or
        with ``strict`` make it a 404 that deletes nothing (as ``index.remove``)."""
        with self._lock:
            self._check_open()
            ids = np.unique(np.asarray(ids, dtype=np.int64))
            present = ids[self.index.contains(ids)] if self.index is not None and ids.size else ids[:0]
            if strict and present.size != ids.size:
                missing = np.setdiff1d(ids, present)
                raise ApiError(404, "not_found", f"{missing.size} id(s) not in the collection, "
                               f"e.g. {int(missing[0])}; nothing was deleted")
            if present.size:
                self._log(encode_delete(present))
                self._apply(present)
                self._maybe_checkpoint()
            return int(present.size)

    def delete_matching(self, filt: bg.Filter) -> int:
        """Deletes the points matching a filter (resolved to ids under the write lock, and
        logged as ids, so a replay deletes exactly these)."""
        with self._lock:
            self._check_open()
            if self.index is None:
                return 0
            ids = self.index.ids(filt)
            if ids.size:
                self._log(encode_delete(ids))
                self._apply(ids)
                self._maybe_checkpoint()
            return int(ids.size)

    def checkpoint(self) -> None:
        """Writes a new snapshot and empties the log."""
        with self._lock:
            self._check_open()
            self._checkpoint_locked()

    def _check_open(self) -> None:
        if self.closed:
            raise bad_request(f"collection {self.spec.name!r} is closed (deleted or shutting down)")

    def _check_upsert(self, batch: Upsert) -> None:
        """What would make the apply fail, checked before anything is logged."""
        if self.index is None and batch.ids.size < self.spec.binarizer.train_size:
            raise bad_request(
                f"a binary collection trains its binarizer on its first upsert: send at least "
                f"{self.spec.binarizer.train_size} points (binarizer.train_size), got "
                f"{batch.ids.size}")
        if np.unique(batch.ids).size != batch.ids.size:
            raise bad_request("an upsert lists the same id twice")
        if self.spec.metric == "cosine":
            zero = ~np.any(batch.vectors != 0, axis=1)
            if zero.any():
                raise bad_request(f"points[{int(np.flatnonzero(zero)[0])}]: a zero vector has "
                                  "no direction (cosine)")
        if self.spec.storage == "float16" and self.spec.kind != "binary":
            if np.abs(batch.vectors).max(initial=0) > 65504:
                raise bad_request("a value is beyond the float16 range (65504) of this collection")
        known = dict(self.index.attribute_fields) if self.index is not None else {}
        for name, kind in attribute_kinds(batch.attributes).items():
            have = known.get(name)
            if have is not None and have != kind and not (have == "float" and kind == "int"):
                raise bad_request(f"attribute {name!r} holds {have} values, got {kind} values")

    def _log(self, body: bytes) -> None:
        assert self._wal is not None
        self._wal.append(self.last_seq + 1, body)
        self.last_seq += 1

    def _apply(self, op: Upsert | np.ndarray) -> None:
        if isinstance(op, np.ndarray):  # a delete
            present = op[self.index.contains(op)] if self.index is not None else op[:0]
            if present.size:
                self.index.remove(present)
            for i in op.tolist():
                self.payloads.pop(i, None)
            return
        if self.index is None:
            self.index = self.spec.new_index(op.vectors)
        ids = op.ids
        # An upsert replaces the whole point: attributes it does not name become missing.
        old = ids[self.index.contains(ids)]
        if old.size:
            self.index.remove(old)
        kinds = attribute_kinds(op.attributes)
        known = self.index.attribute_fields
        for rows, fields in _groups_by_fields(op.attributes):
            cols = {f: [_as_kind(op.attributes[r][f], known.get(f, kinds[f])) for r in rows]
                    for f in fields}
            sel = np.asarray(rows, dtype=np.int64)
            self.index.add(op.vectors[sel], ids[sel], attributes=cols or None)
        for i, p in zip(ids.tolist(), op.payloads):
            if p is None:
                self.payloads.pop(i, None)
            else:
                self.payloads[i] = p
        self.next_id = max(self.next_id, int(ids.max()) + 1)

    def _maybe_checkpoint(self) -> None:
        assert self._wal is not None
        if self._wal.nbytes > self.checkpoint_bytes:
            self._checkpoint_locked()

    def _checkpoint_locked(self) -> None:
        t0 = time.perf_counter()
        gen = self.generation + 1
        tmp = self.path / f".snap-{gen}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if self.index is not None:
            self.index.save(tmp / "index.bg")
        write_payloads(tmp / "payloads.bin", self.payloads)
        _write_atomic(tmp / "state.json", orjson.dumps(
            {"last_seq": self.last_seq, "next_id": self.next_id,
             "has_index": self.index is not None}))
        fsync_dir(tmp)
        os.rename(tmp, self.path / f"snap-{gen}")
        fsync_dir(self.path)
        _write_atomic(self.path / "CURRENT", str(gen).encode())  # the commit point
        old, self.generation = self.generation, gen
        assert self._wal is not None
        self._wal.reset()
        if old:
            shutil.rmtree(self.path / f"snap-{old}", ignore_errors=True)
        log.info("%s: checkpoint %d (%d points) in %.2fs", self.spec.name, gen, self.count(),
                 time.perf_counter() - t0)

    # --- reads ------------------------------------------------------------------------------
    def count(self) -> int:
        return len(self.index) if self.index is not None else 0

    def nbytes(self) -> int:
        own = self.index.nbytes if self.index is not None else 0
        return own + sum(map(len, self.payloads.values()))

    def info(self) -> dict[str, Any]:
        return {"name": self.spec.name, "count": self.count(), "nbytes": self.nbytes(),
                "config": self.spec.to_json(), "trained": self.index is not None,
                "log_bytes": self._wal.nbytes if self._wal is not None else 0,
                "snapshot": self.generation}

    def search(self, queries: np.ndarray, k: int, ef: int | None, filters: Any,
               oversample: float | None, threads: int | None = None) -> bg.SearchResult:
        index = self.index
        if index is None:  # an untrained binary collection holds nothing
            nq = queries.shape[0]
            return bg.SearchResult(np.full((nq, k), -1, np.int64), np.full((nq, k), np.inf, np.float32))
        kwargs: dict[str, Any] = {"ef": ef, "filter": filters, "threads": threads}
        if oversample is not None:
            if self.spec.kind != "binary":
                raise bad_request("oversample applies to binary collections only")
            kwargs["oversample"] = oversample
        try:
            return index.search(queries, k, **kwargs)
        except (bg.BitgraphValueError, bg.BitgraphTypeError) as exc:
            raise bad_request(str(exc)) from None

    def get(self, ids: np.ndarray, with_vector: bool, with_payload: bool
            ) -> list[dict[str, Any]]:
        """The points with these ids that exist, in the order asked."""
        index = self.index
        if index is None or ids.size == 0:
            return []
        ids = np.array(list(dict.fromkeys(ids.tolist())), dtype=np.int64)  # each id once
        ids = ids[index.contains(ids)]
        if ids.size == 0:
            return []
        try:
            attrs = index.get_attributes(ids)
            vectors = index.get_vectors(ids) if with_vector else None
        except bg.UnknownIdError:  # deleted meanwhile: answer what is still there
            return self.get(ids[index.contains(ids)], with_vector, with_payload)
        out = []
        for row, i in enumerate(ids.tolist()):
            point: dict[str, Any] = {"id": i, "attributes": {
                f: vals[row] for f, vals in attrs.items()}}  # None / []: missing
            if vectors is not None:
                point["vector"] = vectors[row]
            if with_payload:
                p = self.payloads.get(i)
                point["payload"] = orjson.loads(p) if p is not None else None
            out.append(point)
        return out

    def payloads_of(self, ids: np.ndarray) -> list[list[Any]]:
        get = self.payloads.get
        return [[orjson.loads(p) if (p := get(i)) is not None else None for i in row]
                for row in ids.tolist()]


# --- attribute kinds ---------------------------------------------------------------------------

def attribute_kinds(attributes: list[dict[str, Any]]) -> dict[str, str]:
    """Field -> "int" | "float" | "tags" over a batch; a field mixing lists and numbers is a
    400."""
    kinds: dict[str, str] = {}
    for i, attrs in enumerate(attributes):
        for name, v in attrs.items():
            kind = "tags" if isinstance(v, list) else ("float" if type(v) is float else "int")
            have = kinds.get(name)
            if have is None or (have == "int" and kind == "float"):
                kinds[name] = kind
            elif have != kind and not (have == "float" and kind == "int"):
                raise bad_request(f"points[{i}].attributes.{name}: mixes {have} and {kind} "
                                  "values in one field")
    return kinds


def _as_kind(value: Any, kind: str) -> Any:
    return float(value) if kind == "float" else value


def _groups_by_fields(attributes: list[dict[str, Any]]) -> list[tuple[list[int], tuple[str, ...]]]:
    """Rows grouped by the set of fields they give (one index.add per group)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for r, attrs in enumerate(attributes):
        groups.setdefault(tuple(sorted(attrs)), []).append(r)
    return [(rows, fields) for fields, rows in groups.items()]


# --- log records -------------------------------------------------------------------------------

def encode_upsert(batch: Upsert) -> bytes:
    head = orjson.dumps({"op": "upsert", "ids": batch.ids.tolist(),
                         "attributes": batch.attributes,
                         "payloads": [None if p is None else p.decode() for p in batch.payloads]})
    return _LEN.pack(len(head)) + head + np.ascontiguousarray(batch.vectors, "<f4").tobytes()


def encode_delete(ids: np.ndarray) -> bytes:
    head = orjson.dumps({"op": "delete", "ids": ids.tolist()})
    return _LEN.pack(len(head)) + head


def decode_record(body: bytes, dim: int) -> Upsert | np.ndarray:
    (n,) = _LEN.unpack_from(body)
    head = orjson.loads(body[_LEN.size:_LEN.size + n])
    ids = np.array(head["ids"], dtype=np.int64)
    if head["op"] == "delete":
        return ids
    vectors = np.frombuffer(body[_LEN.size + n:], dtype="<f4").astype(np.float32).reshape(-1, dim)
    return Upsert(ids, vectors, head["attributes"],
                  [None if p is None else p.encode() for p in head["payloads"]])
