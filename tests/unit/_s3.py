"""A real S3 endpoint for the tests: moto's standalone server on a loopback port.

moto's `ThreadedMotoServer` answers real HTTP on 127.0.0.1, as s3fs's own test suite uses
it: s3fs, botocore and aiohttp run unpatched, so ranged reads, listings, retries and errors
are the ones a user meets against AWS. One server per test session; each test takes fresh
buckets from `S3.bucket()`, so tests never see each other's objects.

Use the `s3` fixture (tests/conftest.py): it sets `AWS_ENDPOINT_URL` and dummy credentials
in the environment for the test (`s3.env` is the same for subprocesses and served apps).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class S3:
    """The running test server: its endpoint, a boto3 client and upload helpers."""

    endpoint: str
    server: object
    env: dict[str, str] = field(default_factory=dict)

    @property
    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def bucket(self, prefix: str = "insight") -> str:
        """A new, empty bucket; its name (not a URL)."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def upload(self, local: str | Path, url: str) -> str:
        """Copy a local file, or every file under a local folder, to `url`; returns `url`."""
        local = Path(local)
        bucket, _, key = url.split("://", 1)[1].partition("/")
        client = self.client
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            rel = path.name if local.is_file() else path.relative_to(local).as_posix()
            target = rel if not key else (key if local.is_file() else f"{key.rstrip('/')}/{rel}")
            client.upload_file(str(path), bucket, target)
        return url

    def put(self, url: str, data: bytes) -> str:
        bucket, _, key = url.split("://", 1)[1].partition("/")
        self.client.put_object(Bucket=bucket, Key=key, Body=data)
        return url


def start() -> S3:
    """Start moto's server on a free loopback port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    return S3(endpoint=endpoint, server=server, env=env)


def clear_fs_cache() -> None:
    """Forget s3fs's cached filesystems (they hold the credentials they were made with)."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
