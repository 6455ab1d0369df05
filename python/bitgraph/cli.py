"""The ``bitgraph`` command line: info, build, search and bench.

    bitgraph info                                     # backend, SIMD level, threads
    bitgraph build vectors.npy index.bg --metric l2   # .npy or .fvecs -> saved index
    bitgraph search index.bg queries.npy -k 10 --out result.npz
    bitgraph bench                                    # the main job: bitgraph beside its peers
    bitgraph serve --data-dir DIR                     # the HTTP service (bitgraph[server])
    bitgraph serve --ray MANIFEST                     # a sharded index on Ray Serve (bitgraph[ray])
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click
import numpy as np

from . import backend_info, load
from ._cli_files import check_output_path, read_vectors
from .errors import BitgraphError

__all__ = ["main", "read_vectors"]


def _fail(context: str, e: Exception) -> NoReturn:
    """Re-raises a library or OS error as a one-line click error: ``context: reason``."""
    if isinstance(e, OSError) and not isinstance(e, BitgraphError):
        where = f" ({e.filename})" if e.filename else ""
        reason = f"{e.strerror or e}{where}"
    else:
        reason = str(e)
    raise click.ClickException(f"{context}: {reason} [{type(e).__name__}]") from e


# --------------------------------------------------------------------------- commands

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bitgraph")
def main() -> None:
    """bitgraph: fast approximate nearest-neighbour search."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print the facts as JSON")
def info(as_json: bool) -> None:
    """Show the backend, SIMD level, thread count and version."""
    facts = backend_info()
    if as_json:
        click.echo(json.dumps(facts))
        return
    for key, value in facts.items():
        click.echo(f"{key:>10}: {value}")


_POSITIVE = click.IntRange(min=1)


@main.command()
@click.argument("vectors", type=click.Path(exists=True, dir_okay=False))
@click.argument("index_path", type=click.Path(dir_okay=False))
@click.option("--kind", type=click.Choice(["hnsw", "flat", "ivf"]), default="hnsw",
              show_default=True, help="ivf: IVFIndex (float32 rows; its lists are trained "
              "before saving; search's --ef is the lists probed)")
@click.option("--metric", type=click.Choice(["cosine", "ip", "l2"]), default="cosine",
              show_default=True)
@click.option("--storage", type=click.Choice(["float32", "float16", "int8"]), default="float32",
              show_default=True)
@click.option("-M", "M", type=click.IntRange(min=2), default=16, show_default=True,
              help="HNSW links per node")
@click.option("--ef-construction", type=_POSITIVE, default=200, show_default=True)
@click.option("--threads", type=_POSITIVE, default=None,
              help="worker threads (default: all cores)")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--force", is_flag=True,
              help="overwrite INDEX_PATH if it exists (without it, build refuses)")
def build(vectors: str, index_path: str, kind: str, metric: str, storage: str, M: int,
          ef_construction: int, threads: int | None, progress: bool, force: bool) -> None:
    """Build an index over VECTORS (.npy or .fvecs) and save it to INDEX_PATH.

    Vector i gets id i. INDEX_PATH's directory must exist; an existing INDEX_PATH is only
    replaced with --force. Both are checked before the build starts.
    """
    from .flat import FlatIndex
    from .hnsw import HNSWIndex
    from .ivf import IVFIndex

    if kind == "ivf" and storage != "float32":
        raise click.BadParameter("--kind ivf keeps float32 rows (it re-ranks with them)",
                                 param_hint="--storage")
    out = check_output_path(index_path, "INDEX_PATH", force=force)
    data = read_vectors(vectors, "VECTORS")
    try:
        if kind == "hnsw":
            index: Any = HNSWIndex(data.shape[1], metric=metric, M=M,
                                   ef_construction=ef_construction, storage=storage)
        elif kind == "ivf":
            index = IVFIndex(data.shape[1], metric=metric)
        else:
            index = FlatIndex(data.shape[1], metric=metric, storage=storage)
        start = time.perf_counter()
        index.add(data, threads=threads, progress=progress)
        if kind == "ivf":
            index.train()  # saved trained: the first search after loading does not train
        elapsed = time.perf_counter() - start
    except (BitgraphError, OSError) as e:
        _fail(f"cannot build the index from {vectors}", e)
    try:
        index.save(out)
    except (BitgraphError, OSError) as e:
        _fail(f"cannot save the index to {out}", e)
    click.echo(f"built {index!r} in {elapsed:.1f} s -> {out}")


@main.command()
@click.argument("index_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("queries", type=click.Path(exists=True, dir_okay=False))
@click.option("-k", type=_POSITIVE, default=10, show_default=True, help="neighbours per query")
@click.option("--ef", type=_POSITIVE, default=None, help="search breadth (default max(64, k))")
@click.option("--threads", type=_POSITIVE, default=None)
@click.option("--mmap", is_flag=True, help="memory-map the index instead of reading it")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="write ids and distances to this .npz file (replaced if it exists)")
@click.option("--show", type=click.IntRange(min=0), default=5, show_default=True,
              help="queries to print (0: none)")
def search(index_path: str, queries: str, k: int, ef: int | None, threads: int | None,
           mmap: bool, out: str | None, show: int) -> None:
    """Search the saved index at INDEX_PATH for the QUERIES (.npy or .fvecs)."""
    out_path = check_output_path(out, "--out") if out else None
    q = read_vectors(queries, "QUERIES")
    try:
        index = load(index_path, mmap=mmap)
    except (BitgraphError, OSError) as e:
        _fail(f"cannot load the index {index_path}", e)
    try:
        start = time.perf_counter()
        res = index.search(q, k, ef=ef, threads=threads)
        elapsed = time.perf_counter() - start
    except (BitgraphError, OSError) as e:
        _fail(f"cannot search {index_path} for {queries}", e)
    click.echo(f"{len(q)} queries in {elapsed:.3f} s ({len(q) / max(elapsed, 1e-9):,.0f} QPS)")
    for i in range(min(show, len(q))):
        pairs = ", ".join(f"{int(j)}:{float(d):.4g}"
                          for j, d in zip(res.ids[i], res.distances[i]) if j >= 0)
        click.echo(f"query {i}: {pairs}")
    if out_path is not None:
        try:
            with open(out_path, "wb") as f:     # a file object: numpy adds no ".npz"
                np.savez(f, ids=res.ids, distances=res.distances)
        except OSError as e:
            _fail(f"cannot write the results to {out_path}", e)
        click.echo(f"results -> {out_path}")


def _import_bench() -> Any:
    """Imports the repository's ``bench`` package (not part of the wheel): from the current
    directory or from the checkout this package was installed from in editable mode."""
    candidates = [Path.cwd(), Path(__file__).resolve().parents[2]]
    for root in candidates:
        if (root / "bench" / "run_suite.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            break
    try:
        from bench import run_suite  # type: ignore[import-not-found]
    except ImportError as e:
        raise click.ClickException(
            "`bitgraph bench` runs the benchmark suite of a bitgraph checkout: run it from the "
            f"repository root after `pip install -e \".[bench]\"` ({e})") from e
    return run_suite


def _int_list(text: str, what: str) -> list[int]:
    """"16,32,64" -> [16, 32, 64]; BadParameter naming ``what`` unless all are ints >= 1."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise click.BadParameter(f"expected a comma list of integers >= 1, got {text!r}",
                                 param_hint=what)
    return values


def _check_bench_options(run_suite: Any, dataset: str | None, libs: str,
                         threads: str) -> None:
    """Checks the options run_suite would only reject after loading the data."""
    if dataset is not None and dataset not in run_suite.dataset_names():
        raise click.BadParameter(f"expected one of {', '.join(run_suite.dataset_names())}, "
                                 f"got {dataset!r}", param_hint="'--dataset'")
    for parse, value, hint in ((run_suite.parse_libs, libs, "'--libs'"),
                               (run_suite.parse_threads, threads, "'--threads'")):
        try:
            parse(value)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint=hint) from e


# `bitgraph bench --full` replaces these defaults (options given explicitly are kept)
_FULL = dict(libs="all", threads="1,all", repeats=3, max_base=0, max_queries=0,
             latency_queries=1000, ef=None)
DEFAULT_BENCH_LIBS = "bitgraph-f32,bitgraph-f16,bitgraph-ivf,bitgraph-bin4,faiss-hnsw,hnswlib,usearch"


@main.command()
@click.option("--dataset", default=None,
              help="glove-50-angular | clustered-128-l2 | clustered-small | text-like-384 "
                   "| text-like-small "
                   "(default: GloVe when installed, else clustered-128-l2)")
@click.option("--libs", default=DEFAULT_BENCH_LIBS, show_default=True,
              help="comma list of libraries, or 'all' (the labels are explained in the output)")
@click.option("--threads", default="1", show_default=True, help="e.g. '1,all'")
@click.option("--ef", default="16,24,32,48,64,96,128,192,256,384", show_default=True,
              help="comma list of search ef values swept per library")
@click.option("--max-base", type=click.IntRange(min=0), default=100_000, show_default=True,
              help="base vectors to index (0: the whole dataset)")
@click.option("--max-queries", type=click.IntRange(min=0), default=2_000, show_default=True,
              help="queries (0: all)")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="interleaved runs of the sweep; QPS is the median over them "
                   "(1: a single, noisy run)")
@click.option("--full", is_flag=True,
              help="the full protocol: whole dataset, threads 1,all, all libraries, 1,000 "
                   "latency queries (options given explicitly are kept)")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="JSON path (the PNG plot is written beside it)")
def bench(dataset: str | None, libs: str, threads: str, ef: str, max_base: int,
          max_queries: int, repeats: int, full: bool, out: str | None) -> None:
    """The main job: build bitgraph and its peers on the default data, print recall@10 and
    QPS side by side, and save the recall-QPS plot.

    The default is a quick run (100k base vectors, 2,000 queries, 1 thread, the median of 3
    interleaved runs, a few minutes); --full runs the protocol of bench/README.md. Progress
    goes to stderr, the tables to stdout.
    """
    run_suite = _import_bench()
    given: dict[str, Any] = dict(libs=libs, threads=threads, ef=ef, max_base=max_base,
                                 max_queries=max_queries, repeats=repeats,
                                 latency_queries=500)
    if full:
        ctx = click.get_current_context()
        for name, value in _FULL.items():
            if (name not in ctx.params
                    or ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT):
                given[name] = value
    _check_bench_options(run_suite, dataset, given["libs"], given["threads"])
    efs = None if given["ef"] is None else _int_list(given["ef"], "'--ef'")
    if out:
        check_output_path(out, "--out")
    try:
        res = run_suite.run_suite(
            dataset=dataset, libs=given["libs"], threads=given["threads"], efs=efs,
            repeats=given["repeats"], max_base=given["max_base"] or None,
            max_queries=given["max_queries"] or None,
            latency_queries=given["latency_queries"], out=out, plot=True)
    except OSError as e:
        _fail("bitgraph bench failed", e)
    run_suite.print_run(res, echo=click.echo)


@main.command()
@click.option("--data-dir", default=None, type=click.Path(file_okay=False),
              help="where the collections live (created if missing)")
@click.option("--ray", "ray_manifest", default=None, type=click.Path(exists=True),
              help="serve a sharded index (its manifest) on Ray Serve instead "
                   "(bitgraph[ray]; see README, \"Beyond one machine\")")
@click.option("--replicas", type=click.IntRange(1), default=1, show_default=True,
              help="with --ray: replicas per shard (more than 1: read-only)")
@click.option("--ray-address", default=None, help="with --ray: the Ray cluster to join "
              "(default: RAY_ADDRESS, else a local one)")
@click.option("--probe-margin", type=click.FloatRange(0), default=None,
              help="with --ray and k-means routing: a search visits its nearest shard and "
                   "those whose centroid is at most (1 + margin) x as far (e.g. 0.2)")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (not loopback: needs --api-key-file)")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--api-key-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help='JSON {"admin": KEY, "read_only": KEY}: without it, no keys (loopback only)')
@click.option("--batching/--no-batching", default=True, show_default=True,
              help="coalesce concurrent single-query searches into batched searches")
@click.option("--max-batch", type=click.IntRange(1, 4096), default=256, show_default=True)
@click.option("--max-wait-us", type=click.FloatRange(0, 100_000), default=200.0,
              show_default=True, help="longest wait for more queries of a batch")
@click.option("--max-queue", type=click.IntRange(1), default=4096, show_default=True,
              help="queued searches per collection beyond which requests get 429")
@click.option("--max-body-mb", type=click.FloatRange(0.001, 4096), default=64.0,
              show_default=True, help="largest request body accepted (413 beyond)")
@click.option("--checkpoint-log-mb", type=click.FloatRange(0.001), default=256.0,
              show_default=True,
              help="a collection's log size that triggers a snapshot (and empties the log)")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def serve(data_dir: str | None, ray_manifest: str | None, replicas: int,
          ray_address: str | None, probe_margin: float | None, host: str, port: int,
          api_key_file: str | None,
          batching: bool, max_batch: int, max_wait_us: float, max_queue: int,
          max_body_mb: float, checkpoint_log_mb: float, log_level: str) -> None:
    """Serves the collections under DATA_DIR over HTTP until SIGTERM (see README, "Serve it"),
    or with --ray MANIFEST a sharded index on Ray Serve, over the same API."""
    if (data_dir is None) == (ray_manifest is None):
        raise click.UsageError("give --data-dir DIR (collections) or --ray MANIFEST (a sharded "
                               "index), one of them")
    if ray_manifest is not None:
        _serve_ray(ray_manifest, replicas, ray_address, host, port, api_key_file, batching,
                   max_batch, max_wait_us, max_queue, max_body_mb, probe_margin)
        return
    if probe_margin is not None:
        raise click.UsageError("--probe-margin applies to a sharded index (--ray MANIFEST)")
    try:
        from .server.main import serve as run_server
        from .server.requests import Limits
    except ImportError as e:
        raise click.ClickException(
            f"bitgraph serve needs the server extra: pip install 'bitgraph[server]' ({e})") from e
    run_server(data_dir, host, port, api_key_file, batching=batching, max_batch=max_batch,
               max_wait_us=max_wait_us, max_queue=max_queue,
               limits=Limits(max_body_bytes=int(max_body_mb * (1 << 20))),
               checkpoint_bytes=int(checkpoint_log_mb * (1 << 20)), log_level=log_level)



def _serve_ray(manifest: str, replicas: int, address: str | None, host: str, port: int,
               api_key_file: str | None, batching: bool, max_batch: int, max_wait_us: float,
               max_queue: int, max_body_mb: float, probe_margin: float | None) -> None:
    try:
        import ray  # noqa: F401
        import starlette  # noqa: F401

        from .distributed import serve as ray_serve
    except ImportError as e:
        raise click.ClickException(
            f"bitgraph serve --ray needs the ray and server extras: pip install "
            f"'bitgraph[ray,server]' ({e})") from e
    from .server.auth import ApiKeys
    from .server.main import check_bind

    check_bind(host, ApiKeys.from_file(api_key_file) if api_key_file else None)
    try:
        ray_serve.run(manifest, host, port, api_key_file=api_key_file, replicas=replicas,
                      address=address, batching=batching, max_batch=max_batch,
                      max_wait_us=max_wait_us, max_queue=max_queue,
                      max_body_bytes=int(max_body_mb * (1 << 20)), probe_margin=probe_margin)
    except BitgraphError as e:
        _fail("bitgraph serve --ray failed", e)


if __name__ == "__main__":
    main()
