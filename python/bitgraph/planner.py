"""The filtered-search planner's settings and the names of its plans.

For each query with a filter matching ``|S|`` live items, the backend picks one plan:

- ``"exact"``: ``|S| <= k`` or ``|S|^2 <= exact_ratio * ef * size``: score every match
  (recall 1.0). A scan costs ~``|S|``; a filtered walk ~``ef / s = ef * size / |S|`` (it passes
  about 1/s nodes for each match it keeps), so the scan wins below ``sqrt(ratio * ef * size)``
  matches. A batch sharing one filter with at least
  8 queries is scanned in one tiled pass over the matches (the FlatIndex kernels),
  about 10x cheaper per query, so it uses the larger ``exact_ratio_batched``;
- ``"acorn"``: selectivity ``|S| / size < acorn_below``: walk the predicate subgraph (only
  matching nodes are scored; non-matching neighbours are looked through, two hops), starting
  from the unfiltered descent and ``seeds`` entry points drawn from the matches;
- ``"post-filter"``: otherwise a normal walk whose results admit only matching nodes;
- ``"exact-fallback"``: a walk scored more nodes than ``|S|`` (or could not find
  ``min(k, |S|)`` matches) and the query was finished by the exact scan.

Defaults come from glove-50-angular (390k x 50, 1 thread, this project's 2-core machine,
``python -m bench.planner_probe``): one query's gathered scan costs ~15-20 ns per match
against ~100-200 us for a walk at recall 0.95 (crossover ~3% selectivity at ef 64: ratio 7);
the tiled batch scan costs ~1.5 ns per match and query and beats the walks up to ~40%
selectivity at ef 64 (ratio 1000); the ACORN walk beat the post-filter walk only below ~5%.
Set ``index.planner = PlannerConfig(...)`` to change the thresholds; whatever they are,
results only ever hold matching items and the guard bounds a bad choice to about twice the
exact scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_int, check_number
from .errors import BitgraphValueError

PLAN_NAMES = {1: "exact", 2: "acorn", 3: "post-filter", 4: "exact-fallback"}


@dataclass(frozen=True)
class PlannerConfig:
    """Thresholds of the filtered-search planner (see the module docstring)."""

    exact_ratio: float = 7.0
    exact_ratio_batched: float = 1000.0
    acorn_below: float = 0.05
    seeds: int = 8

    def __post_init__(self) -> None:
        for name in ("exact_ratio", "exact_ratio_batched"):
            object.__setattr__(self, name, check_number(name, getattr(self, name), 0.0))
        acorn = check_number("acorn_below", self.acorn_below, 0.0)
        if acorn > 1.0:
            raise BitgraphValueError(f"acorn_below must be in [0, 1], got {self.acorn_below}")
        object.__setattr__(self, "acorn_below", acorn)
        object.__setattr__(self, "seeds", check_int("seeds", self.seeds, 0, 1024))

    def args(self) -> tuple[float, float, float, int]:
        """Positional arguments of a core's ``search_filtered`` after ``count``."""
        return (float(self.exact_ratio), float(self.exact_ratio_batched),
                float(self.acorn_below), int(self.seeds))


def plan_names(codes: np.ndarray) -> np.ndarray:
    """Plan codes from a backend -> an array of plan names."""
    out = np.empty(codes.shape[0], dtype="<U14")
    for code, name in PLAN_NAMES.items():
        out[codes == code] = name
    return out
