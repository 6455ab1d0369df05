"""Every ```python block of README.md runs on its own, as written, in a fresh interpreter.

Each block runs in a subprocess whose working directory is a temporary directory (the blocks
save index files), so a block that leans on names from an earlier block fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
TIMEOUT_S = 180


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a markdown text, in order."""
    return [m.group(1) for m in _BLOCK.finditer(text)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 3, f"expected the README's three examples, found {len(BLOCKS)}"


def test_block_extraction():
    text = "x\n```python\na = 1\n```\n```\nshell\n```\n```python\nb = 2\nc = 3\n```\n"
    assert python_blocks(text) == ["a = 1\n", "b = 2\nc = 3\n"]


@pytest.mark.parametrize("number", range(1, len(BLOCKS) + 1), ids=lambda n: f"block{n}")
def test_readme_block_runs_alone(number: int, tmp_path: Path) -> None:
    code = BLOCKS[number - 1]
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        pytest.fail(f"README.md python block {number} exited with {proc.returncode}:\n{code}\n"
                    f"--- stderr (tail) ---\n{proc.stderr[-3000:]}", pytrace=False)
