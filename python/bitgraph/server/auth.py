"""API keys: an admin key (everything) and an optional read-only key (searches and reads).

The key file is JSON: ``{"admin": "<key>", "read_only": "<key>"}``. Clients send a key as
``api-key: <key>`` or ``Authorization: Bearer <key>``. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from dataclasses import dataclass

from .errors import ApiError

MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class ApiKeys:
    admin: bytes
    read_only: bytes | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ApiKeys:
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"bitgraph serve: cannot read the API key file {path}: {exc}") from None
        if not isinstance(data, dict) or set(data) - {"admin", "read_only"} or "admin" not in data:
            raise SystemExit('bitgraph serve: the API key file must be JSON {"admin": "...", '
                             '"read_only": "..."} (read_only optional)')
        keys = [data["admin"]] + ([data["read_only"]] if data.get("read_only") else [])
        if not all(isinstance(k, str) and len(k) >= MIN_KEY_LENGTH for k in keys):
            raise SystemExit(f"bitgraph serve: API keys must be strings of at least "
                             f"{MIN_KEY_LENGTH} characters")
        if len(keys) == 2 and keys[0] == keys[1]:
            raise SystemExit("bitgraph serve: the admin and read-only keys must differ")
        return cls(keys[0].encode(), keys[1].encode() if len(keys) == 2 else None)

    def role_of(self, presented: str | None) -> str | None:
        """"admin", "read" or None (no or a wrong key); both comparisons always run."""
        if not presented:
            return None
        given = presented.encode()
        is_admin = hmac.compare_digest(given, self.admin)
        is_read = hmac.compare_digest(given, self.read_only or self.admin)
        if is_admin:
            return "admin"
        return "read" if is_read and self.read_only is not None else None


def key_from_headers(headers: dict[str, str] | object) -> str | None:
    get = headers.get  # type: ignore[attr-defined]
    key = get("api-key")
    if key:
        return key
    auth = get("authorization") or ""
    return auth[7:].strip() if auth[:7].lower() == "bearer " else None


def check_access(keys: ApiKeys | None, headers: object, write: bool) -> None:
    if keys is None:
        return
    role = keys.role_of(key_from_headers(headers))
    if role is None:
        raise ApiError(401, "unauthorized", "a valid API key is required (header 'api-key' or "
                       "'Authorization: Bearer <key>')", {"WWW-Authenticate": "Bearer"})
    if write and role != "admin":
        raise ApiError(403, "forbidden", "this key is read-only: writes need the admin key")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
