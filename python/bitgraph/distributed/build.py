"""build_sharded: route rows to shards, build each shard in a Ray task, commit a manifest.

Sources: a Ray Dataset or a parquet path (columns ``id``, ``vector``, and attribute columns:
ints, floats, or lists of ints for tags), or numpy arrays ``(ids, vectors)`` /
``(ids, vectors, attributes)`` / ``{"id": ..., "vector": ..., field: ...}``. A Dataset is routed
by ``map_batches`` and grouped by shard (``groupby().map_groups``: the rows of one shard meet in
one task, on whichever node Ray picks); numpy rows are routed here and each shard's rows go to
its task through the object store.

Each task builds its shard with its own ``threads`` and saves it with the atomic save. The
manifest is written last (the commit point); if any task fails, or the build is interrupted,
the tasks still running are cancelled, the files this build wrote are deleted and no manifest
is written (an existing one, with ``overwrite=True``, stays as it was).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._ray import ensure_ray
from .errors import RoutingError
from .manifest import (
    Manifest,
    ShardEntry,
    commit,
    existing_generation,
    file_crc32,
    remove_generation_files,
    shard_file_name,
)
from .router import HashRouter, KMeansRouter
from .spec import index_spec, new_index, train_binarizer

ID, VECTOR, SHARD = "id", "vector", "__shard"


def build_shard(spec: dict[str, Any], binarizer: Any, out_dir: str, shard: int,
                generation: int, ids: np.ndarray, vectors: np.ndarray,
                attributes: dict[str, Any] | None, threads: int) -> dict[str, Any]:
    """Builds and saves one shard; returns its manifest entry (+ max id, seconds)."""
    t0 = time.perf_counter()
    index = new_index(spec, binarizer)
    if ids.size:
        index.add(vectors, ids, attributes=attributes or None, threads=threads)
    path = Path(out_dir) / shard_file_name(shard, generation)
    index.save(path)
    return {"shard": shard, "file": path.name, "count": len(index),
            "nbytes": path.stat().st_size, "crc32": file_crc32(path),
            "max_id": int(ids.max()) if ids.size else -1,
            "seconds": time.perf_counter() - t0}


def _columns(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(ids, vectors, attributes) of a numpy batch of a Dataset."""
    ids = np.asarray(batch[ID], dtype=np.int64)
    vec = batch[VECTOR]
    if vec.dtype == object:  # list columns arrive as arrays of arrays
        vec = np.stack(vec) if len(vec) else np.zeros((0, 0), np.float32)
    attrs: dict[str, Any] = {}
    for name, col in batch.items():
        if name in (ID, VECTOR, SHARD):
            continue
        attrs[name] = ([[int(t) for t in v] for v in col] if col.dtype == object
                       else np.asarray(col))
    return ids, np.asarray(vec, dtype=np.float32), attrs


class _Route:
    """map_batches: the shard of every row."""

    def __init__(self, router: Any) -> None:
        self.router = router

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids, vec, _ = _columns({ID: batch[ID], VECTOR: batch[VECTOR]})
        out = dict(batch)
        out[SHARD] = self.router.owners(ids, vec)
        return out


def _build_group(batch: dict[str, np.ndarray], spec: dict[str, Any], binarizer: Any,
                 out_dir: str, generation: int, threads: int) -> dict[str, np.ndarray]:
    ids, vec, attrs = _columns(batch)
    entry = build_shard(spec, binarizer, out_dir, int(batch[SHARD][0]), generation, ids, vec,
                        attrs, threads)
    return {k: np.array([v]) for k, v in entry.items()}


def _numpy_source(source: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    if isinstance(source, dict):
        extra = {k: v for k, v in source.items() if k not in (ID, VECTOR)}
        ids, vec, attrs = source.get(ID), source[VECTOR], extra
    elif isinstance(source, tuple) and len(source) in (2, 3):
        ids, vec = source[0], source[1]
        attrs = dict(source[2]) if len(source) == 3 and source[2] else {}
    else:
        raise RoutingError("source must be a Ray Dataset, a parquet path, (ids, vectors[, "
                           f"attributes]) or a dict of columns, got {type(source).__name__}")
    vec = np.ascontiguousarray(vec, dtype=np.float32)
    if vec.ndim != 2:
        raise RoutingError(f"vectors must be (n, dim), got shape {vec.shape}")
    ids = (np.arange(vec.shape[0], dtype=np.int64) if ids is None
           else np.asarray(ids).reshape(-1).astype(np.int64))
    if ids.size != vec.shape[0]:
        raise RoutingError(f"{ids.size} ids for {vec.shape[0]} vectors")
    if ids.size and (ids.min() < 0 or np.unique(ids).size != ids.size):
        raise RoutingError("ids must be unique non-negative integers (they are global across "
                           "shards)")
    return ids, vec, attrs


def _subset(attrs: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    return {f: (v[rows] if isinstance(v, np.ndarray) else [v[j] for j in rows.tolist()])
            for f, v in attrs.items()}


def _max_node_cpus(ray: Any) -> int:
    cpus = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    return max([c for c in cpus if c > 0] or [1])


def build_sharded(source: Any, out_dir: str | os.PathLike[str], n_shards: int,
                  index: Any = "hnsw", route: str = "hash", *, workers: int | None = None,
                  threads: int | None = None, sample_size: int = 100_000, seed: int = 0,
                  name: str | None = None, overwrite: bool = False) -> Path:
    """Builds a sharded index in ``out_dir`` and returns its manifest's path.

    Args:
        source: a Ray Dataset or parquet path (columns ``id``, ``vector``, attribute
            columns), or numpy ``(ids, vectors[, attributes])`` / a dict of columns. Ids are
            user ids: unique over the whole collection.
        n_shards: number of shards.
        index: "hnsw" | "flat" | "binary", a dict ``{"kind": ..., **parameters}`` or an empty
            index as a template (see :mod:`bitgraph.distributed.spec`).
        route: "hash" (a stable hash of the id: balanced shards, every query visits all) or
            "kmeans" (centroids trained on a sample of ``sample_size`` vectors: an item goes
            to its nearest centroid's shard, and a query may visit only its ``probe``
            nearest).
        workers: shard builds running at once (default: as many as the cluster's CPUs allow).
        threads: threads of each shard build (default: the cluster's CPUs / workers).
        overwrite: replace an existing sharded index in ``out_dir`` (its files are deleted
            once the new manifest is committed).
    """
    ray = ensure_ray()
    if type(n_shards) is not int or n_shards < 1:
        raise RoutingError(f"n_shards must be an integer >= 1, got {n_shards!r}")
    if route not in ("hash", "kmeans"):
        raise RoutingError(f"route must be 'hash' or 'kmeans', got {route!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old = existing_generation(out)
    if old and not overwrite:
        raise RoutingError(f"{out} already holds a sharded index (manifest.json); pass "
                           "overwrite=True to replace it")
    gen = old + 1
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = max(1, min(n_shards, workers or cpus))
    threads = max(1, threads or cpus // workers)
    task_cpus = min(threads, _max_node_cpus(ray))

    dataset = None
    if isinstance(source, (str, os.PathLike)):
        dataset = ray.data.read_parquet(str(source))
    elif hasattr(source, "map_batches") and hasattr(source, "groupby"):
        dataset = source
    if dataset is not None:
        total = dataset.count()
        frac = min(1.0, sample_size / max(1, total))
        sampled = dataset.random_sample(frac, seed=seed) if frac < 1 else dataset
        sample = _columns(sampled.select_columns([ID, VECTOR]).take_batch(
            sample_size, batch_format="numpy"))[1]
    else:
        ids, vectors, attrs = _numpy_source(source)
        rng = np.random.default_rng(seed)
        pick = (rng.choice(ids.size, sample_size, replace=False) if ids.size > sample_size
                else slice(None))
        sample = vectors[pick]
    if sample.ndim != 2 or sample.shape[0] == 0:
        raise RoutingError("the source holds no vectors")
    spec = index_spec(index, int(sample.shape[1]))
    router = (KMeansRouter.train(sample, n_shards, spec["metric"], seed=seed)
              if route == "kmeans" else HashRouter(n_shards))
    binarizer = train_binarizer(spec, sample) if spec["kind"] == "binary" else None

    pending: list[Any] = []
    try:
        if dataset is not None:
            with _sort_shuffle(ray.data.DataContext.get_current(), dataset.context):
                rows = _build_dataset(dataset, router, spec, binarizer, out, gen, threads,
                                      workers, task_cpus)
            entries = {int(r["shard"]): {k: (v.item() if hasattr(v, "item") else v)
                                         for k, v in r.items()} for r in rows}
            for i in set(range(n_shards)) - set(entries):  # a shard no row routed to
                entries[i] = build_shard(spec, binarizer, str(out), i, gen,
                                         np.zeros(0, np.int64),
                                         np.zeros((0, spec["dim"]), np.float32), None, threads)
        else:
            entries = _build_numpy(ray, spec, binarizer, router, out, gen, ids, vectors,
                                   attrs, workers, threads, task_cpus, pending)
    except BaseException:
        _stop_tasks(ray, pending)
        remove_generation_files(out, lambda g, _name: g == gen)
        raise
    manifest = Manifest(
        spec=spec, router=router.to_json(),
        shards=[ShardEntry(str(entries[i]["file"]), int(entries[i]["count"]),
                           int(entries[i]["nbytes"]), str(entries[i]["crc32"]))
                for i in range(n_shards)],
        next_id=max(int(e["max_id"]) for e in entries.values()) + 1, generation=gen,
        name=name or out.resolve().name)
    return commit(out, manifest)


@contextlib.contextmanager
def _sort_shuffle(*contexts: Any) -> Iterator[None]:
    """The grouping by shard as a sort-based shuffle: Ray Data's default hash shuffle starts
    aggregator actors for 200 partitions, seconds of overhead to make n_shards groups. Set on
    the process's context and on the dataset's own (a Dataset keeps the context it was made
    with)."""
    from ray.data.context import ShuffleStrategy

    old = [c.shuffle_strategy for c in contexts]
    for c in contexts:
        c.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        yield
    finally:
        for c, o in zip(contexts, old):
            c.shuffle_strategy = o


def _build_dataset(dataset: Any, router: Any, spec: dict[str, Any], binarizer: Any, out: Path,
                   gen: int, threads: int, workers: int, task_cpus: int) -> list[dict[str, Any]]:
    """Routes a Dataset's rows (map_batches), groups them by shard and builds each group in a
    task; one row of stats per shard."""
    return (dataset.map_batches(_Route(router), batch_format="numpy")
            .groupby(SHARD)
            .map_groups(_build_group, batch_format="numpy", num_cpus=task_cpus,
                        concurrency=workers,
                        fn_kwargs={"spec": spec, "binarizer": binarizer, "out_dir": str(out),
                                   "generation": gen, "threads": threads})
            .take_all())


def _stop_tasks(ray: Any, pending: list[Any], grace_s: float = 10.0) -> None:
    """Stops the build tasks still running: cancelled first (a KeyboardInterrupt in the task),
    force-killed only if they are still running after ``grace_s``. Tasks already finished are
    left alone: force-cancelling a task that finished at that moment aborted the driver in Ray
    2.60 ("Check failed ... Tried to complete task that was not pending", task_manager.cc)."""
    if not pending:
        return
    _, running = ray.wait(pending, num_returns=len(pending), timeout=0)
    for ref in running:
        ray.cancel(ref)
    if not running:
        return
    _, stuck = ray.wait(running, num_returns=len(running), timeout=grace_s)
    for ref in stuck:
        ray.cancel(ref, force=True)
    if stuck:
        ray.wait(stuck, num_returns=len(stuck), timeout=grace_s)


def _build_numpy(ray: Any, spec: dict[str, Any], binarizer: Any, router: Any, out: Path,
                 gen: int, ids: np.ndarray, vectors: np.ndarray, attrs: dict[str, Any],
                 workers: int, threads: int, task_cpus: int, pending: list[Any]
                 ) -> dict[int, dict[str, Any]]:
    owners = router.owners(ids, vectors)
    task = ray.remote(build_shard).options(num_cpus=task_cpus, max_retries=0)
    spec_ref, binz_ref = ray.put(spec), ray.put(binarizer)
    entries: dict[int, dict[str, Any]] = {}
    for i in range(router.n_shards):
        if len(pending) >= workers:  # at most `workers` builds at once
            done, _ = ray.wait(pending, num_returns=1)
            for ref in done:
                pending.remove(ref)
                e = ray.get(ref)
                entries[e["shard"]] = e
        r = np.flatnonzero(owners == i)
        pending.append(task.remote(spec_ref, binz_ref, str(out), i, gen, ids[r], vectors[r],
                                   _subset(attrs, r), threads))
    while pending:
        done, _ = ray.wait(pending, num_returns=1)
        for ref in done:
            pending.remove(ref)
            e = ray.get(ref)
            entries[e["shard"]] = e
    return entries
