"""The fsspec filesystem behind a remote URL, and its failures as `StorageError`.

One filesystem object per scheme and process (fsspec caches instances), configured for what
insight does with it: large ranged reads of event files and concurrent fetches of many small
ones. The endpoint and credentials are whatever botocore / google-auth find in the standard
places (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, `~/.aws/credentials`, the instance role,
`GOOGLE_APPLICATION_CREDENTIALS`...) or fsspec's own configuration (`FSSPEC_S3_*`
variables, `~/.config/fsspec/`).

Example:

>>> fs, key = filesystem("s3://runs/exp1")  # doctest: +SKIP
>>> with storage_errors("s3://runs/exp1"):  # doctest: +SKIP
...     fs.ls(key)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from collections.abc import Iterator
from typing import Any

from insight.errors import InsightError, StorageError
from insight.remote.urls import SCHEMES, check_url, redacted, scheme

__all__ = ["BLOCK_SIZE", "filesystem", "storage_errors", "translate"]

# Event files are read whole or from an offset to the end: large blocks make that one request.
BLOCK_SIZE = 16 * 2**20

# Connection failures surface after a few seconds instead of botocore's default minute.
_S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60,
              "retries": {"max_attempts": 3, "mode": "standard"}}

_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                 "InvalidToken", "AllAccessDisabled", "AccountProblem", "Forbidden", "403"}
_MISSING_CODES = {"NoSuchBucket", "NoSuchKey", "NotFound", "404"}
# gcsfs's 404 names the request path; listing a bucket's objects is `b/<bucket>/o`.
_GCS_BUCKET_LISTING = re.compile(r"(?:^|\s)b/[^/\s]+/o$")


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for `url` and the path to give it (`bucket/key`).

    Raises:
        UsageError: the URL is refused (see `insight.remote.urls.check_url`).
        StorageError: the scheme's package (`s3fs`, `gcsfs`) is not installed.
    """
    url = check_url(url)
    kind = scheme(url)
    package = SCHEMES[kind]
    if importlib.util.find_spec(package) is None:
        extra = "s3" if package == "s3fs" else "gcs"
        raise StorageError(f"Reading {kind}:// paths needs the {package} package.",
                           f"Install it: pip install 'insight[{extra}]'.",
                           f"path={url!r}", reason="package")
    import fsspec

    options: dict[str, Any] = {"default_block_size": BLOCK_SIZE}
    if package == "s3fs":
        options["config_kwargs"] = _S3_CONFIG
    with storage_errors(url):
        if package == "gcsfs" and _gcs_emulator():
            return _gcs_json_only(url, options)
        fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, path


def _gcs_emulator() -> bool:
    """Whether `STORAGE_EMULATOR_HOST` sends gcsfs to an emulator instead of Google."""
    return os.environ.get("STORAGE_EMULATOR_HOST", "") not in ("", "default")


def _gcs_json_only(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    """gcsfs's JSON-API filesystem, for an emulator.

    gcsfs's default class also asks a gRPC API each bucket's layout (zonal, hierarchical)
    before operations; emulators answer the JSON API only, on plain HTTP, so that lookup
    fails on every operation (60 s of TLS retries with anonymous or real credentials, a
    warning when none are found). The JSON-API class reads the same objects without it.
    """
    from gcsfs.core import GCSFileSystem

    _emulator_listens(os.environ["STORAGE_EMULATOR_HOST"])
    fs = GCSFileSystem(**options)
    return fs, GCSFileSystem._strip_protocol(url)


_LISTENING: set[str] = set()


def _emulator_listens(host: str, timeout: float = 2.0) -> None:
    """Connect once to the emulator's address (remembered once it answers).

    gcsfs retries a refused connection six times with backoff (a fixed 30-odd seconds before
    any error); an emulator that is not running refuses at once, so it is said at once.

    Raises:
        ConnectionError: nothing accepts connections at `host` (`translate` words it).
    """
    import socket
    from urllib.parse import urlsplit

    if host in _LISTENING:
        return
    parts = urlsplit(host if "://" in host else f"http://{host}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConnectionRefusedError(f"Nothing answers at {host}: {exc}") from exc
    _LISTENING.add(host)


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn what s3fs, gcsfs, botocore and aiohttp raise inside the block into `StorageError`.

    `InsightError`s pass through unchanged.
    """
    try:
        yield
    except InsightError:
        raise
    except Exception as exc:  # noqa: BLE001 - every storage failure becomes one clear error
        raise translate(exc, url) from exc


def translate(exc: BaseException, url: str) -> StorageError:
    """The `StorageError` a user reads for `exc`, raised while reading `url`."""
    shown = f"path={redacted(str(url))!r}"
    code = _error_code(exc)
    kind = type(exc).__name__
    if isinstance(exc, FileNotFoundError) or code in _MISSING_CODES:
        bucket = str(url).split("://", 1)[-1].split("/", 1)[0]
        what = (f"The bucket {bucket!r} does not exist (or is not visible to these credentials)."
                if "bucket" in str(exc).lower() or _GCS_BUCKET_LISTING.search(str(exc))
                else "Nothing exists at this remote path.")
        return StorageError(what, "Check the bucket and key (they are case-sensitive).", shown,
                            reason="missing")
    if (isinstance(exc, PermissionError) or code in _DENIED_CODES
            or kind in {"NoCredentialsError", "PartialCredentialsError"}):
        return StorageError("The storage refused these credentials for this path "
                            f"({code or kind}).",
                            "Set credentials with read access where the storage's tools read "
                            "them (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE for "
                            "s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://), then reload.",
                            shown, reason="denied")
    if (isinstance(exc, (ConnectionError, TimeoutError)) or "Connect" in kind
            or "Timeout" in kind or kind in {"ClientOSError", "ServerDisconnectedError",
                                             "ClientPayloadError"}):
        endpoint = ("STORAGE_EMULATOR_HOST" if scheme(str(url)) in ("gs", "gcs")
                    else "AWS_ENDPOINT_URL")
        return StorageError("The connection to the storage failed or dropped "
                            f"({kind}); nothing was changed.",
                            f"Check the network and the endpoint ({endpoint}, if one is "
                            "set), then reload: what was read so far is kept.", shown,
                            reason="connection")
    return StorageError(f"The storage could not be read: {kind}: {_short(exc)}",
                        "Check the path and the storage, then reload.", shown)


def _error_code(exc: BaseException) -> str:
    seen: BaseException | None = exc
    for _ in range(5):  # s3fs wraps botocore's ClientError in OSError subclasses
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        seen = seen.__cause__ or seen.__context__
    return ""


def _short(exc: BaseException) -> str:
    text = redacted(str(exc)).splitlines()[0] if str(exc) else ""
    return text[:200]
