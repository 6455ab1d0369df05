"""Running the service: ``bitgraph serve`` and ``python -m bitgraph.server``.

uvicorn serves the app. On SIGTERM or SIGINT it stops accepting connections and waits for the
requests in flight; the app's shutdown then answers every queued search and checkpoints every
collection before the process exits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import uvicorn

from .app import ServerConfig, create_app
from .auth import ApiKeys, is_loopback
from .collection import CHECKPOINT_LOG_BYTES
from .registry import DataDirInUse
from .requests import Limits


def check_bind(host: str, keys: ApiKeys | None) -> None:
    """Without keys the server listens on loopback only: anyone who can reach the port could
    otherwise read and write every collection."""
    if keys is None and not is_loopback(host):
        raise SystemExit(f"bitgraph serve: refusing to listen on {host} without "
                         "--api-key-file (only 127.0.0.1 / ::1 / localhost without keys)")


def _http_protocol(service: object) -> type | str:
    """The protocol answering one-query searches in its callbacks (http_protocol.py), or
    uvicorn's own choice when httptools is missing or ``BITGRAPH_SERVE_ASGI_ONLY=1`` (every
    request through the ASGI app: for comparisons and diagnosis)."""
    if os.environ.get("BITGRAPH_SERVE_ASGI_ONLY") == "1":
        return "auto"
    try:
        from .http_protocol import protocol_for
    except ImportError:
        return "auto"
    return protocol_for(service) or "auto"  # type: ignore[arg-type]


def serve(data_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8080,
          api_key_file: str | None = None, *, batching: bool = True, max_batch: int = 256,
          max_wait_us: float = 200.0, max_queue: int = 4096, limits: Limits | None = None,
          checkpoint_bytes: int = CHECKPOINT_LOG_BYTES, log_level: str = "info") -> None:
    """Serves the collections under ``data_dir`` until SIGTERM / SIGINT."""
    keys = ApiKeys.from_file(api_key_file) if api_key_file else None
    check_bind(host, keys)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(str(data_dir), api_keys=keys, limits=limits or Limits(),
                          batching=batching, max_batch=max_batch, max_wait_us=max_wait_us,
                          max_queue=max_queue, checkpoint_bytes=checkpoint_bytes)
    try:
        app = create_app(config)
    except DataDirInUse as exc:
        raise SystemExit(f"bitgraph serve: {exc}") from None
    uvicorn.run(app, host=host.strip("[]"), port=port, log_level=log_level,
                http=_http_protocol(app.service),
                access_log=False, timeout_graceful_shutdown=30, proxy_headers=False,
                server_header=False,
                limit_concurrency=max(64, max_queue))
