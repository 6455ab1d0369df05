"""The tiling planner (pure Python): plans fit the budget, cover the base, pick the select."""

from __future__ import annotations

import bitgraph as bg
import pytest
from bitgraph._cuda import plan


@pytest.mark.parametrize("n", [0, 1, 255, 257, 1000, 65_537, 1_000_003, 10_000_000])
@pytest.mark.parametrize("nq", [1, 7, 4097, 10_000])
@pytest.mark.parametrize("kc", [1, 10, 116, 1024, 1025, 5000])
def test_plans_cover_the_base_within_budget(n, nq, kc):
    p = plan.plan_scan(n, nq, kc)
    assert p.kc == min(kc, max(n, 1))
    assert p.select == ("small" if p.kc <= plan.SMALL_SELECT_MAX else "radix")
    assert 1 <= p.query_block <= min(nq, plan.MAX_QUERY_BLOCK)
    assert p.tile_rows % plan.TILE_ALIGN == 0 and p.tile_rows >= plan.TILE_ALIGN
    assert p.n_tiles * p.tile_rows >= n > (p.n_tiles - 1) * p.tile_rows or n == p.n_tiles == 0
    assert p.tile_rows <= max(plan.TILE_ALIGN, -(-n // plan.TILE_ALIGN) * plan.TILE_ALIGN)
    assert p.scratch_bytes <= plan.DEFAULT_BUDGET
    if p.select == "small":
        assert p.shared_keys >= p.kc + plan.SELECT_THREADS
        assert p.shared_keys & (p.shared_keys - 1) == 0 and 8 * p.shared_keys <= 48 << 10


def test_never_an_nq_by_n_matrix():
    p = plan.plan_scan(10_000_000, 10_000, 110)
    assert p.query_block * p.tile_rows * 4 < 10_000 * 10_000_000 * 4 / 100


def test_float16_widening_shrinks_the_tile():
    plain = plan.plan_scan(1_000_000, 100, 10)
    widened = plan.plan_scan(1_000_000, 100, 10, widen_bytes=4 * 768)
    assert widened.tile_rows < plain.tile_rows
    assert widened.scratch_bytes <= plan.DEFAULT_BUDGET


def test_tiny_budget_still_plans():
    p = plan.plan_scan(100_000, 50, 10, budget=1)
    assert p.query_block == 1 and p.tile_rows == plan.MIN_TILE_ROWS


@pytest.mark.parametrize("bad", [{"n": -1}, {"nq": 0}, {"kc": 0}, {"n": 1.5}, {"nq": True},
                                 {"budget": 0}, {"n": 1 << 31}])
def test_argument_checks(bad):
    args = {"n": 10, "nq": 1, "kc": 1, **bad}
    with pytest.raises(bg.BitgraphValueError):
        plan.plan_scan(args.pop("n"), args.pop("nq"), args.pop("kc"), **args)


@pytest.mark.parametrize("k", [1, 10, 100, 1000, 1016, 1024, 5000])
def test_candidate_margin(k):
    m = plan.candidate_margin(k)
    assert m >= 8
    if k + 8 <= plan.SMALL_SELECT_MAX:
        assert k + m <= plan.SMALL_SELECT_MAX  # k <= 1016 stays on the shared-memory select
    with pytest.raises(bg.BitgraphValueError):
        plan.candidate_margin(0)


def test_code_query_block():
    assert plan.code_query_block(2, 6) == plan.MAX_CODE_QUERY_BLOCK
    assert plan.code_query_block(8, 768) == 1
    with pytest.raises(bg.BitgraphValueError, match="shared memory"):
        plan.code_query_block(8, 769)
    with pytest.raises(bg.BitgraphValueError, match="8 planes"):
        plan.code_query_block(9, 1)
