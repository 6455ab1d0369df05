"""Every csrc/cuda/*.cu compiles with nvcc to PTX for sm_80 and sm_90 (a compile error fails
the suite), and the loader knows every kernel the files define."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bitgraph._cuda import kernels

SRC = Path(__file__).resolve().parents[2] / "csrc" / "cuda"
CU_FILES = sorted(p.name for p in SRC.glob("*.cu"))
NVCC = shutil.which("nvcc")
ARCHS = ("sm_80", "sm_90")


def test_kernel_files_are_listed():
    assert CU_FILES, f"no .cu files in {SRC}"
    assert sorted(kernels.KERNEL_FILES) == CU_FILES


@pytest.mark.parametrize("name", CU_FILES)
def test_every_kernel_is_defined(name):
    text = (SRC / name).read_text(encoding="utf-8")
    defined = set(re.findall(r'extern "C" __global__ void (\w+)\(', text))
    assert defined == set(kernels.KERNEL_FILES[name])


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", CU_FILES)
def test_compiles_to_ptx(name, arch, tmp_path):
    out = tmp_path / f"{name}.{arch}.ptx"
    proc = subprocess.run(
        [NVCC, "-ptx", f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings",
         str(SRC / name), "-o", str(out)],
        check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ptx = out.read_text(encoding="utf-8")
    for kernel in kernels.KERNEL_FILES[name]:
        assert f".entry {kernel}(" in ptx, kernel


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("name", CU_FILES)
def test_inlined_source_compiles_alone(name, tmp_path):
    """What NVRTC gets (the common header inlined) compiles with no include path."""
    src = tmp_path / name
    src.write_text(kernels.source(name), encoding="utf-8")
    assert '#include "' not in src.read_text(encoding="utf-8")
    proc = subprocess.run([NVCC, "-ptx", "-arch=sm_80", "-std=c++17", str(src), "-o",
                           str(tmp_path / "out.ptx")], check=False, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_kernel_dir_finds_the_sources():
    assert (kernels.kernel_dir() / "select.cu").is_file()


def test_kernel_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("BITGRAPH_CUDA_KERNELS", str(tmp_path))  # empty: falls through
    assert kernels.kernel_dir() != tmp_path
    for name in (*kernels.KERNEL_FILES, kernels.COMMON):
        (tmp_path / name).write_text((SRC / name).read_text(encoding="utf-8"))
    assert kernels.kernel_dir() == tmp_path


def test_unknown_kernel_name():
    with pytest.raises(KeyError, match="no CUDA kernel"):
        kernels.kernel("bg_nope")
