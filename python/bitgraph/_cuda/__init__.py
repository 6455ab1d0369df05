"""The CUDA kernel set: exact float and binary scans, encode and re-rank on an NVIDIA GPU.

The kernels are CUDA C++ in ``csrc/cuda/*.cu`` (shipped in the wheel as
``bitgraph/_cuda/kernels/``), compiled at run time by NVRTC through CuPy and cached, so the
wheel itself stays CPU-only. Nothing here imports CuPy at import time: ``import bitgraph``
works (and stays fast) without it; the first device call imports it.

Modules:
    device   detection (``cuda_available``, ``device_info``, ``require``) and its error text
    kernels  where the ``.cu`` sources are and their compiled modules
    plan     the pure-Python tiling planner (query blocks, tile rows, select path)
    arrays   numpy / CuPy / DLPack inputs and outputs, device-side query checks
    scan     device copies of an index's rows and the tiled scans with their k-selection
    encode   RecurrentBinarizer encode on the device
"""

from __future__ import annotations

from .device import cuda_available, device_info, require

__all__ = ["cuda_available", "device_info", "require"]
