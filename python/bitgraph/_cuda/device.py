"""Whether a CUDA device can run bitgraph's kernels, and if not, exactly why.

``require()`` is what every device entry point calls: it returns the CuPy module or raises
:class:`bitgraph.errors.DeviceUnavailableError` naming what is missing (CuPy not installed,
no device, a driver too old for the installed CuPy). Nothing ever falls back to the CPU
silently: an index created with ``device="cuda"`` either runs on the GPU or raises.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType

from ..errors import DeviceUnavailableError

INSTALL_HINT = ("pip install 'bitgraph[cuda12]' (CUDA 12 driver) or 'bitgraph[cuda13]' "
                "(CUDA 13 driver)")


@dataclass(frozen=True)
class Probe:
    """What :func:`probe` found: ``available`` with the device's name, or the reason not."""

    available: bool
    reason: str | None = None
    device: str | None = None
    driver: int | None = None
    runtime: int | None = None
    cupy: str | None = None


def _import_cupy() -> ModuleType:
    import cupy  # optional: bitgraph[cuda12] / bitgraph[cuda13]

    return cupy


@functools.lru_cache(maxsize=1)
def probe() -> Probe:
    """Looks for CuPy and a device once per process (``probe.cache_clear()`` to look again)."""
    try:
        cp = _import_cupy()
    except ImportError as exc:
        return Probe(False, f"CuPy is not installed ({exc}); {INSTALL_HINT}")
    version = str(getattr(cp, "__version__", "?"))
    runtime_mod = cp.cuda.runtime
    try:
        count = int(runtime_mod.getDeviceCount())
    except Exception as exc:  # noqa: BLE001 - CUDARuntimeError: no driver / device / old driver
        return Probe(False, f"CuPy {version} finds no usable CUDA device: {exc} (check the "
                            "NVIDIA driver, and that the cupy-cuda12x / cupy-cuda13x package "
                            "matches its CUDA version)", cupy=version)
    if count < 1:
        return Probe(False, f"no CUDA device (CuPy {version} sees 0 devices)", cupy=version)
    try:
        driver = int(runtime_mod.driverGetVersion())
        runtime = int(runtime_mod.runtimeGetVersion())
        props = runtime_mod.getDeviceProperties(0)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:  # noqa: BLE001 - any runtime failure makes the device unusable
        return Probe(False, f"the CUDA device cannot be queried: {exc}", cupy=version)
    if driver and runtime and driver < runtime:
        return Probe(False, f"the NVIDIA driver supports CUDA {driver // 1000}.{driver % 1000 // 10} "
                            f"but CuPy {version} needs {runtime // 1000}.{runtime % 1000 // 10}: "
                            "update the driver or install the matching cupy-cuda12x",
                     driver=driver, runtime=runtime, cupy=version)
    return Probe(True, None, name, driver, runtime, version)


def cuda_available() -> bool:
    """Whether bitgraph can run on a CUDA device here (CuPy installed, a device, a driver)."""
    return probe().available


def device_info() -> dict[str, object]:
    """``{"cuda": bool, "cuda_device": name | None, "cuda_error": reason | None}``."""
    p = probe()
    return {"cuda": p.available, "cuda_device": p.device, "cuda_error": p.reason}


def require(what: str = "device='cuda'") -> ModuleType:
    """The CuPy module, or DeviceUnavailableError saying why ``what`` cannot run."""
    p = probe()
    if not p.available:
        raise DeviceUnavailableError(f"{what} needs a CUDA device: {p.reason}")
    return _import_cupy()
