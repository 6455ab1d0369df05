"""Backend selection (BITGRAPH_BACKEND, read once at import) and backend_info()."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

import bitgraph as bg
from bitgraph import _backend

from bg_testutil import BACKENDS

_REPORT = """
import json, bitgraph as bg
index = bg.HNSWIndex(4)
print(json.dumps({"info": bg.backend_info(), "index_backend": index.backend,
                  "core_module": type(index._core).__module__}))
"""

# Makes `import bitgraph._core` fail, as on a machine where the extension was not built.
_HIDE_NATIVE = """
import sys
class _NoNative:
    def find_spec(self, name, path=None, target=None):
        if name == "bitgraph._core":
            raise ImportError("simulated: native extension not built")
        return None
sys.meta_path.insert(0, _NoNative())
"""


def _run(code, backend_env=None, hide_native=False):
    env = dict(os.environ)
    env.pop("BITGRAPH_BACKEND", None)
    if backend_env is not None:
        env["BITGRAPH_BACKEND"] = backend_env
    src = (_HIDE_NATIVE if hide_native else "") + code
    return subprocess.run([sys.executable, "-c", src], capture_output=True, text=True,
                          env=env, timeout=120)


def _report(backend_env=None, hide_native=False):
    proc = _run(_REPORT, backend_env, hide_native)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_backend_info_in_this_process():
    info = bg.backend_info()
    assert set(info) == {"backend", "simd", "cuda", "cuda_device", "cuda_error", "threads",
                         "version", "available"}
    assert info["backend"] == _backend.BACKEND_NAME and info["backend"] in info["available"]
    assert info["available"] == BACKENDS
    assert info["cuda"] is False  # this suite's machines have no GPU (tests/cuda: gpu marker)
    assert info["threads"] == len(os.sched_getaffinity(0)) >= 1
    assert info["version"] == bg.__version__ == importlib.metadata.version("bitgraph")
    if info["backend"] == "native":
        from bitgraph import _core

        assert info["simd"] == _core.simd_level() in ("avx512", "avx2", "generic")
    else:
        assert info["simd"] == "numba"
    json.dumps(info)  # plain JSON-able values (the CLI prints it)


def test_get_backend():
    assert _backend.get_backend() is _backend.backend
    if "numba" in BACKENDS:
        import bitgraph._numba

        assert _backend.get_backend("numba") is bitgraph._numba
    with pytest.raises(bg.BackendUnavailableError):
        _backend.get_backend("opencl")


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
@pytest.mark.parametrize("value", ["numba", " NumBa "])
def test_env_selects_numba(value):
    rep = _report(value)
    assert rep["info"]["backend"] == "numba" and rep["info"]["simd"] == "numba"
    assert rep["index_backend"] == "numba"
    assert rep["core_module"].startswith("bitgraph._numba")


@pytest.mark.skipif("native" not in BACKENDS, reason="native extension not built")
@pytest.mark.parametrize("value", ["native", ""])
def test_env_selects_native_or_default(value):
    rep = _report(value)
    assert rep["info"]["backend"] == "native"
    assert rep["core_module"] == "bitgraph._core"


def test_env_cuda_is_unavailable():
    proc = _run("import bitgraph", "cuda")
    assert proc.returncode != 0
    assert "BackendUnavailableError" in proc.stderr
    assert "cuda backend is not built" in proc.stderr
    # and it is an ImportError, as a missing backend should be
    proc = _run("try:\n    import bitgraph\nexcept ImportError as e:\n"
                "    print(type(e).__name__)\n", "cuda")
    assert proc.returncode == 0 and proc.stdout.strip() == "BackendUnavailableError"


def test_env_bogus_value_is_a_clear_error():
    proc = _run("import bitgraph", "tpu")
    assert proc.returncode != 0
    assert "BITGRAPH_BACKEND must be one of native, numba, cuda, got 'tpu'" in proc.stderr


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
def test_without_native_extension_numba_is_the_default():
    rep = _report(hide_native=True)
    assert rep["info"]["backend"] == "numba" and rep["info"]["available"] == ["numba"]
    assert rep["core_module"].startswith("bitgraph._numba")
    proc = _run("import bitgraph", "native", hide_native=True)
    assert proc.returncode != 0
    assert "native backend is not available" in proc.stderr
    assert "BITGRAPH_BACKEND=numba" in proc.stderr  # says what to do instead


def test_cli_info_json():
    proc = subprocess.run([sys.executable, "-m", "bitgraph.cli", "info", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["backend"] == bg.backend_info()["backend"]
    assert info["version"] == bg.__version__


def test_numba_cache_is_dropped_when_any_source_changes(tmp_path):
    """Numba keys its cache by each function's own file; inlined kernels from other files
    would go stale, so the backend drops the whole cache when any source changes."""
    from bitgraph._numba._cache import drop_stale_cache

    (tmp_path / "kernels.py").write_text("x = 1\n")
    (tmp_path / "walk.py").write_text("y = 2\n")
    cache = tmp_path / "__pycache__"
    assert drop_stale_cache(tmp_path)          # no stamp yet: nothing trusted
    (cache / "walk.search-1.py311.nbi").write_text("index")
    (cache / "walk.search-1.py311.1.nbc").write_text("code")
    assert not drop_stale_cache(tmp_path)      # sources unchanged: the cache stays
    assert len(list(cache.glob("*.nb?"))) == 2
    (tmp_path / "kernels.py").write_text("x = 3\n")   # a callee changed, the caller did not
    assert drop_stale_cache(tmp_path)
    assert not list(cache.glob("*.nb?"))
