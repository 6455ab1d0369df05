"""Node turns: the shards of one node take turns at batch work (no Ray needed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
from bitgraph.distributed.node_turns import NodeTurns, turn_file

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

HOLDER = """
import sys, time
from bitgraph.distributed.node_turns import NodeTurns
turns = NodeTurns(sys.argv[1], threads=2)
with turns.turn(rows=1000):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(node: str, seconds: float) -> subprocess.Popen:
    """A process that holds ``node``'s turn for ``seconds`` (once it printed "held")."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, node, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _node() -> str:
    return f"test-{uuid.uuid4().hex}"


def _seconds_to_take(turns: NodeTurns, rows: int) -> float:
    """How long taking (and at once leaving) the turn for ``rows`` rows took."""
    t0 = time.perf_counter()
    with turns.turn(rows=rows):
        return time.perf_counter() - t0


def test_turn_file_names_are_safe_and_per_node():
    a, b = turn_file("node/../a b"), turn_file("other")
    assert a.parent == b.parent and a != b
    assert re.fullmatch(r"[A-Za-z0-9_.-]+\.lock", a.name) and a.parent == turn_file(None).parent


def test_one_thread_or_disabled_means_no_turns():
    assert not NodeTurns(_node(), threads=1).enabled
    assert not NodeTurns(_node(), threads=4, enabled=False).enabled
    turns = NodeTurns(_node(), threads=2)
    assert turns.enabled and turns.path is not None and turns.path.exists()
    turns.close()
    assert not turns.enabled


def test_a_batch_waits_for_the_turn_held_by_another_process():
    node = _node()
    turns = NodeTurns(node, threads=2)
    proc = _holder(node, 1.0)
    try:
        waited = _seconds_to_take(turns, rows=64)
        assert waited > 0.5, f"took the turn while another process held it ({waited:.3f} s)"
    finally:
        proc.wait(timeout=10)
        turns.close()


def test_work_that_does_not_fill_the_threads_does_not_wait():
    node = _node()
    turns = NodeTurns(node, threads=4)
    proc = _holder(node, 3.0)
    try:
        assert _seconds_to_take(turns, rows=3) < 1.0  # fewer rows than threads: side by side
    finally:
        proc.kill()
        proc.wait(timeout=10)
        turns.close()


def test_a_killed_holder_releases_the_turn():
    node = _node()
    turns = NodeTurns(node, threads=2)
    proc = _holder(node, 60.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert _seconds_to_take(turns, rows=64) < 2.0
    turns.close()


def test_threads_of_one_process_take_turns_too():
    # flock does not exclude threads sharing a file (a Serve replica's concurrent calls)
    import threading

    turns = NodeTurns(_node(), threads=2)
    inside, overlaps = [0], [0]
    guard = threading.Lock()

    def work():
        for _ in range(20):
            with turns.turn(rows=8):
                with guard:
                    inside[0] += 1
                    overlaps[0] = max(overlaps[0], inside[0])
                time.sleep(0.002)
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert overlaps[0] == 1
    turns.close()
