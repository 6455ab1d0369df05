"""The one place that decides which kernels run.

``native`` is the C++ extension ``bitgraph._core``; ``numba`` is the JIT fallback in
``bitgraph._numba``. ``BITGRAPH_BACKEND=native|numba|cuda`` forces a choice; asking for a
backend that is not available raises :class:`~bitgraph.errors.BackendUnavailableError` at
import instead of silently running something else. Without the variable, native is used when
the extension was built, numba otherwise.
"""

from __future__ import annotations

import os
from types import ModuleType

from .errors import BackendUnavailableError

BACKENDS = ("native", "numba", "cuda")


def _load_native() -> ModuleType:
    from . import _core  # built by CMake; missing when the native build was skipped or failed

    return _core


def _load_numba() -> ModuleType:
    from . import _numba

    return _numba


def load_backend(name: str) -> ModuleType:
    """Returns the backend module ``name`` or raises BackendUnavailableError."""
    if name == "native":
        try:
            return _load_native()
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the native backend is not available ({exc}); reinstall bitgraph with a C++17 "
                "compiler, or use BITGRAPH_BACKEND=numba"
            ) from exc
    if name == "numba":
        try:
            return _load_numba()
        except ImportError as exc:
            raise BackendUnavailableError(f"the numba backend is not available ({exc})") from exc
    if name == "cuda":
        # The CUDA kernels are not a whole-engine backend (graphs stay on the CPU): they run
        # per index, behind the same seam, for the exact scans.
        raise BackendUnavailableError(
            "the cuda backend is not built as a BITGRAPH_BACKEND (graph builds and walks run "
            "on the CPU): run the exact scans on a GPU per index with "
            "FlatIndex(..., device='cuda') or BinaryIndex(..., graph='flat', device='cuda')"
        )
    raise BackendUnavailableError(
        f"BITGRAPH_BACKEND must be one of {', '.join(BACKENDS)}, got {name!r}"
    )


def available_backends() -> list[str]:
    """Names of the backends that load on this machine, best first."""
    found = []
    for name in ("native", "numba"):
        try:
            load_backend(name)
            found.append(name)
        except BackendUnavailableError:
            pass
    return found


def _choose() -> tuple[str, ModuleType]:
    forced = os.environ.get("BITGRAPH_BACKEND", "").strip().lower()
    if forced:
        return forced, load_backend(forced)
    try:
        return "native", _load_native()
    except ImportError:
        return "numba", load_backend("numba")


BACKEND_NAME, backend = _choose()


def get_backend(name: str | None = None) -> ModuleType:
    """The default backend module, or the named one (tests run every API on each)."""
    return backend if name is None else load_backend(name)


def simd_level(module: ModuleType) -> str:
    """The SIMD level a backend module runs ("avx512", "avx2", "generic", or "numba")."""
    if hasattr(module, "simd_level"):
        return str(module.simd_level())
    return str(getattr(module, "SIMD_LEVEL", "generic"))
