"""The packed form of an IVF partition the search kernels read: every list's 4-bit codes in
32-row fast-scan blocks (csrc/binary/fastscan.hpp, "Block layout"), lists back to back.

Block b of the packed rows holds rows 32b .. 32b + 31; position p (sub-space p) occupies bytes
[16p, 16p + 16) of the block, byte i = code(row 32b + i, p) | code(row 32b + 16 + i, p) << 4.
Each list starts at a multiple of 32 rows; padding rows have slot -1 and code 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_ROWS = 32


def positions(subspaces: int) -> int:
    """Nibble positions per row: the sub-spaces rounded up to a multiple of 4."""
    return -(-subspaces // 4) * 4


@dataclass(frozen=True)
class PackedLists:
    """What one search reads: list boundaries, blocks and the slot of every packed row."""

    list_starts: np.ndarray  # uint64 (nlist + 1,), multiples of 32
    blocks: np.ndarray       # uint8 (n_blocks, 16 * positions)
    row_slots: np.ndarray    # int32 (n_blocks * 32,), -1 for padding

    def __post_init__(self) -> None:
        top = int(self.row_slots.max()) if self.row_slots.size else -1
        object.__setattr__(self, "_max_slot", top)

    @property
    def max_slot(self) -> int:
        """The largest slot packed (-1 when none): the search kernel reads rows up to it."""
        return self._max_slot

    @property
    def nbytes(self) -> int:
        return int(self.list_starts.nbytes + self.blocks.nbytes + self.row_slots.nbytes)


def pack_lists(lists: np.ndarray, codes: np.ndarray, live: np.ndarray, nlist: int
               ) -> PackedLists:
    """Packs the live slots (``live`` bool per slot) by list (``lists`` int32 per slot) into
    blocks of their codes (``codes`` uint8 (n_slots, m), values 0..15)."""
    m = codes.shape[1]
    npos = positions(m)
    slots = np.flatnonzero(live).astype(np.int64)
    order = slots[np.argsort(lists[slots], kind="stable")]
    counts = np.bincount(lists[slots], minlength=nlist).astype(np.int64)
    padded = -(-counts // BLOCK_ROWS) * BLOCK_ROWS
    starts = np.zeros(nlist + 1, dtype=np.uint64)
    np.cumsum(padded, out=starts[1:])
    total = int(starts[-1])
    row_slots = np.full(total, -1, dtype=np.int32)
    # Destination of the i-th row of the list-sorted order: its list's start + rank in list.
    first_of_list = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(counts, out=first_of_list[1:])
    sorted_lists = lists[order].astype(np.int64)
    dest = starts[:-1].astype(np.int64)[sorted_lists] + (
        np.arange(order.size, dtype=np.int64) - first_of_list[sorted_lists])
    row_slots[dest] = order
    nibbles = np.zeros((total, npos), dtype=np.uint8)
    nibbles[dest, :m] = codes[order]
    blocks = nibbles.reshape(-1, 2, 16, npos)  # (block, half, row in half, position)
    packed = (blocks[:, 0] | (blocks[:, 1] << 4)).transpose(0, 2, 1)  # (block, position, 16)
    return PackedLists(starts, np.ascontiguousarray(packed.reshape(-1, 16 * npos)), row_slots)


TILE_ROWS = 16


def centroid_tiles(centroids: np.ndarray) -> np.ndarray:
    """float32 ``(ceil(nlist / 16), dim, 16)``: the centroids as transposed 16-row tiles (the
    layout of the batched distance kernels), padding lanes 0."""
    nlist, dim = centroids.shape
    n_tiles = -(-nlist // TILE_ROWS)
    padded = np.zeros((n_tiles * TILE_ROWS, dim), dtype=np.float32)
    padded[:nlist] = centroids
    return np.ascontiguousarray(padded.reshape(n_tiles, TILE_ROWS, dim).transpose(0, 2, 1))


def list_min_sq_norms(lists: np.ndarray, sq_norms: np.ndarray, live: np.ndarray,
                      nlist: int) -> np.ndarray:
    """float32 ``(nlist,)``: the smallest squared norm among each list's live rows (+inf for
    an empty list): a lower bound on every row's distance term, for the l2 scan's skip test."""
    out = np.full(nlist, np.inf, dtype=np.float32)
    np.minimum.at(out, lists[live], sq_norms[live])
    return out
