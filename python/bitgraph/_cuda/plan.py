"""The tiling planner: how a scan over n stored rows is cut into query blocks and tiles.

Pure Python (no CuPy), so the plans are tested on machines without a GPU. A scan holds, per
query block, a distance tile of ``query_block x tile_rows`` float32 (the GEMM or code-kernel
output the select kernel consumes), optionally a float32 copy of the tile's rows (float16
storage is kept as fp16 on the device and widened one tile at a time for the GEMM), and each
query's running best keys (8 bytes per kept candidate; the radix path double-buffers them).
The planner fits those into a memory budget, never an nq x n matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BitgraphValueError

SMALL_SELECT_MAX = 1024     # kc up to this: shared-memory block select; above: radix select
SELECT_THREADS = 256        # threads per block of bg_select_small
RADIX_THREADS = 1024        # threads per block of bg_select_radix
TILE_ALIGN = 256            # tile rows are a multiple of this (one select block pass)
MIN_TILE_ROWS = 1024
MAX_TILE_ROWS = 1 << 22
MAX_QUERY_BLOCK = 4096      # queries per pass: enough to make the GEMM compute-bound
DEFAULT_BUDGET = 1 << 30    # bytes of scratch a scan may hold on the device
SHARED_WORDS = 6144         # 48 KiB of shared memory in uint64 words (the default limit)
MAX_CODE_QUERY_BLOCK = 8    # queries a code-kernel thread scores per pass (registers)
MAX_SLOTS = (1 << 31) - 1   # slots are uint32 in keys and int32 in tile offsets


def next_pow2(x: int) -> int:
    return 1 << max(0, int(x) - 1).bit_length()


@dataclass(frozen=True)
class TilePlan:
    """One scan's shape (see the module docstring)."""

    n: int             # stored rows scanned
    nq: int            # queries
    kc: int            # keys kept per query (<= max(n, 1))
    select: str        # "small" (kc <= 1024) or "radix"
    shared_keys: int   # bg_select_small's shared buffer (keys, a power of two)
    query_block: int   # queries per pass over the base
    tile_rows: int     # stored rows per tile (a multiple of TILE_ALIGN)
    n_tiles: int
    scratch_bytes: int  # what the plan holds on the device at once

    @property
    def threads(self) -> int:
        return SELECT_THREADS if self.select == "small" else RADIX_THREADS


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BitgraphValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def plan_scan(n: int, nq: int, kc: int, *, widen_bytes: int = 0,
              budget: int = DEFAULT_BUDGET) -> TilePlan:
    """The plan for ``nq`` queries keeping ``kc`` keys each over ``n`` rows.

    ``widen_bytes``: bytes per stored row of a per-tile conversion buffer (float16 storage:
    4 * dim). ``budget`` is a target, not a hard cap: the smallest plan (one query, a
    MIN_TILE_ROWS tile) is returned even when it does not fit.
    """
    n = _check_count("n", n, 0)
    nq = _check_count("nq", nq, 1)
    kc = _check_count("kc", kc, 1)
    widen_bytes = _check_count("widen_bytes", widen_bytes, 0)
    budget = _check_count("budget", budget, 1)
    if n > MAX_SLOTS:
        raise BitgraphValueError(f"a device scan covers at most {MAX_SLOTS} rows, got {n}")
    kc = min(kc, max(n, 1))
    small = kc <= SMALL_SELECT_MAX
    shared = next_pow2(kc + SELECT_THREADS) if small else 0
    per_query = 8 * kc if small else 16 * kc + 8        # running best (radix: two + threshold)
    query_block = max(1, min(nq, MAX_QUERY_BLOCK, (budget // 2) // per_query))
    left = max(0, budget - query_block * per_query)
    per_row = 4 * query_block + widen_bytes
    rows = left // per_row
    cover = -(-max(n, 1) // TILE_ALIGN) * TILE_ALIGN  # no tile larger than the base needs
    rows = max(MIN_TILE_ROWS, min(MAX_TILE_ROWS, rows)) // TILE_ALIGN * TILE_ALIGN
    rows = max(TILE_ALIGN, min(rows, cover))
    n_tiles = -(-n // rows) if n else 0
    scratch = query_block * per_query + rows * per_row
    return TilePlan(n, nq, kc, "small" if small else "radix", shared, query_block, rows,
                    n_tiles, scratch)


def candidate_margin(k: int) -> int:
    """Extra GEMM candidates per query re-scored exactly (see scan.FloatScan): enough that the
    k-th exact distance is almost always separated from the last candidate's by more than the
    GEMM's rounding bound (queries where it is not are redone with 4x the candidates), and
    k <= 1000 stays within the shared-memory select."""
    k = _check_count("k", k, 1)
    want = max(16, k // 8)
    if k + want > SMALL_SELECT_MAX and k + 8 <= SMALL_SELECT_MAX:
        want = SMALL_SELECT_MAX - k
    return want


def code_query_block(planes: int, words: int) -> int:
    """Queries the code kernel stages in shared memory per block (their words must fit)."""
    planes = _check_count("planes", planes, 1)
    words = _check_count("words", words, 1)
    if planes > 8:
        raise BitgraphValueError(f"codes have at most 8 planes on the GPU, got {planes}")
    per_query = planes * words
    if per_query > SHARED_WORDS:
        raise BitgraphValueError(
            f"codes of {per_query} uint64 words per row ({planes} planes x {words} words) do "
            f"not fit the GPU kernel's shared memory (at most {SHARED_WORDS} words)")
    return max(1, min(MAX_CODE_QUERY_BLOCK, SHARED_WORDS // per_query))
