"""What a collection is made of: its configuration, checked once at create and saved with it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import bitgraph as bg

from .errors import bad_request
from .requests import check_keys, get_bool, get_int, get_str

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KINDS = ("hnsw", "flat", "binary", "ivf")
METRICS = ("cosine", "l2", "ip")
STORAGES = ("float32", "float16", "int8")
MAX_DIM = 65_536


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise bad_request(f"collection name {name!r} must be 1-64 characters of letters, digits, "
                          "'_', '-' or '.', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class BinarizerSpec:
    """A binary collection trains its binarizer on its first upsert (at least train_size
    points); the snapshot taken right after keeps it."""

    loops: int = 2
    code_dim: int | None = None
    learned: bool = True
    train_size: int = 1000
    graph: str = "hnsw"
    rerank: str | None = "memory"

    _KEYS = frozenset(("loops", "code_dim", "learned", "train_size", "graph", "rerank"))

    @classmethod
    def from_json(cls, body: Any) -> BinarizerSpec:
        if body is None:
            return cls()
        if not isinstance(body, dict):
            raise bad_request("binarizer must be an object")
        check_keys(body, cls._KEYS, "binarizer")
        rerank = body.get("rerank", "memory")
        if rerank not in ("memory", "mmap", None):
            raise bad_request(f"binarizer.rerank must be 'memory', 'mmap' or null, got {rerank!r}")
        return cls(loops=get_int(body, "loops", 2, 1, 8, "binarizer."),
                   code_dim=get_int(body, "code_dim", None, 1, MAX_DIM, "binarizer."),
                   learned=get_bool(body, "learned", True),
                   train_size=get_int(body, "train_size", 1000, 2, 1_000_000, "binarizer."),
                   graph=get_str(body, "graph", "hnsw", ("hnsw", "flat")) or "hnsw",
                   rerank=rerank)


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    dim: int
    metric: str = "cosine"
    kind: str = "hnsw"
    storage: str = "float32"
    M: int = 16
    ef_construction: int = 200
    seed: int = 0
    binarizer: BinarizerSpec = field(default_factory=BinarizerSpec)

    _KEYS = frozenset(("dim", "metric", "kind", "storage", "M", "ef_construction", "seed",
                       "binarizer"))

    @classmethod
    def from_json(cls, name: str, body: dict[str, Any]) -> CollectionSpec:
        check_name(name)
        check_keys(body, cls._KEYS, "collection")
        dim = get_int(body, "dim", None, 1, MAX_DIM)
        if dim is None:
            raise bad_request("collection: dim is required")
        kind = get_str(body, "kind", "hnsw", KINDS) or "hnsw"
        if kind != "binary" and body.get("binarizer") is not None:
            raise bad_request("binarizer settings are for kind 'binary' only")
        storage = get_str(body, "storage", "float32", STORAGES) or "float32"
        if kind == "binary" and "storage" in body:
            raise bad_request("a binary collection stores codes: storage does not apply")
        if kind == "ivf" and storage != "float32":
            raise bad_request("an ivf collection keeps float32 rows (it re-ranks with them)")
        return cls(name=name, dim=dim, metric=get_str(body, "metric", "cosine", METRICS) or "cosine",
                   kind=kind, storage=storage, M=get_int(body, "M", 16, 2, 256),
                   ef_construction=get_int(body, "ef_construction", 200, 1, 10_000),
                   seed=get_int(body, "seed", 0, 0, (1 << 63) - 1),
                   binarizer=BinarizerSpec.from_json(body.get("binarizer")))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.kind != "binary":
            del out["binarizer"]
        else:
            del out["storage"]
        return out

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> CollectionSpec:
        saved = dict(saved)
        binz = saved.pop("binarizer", None)
        return cls(**saved, binarizer=BinarizerSpec(**binz) if binz else BinarizerSpec())

    def new_index(self, sample: Any = None) -> Any:
        """An empty index of this spec; a binary one needs the ``sample`` its binarizer is
        trained on."""
        if self.kind == "hnsw":
            return bg.HNSWIndex(self.dim, metric=self.metric, storage=self.storage, M=self.M,
                                ef_construction=self.ef_construction, seed=self.seed)
        if self.kind == "flat":
            return bg.FlatIndex(self.dim, metric=self.metric, storage=self.storage)
        if self.kind == "ivf":  # search's ef is the lists probed
            return bg.IVFIndex(self.dim, metric=self.metric, seed=self.seed)
        b = self.binarizer
        binarizer = bg.RecurrentBinarizer(self.dim, loops=b.loops, code_dim=b.code_dim,
                                          learned=b.learned, seed=self.seed).fit(sample)
        return bg.BinaryIndex(binarizer, graph=b.graph, M=self.M,
                              ef_construction=self.ef_construction, rerank=b.rerank,
                              metric=self.metric, seed=self.seed)
