"""The ``.cu`` sources and their compiled modules.

Sources are looked up, in order, in ``$BITGRAPH_CUDA_KERNELS``, ``bitgraph/_cuda/kernels/``
next to this file (where a wheel has them: the top-level CMakeLists installs csrc/cuda
there), next to the installed native extension (an editable install's build tree), and the
repository's ``csrc/cuda`` (a source checkout). Each file is compiled by NVRTC through
``cupy.RawModule`` on first use; CuPy caches the binary on disk (~/.cupy/kernel_cache), so
later processes only load it. ``#include "bg_common.cuh"`` is inlined here, so NVRTC needs
no include path.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

from ..errors import DeviceUnavailableError

COMMON = "bg_common.cuh"
# Every kernel file and the kernels it defines (the compile test checks them all).
KERNEL_FILES: dict[str, tuple[str, ...]] = {
    "select.cu": ("bg_select_small", "bg_select_radix"),
    "codes.cu": ("bg_code_distances",),
    "distances.cu": ("bg_candidate_distances_f32", "bg_candidate_distances_f16",
                     "bg_row_sqnorms_f32", "bg_row_sqnorms_f16"),
    "encode.cu": ("bg_encode_center", "bg_encode_gemm_add", "bg_encode_add_bias",
                  "bg_encode_pack", "bg_encode_residual"),
}
NVRTC_OPTIONS = ("-std=c++17",)


def _candidates() -> list[Path]:
    out = []
    env = os.environ.get("BITGRAPH_CUDA_KERNELS", "").strip()
    if env:
        out.append(Path(env))
    here = Path(__file__).resolve().parent
    out.append(here / "kernels")
    spec = importlib.util.find_spec("bitgraph._core") if "bitgraph" in __name__ else None
    if spec is not None and spec.origin:
        out.append(Path(spec.origin).resolve().parent / "_cuda" / "kernels")
    out.append(here.parents[2] / "csrc" / "cuda")
    return out


def kernel_dir() -> Path:
    """The directory holding every kernel source (DeviceUnavailableError when none does)."""
    tried = _candidates()
    for d in tried:
        if all((d / name).is_file() for name in (*KERNEL_FILES, COMMON)):
            return d
    raise DeviceUnavailableError(
        "the CUDA kernel sources (csrc/cuda/*.cu) are not installed with this bitgraph; "
        f"looked in {', '.join(map(str, tried))} (set BITGRAPH_CUDA_KERNELS to their directory)")


def source(name: str) -> str:
    """The text of kernel file ``name`` with bg_common.cuh inlined (what NVRTC compiles)."""
    d = kernel_dir()
    text = (d / name).read_text(encoding="utf-8")
    common = (d / COMMON).read_text(encoding="utf-8")
    return text.replace(f'#include "{COMMON}"', common)


@functools.cache
def module(name: str) -> Any:
    """The compiled ``cupy.RawModule`` of kernel file ``name`` (once per process)."""
    from .device import require

    cp = require("compiling the CUDA kernels")
    return cp.RawModule(code=source(name), options=NVRTC_OPTIONS)


def kernel(name: str) -> Any:
    """The ``cupy.RawKernel`` called ``name`` (from whichever file defines it)."""
    for file, names in KERNEL_FILES.items():
        if name in names:
            return module(file).get_function(name)
    raise KeyError(f"no CUDA kernel named {name!r}")
