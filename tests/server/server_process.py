"""Real `bitgraph serve` processes on 127.0.0.1 for the service tests.

Each server binds port 0 (the OS picks a free port; the test reads it from the server's log),
dies with the test process (PR_SET_PDEATHSIG), and is stopped by the fixture's teardown.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

_PORT_LINE = re.compile(rb"Uvicorn running on http://[^:]+:(\d+)")
ADMIN_KEY = "admin-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"


def _die_with_parent() -> None:  # runs in the child before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ServerProcess:
    """One server: ``url``, ``stop()`` (SIGTERM, graceful), ``kill()`` (SIGKILL)."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.args = args
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = bytearray()

    def start(self, timeout: float = 60.0) -> ServerProcess:
        cmd = [sys.executable, "-m", "bitgraph.server", "--data-dir", str(self.data_dir),
               "--port", "0", "--log-level", "info", *self.args]
        self.log = bytearray()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=self.env, preexec_fn=_die_with_parent)
        port = self._read_port(timeout)
        self.url = f"http://127.0.0.1:{port}"
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        self.wait_ready(timeout)
        return self

    def _read_port(self, timeout: float) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited: {self.log.decode(errors='replace')}")
            self.log += line
            m = _PORT_LINE.search(line)
            if m:
                return int(m.group(1))
        raise RuntimeError("server did not start in time")

    def _drain(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            self.log += line

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready: {self.log.decode(errors='replace')[-2000:]}")

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._drainer.join(5)  # the log is complete
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
