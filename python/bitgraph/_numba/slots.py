"""Slot bookkeeping shared by the flat and HNSW cores.

A slot is a row number assigned in insertion order. :class:`SlotCore` owns the per-slot arrays
(rows, labels, tombstones, and whatever a subclass adds), grows them geometrically, maps user
labels to slots, and implements copy-on-write for arrays adopted from a file.

Concurrency: the arrays live in one dict that is *replaced*, never mutated, when memory moves,
so a search that grabbed ``self._arr`` once keeps a consistent set of arrays even if an add
grows them meanwhile. add/remove are serialised by ``self._write_lock``.
"""
import threading

import numpy as np

from .filtered import evaluate_filter as evaluate_program
from .._growth import grown_capacity
from .codes import query_lanes
from .kernels import row_bytes_for, row_views
from .query import query as _query


class SlotCore:
    """Base of the cores: per-slot arrays, capacity, label map, tombstones.

    Subclasses list extra per-slot arrays in ``_extra_slot_arrays()`` as
    ``{name: (dtype, trailing_shape)}``; ``rows``, ``labels`` and ``deleted`` always exist.
    """

    query = _query  # the one search call (see query.py)

    def __init__(self, dim, storage):
        self.dim = int(dim)
        self.storage = storage
        self.row_bytes = row_bytes_for(self.dim, storage)
        self._n_slots = 0
        self._n_deleted = 0
        self._label_to_slot = {}
        self._owned = True
        self._adopted = ()
        self._write_lock = threading.RLock()
        self._arr = self._allocate(0, None)

    # ---- layout -----------------------------------------------------------------------------

    def _query_rows(self, x, what="queries"):
        """Rows as the contract passes them: float32 values, or uint8 code rows for binary
        storage, as a C-contiguous (n, width) array."""
        if self.storage == "binary":
            x = np.asarray(x)
            if x.dtype != np.uint8:
                raise ValueError(f"{what} of a binary core must be uint8 code rows, got {x.dtype}")
            # Added rows are code rows; asymmetric queries are wider (codes.query_lanes).
            width = (self.row_bytes if what == "vectors"
                     else 4 * query_lanes(self.row_bytes // 4, self._spec[2]))
            return np.ascontiguousarray(x).reshape(-1, width)
        return np.ascontiguousarray(x, dtype=np.float32).reshape(-1, self.dim)

    def _rows_in(self, x, what="queries"):
        """Rows as this backend's kernels take them: float32 values, or the uint8 code rows
        read as 4-byte lanes (an internal detail of this backend)."""
        rows = self._query_rows(x, what)
        return rows.view(np.float32) if self.storage == "binary" else rows

    def _extra_slot_arrays(self):
        return {}

    def _slot_arrays(self):
        spec = {"rows": (np.uint8, (self.row_bytes,)),
                "labels": (np.int64, ()),
                "deleted": (np.uint8, ())}
        spec.update(self._extra_slot_arrays())
        return spec

    def _allocate(self, capacity, old):
        """A new array dict of ``capacity`` slots, holding a copy of ``old``'s used slots.

        Everything in the new dict is a fresh copy, non-slot arrays included (see
        :meth:`_copy_extras`): the old dict, which a running search may still hold, is then
        never written again and stays self-consistent.
        """
        arr = {}
        n = self._n_slots
        for name, (dtype, tail) in self._slot_arrays().items():
            a = np.zeros((capacity,) + tail, dtype=dtype)
            if old is not None and n:
                a[:n] = old[name][:n]
            arr[name] = a
        arr["views"] = row_views(arr["rows"])
        if old is not None:
            self._copy_extras(old, arr)
        return arr

    @property
    def capacity(self):
        return self._arr["rows"].shape[0]

    def _row_bytes_all(self):
        """Bytes of one slot over every per-slot array."""
        return sum(np.dtype(dtype).itemsize * int(np.prod(tail, dtype=np.int64))
                   for dtype, tail in self._slot_arrays().values())

    def _reserve(self, n_total, exact=False):
        """Makes room for ``n_total`` slots (bounded growth, see bitgraph._growth; exactly
        that many with ``exact``) and makes every array owned (copy-on-write of adopted
        arrays)."""
        if n_total > self.capacity or not self._owned:
            cap = self.capacity if self._owned else self._n_slots
            if n_total > cap:
                cap = n_total if exact else grown_capacity(cap, n_total, self._row_bytes_all())
            self._arr = self._allocate(cap, self._arr)  # published only once complete
            self._owned = True

    def reserve(self, n_slots):
        """Room for ``n_slots`` slots in total, without slack (an ingest of known size)."""
        with self._write_lock:
            self._reserve(max(int(n_slots), self._n_slots), exact=True)

    def shrink_to_fit(self):
        """Gives unused capacity back (copies the used slots into arrays of their size)."""
        with self._write_lock:
            if self._owned and self.capacity > self._n_slots:
                self._arr = self._allocate(self._n_slots, self._arr)
            self._shrink_extras()

    def _shrink_extras(self):
        """Hook: shrink the non-slot arrays."""

    def release_free_slack(self):
        """Nothing: numpy gives capacity back only by copying (see :meth:`shrink_to_fit`)."""

    def _copy_extras(self, old, new):
        """Hook: copy the non-slot arrays of ``old`` into the dict ``new``."""

    def _adopt(self, state, n_slots, extra_names=()):
        """Uses the arrays of ``state`` as they are (no copy; may be read-only memmaps)."""
        self._adopted = ("rows", "labels", "deleted") + tuple(extra_names)
        arr = {name: np.asarray(state[name]) for name in self._adopted}
        arr["views"] = row_views(arr["rows"])
        self._arr = arr
        self._n_slots = n_slots
        self._owned = False
        deleted = np.asarray(state["deleted"])[:n_slots]
        labels = np.asarray(state["labels"])[:n_slots]
        self._n_deleted = int(np.count_nonzero(deleted))
        live = np.flatnonzero(deleted == 0)
        self._label_to_slot = dict(zip(labels[live].tolist(), live.tolist()))
        if len(self._label_to_slot) != live.size:  # as the native core: never two live copies
            uniq, counts = np.unique(labels[live], return_counts=True)
            raise ValueError(f"corrupt index: id {int(uniq[counts > 1][0])} appears twice")

    # ---- labels ---------------------------------------------------------------------------

    def _assign_slots(self, labels, first):
        """Maps ``labels`` to slots ``first, first+1, ...``; tombstones their previous slots."""
        deleted = self._arr["deleted"]
        lookup = self._label_to_slot
        for lab, slot in zip(labels.tolist(), range(first, first + len(labels))):
            old = lookup.get(lab)
            if old is not None:
                deleted[old] = 1
                self._n_deleted += 1
            lookup[lab] = slot

    def remove(self, labels):
        """Tombstones the slots of ``labels``; raises KeyError (changing nothing) if one is
        unknown."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1).tolist()
        with self._write_lock:
            lookup = self._label_to_slot
            missing = [lab for lab in labels if lab not in lookup]
            if missing:
                raise KeyError(f"unknown label {missing[0]}")
            self._reserve(self._n_slots)  # copy-on-write before the first modification
            deleted = self._arr["deleted"]
            for lab in labels:
                slot = lookup.pop(lab, None)
                if slot is not None:  # a label listed twice is removed once
                    deleted[slot] = 1
                    self._n_deleted += 1

    def contains(self, labels):
        """``uint8 (n,)``: 1 where the label is live in the index."""
        lookup = self._label_to_slot
        labels = np.asarray(labels, dtype=np.int64).reshape(-1).tolist()
        return np.fromiter((lab in lookup for lab in labels), dtype=np.uint8, count=len(labels))

    def slots_of(self, labels):
        """``int64 (n,)``: slot of each label, -1 when unknown or removed."""
        lookup = self._label_to_slot
        labels = np.asarray(labels, dtype=np.int64).reshape(-1).tolist()
        return np.fromiter((lookup.get(lab, -1) for lab in labels), dtype=np.int64,
                           count=len(labels))

    # ---- sizes ------------------------------------------------------------------------------

    @property
    def size(self):
        """Live (not removed) items."""
        return self._n_slots - self._n_deleted

    @property
    def n_slots(self):
        """Slots used, tombstones included."""
        return self._n_slots

    def _arrays_nbytes(self):
        """Bytes of the arrays this core owns (capacity included; adopted arrays excluded)."""
        borrowed = set(self._adopted) if not self._owned else set()
        seen = set()
        total = 0
        for name, a in self._arr.items():
            if name == "views" or not isinstance(a, np.ndarray) or id(a) in seen:
                continue
            seen.add(id(a))
            if name not in borrowed:
                total += a.nbytes
        return total

    @property
    def borrowed_nbytes(self):
        """Bytes of arrays adopted from a saved state (a memory map, or the caller's buffer)
        and not yet copied."""
        if self._owned:
            return 0
        return sum(int(self._arr[name].nbytes) for name in self._adopted)

    def evaluate_filter(self, ops, entries, limit, out=None, loads=None):
        """``(bitset, matches)`` of a compiled filter program over the live slots below
        ``limit``."""
        n_slots = min(int(limit), self._n_slots)
        return evaluate_program(ops, entries, self._arr["deleted"], self._n_deleted, n_slots, out,
                               loads)

    def evaluate_filters(self, ops, op_offsets, entries, limit, out, loads):
        """Match counts of a batch of compiled programs, each evaluated into its row of out."""
        counts = np.empty(out.shape[0], dtype=np.int64)
        for i in range(out.shape[0]):
            counts[i] = self.evaluate_filter(ops[op_offsets[i]:op_offsets[i + 1]], entries,
                                             limit, out[i], loads)[1]
        return counts

    def _slot_state(self):
        """Used parts of the per-slot arrays (views: valid until the next add/remove)."""
        n = self._n_slots
        return {name: self._arr[name][:n] for name in self._slot_arrays()}


def normalize_allowed(allowed):
    """``(bits uint64, use_flag)`` for a search; an empty array stands for "no filter"."""
    if allowed is None:
        return np.empty(0, dtype=np.uint64), False
    return np.ascontiguousarray(allowed, dtype=np.uint64).reshape(-1), True
