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


class IndexFileNotFoundError(IndexFileError, FileNotFoundError):
    """The index file (or the directory to save it in) does not exist."""


class IndexFilePermissionError(IndexFileError, PermissionError):
    """The index file (or its directory) may not be read or written by this process."""


class IndexFileIsADirectoryError(IndexFileError, IsADirectoryError):
    """The path names a directory, not an index file."""


class IndexFileNotADirectoryError(IndexFileError, NotADirectoryError):
    """A component of the path is not a directory."""


def index_file_error(exc: OSError, message: str, path: str) -> IndexFileError:
    """``exc`` (an OSError of a file operation) as an IndexFileError that keeps its errno,
    the file name and its builtin kind (``except FileNotFoundError`` still catches it)."""
    for builtin, ours in _OS_ERROR_KINDS:
        if isinstance(exc, builtin):
            return ours(exc.errno, message, path)
    return IndexFileError(exc.errno, message, path)


_OS_ERROR_KINDS: tuple[tuple[type[OSError], type[IndexFileError]], ...] = (
    (FileNotFoundError, IndexFileNotFoundError),
    (PermissionError, IndexFilePermissionError),
    (IsADirectoryError, IndexFileIsADirectoryError),
    (NotADirectoryError, IndexFileNotADirectoryError),
)


class BackendUnavailableError(BitgraphError, ImportError):
    """The backend forced with BITGRAPH_BACKEND is not available on this machine."""


class DeviceUnavailableError(BackendUnavailableError):
    """``device="cuda"`` was asked for where it cannot run: CuPy is not installed, there is no
    CUDA device, or the driver does not match. The message names which. (A kind of
    BackendUnavailableError: the CUDA kernels are the kernel set behind the same seam.)"""


class Cancelled(BitgraphError, KeyboardInterrupt):
    """A long operation was cancelled by its progress callback."""


__all__ = [
    "BitgraphError",
    "BitgraphValueError",
    "BitgraphTypeError",
    "UnknownIdError",
    "IndexFileError",
    "IndexFileNotFoundError",
    "IndexFilePermissionError",
    "BackendUnavailableError",
    "DeviceUnavailableError",
    "Cancelled",
]
