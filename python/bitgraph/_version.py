"""The package version (one place: the package, saved index headers and backend_info)."""

__version__ = "0.1.0"
