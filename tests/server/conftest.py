"""Fixtures of the service tests: real server processes (see server_process.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from server_process import ADMIN_KEY, READ_KEY, ServerProcess


@pytest.fixture
def start_server(tmp_path):
    """``start_server(*args, data_dir=None)`` -> a running ServerProcess (stopped after)."""
    started: list[ServerProcess] = []

    def start(*args: str, data_dir: Path | None = None, env: dict[str, str] | None = None
              ) -> ServerProcess:
        s = ServerProcess(data_dir or tmp_path / "data", *args, env=env).start()
        started.append(s)
        return s

    yield start
    for s in started:
        try:
            s.stop(30)
        except Exception:  # noqa: BLE001 - a test may have killed it already
            s.kill()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """One server shared by a test module (no keys)."""
    s = ServerProcess(tmp_path_factory.mktemp("server") / "data").start()
    yield s
    s.stop(30)


@pytest.fixture
def key_file(tmp_path) -> Path:
    p = tmp_path / "keys.json"
    p.write_text(json.dumps({"admin": ADMIN_KEY, "read_only": READ_KEY}))
    return p
