"""The errors the service answers with: a status, a machine-readable code and a message that
names the problem. Everything a request can get wrong maps to one of these (a 4xx); a 5xx
means a bug or a failing disk."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as ``{"error": {"code": ..., "message": ...}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


def overloaded(message: str, retry_after_s: int = 1) -> ApiError:
    return ApiError(429, "overloaded", message, {"Retry-After": str(retry_after_s)})


def unavailable(message: str, retry_after_s: int = 1) -> ApiError:
    return ApiError(503, "unavailable", message, {"Retry-After": str(retry_after_s)})
