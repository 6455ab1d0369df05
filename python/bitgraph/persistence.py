"""Index files: the format, atomic saving, and opening a saved index of any kind.

Everything that writes or reads an index file is here: :func:`save_atomic` (what
``index.save`` calls), :func:`read_index` / :func:`parse_index` (the checked reader) and
:func:`load` / :func:`loads` (``bitgraph.load`` / ``bitgraph.loads``: a file or its bytes back
to an index of the kind it holds). Pickling an index goes through the same bytes
(``index.__reduce__`` -> :func:`loads`).

The format: a self-describing header, then 64-byte aligned array sections.

Layout::

    offset 0   8 bytes   magic b"BITGRAPH"
    offset 8   uint32    format version
    offset 12  uint32    header length in bytes (UTF-8 JSON)
    offset 16  uint32    CRC-32 of the header bytes
    offset 20  uint32    reserved (0)
    offset 24  header    JSON: kind, dim, metric, storage, parameters, scalars and, per array
                         section, its name, dtype, shape, offset, byte length and CRC-32
    ...        sections  each starts at a multiple of 64 (so memory-mapped arrays are aligned)

Saving is atomic: the file is written under a temporary name in the same directory, fsynced,
then renamed over the destination, so a crash never leaves a half-written index behind. The
temporary name carries the writer's process id (``.NAME.PID.RANDOM.tmp``): a save removes the
temporaries of its target left by writers that died (``kill -9`` mid-write). The file is
created with mode 0666 minus the umask, like any file the user writes.
Loading checks the magic, the version, the header CRC, the file size and (unless
``verify=False``) every section's CRC, and raises :class:`IndexFileError` on any mismatch.
"""

from __future__ import annotations

import io
import json
import mmap as mmap_module
import os
import re
import struct
import sys
import time
import zlib
from typing import Any, BinaryIO

import numpy as np

from .errors import BitgraphTypeError, IndexFileError, index_file_error

MAGIC = b"BITGRAPH"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIIII")
_ALIGN = 64
_MAX_HEADER = 64 << 20
_CRC_CHUNK = 64 << 20


def _bytes(arr: np.ndarray) -> memoryview:
    """The bytes of an array as a flat memoryview (also for empty arrays, e.g. the links of an
    empty index, where ``memoryview(arr).cast("B")`` raises TypeError)."""
    return memoryview(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))


def _crc32(arr: np.ndarray) -> int:
    view = _bytes(arr)
    crc = 0
    for start in range(0, len(view), _CRC_CHUNK):
        crc = zlib.crc32(view[start : start + _CRC_CHUNK], crc)
    return crc


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def write_index(fp: BinaryIO, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Writes one index (meta data + named arrays) to an open binary file."""
    sections = []
    # Offsets depend on the header length, which depends on the offsets: lay out the sections
    # relative to the data start first, then shift them once the header size is known.
    rel = 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        sections.append(
            {"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape),
             "offset": rel, "nbytes": int(arr.nbytes), "crc32": _crc32(arr)}
        )
        rel = _aligned(rel + arr.nbytes)
    header = dict(meta, sections=sections)
    for _ in range(3):  # the header grows a little once real offsets are filled in
        blob = json.dumps(header, sort_keys=True).encode()
        data_start = _aligned(_PREFIX.size + len(blob) + 64)
        new_sections = [dict(s, offset=s["offset"] + data_start) for s in sections]
        header = dict(meta, sections=new_sections)
        blob2 = json.dumps(header, sort_keys=True).encode()
        if _PREFIX.size + len(blob2) <= data_start:
            blob = blob2
            break
    else:  # pragma: no cover - the 64-byte slack always suffices
        raise RuntimeError("could not lay out the index header")
    fp.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob), zlib.crc32(blob), 0))
    fp.write(blob)
    pos = _PREFIX.size + len(blob)
    for s, arr in zip(header["sections"], arrays.values()):
        fp.write(b"\0" * (s["offset"] - pos))
        fp.write(_bytes(arr))
        pos = s["offset"] + s["nbytes"]


def checked_path(path: Any, what: str = "path") -> str:
    """A file system path as str (an int would be taken as a file descriptor, and closed)."""
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise BitgraphTypeError(
            f"{what} must be a str or os.PathLike, got {type(path).__name__} {path!r:.40}")
    out = os.fspath(path)
    if not isinstance(out, str):
        out = os.fsdecode(out)
    if not out:
        raise BitgraphTypeError(f"{what} is empty")
    return out


def file_error(exc: OSError, action: str, path: str) -> IndexFileError:
    """``exc`` as an IndexFileError (an OSError keeping errno, filename and kind)."""
    return index_file_error(exc, f"cannot {action} ({exc.strerror or exc})", path)


# after ".NAME.": "PID.RANDOM.tmp", or the "XXXXXXXX.tmp" of versions that did not record the pid
_TEMP_TAIL = re.compile(r"^(?:(?P<pid>\d+)\.[0-9a-f]{8}|[A-Za-z0-9_]{8})\.tmp$")
_LEGACY_TEMP_AGE = 3600.0  # seconds: a pid-less temporary older than this is abandoned


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be saving the same target
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(directory: str, name: str) -> int:
    """Deletes the temporaries of ``directory/name`` whose writer is gone; returns how many."""
    if sys.platform == "win32":  # pragma: no cover - no pid probing there
        return 0
    removed = 0
    try:
        entries = os.listdir(directory)
    except OSError:
        return 0
    now = time.time()
    prefix = f".{name}."
    for entry in entries:
        m = _TEMP_TAIL.match(entry[len(prefix):]) if entry.startswith(prefix) else None
        if m is None:
            continue
        full = os.path.join(directory, entry)
        try:
            if m.group("pid") is not None:
                if _writer_alive(int(m.group("pid"))):
                    continue
            elif now - os.stat(full).st_mtime < _LEGACY_TEMP_AGE:
                continue
            os.unlink(full)
            removed += 1
        except OSError:
            pass
    return removed


def save_atomic(path: str | os.PathLike[str], meta: dict[str, Any],
                arrays: dict[str, np.ndarray]) -> None:
    """Writes the index to ``path`` atomically (temporary file + fsync + rename).

    Raises IndexFileError (an OSError: IndexFileNotFoundError when the directory does not
    exist) when the file cannot be written; the target is then unchanged."""
    target = checked_path(path)
    directory, name = os.path.split(os.path.abspath(target))
    remove_stale_temporaries(directory, name)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        # O_EXCL: never another writer's file; mode 0o666: the umask decides, as for any file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     0o666)
    except OSError as exc:
        raise file_error(exc, "create the index file", target) from exc
    try:
        with os.fdopen(fd, "wb") as fp:
            write_index(fp, meta, arrays)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, IndexFileError):
            raise file_error(exc, "write the index file", target) from exc
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def index_bytes(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes of an index file holding ``meta`` and ``arrays`` (:func:`loads` reads them)."""
    buf = io.BytesIO()
    write_index(buf, meta, arrays)
    return buf.getvalue()


def _fail(source: str, why: str) -> IndexFileError:
    return IndexFileError(f"{source}: {why}")


def parse_index(buffer: Any, source: str, *, verify: bool = True
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parses an index from a bytes-like object or mmap; arrays are views into it."""
    size = len(buffer)
    if size < _PREFIX.size:
        raise _fail(source, f"file is truncated ({size} bytes, not even a header)")
    magic, version, header_len, header_crc, _ = _PREFIX.unpack_from(buffer, 0)
    if magic != MAGIC:
        raise _fail(source, "not a bitgraph index file (bad magic)")
    if version > FORMAT_VERSION:
        raise _fail(source, f"written by a newer bitgraph (format version {version}; this "
                            f"version reads up to {FORMAT_VERSION}): upgrade bitgraph")
    if version < 1:
        raise _fail(source, f"invalid format version {version}")
    if header_len > _MAX_HEADER or _PREFIX.size + header_len > size:
        raise _fail(source, "file is truncated or its header length is corrupt")
    blob = bytes(buffer[_PREFIX.size : _PREFIX.size + header_len])
    if zlib.crc32(blob) != header_crc:
        raise _fail(source, "header checksum mismatch (file is corrupted)")
    try:
        header = json.loads(blob)
        if not isinstance(header, dict) or not isinstance(header.get("sections"), list):
            raise _fail(source, "malformed header (not an index header)")
        sections = header.pop("sections")
        arrays = {}
        for s in sections:
            if not isinstance(s, dict) or not isinstance(s.get("name"), str) \
                    or s["name"] in arrays:
                raise _fail(source, "malformed header (bad or repeated section name)")
            dtype = np.dtype(s["dtype"])
            if dtype.kind not in "biuf" or dtype.itemsize > 8 or dtype.byteorder == ">":
                raise _fail(source, f"section {s['name']!r} has an unsupported dtype {dtype}")
            shape = tuple(int(d) for d in s["shape"])
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            offset, nbytes = int(s["offset"]), int(s["nbytes"])
            if nbytes != count * dtype.itemsize or offset < 0 or min(shape, default=0) < 0:
                raise _fail(source, f"section {s['name']!r} is inconsistent")
            if offset + nbytes > size:
                raise _fail(source, f"file is truncated (section {s['name']!r} ends at "
                                    f"{offset + nbytes}, file has {size} bytes)")
            arr = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(shape)
            if verify and _crc32(arr) != int(s["crc32"]):
                raise _fail(source, f"section {s['name']!r} checksum mismatch (file is corrupted)")
            arrays[s["name"]] = arr
    except IndexFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise _fail(source, f"malformed header ({exc})") from exc
    return header, arrays


def is_mapped(a: Any) -> bool:
    """Whether array ``a`` is (a view of) a memory map: memory the process does not hold."""
    while a is not None:
        if isinstance(a, (np.memmap, mmap_module.mmap)):
            return True
        # np.frombuffer over a mmap ends its base chain in a memoryview of the map
        a = a.obj if isinstance(a, memoryview) else getattr(a, "base", None)
    return False


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of an index file, without reading its sections (no checks beyond the
    header's own: :func:`read_index` validates the whole file)."""
    path = checked_path(path)
    try:
        fp = open(path, "rb")
    except OSError as exc:
        raise file_error(exc, "open the index file", path) from exc
    with fp:
        prefix = fp.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            return {}
        magic, _, header_len, _, _ = _PREFIX.unpack(prefix)
        if magic != MAGIC or header_len > _MAX_HEADER:
            return {}
        try:
            return dict(json.loads(fp.read(header_len)))
        except ValueError:
            return {}


def read_index(path: str | os.PathLike[str], *, mmap: bool = False, verify: bool = True
               ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Reads (or memory-maps) an index file. Arrays are read-only when mapped."""
    path = checked_path(path)
    try:
        with open(path, "rb") as fp:
            if mmap:
                if os.fstat(fp.fileno()).st_size == 0:
                    raise _fail(path, "file is empty")
                buffer: Any = mmap_module.mmap(fp.fileno(), 0, access=mmap_module.ACCESS_READ)
            else:
                buffer = bytearray(fp.read())
    except IndexFileError:
        raise
    except OSError as exc:
        raise file_error(exc, "read the index file", path) from exc
    return parse_index(buffer, path, verify=verify)


# --- opening an index -----------------------------------------------------------------------


# The header's "kind" -> the index class that reads the file. The index classes register
# themselves (this module sits below them and imports none); importing any bitgraph module runs
# the package's __init__, which imports every index module, so the table is complete before a
# file or pickle can be loaded.
_INDEX_KINDS: dict[str, Any] = {}


def register_index_kind(cls: Any) -> Any:
    """Class decorator: files whose header says ``kind == cls._kind`` load as ``cls`` (through
    ``cls._from_saved(meta, arrays, backend, verify)``)."""
    kind = cls._kind
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} has no index kind")
    if _INDEX_KINDS.get(kind, cls) is not cls:
        raise TypeError(f"index kind {kind!r} is already {_INDEX_KINDS[kind].__name__}'s")
    _INDEX_KINDS[kind] = cls
    return cls


def _index_class(kind: Any) -> Any:
    if not isinstance(kind, str) or kind not in _INDEX_KINDS:
        raise IndexFileError(f"unknown index kind {kind!r} in file")
    return _INDEX_KINDS[kind]


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
    path = checked_path(path)
    mapped = read_header(path).get("mapped_sections") or []
    if not (isinstance(mapped, list) and all(isinstance(m, str) for m in mapped)):
        raise IndexFileError(f"{path}: malformed header (mapped_sections must be a list of "
                             f"section names, got {mapped!r:.60})")
    if mapped and not mmap:
        # Sections the index keeps on disk (BinaryIndex re-rank vectors with rerank="mmap")
        # stay memory-mapped; everything else is read into memory as usual.
        meta, arrays = read_index(path, mmap=True, verify=verify)
        arrays = {k: (v if k in mapped else np.array(v)) for k, v in arrays.items()}
    else:
        meta, arrays = read_index(path, mmap=mmap, verify=verify)
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
    meta, arrays = parse_index(bytearray(blob), "<bytes>")
    return _index_class(meta.get("kind"))._from_saved(meta, arrays, backend)
