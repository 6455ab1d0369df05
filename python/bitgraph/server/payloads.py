"""The payload file of a snapshot: every point's JSON payload, checksummed.

Layout: magic, count (u64), then per point id (i64), length (u32) and the JSON bytes; a CRC-32
of everything before it closes the file.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

MAGIC = b"BGPAYLD1"
_COUNT = struct.Struct("<Q")
_ENTRY = struct.Struct("<qI")
_CRC = struct.Struct("<I")


class PayloadFileError(RuntimeError):
    """A payload file that is damaged (its checksum or framing does not hold)."""


def write_payloads(path: Path, payloads: dict[int, bytes]) -> None:
    parts = [MAGIC, _COUNT.pack(len(payloads))]
    for i, p in payloads.items():
        parts.append(_ENTRY.pack(i, len(p)))
        parts.append(p)
    data = b"".join(parts)
    with open(path, "wb") as f:
        f.write(data + _CRC.pack(zlib.crc32(data)))
        f.flush()
        os.fsync(f.fileno())


def read_payloads(path: Path) -> dict[int, bytes]:
    data = Path(path).read_bytes()
    if len(data) < len(MAGIC) + _COUNT.size + _CRC.size or not data.startswith(MAGIC):
        raise PayloadFileError(f"{path}: not a bitgraph payload file")
    body, (crc,) = data[:-_CRC.size], _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(body) != crc:
        raise PayloadFileError(f"{path}: checksum mismatch (the file is damaged)")
    (count,) = _COUNT.unpack_from(body, len(MAGIC))
    pos = len(MAGIC) + _COUNT.size
    out: dict[int, bytes] = {}
    for _ in range(count):
        i, n = _ENTRY.unpack_from(body, pos)
        pos += _ENTRY.size
        out[i] = body[pos:pos + n]
        pos += n
    if pos != len(body):
        raise PayloadFileError(f"{path}: {len(body) - pos} bytes after the last entry")
    return out
