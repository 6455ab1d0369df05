"""Where a slot's link list sits in the graph arrays (shared by the walks of every module)."""
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def level_links(graph, M, level):
    """``(array, max_count)`` holding the link lists of ``level``.

    Chosen once per level, outside the hot loops; :func:`link_offset` then finds a slot's
    list in it: ``array[offset]`` is the neighbour count, followed by the neighbour slots.
    """
    if level == 0:
        return graph[0], 2 * M
    return graph[1], M


@njit(cache=True, nogil=True, inline="always")
def link_offset(graph, M, slot, level):
    """Offset of ``slot``'s link list at ``level`` in the array from :func:`level_links`."""
    if level == 0:
        return slot * (1 + 2 * M)
    return graph[2][slot] + (level - 1) * (1 + M)
