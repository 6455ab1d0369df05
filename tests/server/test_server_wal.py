"""The write-ahead log: round trips, a torn last record at every byte, corruption refused."""

from __future__ import annotations

import pytest
from bitgraph.server.wal import MAGIC, WalCorruptError, WriteAheadLog


def _write(path, bodies):
    wal = WriteAheadLog(path)
    for seq, body in enumerate(bodies, 1):
        wal.append(seq, body)
    wal.close()


def test_round_trip_and_reset(tmp_path):
    p = tmp_path / "wal.log"
    bodies = [b"", b"a", b"x" * 70_000, bytes(range(256))]
    _write(p, bodies)
    wal = WriteAheadLog(p)
    assert [(r.seq, r.body) for r in wal.records] == list(enumerate(bodies, 1))
    wal.reset()
    wal.append(9, b"after")
    wal.close()
    assert [(r.seq, r.body) for r in WriteAheadLog(p).records] == [(9, b"after")]


def test_a_torn_last_record_is_cut_at_every_byte(tmp_path):
    p = tmp_path / "wal.log"
    _write(p, [b"first", b"second record"])
    full = p.read_bytes()
    last = len(full) - (16 + len(b"second record"))
    for cut in range(last, len(full)):
        p.write_bytes(full[:cut])
        wal = WriteAheadLog(p)
        assert [r.body for r in wal.records] == [b"first"]
        assert wal.dropped_tail_bytes == cut - last
        wal.append(3, b"next")  # appends after the good records
        wal.close()
        assert [r.body for r in WriteAheadLog(p).records] == [b"first", b"next"]
    for cut in range(len(MAGIC)):  # torn while the magic was written
        p.write_bytes(full[:cut])
        assert WriteAheadLog(p).records == []


def test_zero_filled_tail_is_a_torn_record(tmp_path):
    p = tmp_path / "wal.log"
    _write(p, [b"one"])
    p.write_bytes(p.read_bytes() + b"\0" * 40)
    assert [r.body for r in WriteAheadLog(p).records] == [b"one"]


def test_damage_before_good_records_is_refused(tmp_path):
    p = tmp_path / "wal.log"
    _write(p, [b"one", b"two", b"three"])
    data = bytearray(p.read_bytes())
    data[len(MAGIC) + 16] ^= 0xFF  # inside the first body: its checksum fails
    p.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError, match="more records follow"):
        WriteAheadLog(p)
    p.write_bytes(b"NOTAWAL!" + bytes(data[8:]))
    with pytest.raises(WalCorruptError, match="not a bitgraph"):
        WriteAheadLog(p)
