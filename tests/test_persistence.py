"""save / load / pickle: exact round trips (also memory-mapped and across backends), atomic
saves, and damaged files that must raise IndexFileError instead of crashing."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bitgraph as bg
from bitgraph import persistence

from bg_testutil import BACKENDS, METRICS, STORAGES, recall, reference_search

HERE = Path(__file__).resolve().parent


def _same(a, b):
    return np.array_equal(a.ids, b.ids) and np.array_equal(a.distances, b.distances)


def _make(kind, backend, metric, storage, dim=16):
    if kind == "hnsw":
        return bg.HNSWIndex(dim, metric=metric, storage=storage, M=8, ef_construction=60,
                            seed=5, backend=backend)
    return bg.FlatIndex(dim, metric=metric, storage=storage, backend=backend)


def _filled(kind, backend, metric, storage, x):
    """An index with history: removals, a re-added id, explicit and automatic ids."""
    index = _make(kind, backend, metric, storage, x.shape[1])
    index.add(x[:300], threads=1)
    index.remove(np.arange(0, 300, 7))
    index.add(x[300:] + 0.25, ids=np.arange(1000, 1000 + len(x) - 300), threads=1)
    index.add(x[:1] * 2.0, ids=[5], threads=1)  # replaces id 5
    return index


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_round_trip(tmp_path, backend, small, kind, metric, storage):
    x, q = small
    index = _filled(kind, backend, metric, storage, x)
    before = index.search(q, k=10, ef=50)
    path = tmp_path / "index.bg"
    index.save(path)
    for mmap in (False, True):
        loaded = bg.load(path, mmap=mmap, backend=backend)
        assert type(loaded) is type(index)
        assert (loaded.dim, loaded.metric, loaded.storage, loaded.backend) == (
            index.dim, index.metric, index.storage, backend)
        if kind == "hnsw":
            assert (loaded.M, loaded.ef_construction) == (index.M, index.ef_construction)
        assert len(loaded) == len(index)
        assert 0 not in loaded and 5 in loaded and 1000 in loaded
        assert _same(loaded.search(q, k=10, ef=50), before), f"mmap={mmap}"
        assert repr(loaded).split(", nbytes=")[0] == repr(index).split(", nbytes=")[0]


def test_loaded_index_keeps_working(tmp_path, backend, small):
    """After loading (also memory-mapped), add and remove work, automatic ids continue, and
    the file is never written (copy-on-write)."""
    x, q = small
    path = tmp_path / "index.bg"
    index = bg.HNSWIndex(16, metric="l2", M=8, backend=backend)
    index.add(x[:400], threads=1)
    index.save(path)
    digest = _sha(path)
    for mmap in (False, True):
        loaded = bg.load(path, mmap=mmap, backend=backend)
        if mmap:
            assert loaded.nbytes < index.nbytes  # mapped arrays are not counted
        loaded.remove(np.arange(50))
        new_ids = loaded.add(x[400:], threads=1)
        assert new_ids.tolist() == list(range(400, len(x)))
        assert len(loaded) == len(x) - 50
        res = loaded.search(x[:60], k=1)
        assert not np.isin(res.ids, np.arange(50)).any()
        assert (res.ids[50:, 0] == np.arange(50, 60)).all()
        assert _sha(path) == digest
    # the original is unaffected by changes to the loaded copies
    assert len(index) == 400 and 3 in index


def test_mmap_index_survives_overwrite_of_its_file(tmp_path, backend, small):
    x, q = small
    path = tmp_path / "index.bg"
    a = bg.HNSWIndex(16, metric="cosine", backend=backend)
    a.add(x, threads=1)
    a.save(path)
    mapped = bg.load(path, mmap=True, backend=backend)
    ref = mapped.search(q, k=5)
    b = bg.FlatIndex(16, metric="l2", backend=backend)
    b.add(x[:10])
    b.save(path)  # atomic rename: the mapped old file stays valid
    assert _same(mapped.search(q, k=5), ref)
    assert isinstance(bg.load(path, backend=backend), bg.FlatIndex)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="needs both backends")
@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_file_from_one_backend_loads_in_the_other(tmp_path, data, kind, storage):
    x, q = data
    truth = reference_search(x, q, 10, "l2")[0]
    for src, dst in (("native", "numba"), ("numba", "native")):
        index = _make(kind, src, "l2", storage, x.shape[1])
        index.add(x, threads=1)
        index.remove(np.arange(0, 3000, 10))
        path = tmp_path / f"{src}.bg"
        index.save(path)
        for mmap in (False, True):
            other = bg.load(path, mmap=mmap, backend=dst)
            assert other.backend == dst and len(other) == len(index)
            a, b = index.search(q, k=10, ef=64), other.search(q, k=10, ef=64)
            # the same stored bytes and graph: same neighbours up to float rounding of the
            # kernels (which may reorder a near-tie)
            assert (a.ids == b.ids).all(axis=1).mean() >= 0.98
            np.testing.assert_allclose(a.distances, b.distances, rtol=1e-5, atol=2e-3)
            assert not np.isin(b.ids, np.arange(0, 3000, 10)).any()
            keep = truth  # recall against the exact neighbours of the full set
            assert abs(recall(a.ids, keep) - recall(b.ids, keep)) <= 0.005
            # and it stays writable on the other backend
            other.add(x[:10] + 1.0, threads=1)
            assert len(other) == len(index) + 10


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_pickle_round_trip(backend, small, kind):
    x, q = small
    index = _filled(kind, backend, "ip", "float16", x)
    blob = pickle.dumps(index)
    clone = pickle.loads(blob)
    assert type(clone) is type(index) and len(clone) == len(index)
    assert clone.backend == backend
    assert _same(clone.search(q, k=7), index.search(q, k=7))
    # the clone is independent and continues the automatic ids
    new = clone.add(x[:3] - 1.0)
    assert new.min() >= 1000 + len(x) - 300
    assert len(index) == len(clone) - 3
    # empty indexes pickle too
    empty = pickle.loads(pickle.dumps(_make(kind, backend, "l2", "int8")))
    assert len(empty) == 0 and (empty.search(q, k=2).ids == -1).all()


def test_loads_reads_file_bytes(tmp_path, backend, small):
    x, q = small
    index = _filled("hnsw", backend, "l2", "int8", x)
    index.save(tmp_path / "i.bg")
    clone = bg.loads((tmp_path / "i.bg").read_bytes(), backend=backend)
    assert _same(clone.search(q, k=6), index.search(q, k=6))
    with pytest.raises(bg.IndexFileError, match="magic"):
        bg.loads(pickle.dumps(index))  # a pickle stream is not an index file


def test_pickle_keeps_only_an_explicit_backend(small):
    x, _ = small
    default = bg.FlatIndex(16)
    default.add(x[:5])
    assert pickle.loads(pickle.dumps(default)).backend == default.backend
    for name in BACKENDS:
        explicit = bg.FlatIndex(16, backend=name)
        explicit.add(x[:5])
        assert pickle.loads(pickle.dumps(explicit)).backend == name

def test_pickles_naming_the_old_loading_module_still_load(small):
    """Before bitgraph.persistence held load / loads, a pickled index was a call of
    ``bitgraph.loading.loads(bytes)``; such pickles must keep loading."""
    x, q = small
    index = bg.FlatIndex(16, metric="l2")
    index.add(x[:50])
    new = pickle.dumps(index, protocol=2)
    assert b"cbitgraph.persistence\nloads\n" in new  # protocol 2 names a global as text
    old = new.replace(b"cbitgraph.persistence\nloads\n", b"cbitgraph.loading\nloads\n")
    clone = pickle.loads(old)
    assert _same(clone.search(q, k=5), index.search(q, k=5))



def test_pickle_of_mmap_loaded_index(tmp_path, backend, small):
    x, q = small
    index = bg.HNSWIndex(16, backend=backend)
    index.add(x)
    index.save(tmp_path / "a.bg")
    mapped = bg.load(tmp_path / "a.bg", mmap=True, backend=backend)
    clone = pickle.loads(pickle.dumps(mapped))
    assert _same(clone.search(q, k=4), index.search(q, k=4))


def test_empty_index_round_trip(tmp_path, backend):
    for index in (bg.HNSWIndex(4, backend=backend), bg.FlatIndex(4, backend=backend)):
        index.save(tmp_path / "e.bg")
        for mmap in (False, True):
            loaded = bg.load(tmp_path / "e.bg", mmap=mmap, backend=backend)
            assert len(loaded) == 0
            assert (loaded.search(np.ones((2, 4)), k=3).ids == -1).all()
            loaded.add(np.eye(4))
            assert loaded.search(np.eye(4), k=1).ids[:, 0].tolist() == [0, 1, 2, 3]


def test_save_accepts_str_and_pathlike(tmp_path, backend, small):
    x, q = small
    index = bg.FlatIndex(16, backend=backend)
    index.add(x)
    index.save(str(tmp_path / "s.bg"))
    index.save(tmp_path / "p.bg")
    assert (tmp_path / "s.bg").read_bytes() == (tmp_path / "p.bg").read_bytes()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        index.save("relative.bg")  # no directory part
    finally:
        os.chdir(cwd)
    assert _same(bg.load(tmp_path / "relative.bg", backend=backend).search(q, k=3),
                 index.search(q, k=3))


# --- atomic save ------------------------------------------------------------------------------

def _leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_old_file(tmp_path, backend, small, monkeypatch, error):
    x, q = small
    path = tmp_path / "index.bg"
    old = bg.HNSWIndex(16, backend=backend)
    old.add(x[:100])
    old.save(path)
    digest = _sha(path)
    new = bg.HNSWIndex(16, backend=backend)
    new.add(x)

    real_write = persistence.write_index

    def failing_write(fp, meta, arrays):
        # write a real prefix of the new file, then fail midway
        real_write(fp, meta, {k: v for k, v in list(arrays.items())[:2]})
        raise error

    monkeypatch.setattr(persistence, "write_index", failing_write)
    with pytest.raises(type(error)):
        new.save(path)
    monkeypatch.undo()
    assert _sha(path) == digest
    assert _leftovers(tmp_path) == []
    assert len(bg.load(path, backend=backend)) == 100
    # a later save works and replaces the file
    new.save(path)
    assert len(bg.load(path, backend=backend)) == len(x)
    assert _leftovers(tmp_path) == []


def test_failed_rename_leaves_no_temp_file(tmp_path, backend, monkeypatch):
    index = bg.FlatIndex(4, backend=backend)
    index.add(np.eye(4))

    def failing_replace(src, dst):
        raise PermissionError("read-only destination")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        index.save(tmp_path / "x.bg")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_directory(tmp_path, backend):
    index = bg.FlatIndex(4, backend=backend)
    with pytest.raises(FileNotFoundError):
        index.save(tmp_path / "no" / "such" / "dir" / "x.bg")


# --- damaged files ------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, small):
    x, q = small
    index = bg.HNSWIndex(16, metric="l2", M=8)
    index.add(x)
    path = tmp_path / "good.bg"
    index.save(path)
    return path, path.read_bytes(), index.search(q, k=5), q


def _write(tmp_path, data, name="bad.bg"):
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return p


def test_what_verify_does(tmp_path, backend, saved):
    """verify=True checks every section's CRC-32: a flipped bit in the vectors is caught.
    verify=False skips that (the graph is still range-checked): the file loads, and the
    damaged vector changes distances."""
    path, blob, ref, q = saved
    header = json.loads(blob[24:24 + struct.unpack_from("<I", blob, 12)[0]])
    vec = next(s for s in header["sections"] if s["name"] == "vectors")
    data = bytearray(blob)
    data[vec["offset"] + 2] ^= 0x40  # inside the first float of row 0
    p = _write(tmp_path, data)
    with pytest.raises(bg.IndexFileError, match="vectors.*checksum"):
        bg.load(p, backend=backend)
    with pytest.raises(bg.IndexFileError, match="checksum"):
        bg.load(p, mmap=True, backend=backend)
    original_row0 = np.frombuffer(blob, np.uint8, vec["shape"][1], vec["offset"])
    for mmap in (False, True):
        unverified = bg.load(p, verify=False, mmap=mmap, backend=backend)
        assert unverified.search(q, k=5).ids.shape == ref.ids.shape
        row0 = unverified._core.get_state()["vectors"][0]
        assert (row0 != original_row0).sum() == 1  # the damage was loaded as it is


def test_wrong_magic(tmp_path, backend, saved):
    _, blob, _, _ = saved
    p = _write(tmp_path, b"NOTGRAPH" + blob[8:])
    with pytest.raises(bg.IndexFileError, match="magic") as err:
        bg.load(p, backend=backend)
    assert isinstance(err.value, OSError)
    with pytest.raises(bg.IndexFileError, match="magic"):
        bg.load(_write(tmp_path, b"\x93NUMPY" + bytes(100), "npy.bg"), backend=backend)


def test_newer_format_version(tmp_path, backend, saved):
    _, blob, _, _ = saved
    data = bytearray(blob)
    struct.pack_into("<I", data, 8, persistence.FORMAT_VERSION + 1)
    with pytest.raises(bg.IndexFileError, match="newer.*upgrade"):
        bg.load(_write(tmp_path, data), backend=backend)
    struct.pack_into("<I", data, 8, 0)
    with pytest.raises(bg.IndexFileError, match="version 0"):
        bg.load(_write(tmp_path, data), backend=backend)


@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_files(tmp_path, backend, saved, mmap):
    _, blob, _, _ = saved
    header_end = 24 + struct.unpack_from("<I", blob, 12)[0]
    for cut in (0, 5, 23, 24, 100, header_end - 1, header_end, header_end + 64,
                len(blob) // 2, len(blob) - 1):
        p = _write(tmp_path, blob[:cut], f"cut{cut}.bg")
        with pytest.raises(bg.IndexFileError, match="truncated|empty|header"):
            bg.load(p, mmap=mmap, backend=backend)
    with pytest.raises(bg.IndexFileError):
        bg.loads(blob[:-1])


def test_not_a_file(tmp_path, backend):
    with pytest.raises(FileNotFoundError):
        bg.load(tmp_path / "missing.bg", backend=backend)
    with pytest.raises(IsADirectoryError):
        bg.load(tmp_path, backend=backend)
    with pytest.raises(bg.IndexFileError):
        bg.loads(b"garbage" * 10)


def test_header_corruption_is_caught(tmp_path, backend, saved):
    _, blob, _, _ = saved
    data = bytearray(blob)
    data[40] ^= 0x01  # inside the JSON header
    with pytest.raises(bg.IndexFileError, match="header checksum"):
        bg.load(_write(tmp_path, data), backend=backend, verify=False)
    data = bytearray(blob)
    struct.pack_into("<I", data, 12, 2**31)  # absurd header length
    with pytest.raises(bg.IndexFileError, match="header length"):
        bg.load(_write(tmp_path, data), backend=backend)


@pytest.fixture(scope="module", params=BACKENDS)
def damage_report(request, tmp_path_factory):
    """Runs _corrupt_worker.py (crafted inconsistent files + 200 random corruptions and
    truncations) in a child process, so that a crash is a test failure, not a dead pytest."""
    backend = request.param
    workdir = tmp_path_factory.mktemp(f"damage-{backend}")
    out = workdir / "report.json"
    proc = subprocess.run(
        [sys.executable, str(HERE / "_corrupt_worker.py"), backend, str(workdir), "200", "7",
         str(out)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, BITGRAPH_BACKEND=backend))
    assert proc.returncode == 0, (
        f"the worker died (rc={proc.returncode}; negative = killed by a signal, e.g. -11 "
        f"segfault):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def test_random_corruption_never_crashes(damage_report):
    assert damage_report["failures"] == []
    outcomes = damage_report["outcomes"]
    # the loop really damaged files: most loads must have been refused
    assert outcomes.get("raised IndexFileError", 0) >= 250, outcomes


def test_crafted_inconsistent_files_are_refused(damage_report):
    crafted = damage_report["crafted"]
    assert len(crafted) >= 70
    assert not [name for name, outcome in crafted.items() if outcome == "FAILED"]
    assert crafted["link out of range mmap=False"] == "raised"
    assert crafted["duplicate live label (flat) mmap=True"] == "raised"


# --- arguments, temporaries, permissions -------------------------------------------------------

@pytest.mark.parametrize("bad", [None, 3, 2.5, ["a.bg"], b""])
def test_load_rejects_what_is_not_a_path(bad, tmp_path):
    r, w = os.pipe()  # bg.load(3) once took 3 as a file descriptor and closed it
    try:
        with pytest.raises(bg.BitgraphTypeError, match="path"):
            bg.load(bad if bad != 3 else r)
        os.fstat(r)  # still open
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("bad, match", [(None, "NoneType"), ("text", "bitgraph.load"),
                                        (3, "int"), (np.zeros(3), "ndarray")])
def test_loads_rejects_what_is_not_bytes(bad, match):
    with pytest.raises(bg.BitgraphTypeError, match=match):
        bg.loads(bad)


def test_save_removes_temporaries_of_dead_writers(tmp_path, backend):
    index = bg.FlatIndex(4, backend=backend)
    index.add(np.eye(4))
    target = tmp_path / "x.bg"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".x.bg.{dead}.0123abcd.tmp"  # a writer killed mid-save
    mine = tmp_path / f".x.bg.{os.getpid()}.0123abcd.tmp"  # this process: maybe still saving
    legacy = tmp_path / ".x.bg.k2j4h5g6.tmp"  # an older version's, an hour old
    other = tmp_path / f".y.bg.{dead}.0123abcd.tmp"  # another target's
    for p in (stale, mine, legacy, other):
        p.write_bytes(b"partial")
    os.utime(legacy, (0, 0))
    index.save(target)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([target.name, mine.name, other.name])
    assert len(bg.load(target, backend=backend)) == 4


def test_save_killed_mid_write_leaves_nothing_behind_after_the_next_save(tmp_path):
    """kill -9 during a save: the old file stays whole, and the next save cleans up."""
    target = tmp_path / "big.bg"
    script = f"""
import numpy as np, bitgraph as bg, sys
index = bg.FlatIndex(64)
index.add(np.random.default_rng(0).normal(size=(20000, 64)))
index.save({str(target)!r})
print("saved", flush=True)
while True:
    index.save({str(target)!r})
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "saved"
        import time
        time.sleep(0.3)
    finally:
        proc.kill()
        proc.wait()
    assert len(bg.load(target)) == 20000
    bg.load(target).save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bg"]


def test_saved_files_follow_the_umask(tmp_path):
    index = bg.FlatIndex(4)
    index.add(np.eye(4))
    old = os.umask(0o022)
    try:
        index.save(tmp_path / "a.bg")
        os.umask(0o077)
        index.save(tmp_path / "b.bg")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bg").stat().st_mode & 0o777 == 0o644  # others may read it
    assert (tmp_path / "b.bg").stat().st_mode & 0o777 == 0o600


def test_file_errors_are_bitgraph_errors_of_the_builtin_kind(tmp_path):
    index = bg.FlatIndex(4)
    with pytest.raises(bg.IndexFileNotFoundError) as err:
        index.save(tmp_path / "missing" / "x.bg")
    assert isinstance(err.value, FileNotFoundError) and err.value.errno == 2
    with pytest.raises(bg.IndexFileError) as err:
        bg.load(tmp_path)
    assert isinstance(err.value, IsADirectoryError)


def _rewritten(tmp_path, index, edit_meta=None, edit_arrays=None, name="edited.bg"):
    """Saves ``index``, edits its metadata / arrays, and writes them back with valid CRCs."""
    from _corrupt_worker import _rewrite

    src, out = tmp_path / "src.bg", tmp_path / name
    index.save(src)
    _rewrite(str(src), str(out), edit_meta, edit_arrays)
    return out


def test_header_values_that_cannot_be_right(tmp_path, backend):
    empty = bg.HNSWIndex(4, backend=backend)
    x = np.random.default_rng(0).standard_normal((2000, 4)).astype(np.float32)
    full = bg.HNSWIndex(4, M=4, backend=backend)
    full.add(x)

    def upper_to_level0(a):  # upper links lead to a node without upper levels (segfaulted numba)
        blocks = a["upper"].reshape(-1, 5)
        blocks[:, 1] = int(np.flatnonzero(a["levels"] == 0)[0])
        blocks[:, 0] = np.maximum(blocks[:, 0], 1)

    cases = [
        (empty, lambda m: m["scalars"].update(max_level=2**31 - 1), None),  # segfaulted numba
        (full, lambda m: m["scalars"].update(entry_point=float("inf")), None),
        (full, lambda m: m.update(next_id=float("nan")), None),
        (full, lambda m: m["params"].update(ef_construction=2**64), None),
        (full, lambda m: m.update(mapped_sections=-1), None),
        (full, lambda m: m.update(planner={"exact_ratio": "x"}), None),
        (full, None, upper_to_level0),
    ]
    for i, (index, edit_meta, edit_arrays) in enumerate(cases):
        path = _rewritten(tmp_path, index, edit_meta, edit_arrays, f"case{i}.bg")
        for mmap in (False, True):
            with pytest.raises(bg.IndexFileError):
                bg.load(path, mmap=mmap, backend=backend)


def test_planner_settings_survive_save_and_pickle(tmp_path, backend):
    index = bg.FlatIndex(4, backend=backend)
    index.add(np.eye(4))
    index.planner = bg.PlannerConfig(exact_ratio=0.5, seeds=3)
    index.save(tmp_path / "p.bg")
    assert bg.load(tmp_path / "p.bg", backend=backend).planner == index.planner
    assert pickle.loads(pickle.dumps(index)).planner == index.planner
