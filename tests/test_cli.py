"""The ``bitgraph`` command line: bad files, paths and library errors end in a one-line
message and a non-zero exit, never a traceback, and checks on output paths happen before any
work is done.

Most tests use click's CliRunner; ``test_console_script_*`` run the installed ``bitgraph``
executable in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from bitgraph import cli
from bitgraph.hnsw import HNSWIndex


def _run(*args: object) -> Result:
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def _assert_clean_error(result, *needles: str, code: int | None = None) -> str:
    """The command failed with a message (no traceback) that contains every needle."""
    text = result.output
    assert result.exit_code != 0, text
    if code is not None:
        assert result.exit_code == code, text
    # CliRunner turns an exception that escaped click into exit code 1 + result.exception
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"uncaught {result.exception!r}\n{text}"
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    return text


@pytest.fixture()
def vectors(tmp_path: Path) -> Path:
    path = tmp_path / "vectors.npy"
    np.save(path, np.random.default_rng(0).standard_normal((300, 8), dtype=np.float32))
    return path


@pytest.fixture()
def index_file(tmp_path: Path, vectors: Path) -> Path:
    path = tmp_path / "index.bg"
    result = _run("build", vectors, path, "--no-progress")
    assert result.exit_code == 0, result.output
    return path


def _forbid(monkeypatch, owner, name: str) -> None:
    def boom(*args, **kwargs):
        raise AssertionError(f"{name} ran although the command should have stopped first")
    monkeypatch.setattr(owner, name, boom)


# --------------------------------------------------------------------------- output paths

def test_build_into_missing_directory_fails_before_building(tmp_path, vectors, monkeypatch):
    _forbid(monkeypatch, HNSWIndex, "add")
    _forbid(monkeypatch, cli, "read_vectors")
    out = tmp_path / "no" / "such" / "dir" / "index.bg"
    text = _assert_clean_error(_run("build", vectors, out), "INDEX_PATH", "does not exist",
                               str(out.parent), code=2)
    assert not out.parent.exists()
    assert text.strip().splitlines()[-1].startswith("Error:")


def test_build_into_a_file_as_directory_fails(tmp_path, vectors):
    out = vectors / "index.bg"          # vectors.npy is a file, not a directory
    _assert_clean_error(_run("build", vectors, out), "is not a directory", code=2)


def test_build_refuses_to_overwrite_without_force(tmp_path, vectors, index_file, monkeypatch):
    before = index_file.read_bytes()
    with monkeypatch.context() as m:
        _forbid(m, HNSWIndex, "add")
        _assert_clean_error(_run("build", vectors, index_file, "--no-progress"),
                            "already exists", "--force", code=2)
    assert index_file.read_bytes() == before
    other = index_file.parent / "other.npy"
    np.save(other, np.ones((5, 8), np.float32) + np.arange(8, dtype=np.float32))
    result = _run("build", other, index_file, "--no-progress", "--force", "--kind", "flat")
    assert result.exit_code == 0, result.output
    from bitgraph import load
    assert len(load(index_file)) == 5


def test_build_help_documents_force():
    result = _run("build", "--help")
    assert result.exit_code == 0 and "--force" in result.output


def test_build_save_oserror_is_a_clean_message(tmp_path, vectors, monkeypatch):
    def no_space(self, path):
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr(HNSWIndex, "save", no_space)
    out = tmp_path / "index.bg"
    _assert_clean_error(_run("build", vectors, out, "--no-progress"),
                        "cannot save the index", "No space left on device", code=1)


def test_search_out_into_missing_directory_fails_before_searching(index_file, vectors,
                                                                    monkeypatch, tmp_path):
    _forbid(monkeypatch, cli, "load")
    out = tmp_path / "missing" / "r.npz"
    _assert_clean_error(_run("search", index_file, vectors, "--out", out),
                        "--out", "does not exist", code=2)


def test_search_out_write_error_is_a_clean_message(index_file, vectors, tmp_path, monkeypatch):
    real_open = open

    def failing_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).endswith("r.npz"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *args, **kwargs)
    monkeypatch.setattr("builtins.open", failing_open)
    _assert_clean_error(_run("search", index_file, vectors, "--out", tmp_path / "r.npz"),
                        "cannot write the results", "Permission denied", code=1)


def test_search_out_writes_exactly_the_given_path(index_file, vectors, tmp_path):
    out = tmp_path / "result.out"      # numpy would write result.out.npz given a name
    result = _run("search", index_file, vectors, "-k", "3", "--out", out, "--show", "0")
    assert result.exit_code == 0, result.output
    assert out.is_file() and not (tmp_path / "result.out.npz").exists()
    with np.load(out) as data:
        assert data["ids"].shape == (300, 3)
        assert (data["ids"][:, 0] == np.arange(300)).all()


# --------------------------------------------------------------------------- vector files

def _write(path: Path, make) -> Path:
    make(path)
    return path


def _npy(arr, **kw):
    return lambda p: np.save(p, arr, **kw)


def _raw(data: bytes):
    return lambda p: p.write_bytes(data)


def _fvecs(rows: np.ndarray):
    return lambda p: rows.astype("<i4").tofile(p)


_GOOD = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
_nan = _GOOD.copy()
_nan[2, 1] = np.nan
_inf = _GOOD.copy()
_inf[3, 0] = np.inf
_fv = np.zeros((3, 5), np.int32)
_fv[:, 0] = 4
_fv_mixed = _fv.copy()
_fv_mixed[1, 0] = 3

BAD_FILES = {
    "text.npy": (_raw(b"hello, I am not an array\n"), "not a .npy file"),
    "empty-file.npy": (_raw(b""), "not a .npy file"),
    "object.npy": (_npy(np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
                   "Python objects"),
    "strings.npy": (_npy(np.array([["a", "b"]])), "<U1 values"),
    "complex.npy": (_npy(np.ones((2, 3), np.complex64)), "complex64 values"),
    "bool.npy": (_npy(np.ones((2, 3), bool)), "bool values"),
    "record.npy": (_npy(np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])), "values"),
    "vector.npy": (_npy(np.ones(5, np.float32)), "expected a 2-D matrix"),
    "cube.npy": (_npy(np.ones((2, 2, 2), np.float32)), "expected a 2-D matrix"),
    "no-rows.npy": (_npy(np.zeros((0, 8), np.float32)), "empty"),
    "no-columns.npy": (_npy(np.zeros((4, 0), np.float32)), "empty"),
    "nan.npy": (_npy(_nan), "row 2 holds NaN or infinity"),
    "inf.npy": (_npy(_inf), "row 3 holds NaN or infinity"),
    "huge.npy": (_npy(np.full((2, 3), 1e300)), "float32 range"),
    "truncated.npy": (lambda p: (np.save(p, _GOOD), p.write_bytes(p.read_bytes()[:-8])),
                      "truncated .npy file"),
    "empty.fvecs": (_raw(b""), "empty .fvecs file"),
    "odd-size.fvecs": (_raw(b"abcdef"), "not a whole number of 4-byte values"),
    "text.fvecs": (_raw(b"hello world!"), "dimension field"),
    "ragged.fvecs": (_raw(np.array([2, 0, 0, 2, 0], "<i4").tobytes()),
                     "not a whole number of rows"),
    "mixed.fvecs": (_fvecs(_fv_mixed), "row 1 has dimension field 3"),
    "nan.fvecs": (lambda p: np.concatenate(
        [np.full((2, 1), 3, "<i4").view("<f4"), np.full((2, 3), np.nan, "<f4")],
        axis=1).tofile(p), "row 0 holds NaN"),
    "vectors.txt": (_raw(b"1 2 3\n"), "expected a .npy or .fvecs file"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_vector_file_is_a_clear_error(tmp_path, name, monkeypatch):
    make, needle = BAD_FILES[name]
    path = _write(tmp_path / name, make)
    _forbid(monkeypatch, HNSWIndex, "add")
    text = _assert_clean_error(_run("build", path, tmp_path / "i.bg", "--no-progress"),
                               "VECTORS", name, needle, code=2)
    assert "allow_pickle" not in text and "pickle" not in text.lower()


@pytest.mark.parametrize("name", ["text.npy", "object.npy", "vector.npy", "nan.fvecs"])
def test_bad_query_file_is_a_clear_error(tmp_path, index_file, name):
    make, needle = BAD_FILES[name]
    path = _write(tmp_path / name, make)
    _assert_clean_error(_run("search", index_file, path), "QUERIES", needle, code=2)


def test_read_vectors_fvecs_round_trip(tmp_path):
    x = np.random.default_rng(2).standard_normal((6, 5)).astype("<f4")
    rows = np.concatenate([np.full((6, 1), 5, "<i4").view("<f4"), x], axis=1)
    path = tmp_path / "x.fvecs"
    rows.tofile(path)
    np.testing.assert_array_equal(cli.read_vectors(path), x)


def test_read_vectors_accepts_integers_and_float64(tmp_path):
    for arr in (np.arange(12, dtype=np.int16).reshape(3, 4), np.ones((3, 4), np.float64)):
        path = tmp_path / "m.npy"
        np.save(path, arr)
        np.testing.assert_array_equal(cli.read_vectors(path), arr)


def test_unreadable_vector_file_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "v.npy"
    np.save(path, _GOOD)
    real_open = open

    def denied(p, *args, **kwargs):
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *args, **kwargs)
    monkeypatch.setattr("builtins.open", denied)
    _assert_clean_error(_run("build", path, tmp_path / "i.bg"), "cannot read", "Permission denied",
                        code=2)


# --------------------------------------------------------------------------- library errors

def test_library_error_in_build_is_a_clean_message(tmp_path):
    path = tmp_path / "zeros.npy"
    np.save(path, np.zeros((10, 4), np.float32))           # cosine of a zero row: undefined
    _assert_clean_error(_run("build", path, tmp_path / "i.bg", "--no-progress"),
                        "cannot build the index", "BitgraphValueError", code=1)
    assert not (tmp_path / "i.bg").exists()


def test_library_error_in_search_is_a_clean_message(tmp_path, index_file):
    q = tmp_path / "q.npy"
    np.save(q, np.ones((2, 3), np.float32))                 # the index has dimension 8
    _assert_clean_error(_run("search", index_file, q), "cannot search", "dimension 3",
                        "expected 8", code=1)


def test_not_an_index_file_is_a_clean_message(tmp_path, vectors):
    _assert_clean_error(_run("search", vectors, vectors), "cannot load the index",
                        "IndexFileError", code=1)


def test_oserror_while_loading_is_a_clean_message(index_file, vectors, monkeypatch):
    def io_error(*args, **kwargs):
        raise OSError(5, "Input/output error", str(index_file))
    monkeypatch.setattr(cli, "load", io_error)
    _assert_clean_error(_run("search", index_file, vectors), "cannot load the index",
                        "Input/output error", code=1)


def test_out_of_range_options_are_usage_errors(index_file, vectors):
    for args in (["-k", "0"], ["--ef", "0"], ["--threads", "0"]):
        _assert_clean_error(_run("search", index_file, vectors, *args), "range", code=2)


def test_flat_build_and_search_work(tmp_path, vectors):
    out = tmp_path / "flat.bg"
    result = _run("build", vectors, out, "--kind", "flat", "--metric", "l2", "--no-progress")
    assert result.exit_code == 0, result.output
    result = _run("search", out, vectors, "-k", "1", "--show", "1")
    assert result.exit_code == 0 and "query 0: 0:" in result.output


def test_ivf_build_and_search_work(tmp_path, vectors):
    out = tmp_path / "ivf.bg"
    result = _run("build", vectors, out, "--kind", "ivf", "--metric", "l2", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "IVFIndex" in result.output
    result = _run("search", out, vectors, "-k", "1", "--show", "1", "--ef", "1000")
    assert result.exit_code == 0 and "query 0: 0:" in result.output
    result = _run("build", vectors, tmp_path / "x.bg", "--kind", "ivf", "--storage", "int8")
    assert result.exit_code != 0 and "float32" in result.output


# --------------------------------------------------------------------------- bench options

@pytest.fixture()
def fake_suite(monkeypatch):
    """bench.run_suite.run_suite replaced by a recorder: no benchmark runs."""
    run_suite = cli._import_bench()
    calls: list[dict] = []

    def record(**kwargs):
        calls.append(kwargs)
        return {"meta": {"skipped": {}}, "rows": [], "tables": {"t": "a table"}, "out": None,
                "plot": None}
    monkeypatch.setattr(run_suite, "run_suite", record)
    return calls


def test_bench_defaults_to_three_interleaved_repeats(fake_suite):
    result = _run("bench")
    assert result.exit_code == 0, result.output
    assert fake_suite[0]["repeats"] == 3 and "a table" in result.output


def test_bench_full_keeps_explicit_options(fake_suite):
    assert _run("bench", "--full", "--repeats", "5").exit_code == 0
    assert _run("bench", "--full").exit_code == 0
    explicit, full = fake_suite
    assert explicit["repeats"] == 5 and explicit["max_base"] is None
    assert full["repeats"] == 3 and full["libs"] == "all" and full["efs"] is None


@pytest.mark.parametrize("args, needle", [
    (["--ef", "16,x"], "'--ef'"), (["--ef", "0"], "'--ef'"), (["--libs", "nope"], "nope"),
    (["--threads", "0"], "'--threads'"), (["--dataset", "nope"], "'--dataset'"),
    (["--repeats", "0"], "'--repeats'"), (["--out", "/no/such/dir/r.json"], "does not exist"),
])
def test_bench_bad_options_fail_before_running(fake_suite, args, needle):
    _assert_clean_error(_run("bench", *args), needle, code=2)
    assert not fake_suite


# --------------------------------------------------------------------------- console script

def _console_script() -> str:
    here = Path(sys.executable).with_name("bitgraph")
    found = str(here) if here.exists() else shutil.which("bitgraph")
    if not found:
        pytest.skip("the bitgraph console script is not installed")
    return found


def test_console_script_missing_output_directory(tmp_path, vectors):
    proc = subprocess.run([_console_script(), "build", str(vectors),
                           str(tmp_path / "nope" / "index.bg")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "does not exist" in proc.stderr


def test_console_script_build_and_search(tmp_path, vectors):
    exe = _console_script()
    out = tmp_path / "index.bg"
    kw = dict(capture_output=True, text=True, timeout=120, cwd=tmp_path)
    proc = subprocess.run([exe, "build", str(vectors), str(out), "--no-progress"], **kw)
    assert proc.returncode == 0, proc.stderr
    again = subprocess.run([exe, "build", str(vectors), str(out), "--no-progress"], **kw)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    proc = subprocess.run([exe, "search", str(out), str(vectors), "-k", "2", "--show", "1"], **kw)
    assert proc.returncode == 0 and "query 0: 0:" in proc.stdout, proc.stderr


def test_serve_probe_margin_needs_a_sharded_index(tmp_path):
    result = _run("serve", "--data-dir", tmp_path, "--probe-margin", "0.2")
    _assert_clean_error(result, "--probe-margin applies to a sharded index", code=2)
    result = _run("serve", "--ray", tmp_path, "--probe-margin", "-1")
    _assert_clean_error(result, "--probe-margin", code=2)
