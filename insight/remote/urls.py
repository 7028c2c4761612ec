"""Remote paths: which URLs insight opens, and the checks every one of them passes first.

insight reads object storage through fsspec: `s3://bucket/key` with `s3fs`, `gs://bucket/key`
(or `gcs://`) with `gcsfs`. Credentials come only from the standard places those packages
read (environment variables, profile files, instance metadata), never from the URL: a URL
with a user name, a password or a query string is refused, so a key pasted into a link or a
wiki page is never used nor echoed back.

Example:

>>> is_remote("s3://runs/exp1")
True
>>> is_remote("runs/exp1")
False
>>> check_url("s3://runs/exp1/")
's3://runs/exp1'
>>> check_url("s3://AKIA:secret@runs/exp1")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
insight.errors.UsageError: A remote path cannot carry credentials...
>>> join("s3://runs/exp1", "train", "events.out")
's3://runs/exp1/train/events.out'
"""

from __future__ import annotations

import os
import re

from insight.errors import UsageError

__all__ = ["SCHEMES", "scheme", "is_remote", "check_url", "join", "basename", "parent",
           "redacted"]

# scheme -> the package (pip name) fsspec needs for it
SCHEMES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme(path: str | os.PathLike) -> str | None:
    """The URL scheme of `path` in lower case (`"s3"`), or `None` for a plain path."""
    m = _SCHEME.match(str(path))
    return m.group(1).lower() if m else None


def is_remote(path: str | os.PathLike | None) -> bool:
    """Whether `path` is a URL insight reads through fsspec (`s3://`, `gs://`, `gcs://`)."""
    return path is not None and scheme(path) in SCHEMES


def check_url(url: str) -> str:
    """`url` checked and normalised (no trailing slash), or a `UsageError` saying why not.

    Refused: another scheme (`http://`, `file://`...), credentials or a port in the host
    part, a query string or fragment, an empty bucket, `..` parts.
    """
    text = str(url).strip()
    kind = scheme(text)
    shown = f"path={redacted(text)!r}"
    if kind not in SCHEMES:
        raise UsageError(f"insight reads remote paths from {', '.join(s + '://' for s in SCHEMES)}"
                         " only.", "Give a local path or an s3:// or gs:// URL.", shown)
    rest = text.split("://", 1)[1]
    bucket = rest.split("/", 1)[0]
    if "@" in bucket or ":" in bucket:
        raise UsageError("A remote path cannot carry credentials (or a port) in its host part.",
                         "Give s3://bucket/key and set the credentials where the storage's "
                         "tools read them (environment variables, a profile, the instance's "
                         "role).", shown)
    if "?" in rest or "#" in rest:
        raise UsageError("A remote path cannot carry a query string or a fragment.",
                         "Give the bare s3://bucket/key; options come from the environment.",
                         shown)
    if not bucket:
        raise UsageError("The remote path names no bucket.", "Give s3://bucket/key.", shown)
    if ".." in rest.split("/"):
        raise UsageError("A remote path with '..' is not accepted.",
                         "Give the full key without '..'.", shown)
    return f"{kind}://{rest.rstrip('/')}" if rest.rstrip("/") else f"{kind}://{bucket}"


def join(url: str, *parts: str) -> str:
    """`url` with `parts` appended, one `/` between each."""
    out = url.rstrip("/")
    for part in parts:
        out += "/" + str(part).strip("/")
    return out


def basename(url: str) -> str:
    """The last part of `url` (`"model.keras"` for `s3://b/m/model.keras`)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def parent(url: str) -> str:
    """`url` without its last part; a bucket is its own parent."""
    kind, rest = url.rstrip("/").split("://", 1)
    return f"{kind}://{rest.rsplit('/', 1)[0]}" if "/" in rest else f"{kind}://{rest}"


def redacted(text: str) -> str:
    """`text` with anything between `://` and an `@` replaced, so a pasted key is not echoed."""
    return re.sub(r"://[^/@]*@", "://***@", text)
