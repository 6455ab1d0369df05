"""GPU benchmark of the exact float and binary scans (``python -m bench.gpu``; see
__main__.py) and the device check that runs it (``bench/gpu/check.sh``)."""
