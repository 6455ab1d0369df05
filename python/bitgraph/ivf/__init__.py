"""The inverted-file index (:class:`IVFIndex`): training, packed lists and the index."""

from .index import IVFIndex

__all__ = ["IVFIndex"]
