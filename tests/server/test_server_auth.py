"""API keys: none, wrong, read-only writing, admin; and no keys means loopback only."""

from __future__ import annotations

import subprocess
import sys

import bitgraph as bg
import httpx
import numpy as np
import pytest
from bitgraph.client import ServiceAuthError
from server_process import ADMIN_KEY, READ_KEY


@pytest.fixture
def secured(start_server, key_file):
    return start_server("--api-key-file", str(key_file))


def test_keys(secured):
    base = secured.url
    body = b'{"dim": 4, "metric": "l2"}'
    assert httpx.put(base + "/collections/c", content=body).status_code == 401
    r = httpx.put(base + "/collections/c", content=body, headers={"api-key": "wrong" * 5})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = httpx.put(base + "/collections/c", content=body, headers={"api-key": READ_KEY})
    assert r.status_code == 403 and "read-only" in r.json()["error"]["message"]
    r = httpx.put(base + "/collections/c", content=body,
                  headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 201
    # open routes
    assert httpx.get(base + "/livez").status_code == 200
    assert httpx.get(base + "/readyz").status_code == 200
    # everything else needs a key, reads take either
    assert httpx.get(base + "/collections").status_code == 401
    assert httpx.get(base + "/metrics").status_code == 401
    assert httpx.get(base + "/collections", headers={"api-key": READ_KEY}).status_code == 200

    with bg.Client(base, api_key=ADMIN_KEY) as admin, bg.Client(base, api_key=READ_KEY) as ro:
        admin.collection("c").add(np.eye(4, dtype=np.float32))
        assert ro.collection("c").search(np.eye(4)[1], k=1).ids.tolist() == [[1]]
        for write in (lambda: ro.collection("c").add(np.eye(4)),
                      lambda: ro.collection("c").remove([1]),
                      lambda: ro.delete_collection("c"),
                      lambda: ro.create_collection("d", dim=4)):
            with pytest.raises(ServiceAuthError):
                write()
        assert len(admin.collection("c")) == 4
    with bg.Client(base) as nokey, pytest.raises(ServiceAuthError):
        nokey.list_collections()


def _serve(*args: str, data_dir) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bitgraph.server", "--data-dir", str(data_dir),
                           "--port", "0", *args], capture_output=True, text=True, timeout=60)


def test_no_key_file_refuses_a_public_address(tmp_path):
    r = _serve("--host", "0.0.0.0", data_dir=tmp_path)
    assert r.returncode != 0 and "refusing to listen on 0.0.0.0" in r.stderr


@pytest.mark.parametrize("content,words", [
    ("not json", "cannot read"), ('{"read_only": "x" }', "must be JSON"),
    ('{"admin": "short"}', "at least 16"),
    ('{"admin": "same-key-0123456789", "read_only": "same-key-0123456789"}', "must differ"),
])
def test_bad_key_files_are_refused(tmp_path, content, words):
    p = tmp_path / "keys.json"
    p.write_text(content)
    r = _serve("--api-key-file", str(p), data_dir=tmp_path)
    assert r.returncode != 0 and words in r.stderr


def test_a_second_server_on_the_same_data_dir_is_refused(start_server, tmp_path):
    first = start_server(data_dir=tmp_path / "shared")
    r = _serve(data_dir=tmp_path / "shared")
    assert r.returncode != 0 and "in use by another bitgraph server" in r.stderr
    assert httpx.get(first.url + "/readyz").status_code == 200
