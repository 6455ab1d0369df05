"""Exceptions raised by bitgraph.

Every error bitgraph raises on purpose derives from :class:`BitgraphError` and also from the
builtin exception a Python user would expect (``ValueError``, ``TypeError``, ``KeyError``,
``OSError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class BitgraphError(Exception):
    """Base class of all bitgraph errors."""


class BitgraphValueError(BitgraphError, ValueError):
    """An argument has the right type but a wrong value (dimension, NaN, k < 1, ...)."""


class BitgraphTypeError(BitgraphError, TypeError):
    """An argument has the wrong type (e.g. float ids, a string where an array is expected)."""


class UnknownIdError(BitgraphError, KeyError, ValueError):
    """An id given to ``remove`` (or similar) is not in the index."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IndexFileError(BitgraphError, OSError):
    """A saved index cannot be read: truncated, corrupted, wrong magic or a newer format."""


class BackendUnavailableError(BitgraphError, ImportError):
    """The backend forced with BITGRAPH_BACKEND is not available on this machine."""


class Cancelled(BitgraphError, KeyboardInterrupt):
    """A long operation was cancelled by its progress callback."""


__all__ = [
    "BitgraphError",
    "BitgraphValueError",
    "BitgraphTypeError",
    "UnknownIdError",
    "IndexFileError",
    "BackendUnavailableError",
    "Cancelled",
]
