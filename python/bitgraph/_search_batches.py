"""How one search call's queries are grouped by filter (used by _index_base).

A batch with one filter per query is split into groups of queries sharing a filter, and
chunks of groups that one core call evaluates (rows are padded to ``k`` by ``_rows.padded``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import BitgraphTypeError, BitgraphValueError
from .filters import Filter

def checked_filter(f: Any) -> Filter:
    if not isinstance(f, Filter):
        raise BitgraphTypeError(
            f"filter must be a bitgraph.Filter (or a list of them), got {type(f).__name__}")
    return f


def filter_groups(filter: Any, nq: int) -> list[tuple[Filter | None, np.ndarray | None]]:
    """Queries grouped by equal filters: [(filter, query rows or None for all)]."""
    if isinstance(filter, Filter):
        return [(filter, None)]
    if isinstance(filter, (str, bytes)) or not hasattr(filter, "__len__"):
        raise BitgraphTypeError(
            f"filter must be a bitgraph.Filter or a list of them, got {type(filter).__name__}")
    filters = list(filter)
    if len(filters) != nq:
        raise BitgraphValueError(
            f"filter list has {len(filters)} entries for {nq} queries (one per query expected)")
    groups: dict[Any, tuple[Filter | None, list[int]]] = {}
    for i, f in enumerate(filters):
        key = None if f is None else checked_filter(f).key()
        groups.setdefault(key, (f, []))[1].append(i)
    if len(groups) == 1:
        (f, _), = groups.values()
        return [(f, None)]
    return [(f, np.asarray(rows, dtype=np.int64)) for f, rows in groups.values()]


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
