"""``bitgraph serve --ray MANIFEST``: the sharded index on Ray Serve, over the service's API.

Deployments: one per shard (``shard-<i>``, each replica a :class:`~.shard_actor.Shard` loading
the shard's file memory-mapped; the replicas of a shard are interchangeable, shards are not),
and the ingress (``ingress``): the HTTP routes of ``bitgraph serve``
(:func:`bitgraph.server.app.build_app`) over a :class:`~.front.ShardedCollection`, whose
:class:`~.sharded_index.ShardedIndex` reaches the shards through Serve deployment handles.

Writes go to every shard deployment's single replica; with ``replicas > 1`` the deployment is
read-only (a write would reach one replica of a shard only) and writes answer 409.
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Any

from ._ray import require_ray
from .manifest import manifest_path, read_manifest
from .router import router_from_json
from .shard_actor import Shard
from .shard_set import shard_down_errors

_WRITE_METHODS = frozenset(("add", "remove", "save"))


class ServeShards:
    """The shard set of :class:`~.sharded_index.ShardedIndex` over Serve deployment handles.
    Results are awaited on a helper thread: the routes may call from the event loop, where a
    handle's blocking ``result()`` is not allowed."""

    def __init__(self, handles: list[Any], writable: bool) -> None:
        self.handles = handles
        self.n_shards = len(handles)
        self.writable = writable
        self._pool = concurrent.futures.ThreadPoolExecutor(max(4, 2 * len(handles)),
                                                           thread_name_prefix="bitgraph-gather")
        self._down = shard_down_errors()

    def put(self, value: Any) -> Any:
        return value

    def call(self, shard: int, method: str, *args: Any) -> Any:
        if method in _WRITE_METHODS and not self.writable:
            from ..server.errors import conflict

            raise conflict("this sharded deployment has several replicas per shard and is "
                           "read-only; write through ShardedIndex, save, and redeploy")
        return getattr(self.handles[shard], method).remote(*args)

    def gather(self, futures: dict[int, Any], timeout: float | None
               ) -> tuple[dict[int, Any], dict[int, BaseException]]:
        def one(resp: Any) -> tuple[bool, Any]:
            try:
                return True, resp.result(timeout_s=timeout)
            except self._down as exc:
                return False, exc
            except TimeoutError as exc:
                return False, exc

        waits = {i: self._pool.submit(one, r) for i, r in futures.items()}
        done, failed = {}, {}
        for i, w in waits.items():
            ok, value = w.result()
            (done if ok else failed)[i] = value
        return done, failed

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class Ingress:
    """The ingress deployment's state: the service of one sharded collection."""

    def __init__(self, manifest: str, shards: list[Any], name: str, config: dict[str, Any],
                 writable: bool, probe_margin: float | None = None) -> None:
        from ..server.app import ServerConfig, Service
        from ..server.auth import ApiKeys
        from ..server.requests import Limits
        from .front import ShardedCollection, ShardedRegistry
        from .sharded_index import ShardedIndex

        path = manifest_path(manifest)
        index = ShardedIndex(path, read_manifest(path), ServeShards(shards, writable))
        keys = config.pop("api_key_file", None)
        limits = Limits(**config.pop("limits", {}))
        cfg = ServerConfig("", api_keys=ApiKeys.from_file(keys) if keys else None,
                           limits=limits, **config)
        coll = ShardedCollection(name, index, probe_margin=probe_margin)
        self.service = Service(cfg, registry=ShardedRegistry(coll))

    def __serve_build_asgi_app__(self) -> Any:
        from ..server.app import build_app

        return build_app(self.service)


def application(manifest: str | os.PathLike[str], *, name: str | None = None,
                replicas: int = 1, threads: int | None = None,
                config: dict[str, Any] | None = None,
                probe_margin: float | None = None) -> Any:
    """The Serve application (ingress bound to one deployment per shard). ``probe_margin``
    (k-means routing only): every search visits the shards within that margin of its nearest
    one (:meth:`ShardedIndex.search`)."""
    require_ray()
    from ray import serve

    path = manifest_path(manifest)
    m = read_manifest(path)
    if probe_margin is not None:  # a hash-routed index or a bad margin: before deploying
        router_from_json(m.router).check(margin=probe_margin)
    shard_dep = serve.deployment(Shard)
    shards = [shard_dep.options(name=f"shard-{i}", num_replicas=replicas,
                                ray_actor_options={"num_cpus": 0})
              .bind(str(path), i, threads, True, False) for i in range(m.n_shards)]
    ingress = serve.deployment(serve.ingress()(Ingress)).options(
        name="ingress", ray_actor_options={"num_cpus": 0})
    return ingress.bind(str(path), shards, name or m.name, dict(config or {}), replicas == 1,
                        probe_margin)


def run(manifest: str, host: str = "127.0.0.1", port: int = 8080, *,
        api_key_file: str | None = None, name: str | None = None, replicas: int = 1,
        threads: int | None = None, address: str | None = None, batching: bool = True,
        max_batch: int = 256, max_wait_us: float = 200.0, max_queue: int = 4096,
        max_body_bytes: int = 64 << 20, probe_margin: float | None = None,
        blocking: bool = True) -> None:
    """Deploys the application on Ray Serve (a local Ray unless ``address``) and, with
    ``blocking``, serves until interrupted."""
    read_manifest(manifest_path(manifest))  # a missing or malformed manifest: before Ray
    ray = require_ray()
    from ray import serve

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False)
    serve.start(http_options={"host": host.strip("[]"), "port": port})
    config = {"api_key_file": api_key_file, "batching": batching, "max_batch": max_batch,
              "max_wait_us": max_wait_us, "max_queue": max_queue,
              "limits": {"max_body_bytes": max_body_bytes}}
    app = application(manifest, name=name, replicas=replicas, threads=threads, config=config,
                      probe_margin=probe_margin)
    serve.run(app, name="bitgraph", route_prefix="/", blocking=blocking)
