"""Binary codes: the recurrent binarizer (BEBR), its numpy reference, and the index over them.

``binarizer`` (RecurrentBinarizer), ``training`` (its fit), ``offsets`` and ``reference`` (the
numpy reference of the codes and distances) make the codes; ``index`` (BinaryIndex) searches
them, re-ranked with float vectors (``bitgraph._reranking``, shared with HNSWIndex).
"""
from .binarizer import RecurrentBinarizer
from .index import BinaryIndex

__all__ = ["BinaryIndex", "RecurrentBinarizer"]
