"""How the sharded layer reaches its shards: calls that return futures, and gathering them.

:class:`ActorShards` runs one Ray actor per shard (:class:`~.shard_actor.Shard`), restarted
by Ray from its file when it dies (``max_restarts``); :mod:`.serve` has the same interface over
Ray Serve deployment handles. :meth:`gather` never raises for a shard that is down: it reports
it, and :class:`~.sharded_index.ShardedIndex` decides (retry once, then fail or go partial).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from ._ray import ensure_ray
from .shard_actor import Shard


class ShardSet(Protocol):
    n_shards: int

    def put(self, value: Any) -> Any: ...

    def call(self, shard: int, method: str, *args: Any) -> Any: ...

    def gather(self, futures: dict[int, Any], timeout: float | None
               ) -> tuple[dict[int, Any], dict[int, BaseException]]: ...

    def close(self) -> None: ...


def shard_down_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the shard did not answer" (not "the request was wrong")."""
    ray = ensure_ray()
    out: list[type[BaseException]] = [ray.exceptions.RayActorError,
                                      ray.exceptions.GetTimeoutError,
                                      ray.exceptions.ObjectLostError]
    if "ray.serve" in sys.modules:  # the Serve front (importing Serve costs a second)
        from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

        out += [BackPressureError, DeploymentUnavailableError]
    return tuple(out)


class ActorShards:
    """One actor per shard. ``threads``: search / add threads of each shard (None: all the
    cores of its node; the shards of a node take turns at batches, :mod:`.node_turns`);
    ``num_cpus``: the CPUs Ray reserves per actor (0 by default: the shards' threads are
    sized explicitly, and a 2-core machine can still hold 3 shards); actors are spread over
    the nodes."""

    def __init__(self, manifest: str, n_shards: int, *, threads: int | None, mmap: bool,
                 verify: bool, max_restarts: int, num_cpus: float,
                 options: dict[str, Any] | None = None) -> None:
        ray = ensure_ray()
        self._ray = ray
        self.n_shards = n_shards
        remote = ray.remote(Shard).options(
            max_restarts=max_restarts, max_task_retries=0, num_cpus=num_cpus,
            scheduling_strategy="SPREAD", **(options or {}))
        self.actors = [remote.remote(manifest, i, threads, mmap, verify)
                       for i in range(n_shards)]
        self._down = shard_down_errors()

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def call(self, shard: int, method: str, *args: Any) -> Any:
        return getattr(self.actors[shard], method).remote(*args)

    def gather(self, futures: dict[int, Any], timeout: float | None
               ) -> tuple[dict[int, Any], dict[int, BaseException]]:
        ray = self._ray
        refs = list(futures.values())
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout, fetch_local=True)
        ready_set = set(ready)
        done: dict[int, Any] = {}
        failed: dict[int, BaseException] = {}
        for shard, ref in futures.items():
            if ref not in ready_set:
                ray.cancel(ref)
                failed[shard] = ray.exceptions.GetTimeoutError(
                    f"shard {shard} did not answer within {timeout} s")
                continue
            try:
                done[shard] = ray.get(ref)
            except self._down as exc:
                failed[shard] = exc
        return done, failed

    def kill(self, shard: int, restart: bool = True) -> None:
        """Kills a shard's actor (tests and drills); Ray restarts it unless ``restart`` is
        False."""
        self._ray.kill(self.actors[shard], no_restart=not restart)

    def close(self) -> None:
        for a in self.actors:
            try:
                self._ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
