"""A real GCS endpoint for the tests: gcp-storage-emulator's server on a loopback port.

The emulator answers Google Cloud Storage's JSON API over real HTTP on 127.0.0.1; gcsfs
sends its requests there when `STORAGE_EMULATOR_HOST` names it, so gcsfs, google-auth and
aiohttp run unpatched: listings, ranged reads, 404s and retries are the ones a user meets
against Google. One server per test session (in memory); each test takes fresh buckets from
`GCS.bucket()`, so tests never see each other's objects.

Use the `gcs` fixture (tests/conftest.py): it sets `STORAGE_EMULATOR_HOST` in the
environment for the test (`gcs.env` is the same for subprocesses and served apps).

Example (inside a test):

>>> url = gcs.upload(LOGS, f"gs://{gcs.bucket()}/runs")  # doctest: +SKIP
>>> read_scalars(url)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests


@dataclass
class GCS:
    """The running emulator: its endpoint and upload helpers (plain JSON-API requests)."""

    endpoint: str
    server: object
    env: dict[str, str] = field(default_factory=dict)

    def bucket(self, prefix: str = "insight") -> str:
        """A new, empty bucket; its name (not a URL)."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        r = requests.post(f"{self.endpoint}/storage/v1/b", params={"project": "test"},
                          json={"name": name}, timeout=10)
        r.raise_for_status()
        return name

    def upload(self, local: str | Path, url: str) -> str:
        """Copy a local file, or every file under a local folder, to `url`; returns `url`."""
        local = Path(local)
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            target = url if local.is_file() else f"{url.rstrip('/')}/" + \
                path.relative_to(local).as_posix()
            self.put(target, path.read_bytes())
        return url

    def put(self, url: str, data: bytes) -> str:
        """Write `data` as the object at `url`; returns `url`."""
        bucket, _, key = url.split("://", 1)[1].partition("/")
        r = requests.post(f"{self.endpoint}/upload/storage/v1/b/{bucket}/o",
                          params={"uploadType": "media", "name": key}, data=data,
                          headers={"Content-Type": "application/octet-stream"}, timeout=60)
        r.raise_for_status()
        return url


def start() -> GCS:
    """Start the emulator (in memory) on a free loopback port."""
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    port = server._api._httpd.server_address[1]
    endpoint = f"http://127.0.0.1:{port}"
    return GCS(endpoint=endpoint, server=server, env={"STORAGE_EMULATOR_HOST": endpoint})


def clear_fs_cache() -> None:
    """Forget gcsfs's cached filesystems (they hold the endpoint they were made with)."""
    import gcsfs
    import gcsfs.core

    gcsfs.core.GCSFileSystem.clear_instance_cache()
    gcsfs.GCSFileSystem.clear_instance_cache()
