"""A write-ahead log: framed, checksummed records, each fsync'd before the write is answered.

File layout: an 8-byte magic, then records. A record is a 16-byte header
``<length u32> <crc32 u32> <seq u64>`` (little-endian; the CRC covers seq and body) and
``length`` bytes of body. A crash can only tear the *last* record (every append is fsync'd
before the next begins), so on open a bad record at the end is cut off; a bad record followed
by more data is corruption and raises instead of silently dropping acknowledged writes.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"BGWAL\x00\x01\n"
_HEADER = struct.Struct("<IIQ")
MAX_RECORD_BYTES = 1 << 31  # a length beyond this is a torn or corrupt header


class WalCorruptError(RuntimeError):
    """The log has a damaged record that is not the last one: acknowledged writes would be
    lost by reading on."""


@dataclass(frozen=True)
class WalRecord:
    seq: int
    body: bytes


def fsync_dir(path: Path) -> None:
    """Makes a create / rename / delete inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crc(seq: int, body: bytes) -> int:
    return zlib.crc32(body, zlib.crc32(struct.pack("<Q", seq)))


class WriteAheadLog:
    """Appends records durably and reads them back. Not thread-safe: the collection
    serialises its writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.records: list[WalRecord] = []
        self.dropped_tail_bytes = 0
        fresh = not self.path.exists()
        self._file = open(self.path, "a+b")
        if fresh or self.path.stat().st_size == 0:
            self._file.write(MAGIC)
            self._sync()
            fsync_dir(self.path.parent)
        else:
            self.records = list(self._read_all())
        self._file.seek(0, os.SEEK_END)

    @property
    def nbytes(self) -> int:
        return self._file.tell()

    def _read_all(self) -> Iterator[WalRecord]:
        with open(self.path, "rb") as f:
            data = f.read()
        if not data.startswith(MAGIC):
            if MAGIC.startswith(data):  # torn while writing the magic of a new log
                self._truncate(0, len(data))
                self._file.write(MAGIC)
                self._sync()
                return
            raise WalCorruptError(f"{self.path}: not a bitgraph write-ahead log")
        pos = len(MAGIC)
        while pos < len(data):
            bad = self._bad_record_at(data, pos)
            if bad:
                if not self._is_tail(data, pos):
                    raise WalCorruptError(
                        f"{self.path}: record at byte {pos} is damaged ({bad}) and more "
                        "records follow; refusing to drop acknowledged writes")
                self._truncate(pos, len(data) - pos)
                return
            length, _, seq = _HEADER.unpack_from(data, pos)
            start = pos + _HEADER.size
            yield WalRecord(seq, data[start:start + length])
            pos = start + length

    @staticmethod
    def _bad_record_at(data: bytes, pos: int) -> str:
        if len(data) - pos < _HEADER.size:
            return "short header"
        length, crc, seq = _HEADER.unpack_from(data, pos)
        if length > MAX_RECORD_BYTES:
            return "impossible length"
        start = pos + _HEADER.size
        if start + length > len(data):
            return "short body"
        if _crc(seq, data[start:start + length]) != crc:
            return "checksum mismatch"
        return ""

    @staticmethod
    def _is_tail(data: bytes, pos: int) -> bool:
        """Whether the damaged record at ``pos`` can be a torn last append: nothing valid
        follows it. (A torn append leaves its own bytes, possibly zero-filled by the file
        system, and nothing after them.)"""
        scan = pos + 1
        while scan + _HEADER.size <= len(data):
            if not WriteAheadLog._bad_record_at(data, scan):
                return False
            scan += 1
        return True

    def _truncate(self, keep: int, dropped: int) -> None:
        self.dropped_tail_bytes = dropped
        self._file.truncate(keep)
        self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def append(self, seq: int, body: bytes) -> None:
        """Writes one record and returns once it is on stable storage."""
        if len(body) > MAX_RECORD_BYTES:
            raise ValueError(f"a write-ahead record holds at most {MAX_RECORD_BYTES} bytes")
        self._file.write(_HEADER.pack(len(body), _crc(seq, body), seq) + body)
        self._sync()

    def reset(self) -> None:
        """Empties the log (after a checkpoint made its records redundant)."""
        self._file.truncate(len(MAGIC))
        self._file.seek(0, os.SEEK_END)
        self._sync()
        self.records = []

    def close(self) -> None:
        self._file.close()
