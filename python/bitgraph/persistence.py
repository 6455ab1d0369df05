"""The index file format: a self-describing header, then 64-byte aligned array sections.

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
then renamed over the destination, so a crash never leaves a half-written index behind.
Loading checks the magic, the version, the header CRC, the file size and (unless
``verify=False``) every section's CRC, and raises :class:`IndexFileError` on any mismatch.
"""

from __future__ import annotations

import io
import json
import mmap as mmap_module
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import IndexFileError

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


def save_atomic(path: str | os.PathLike[str], meta: dict[str, Any],
                arrays: dict[str, np.ndarray]) -> None:
    """Writes the index to ``path`` atomically (temporary file + fsync + rename)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fp:
            write_index(fp, meta, arrays)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def dumps(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
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
        sections = header.pop("sections")
        arrays = {}
        for s in sections:
            dtype = np.dtype(s["dtype"])
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
    except (KeyError, TypeError, ValueError) as exc:
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
    with open(path, "rb") as fp:
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
    path = os.fspath(path)
    with open(path, "rb") as fp:
        if mmap:
            if os.fstat(fp.fileno()).st_size == 0:
                raise _fail(path, "file is empty")
            buffer: Any = mmap_module.mmap(fp.fileno(), 0, access=mmap_module.ACCESS_READ)
        else:
            buffer = bytearray(fp.read())
    return parse_index(buffer, path, verify=verify)
