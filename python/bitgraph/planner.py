"""The filtered-search planner's settings and the names of its plans.

For each query with a filter matching ``|S|`` live items, the backend picks one plan:

- ``"exact"``: ``|S| <= k`` or ``|S| <= exact_per_ef * ef``: score every match (recall 1.0;
  cheaper than a graph walk for selective filters);
- ``"acorn"``: selectivity ``|S| / size < acorn_below``: walk the predicate subgraph (only
  matching nodes are scored; non-matching neighbours are looked through, two hops), starting
  from the unfiltered descent and ``seeds`` entry points drawn from the matches;
- ``"post-filter"``: otherwise a normal walk whose results admit only matching nodes;
- ``"exact-fallback"``: a walk scored more nodes than ``|S|`` (or could not find
  ``min(k, |S|)`` matches) and the query was finished by the exact scan.

``exact_per_ef`` is a cost ratio: a walk at a given ``ef`` costs about as much as scoring
``exact_per_ef * ef`` gathered rows. Set ``index.planner = PlannerConfig(...)`` to change the
thresholds; whatever they are, results only ever hold matching items and the guard bounds a
bad choice to about twice the exact scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BitgraphValueError

PLAN_NAMES = {1: "exact", 2: "acorn", 3: "post-filter", 4: "exact-fallback"}


@dataclass(frozen=True)
class PlannerConfig:
    """Thresholds of the filtered-search planner (see the module docstring)."""

    exact_per_ef: float = 48.0
    acorn_below: float = 0.3
    seeds: int = 8

    def __post_init__(self) -> None:
        if not (self.exact_per_ef >= 0 and np.isfinite(self.exact_per_ef)):
            raise BitgraphValueError(f"exact_per_ef must be finite and >= 0, got {self.exact_per_ef}")
        if not (0.0 <= self.acorn_below <= 1.0):
            raise BitgraphValueError(f"acorn_below must be in [0, 1], got {self.acorn_below}")
        if not (0 <= int(self.seeds) <= 1024):
            raise BitgraphValueError(f"seeds must be in [0, 1024], got {self.seeds}")

    def args(self) -> tuple[float, float, int]:
        return float(self.exact_per_ef), float(self.acorn_below), int(self.seeds)


def plan_names(codes: np.ndarray) -> np.ndarray:
    """Plan codes from a backend -> an array of plan names."""
    out = np.empty(codes.shape[0], dtype="<U14")
    for code, name in PLAN_NAMES.items():
        out[codes == code] = name
    return out
