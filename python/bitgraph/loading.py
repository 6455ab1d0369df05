"""Where ``bitgraph.load`` / ``loads`` lived until they joined :mod:`bitgraph.persistence`.

Kept only because pickles name it: an index pickled by an earlier version unpickles by calling
``bitgraph.loading.loads(bytes)``. Nothing in bitgraph imports this module.
"""
from .persistence import load, loads

__all__ = ["load", "loads"]
