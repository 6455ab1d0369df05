"""The columns of an index's attribute store: one growable array per field, aligned with the
index's slots (see :mod:`bitgraph.attributes`).

- ``int``: one int64 per item (``INT_MISSING`` marks a missing value);
- ``float``: one float64 per item (NaN marks a missing value);
- ``tags``: a list of ints per item, as CSR (offsets, labels).

Each column builds its search structures lazily after writes: a sorted permutation of its slots
(for tags, label -> slots) and, for wide ranges, prefix bitmaps over that order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._growth import grown_capacity
from ._validation import exact_ints
from .errors import BitgraphTypeError, BitgraphValueError
from .persistence import is_mapped

INT_MISSING = np.iinfo(np.int64).min
KINDS = ("int", "float", "tags")
# A range leaf spanning more than two of these buckets of the sorted order is built from two
# precomputed prefix bitmaps (O(n/64) words) plus its two partial buckets, not slot by slot
# (O(matches)): wide ranges that differ per query stay cheap. 128 buckets: ~16 B/item/field.
PREFIX_BUCKETS = 128
MIN_PREFIX_ITEMS = 4096


class Growable:
    """A 1-d array with amortised O(1) appends and bounded slack (bitgraph._growth); it may
    start as a read-only memory map, copied on the first append."""

    def __init__(self, data: np.ndarray) -> None:
        self._buf = data
        self._n = data.shape[0]

    @property
    def view(self) -> np.ndarray:
        return self._buf[: self._n]

    def __len__(self) -> int:
        return self._n

    def append(self, values: np.ndarray) -> None:
        need = self._n + values.shape[0]
        if need > self._buf.shape[0] or not self._buf.flags.writeable:
            self._resize(grown_capacity(self._buf.shape[0] if self._buf.flags.writeable
                                        else self._n, need, self._buf.itemsize))
        self._buf[self._n: need] = values
        self._n = need

    def reserve(self, n: int) -> None:
        """Capacity for ``n`` values without slack."""
        if n > self._buf.shape[0]:
            self._resize(n)

    def shrink(self) -> None:
        """Gives unused capacity back (a copy of the values)."""
        if self._buf.flags.writeable and self._buf.shape[0] > self._n:
            self._resize(self._n)

    def _resize(self, capacity: int) -> None:
        grown = np.empty(max(capacity, self._n), dtype=self._buf.dtype)
        grown[: self._n] = self._buf[: self._n]
        self._buf = grown

    @property
    def held_nbytes(self) -> int:
        """Bytes in RAM (capacity included; 0 for a memory map)."""
        return 0 if is_mapped(self._buf) else int(self._buf.nbytes)

    @property
    def mapped_nbytes(self) -> int:
        return int(self._buf.nbytes) if is_mapped(self._buf) else 0


class Column:
    kind = ""

    def __init__(self) -> None:
        self._index: tuple[np.ndarray, np.ndarray] | None = None
        self._prefix: tuple[np.ndarray, int] | None = None

    def invalidate(self) -> None:
        self._index = None
        self._prefix = None

    def index_nbytes(self) -> int:
        """Bytes of the lazily built search structures."""
        n = sum(a.nbytes for a in self._index) if self._index is not None else 0
        return n + (self._prefix[0].nbytes if self._prefix is not None else 0)


class ScalarColumn(Column):
    """int or float values, one per slot, with a lazily built sorted permutation."""

    def __init__(self, kind: str, values: np.ndarray) -> None:
        super().__init__()
        self.kind = kind
        self.missing = INT_MISSING if kind == "int" else np.nan
        self.values = Growable(values)

    def __len__(self) -> int:
        return len(self.values)

    def append(self, values: np.ndarray) -> None:
        self.values.append(values)
        self.invalidate()

    def buffers(self) -> list[Growable]:
        """The growable arrays holding the column's values."""
        return [self.values]

    def gather(self, slots: np.ndarray) -> np.ndarray:
        return self.values.view[slots]

    def sorted_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sorted values, slots in that order)``; missing values sort outside every range."""
        if self._index is None:
            vals = self.values.view
            perm = np.argsort(vals, kind="stable").astype(np.int32)
            self._index = (vals[perm], perm)
        return self._index

    def prefix_bitmaps(self) -> tuple[np.ndarray, int]:
        """``(P, bucket)``: ``P[j]`` is the bitset of the slots at sorted positions below
        ``j * bucket``."""
        if self._prefix is None:
            _, perm = self.sorted_index()
            n = perm.shape[0]
            bucket = max(1, -(-n // PREFIX_BUCKETS))
            n_buckets = -(-n // bucket)
            words = (n + 63) // 64
            prefix = np.zeros((n_buckets + 1, words), dtype=np.uint64)
            mask = np.zeros(words * 64, dtype=bool)
            for j in range(1, n_buckets + 1):
                mask[perm[(j - 1) * bucket: j * bucket]] = True
                prefix[j] = np.packbits(mask, bitorder="little").view("<u8")
            self._prefix = (prefix, bucket)
        return self._prefix

    def range_parts(self, a: int, b: int) -> tuple[tuple[np.ndarray, int, int] | None,
                                                   list[np.ndarray]]:
        """Sorted positions ``[a, b)`` as ``((prefix bitmaps, hi row, lo row) or None, runs of
        slots to add)``: the range is ``P[hi] & ~P[lo]`` plus the runs."""
        _, perm = self.sorted_index()
        if perm.shape[0] >= MIN_PREFIX_ITEMS:
            bucket = max(1, -(-perm.shape[0] // PREFIX_BUCKETS))
            ja, jb = -(-a // bucket), b // bucket
            if jb - ja >= 2:
                prefix, bucket = self.prefix_bitmaps()
                return (prefix, jb, ja), [perm[a: ja * bucket], perm[jb * bucket: b]]
        return None, [perm[a:max(a, b)]]

    def state(self, name: str) -> dict[str, np.ndarray]:
        return {f"attr.{name}.values": self.values.view}


class TagsColumn(Column):
    """Multi-label field: CSR (offsets, labels) plus a lazily built label -> slots index."""

    kind = "tags"

    def __init__(self, offsets: np.ndarray, labels: np.ndarray) -> None:
        super().__init__()
        self.offsets = Growable(offsets)
        self.labels = Growable(labels)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def append_lists(self, counts: np.ndarray, flat: np.ndarray) -> None:
        end = int(self.offsets.view[-1])
        self.offsets.append(end + np.cumsum(counts, dtype=np.int64))
        self.labels.append(flat)
        self.invalidate()

    def buffers(self) -> list[Growable]:
        """The growable arrays holding the column's values."""
        return [self.offsets, self.labels]

    def lists_of(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        off = self.offsets.view
        starts, ends = off[slots], off[slots + 1]
        counts = ends - starts
        if counts.sum() == 0:
            return counts, np.zeros(0, np.int64)
        flat = np.concatenate([self.labels.view[s:e] for s, e in zip(starts, ends)])
        return counts, flat

    def sorted_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(labels sorted, the slot holding each)``."""
        if self._index is None:
            off = self.offsets.view
            labels = self.labels.view[: int(off[-1])]
            owner = np.repeat(np.arange(len(self), dtype=np.int32), np.diff(off))
            perm = np.argsort(labels, kind="stable")
            self._index = (labels[perm], owner[perm])
        return self._index

    def state(self, name: str) -> dict[str, np.ndarray]:
        off = self.offsets.view
        return {f"attr.{name}.offsets": off, f"attr.{name}.labels": self.labels.view[: int(off[-1])]}


def parse_values(name: str, raw: Any, n: int) -> tuple[str, Any]:
    """(kind, data) of one field given at add: an int/float array, or a list of int lists."""
    if isinstance(raw, np.ndarray) and raw.dtype != object:
        arr = raw
    else:
        if raw is None or isinstance(raw, (str, bytes, dict)) or not hasattr(raw, "__iter__"):
            raise BitgraphTypeError(
                f"attribute {name!r} must be a sequence of {n} values (an int or float array, "
                f"or a list of int lists), got {type(raw).__name__} {raw!r:.60}")
        seq = list(raw)
        if len(seq) != n:
            raise BitgraphValueError(f"attribute {name!r} has {len(seq)} values for {n} vectors")
        if any(isinstance(v, (list, tuple, np.ndarray, set, frozenset)) for v in seq):
            return "tags", parse_tags(name, seq)
        arr = exact_ints(seq, f"attribute {name!r}")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise BitgraphValueError(
            f"attribute {name!r} must be 1-d with {n} values, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise BitgraphValueError(f"attribute {name!r} has values beyond int64")
        out = arr.astype(np.int64)
        if (out == INT_MISSING).any():
            raise BitgraphValueError(f"attribute {name!r} uses {INT_MISSING}, reserved for missing")
        return "int", out
    if arr.dtype.kind == "f":
        out = arr.astype(np.float64)
        if not np.isfinite(out).all():
            raise BitgraphValueError(f"attribute {name!r} has NaN or inf values")
        return "float", out
    raise BitgraphTypeError(
        f"attribute {name!r} must hold ints, floats or lists of ints, got dtype {arr.dtype}")


def parse_tags(name: str, seq: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    counts = np.empty(len(seq), np.int64)
    parts = []
    for i, v in enumerate(seq):
        try:
            a = exact_ints(list(v) if isinstance(v, (set, frozenset)) else v,
                           f"attribute {name!r} item {i}")
        except BitgraphValueError:
            raise
        except (TypeError, ValueError):  # ragged or nested lists
            raise BitgraphTypeError(
                f"attribute {name!r} item {i} must be a list of ints, got {v!r:.80}") from None
        if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
            raise BitgraphTypeError(
                f"attribute {name!r} item {i} must be a list of ints, got {v!r}")
        if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
            raise BitgraphValueError(
                f"attribute {name!r} item {i} has labels beyond int64: {v!r}")
        a = np.unique(a.astype(np.int64))
        counts[i] = a.size
        parts.append(a)
    flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return counts, flat


def empty_column(kind: str, n: int) -> "ScalarColumn | TagsColumn":
    if kind == "tags":
        return TagsColumn(np.zeros(n + 1, np.int64), np.zeros(0, np.int64))
    if kind == "int":
        return ScalarColumn(kind, np.full(n, INT_MISSING, np.int64))
    return ScalarColumn(kind, np.full(n, np.nan, np.float64))
