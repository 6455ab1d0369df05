#!/usr/bin/env bash
# The device check of issue 17, in one script (< 8 minutes on an H200): installs what it needs
# from PyPI (CuPy for the driver's CUDA major version, faiss-gpu-cu12 as the peer), runs the
# GPU tests and the GPU benchmark, and writes a JSON report to $OUT (else bench/results/).
#   bash bench/gpu/check.sh            # from the repository root
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR="${OUT:-bench/results}"
mkdir -p "$OUTDIR"
PY="${PYTHON:-python}"
start=$(date +%s)

driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
cuda_major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1)
if [ -z "$cuda_major" ]; then echo "no NVIDIA driver found"; exit 2; fi
if [ "$cuda_major" -ge 13 ]; then cupy_pkg="cupy-cuda13x>=14"; else cupy_pkg="cupy-cuda12x>=13"; fi
echo "driver $driver (CUDA $cuda_major): installing $cupy_pkg faiss-gpu-cu12"
$PY -m pip install -q "$cupy_pkg" pytest numpy 2>&1 | tail -2
# faiss-gpu-cu12 needs a CUDA 12 capable driver (a CUDA 13 driver runs it too); optional peer
$PY -m pip install -q faiss-gpu-cu12 2>&1 | tail -2 || echo "faiss-gpu-cu12 not installed"
$PY -m pip install -q -e . --no-build-isolation 2>/dev/null || $PY -m pip install -q -e . 2>&1 | tail -2

$PY -c "import bitgraph as bg, json; print(json.dumps(bg.backend_info()))" | tee "$OUTDIR/gpu-backend-info.json"

# GPU tests (the gpu marker) and the host tests of the kernel set, with a junit report.
timeout 240 $PY -m pytest tests/cuda -q -x -p no:cacheprovider \
  --junitxml="$OUTDIR/gpu-tests.xml" 2>&1 | tail -25
tests_rc=${PIPESTATUS[0]}

# The benchmark: the float and binary scans at n = 1M and 10M.
left=$(( 470 - ($(date +%s) - start) ))
timeout $(( left > 60 ? left : 60 )) $PY -m bench.gpu --sizes 1000000,10000000 \
  --nq 1,100,10000 --k 10,100 --repeats 3 --out "$OUTDIR/gpu.json"
bench_rc=$?

$PY - "$OUTDIR" "$tests_rc" "$bench_rc" "$start" <<'PYEOF'
import json, pathlib, sys, time
out, tests_rc, bench_rc, start = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
report = {"check": "issue-17 gpu", "tests_rc": tests_rc, "bench_rc": bench_rc,
          "seconds": time.time() - start}
try:
    import xml.etree.ElementTree as ET
    suite = ET.parse(out / "gpu-tests.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    report["tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
except Exception as exc:
    report["tests"] = f"no junit report: {exc}"
try:
    report["bench"] = json.loads((out / "gpu.json").read_text())
except Exception as exc:
    report["bench"] = f"no benchmark report: {exc}"
(out / "gpu-check.json").write_text(json.dumps(report, indent=1))
print(f"wrote {out / 'gpu-check.json'}: tests rc {tests_rc}, bench rc {bench_rc}")
PYEOF
exit $(( tests_rc != 0 || bench_rc != 0 ))
