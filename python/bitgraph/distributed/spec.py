"""What every shard of a sharded index is: one index kind with one set of parameters.

``index=`` of :func:`~bitgraph.distributed.build_sharded` is a kind name ("hnsw", "flat",
"binary"), a dict ``{"kind": ..., **parameters}`` or an empty :class:`bitgraph.HNSWIndex` /
:class:`bitgraph.FlatIndex` used as a template (its public properties). The spec is stored in
the manifest as JSON; a binary spec's binarizer is trained once on the routing sample and the
same trained binarizer goes to every shard (so codes mean the same everywhere).
"""

from __future__ import annotations

from typing import Any

import bitgraph as bg

from .errors import RoutingError

_PARAMS = {
    "flat": {"metric": "cosine", "storage": "float32"},
    "hnsw": {"metric": "cosine", "storage": "float32", "M": 16, "ef_construction": 200,
             "seed": 0},
    "binary": {"metric": "cosine", "graph": "hnsw", "M": 32, "ef_construction": 200,
               "rerank": "memory", "loops": 2, "code_dim": None, "learned": True, "seed": 0},
}


def index_spec(index: Any, dim: int) -> dict[str, Any]:
    """The JSON spec of ``index=`` for vectors of ``dim`` values."""
    if isinstance(index, (bg.HNSWIndex, bg.FlatIndex)):
        if len(index):
            raise RoutingError("index= takes an empty index as a template (its parameters), "
                               f"got one holding {len(index)} items")
        if index.dim != dim:
            raise RoutingError(f"the template index has dim {index.dim}, the data {dim}")
        spec: dict[str, Any] = {"kind": "hnsw" if isinstance(index, bg.HNSWIndex) else "flat",
                                "metric": index.metric, "storage": index.storage}
        if isinstance(index, bg.HNSWIndex):
            spec.update(M=index.M, ef_construction=index.ef_construction)
        index = spec
    if isinstance(index, str):
        index = {"kind": index}
    if not isinstance(index, dict):
        raise RoutingError("index= must be 'hnsw', 'flat', 'binary', a dict {'kind': ..., "
                           f"parameters}} or an empty index, got {type(index).__name__}")
    kind = index.get("kind", "hnsw")
    if kind not in _PARAMS:
        raise RoutingError(f"index kind must be one of {', '.join(_PARAMS)}, got {kind!r}")
    unknown = set(index) - set(_PARAMS[kind]) - {"kind", "dim"}
    if unknown:
        raise RoutingError(f"unknown {kind} parameter(s) {sorted(unknown)} (known: "
                           f"{', '.join(sorted(_PARAMS[kind]))})")
    out = {"kind": kind, "dim": int(dim), **_PARAMS[kind]}
    out.update({k: v for k, v in index.items() if k not in ("kind", "dim")})
    new_index(out, trained_binarizer=None, check_only=True)
    return out


def train_binarizer(spec: dict[str, Any], sample: Any) -> Any:
    """The RecurrentBinarizer of a binary spec, fitted on ``sample``."""
    return bg.RecurrentBinarizer(spec["dim"], loops=spec["loops"], code_dim=spec["code_dim"],
                                 learned=spec["learned"], seed=spec["seed"]).fit(sample)


def new_index(spec: dict[str, Any], trained_binarizer: Any = None, *,
              check_only: bool = False) -> Any:
    """An empty index of the spec (a binary one needs its trained binarizer)."""
    kind = spec["kind"]
    if kind == "flat":
        return bg.FlatIndex(spec["dim"], metric=spec["metric"], storage=spec["storage"])
    if kind == "hnsw":
        return bg.HNSWIndex(spec["dim"], metric=spec["metric"], storage=spec["storage"],
                            M=spec["M"], ef_construction=spec["ef_construction"],
                            seed=spec["seed"])
    if check_only:
        return None
    return bg.BinaryIndex(trained_binarizer, graph=spec["graph"], M=spec["M"],
                          ef_construction=spec["ef_construction"], rerank=spec["rerank"],
                          metric=spec["metric"], seed=spec["seed"])
