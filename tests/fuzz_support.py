"""Shared machinery of the property-based fuzz suites (test_fuzz_api.py, test_fuzz_files.py).

Settings: the hypothesis profile ``bitgraph-fuzz`` (no deadline, slow-data health checks off);
``fuzz_settings(n)`` gives n examples by default and 20 x n with ``BITGRAPH_FUZZ=long``
(``BITGRAPH_FUZZ=<number>`` multiplies by that number instead).

The contract every call is held to: it succeeds with a well-formed, correct result, or it
raises a :class:`bitgraph.BitgraphError`. Any other exception (a bare TypeError / ValueError /
OverflowError / MemoryError from numpy or pybind11), a crash, a hang or a multi-GiB
allocation is a bug. ``attempt`` runs one call under that contract; ``memory_guard`` caps the
address space so that a runaway allocation fails fast (as a bare MemoryError, i.e. a bug)
instead of swapping the machine; ``watchdog`` turns a hung call into a traceback dump and a
dead (failed) run instead of an endless one.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import re
import resource
import select
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from hypothesis import HealthCheck, settings

import bitgraph as bg
from bitgraph import _backend

BACKENDS = tuple(_backend.available_backends())
METRICS = ("l2", "ip", "cosine")
STORAGES = ("float32", "float16", "int8")
INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
INT_MISSING = INT64_MIN  # the attribute store's "missing" marker for int fields

# --- settings ----------------------------------------------------------------------------------

_mode = os.environ.get("BITGRAPH_FUZZ", "").strip().lower()
if _mode == "long":
    SCALE = 20
elif _mode.isdigit():
    SCALE = max(1, int(_mode))
else:
    SCALE = 1
LONG = SCALE > 1

settings.register_profile(
    "bitgraph-fuzz",
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example,
                           HealthCheck.function_scoped_fixture],
)


def fuzz_settings(examples: int, **kwargs: Any) -> settings:
    """The suite's settings with ``examples`` examples (x SCALE under BITGRAPH_FUZZ)."""
    return settings(settings.get_profile("bitgraph-fuzz"), max_examples=max(1, examples * SCALE),
                    **kwargs)


# --- the call contract -------------------------------------------------------------------------

CALL_TIMEOUT_S = float(os.environ.get("BITGRAPH_FUZZ_CALL_TIMEOUT", "120"))


@contextlib.contextmanager
def watchdog(seconds: float = CALL_TIMEOUT_S):
    """A call that runs longer than ``seconds`` is a hang: dump every thread's stack and exit
    (pytest then reports the run as failed instead of waiting forever)."""
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


class ContractViolation(AssertionError):
    """A call raised something other than a bitgraph.BitgraphError."""


def attempt(label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """(True, result) or (False, the BitgraphError raised). Anything else fails the test, with
    the library's exception chained as the cause (hypothesis tells bugs apart by it)."""
    with watchdog():
        try:
            return True, fn(*args, **kwargs)
        except bg.BitgraphError as exc:
            return False, exc
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - that is the point
            raise ContractViolation(
                f"{label}: raised {type(exc).__module__}.{type(exc).__name__} (not a "
                f"bitgraph.BitgraphError): {str(exc)[:400]}") from exc


def must_raise(label: str, fn: Callable[..., Any], *args: Any,
               kind: type = bg.BitgraphError, **kwargs: Any) -> BaseException:
    ok, value = attempt(label, fn, *args, **kwargs)
    assert not ok, f"{label}: accepted invalid input (returned {_short(value)})"
    assert isinstance(value, kind), f"{label}: raised {type(value).__name__}, expected {kind.__name__}"
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "..."


# --- memory guard ------------------------------------------------------------------------------

GUARD_HEADROOM = int(float(os.environ.get("BITGRAPH_FUZZ_HEADROOM_GIB", "3")) * (1 << 30))


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextlib.contextmanager
def memory_guard(headroom: int = GUARD_HEADROOM):
    """Caps the address space at the current size + ``headroom``: an attempt to allocate
    gigabytes then fails at once with MemoryError (which the contract counts as a bug)."""
    vm = _vm_size()
    if not vm or sys.platform != "linux":
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- result checks -----------------------------------------------------------------------------

PLAN_NAMES = {"exact", "acorn", "post-filter", "exact-fallback", "unfiltered"}


def check_well_formed(res: Any, nq: int, k: int, live: set[int] | np.ndarray | None,
                      filtered: bool, label: str = "") -> None:
    """Shape / dtype / padding / order invariants of a SearchResult."""
    assert isinstance(res, bg.SearchResult), f"{label}: search returned {type(res).__name__}"
    ids, d = res.ids, res.distances
    assert isinstance(ids, np.ndarray) and isinstance(d, np.ndarray), label
    assert ids.dtype == np.int64, f"{label}: ids dtype {ids.dtype}"
    assert d.dtype == np.float32, f"{label}: distances dtype {d.dtype}"
    assert ids.shape == (nq, k) and d.shape == (nq, k), \
        f"{label}: shapes {ids.shape} / {d.shape}, expected {(nq, k)}"
    pad = ids < 0
    assert (ids[pad] == -1).all(), f"{label}: negative ids other than -1: {np.unique(ids[pad])}"
    assert np.isposinf(d[pad]).all(), f"{label}: padding distances not +inf: {d[pad][:5]}"
    assert np.isfinite(d[~pad]).all(), f"{label}: non-finite distance of a real result: {d[~pad][~np.isfinite(d[~pad])][:5]}"
    assert (np.diff(pad.astype(np.int8), axis=1) >= 0).all(), f"{label}: padding before a result: {ids}"
    dd = np.where(pad, np.inf, d.astype(np.float64))
    assert (dd[:, 1:] >= dd[:, :-1]).all(), f"{label}: distances not sorted ascending: {d}"
    for row, p in zip(ids, pad):
        real = row[~p]
        assert len(set(real.tolist())) == real.size, f"{label}: duplicate ids in a row: {row}"
    counts = res.counts
    assert counts.shape == (nq,) and (counts == (~pad).sum(axis=1)).all(), f"{label}: counts {counts}"
    if live is not None:
        live_arr = np.fromiter(live, dtype=np.int64) if isinstance(live, set) else np.asarray(live)
        bad = ids[~pad][~np.isin(ids[~pad], live_arr)]
        assert bad.size == 0, f"{label}: returned ids that are not live: {bad[:10]}"
    if filtered:
        assert res.plans is not None and res.plans.shape == (nq,), f"{label}: plans {res.plans}"
        assert set(res.plans.tolist()) <= PLAN_NAMES, f"{label}: unknown plans {res.plans}"
        assert res.visited is not None and res.visited.shape == (nq,), label
        assert (np.asarray(res.visited) >= 0).all(), f"{label}: negative visited {res.visited}"


# --- index specs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """Everything needed to build one index (all fields drawn by hypothesis)."""

    kind: str  # "hnsw" | "flat" | "binary"
    backend: str
    metric: str
    storage: str = "float32"  # float indexes
    graph: str = "flat"  # binary: "flat" | "hnsw"
    rerank: str | None = "memory"  # binary: "memory" | "mmap" | None
    distance: str = "sdc"  # binary: "sdc" | "hamming"
    M: int = 8
    ef_construction: int = 32
    seed: int = 0
    loops: int = 1  # binarizer
    code_dim: int | None = None
    learned: bool = False
    bseed: int = 0
    offsets: bool | None = None

    @property
    def is_binary(self) -> bool:
        return self.kind == "binary"

    @property
    def is_graph(self) -> bool:
        return self.kind == "hnsw" or (self.kind == "binary" and self.graph == "hnsw")

    @property
    def exact(self) -> bool:
        """Whether an unfiltered search must give the exact top k (flat scans; a binary flat
        scan is exact on codes, and on floats only when every candidate is re-ranked)."""
        return self.kind == "flat" or (self.kind == "binary" and self.graph == "flat")

    def label(self) -> str:
        if self.kind == "binary":
            return (f"BinaryIndex(graph={self.graph}, rerank={self.rerank}, distance={self.distance}, "
                    f"metric={self.metric}, loops={self.loops}, code_dim={self.code_dim}, "
                    f"learned={self.learned}, backend={self.backend})")
        return f"{self.kind}/{self.storage}/{self.metric}/{self.backend}"


_BINZ_CACHE: dict[tuple, bg.RecurrentBinarizer] = {}


def binarizer_for(spec: Spec, dim: int) -> bg.RecurrentBinarizer:
    """A fitted binarizer (cached: fitting a learned one takes ~0.3 s; the fit data is a
    fixed function of the key, so a cached one equals a fresh one)."""
    key = (dim, spec.loops, spec.code_dim, spec.learned, spec.bseed)
    if key not in _BINZ_CACHE:
        rng = np.random.default_rng(1000 * dim + 17 * spec.loops + spec.bseed)
        sample = rng.standard_normal((64, dim)).astype(np.float32)
        sample += rng.standard_normal(dim).astype(np.float32)  # a common direction
        binz = bg.RecurrentBinarizer(dim, loops=spec.loops, code_dim=spec.code_dim,
                                     learned=spec.learned, seed=spec.bseed)
        _BINZ_CACHE[key] = binz.fit(sample)
    return _BINZ_CACHE[key]


def make_index(spec: Spec, dim: int, rerank_dir: str | None = None) -> Any:
    if spec.kind == "hnsw":
        return bg.HNSWIndex(dim, metric=spec.metric, M=spec.M, ef_construction=spec.ef_construction,
                            storage=spec.storage, seed=spec.seed, backend=spec.backend)
    if spec.kind == "flat":
        return bg.FlatIndex(dim, metric=spec.metric, storage=spec.storage, backend=spec.backend)
    return bg.BinaryIndex(binarizer_for(spec, dim), graph=spec.graph, M=spec.M,
                          ef_construction=spec.ef_construction, distance=spec.distance,
                          rerank=spec.rerank, metric=spec.metric, seed=spec.seed,
                          rerank_dir=rerank_dir, offsets=spec.offsets, backend=spec.backend)


# --- reference distances -----------------------------------------------------------------------

def prepared(x: np.ndarray, metric: str) -> np.ndarray:
    """What the API hands the core: float32, L2-normalised for cosine (the library's own
    documented normalisation, reproduced bit for bit so int8 codes match)."""
    from bitgraph._validation import normalized

    x = np.ascontiguousarray(x, dtype=np.float32)
    return normalized(x, "x") if metric == "cosine" else x


def decoded(x: np.ndarray, storage: str) -> np.ndarray:
    """The stored form of prepared float32 rows, decoded back to float32."""
    from bg_testutil import decode_reference

    with np.errstate(over="ignore"):
        return decode_reference(x, storage)


def float_distances(q: np.ndarray, x: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(distances (nq, n) float64 as the API reports them, absolute tolerance (nq, n))."""
    q64 = np.asarray(q, np.float64)
    x64 = np.asarray(x, np.float64)
    qn = np.linalg.norm(q64, axis=1)[:, None]
    xn = np.linalg.norm(x64, axis=1)[None, :]
    dot = q64 @ x64.T
    if metric == "l2":
        d = np.maximum((q64 * q64).sum(1)[:, None] - 2.0 * dot + (x64 * x64).sum(1)[None, :], 0.0)
        scale = (qn + xn) ** 2
    elif metric == "ip":
        d = -dot
        scale = qn * xn
    else:
        d = 1.0 - dot
        scale = np.ones_like(d)
    dim = q64.shape[1]
    return d, 4e-7 * (dim + 4) * scale + 1e-6 * np.abs(d) + 1e-30

# Shrinking several distinct failures of a state machine can take hypothesis its full five
# minutes per test; cap it so a failing default run stays within the time budget (the examples
# are still shrunk, just less far). BITGRAPH_FUZZ_SHRINK_S overrides.
try:
    from hypothesis.internal.conjecture import engine as _engine

    _engine.MAX_SHRINKING_SECONDS = int(os.environ.get("BITGRAPH_FUZZ_SHRINK_S",
                                                       "60" if LONG else "3"))
except (ImportError, AttributeError):  # pragma: no cover - another hypothesis version
    pass


# --- worker processes --------------------------------------------------------------------------
# Calls that may crash the interpreter (damaged files, absurd constructor arguments) run in a
# persistent child process: a segfault or a hang there is a test failure (and the worker is
# restarted), not a dead test run. The child is the test file itself run as a script with
# --worker; jobs and replies are JSON lines ({"failures": [...], ...}).


def serve(handler: Callable[[dict], dict], warm_up: Callable[[], None] | None = None) -> None:
    """The child side: answers one JSON job per line on stdin with ``handler(job)``."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr  # library prints must not corrupt the protocol
    if warm_up is not None:
        warm_up()
    with memory_guard():
        out.write(json.dumps({"ready": True}) + "\n")
        for line in sys.stdin:
            job = json.loads(line)
            try:
                reply = handler(job)
            except AssertionError as exc:
                reply = {"status": "bad", "failures": [str(exc)]}
            except BaseException as exc:  # noqa: BLE001
                reply = {"status": "bad", "failures": [
                    f"worker error {type(exc).__name__}: {exc}\n{traceback.format_exc()}"]}
            out.write(json.dumps(reply) + "\n")


class Worker:
    """The parent side: a persistent ``python script --worker``, restarted after a crash."""

    def __init__(self, script: Any, job_timeout: float = 120.0) -> None:
        self.script = str(script)
        self.job_timeout = job_timeout
        self.proc: subprocess.Popen | None = None
        self.err = tempfile.TemporaryFile()

    def start(self) -> None:
        self.err.seek(0)
        self.err.truncate()
        self.proc = subprocess.Popen([sys.executable, self.script, "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, bufsize=1)
        line = self._read(300)
        assert line and json.loads(line).get("ready"), f"the worker did not start: {self.stderr()}"

    def _read(self, timeout: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline()

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-3000:]

    def run(self, job: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._read(self.job_timeout)
        if not line:
            rc = self.proc.poll()
            err = self.stderr()
            if rc is None:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                return {"status": "hang", "failures": [
                    f"the call hung for more than {self.job_timeout:.0f} s:\n{err}"]}
            self.proc = None
            return {"status": "crash", "failures": [
                f"the worker process died (rc={rc}; negative = killed by signal, -11 = SIGSEGV, "
                f"-6 = SIGABRT, -7 = SIGBUS):\n{err}"]}
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


# --- telling failures apart ----------------------------------------------------------------------
# Hypothesis reports several distinct bugs of one test when their exceptions differ in type or
# origin. Failures reported by a worker all surface at one assert, so they get an exception
# class per kind of failure (the message with its numbers masked).


_FAILURE_TYPES: dict[str, type] = {}


_KINDS = ["accepted an invalid", "accepted invalid", "valid argument was refused",
          "valid constructor call failed", "encode failed", "negative ids", "padding distances",
          "non-finite distance", "recomputed distance", "results, expected", "not the exact",
          "dim=", "not live", "len(index)", "count(", "died", "hung", "not sorted",
          "duplicate ids", "shapes", "dtype", "loaded, but", "a truncated file loaded",
          "binarizer whose"]


def failure_kind(message: str) -> str:
    """A short class of a failure message: the exception raised, or what was wrong."""
    m = re.search(r"raised ([\w.]+)", message)
    if m:
        return "raised " + m.group(1)
    m = re.search(r"worker error (\w+)", message)
    if m:
        return "worker error " + m.group(1)
    for k in _KINDS:
        if k in message:
            return k
    return message[:40]


def distinct_failure(signature: str, message: str) -> AssertionError:
    sig = re.sub(r"[-+]?\d+(\.\d*)?(e[-+]?\d+)?", "#", signature)
    sig = re.sub(r"\s+", " ", sig)[:160]
    cls = _FAILURE_TYPES.get(sig)
    if cls is None:
        cls = type(f"WorkerFailure{len(_FAILURE_TYPES)}", (AssertionError,), {"__doc__": sig})
        _FAILURE_TYPES[sig] = cls
    return cls(message)
