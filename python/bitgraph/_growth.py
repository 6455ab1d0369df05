"""How growable arrays grow: with bounded slack, as the native Buffer (csrc/core/buffer.hpp).

Doubling leaves up to 2x unused memory that an index never gives back: a streaming ingest that
adds in chunks ends with about 1.5x what it holds on average. Small arrays still double (their
slack is cheap); large ones grow by 1/32, so the slack stays within ~3%. numpy copies an array
to grow it, so that costs about 32x the final size in copying over the life of the array
(~1-2 s per 100 MB), small beside building what fills it.
"""

from __future__ import annotations

SMALL_BYTES = 1 << 20
LARGE_GROWTH = 32  # large arrays grow by 1/LARGE_GROWTH


def grown_capacity(capacity: int, need: int, row_bytes: int) -> int:
    """Rows an array of ``capacity`` rows of ``row_bytes`` bytes grows to, to hold ``need``."""
    if need <= capacity:
        return capacity
    if capacity * row_bytes < SMALL_BYTES:
        target = max(2 * capacity, 16)
    else:
        target = capacity + capacity // LARGE_GROWTH
    return max(need, target)
