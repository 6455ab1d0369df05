"""tests/cuda: the CUDA kernel set.

Tests marked ``gpu`` need a CUDA device: without one (CI, most laptops) they are skipped
with the reason bitgraph gives (``bg.backend_info()["cuda_error"]``: CuPy missing, no
device, driver). Everything else here (kernel compilation with nvcc, the tiling planner,
argument checks, device-selection errors) runs on any machine.
"""

from __future__ import annotations

import pytest
from bitgraph import _cuda


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items or _cuda.cuda_available():
        return
    reason = f"no CUDA device ({_cuda.device_info()['cuda_error']})"
    for item in gpu_items:
        item.add_marker(pytest.mark.skip(reason=reason))
