"""The one place that imports Ray, with the error that says how to get it."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "pip install 'bitgraph[ray]'"


def require_ray() -> ModuleType:
    """The ``ray`` module, or an ImportError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"bitgraph.distributed needs Ray: {INSTALL_HINT} ({exc})") from exc
    return ray


def ensure_ray() -> ModuleType:
    """``ray``, initialised (a local cluster on this machine unless one is running or
    ``RAY_ADDRESS`` names one)."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    return ray
