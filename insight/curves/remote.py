"""Logdirs in object storage (`s3://`, `gs://`): one listing, reused, and ranged reads.

A remote logdir is listed once (`fs.find`: every object under the prefix, with its size and
ETag) and that listing is kept for `LISTING_TTL` seconds, so the app's reruns, which ask for
the logdir's stamp on every widget change, do not list the bucket again; `relist` (the
Training page's live mode) lists it anew. The appended range of every event file that grew is
then fetched concurrently in one `cat_ranges` call (many small event files are the common
case) and handed to the same `EventFileReader` that reads local files
(`insight.curves.sources.RemoteFile`). Credentials come from the standard places the storage's
own tools read (`insight.remote.fs`), never from the URL.

Example:

>>> listing("s3://bucket/runs").stamp  # doctest: +SKIP
'3:166896:5d1c0e7a9b2f4c61'
>>> remote_stamp("s3://bucket/runs")  # the same listing, no request  # doctest: +SKIP
'3:166896:5d1c0e7a9b2f4c61'
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from insight.errors import InsightError, StorageError
from insight.remote import check_url, filesystem, is_remote, storage_errors, translate

__all__ = ["LISTING_TTL", "FETCH_BATCH_BYTES", "Listing", "listing", "relist", "remote_stamp",
           "forget_listings", "fetch_ranges", "as_url"]

LISTING_TTL = 5.0  # seconds a listing is reused before the next stamp lists again
# Bytes fetched per batch: the next batch downloads while this one is parsed, so at most two
# are held (a refresh of a 10 GB logdir holds ~64 MB of raw bytes, not 10 GB).
FETCH_BATCH_BYTES = 32 << 20
_MAX_LISTINGS = 64
_COLLAPSED = re.compile(r"^(s3|gs|gcs):/(?!/)", re.IGNORECASE)


@dataclass(frozen=True)
class Listing:
    """The objects under a remote URL at one moment.

    Attributes:
        url: the checked URL.
        root: the URL's path for the filesystem (`bucket/prefix`).
        files: `{key: (size, etag)}` of every object under it, keys sorted.
        single: the URL names one object, not a prefix.
        stamp: `count:total size:hash of names, sizes and ETags`, for cache keys.
        taken: when it was listed (`time.monotonic()`).
    """

    url: str
    root: str
    files: dict[str, tuple[int, str]]
    single: bool
    stamp: str
    taken: float

    def relative(self, key: str) -> str:
        """`key` relative to the URL (its name for a single object)."""
        if self.single or not key.startswith(self.root.rstrip("/") + "/"):
            return key.rsplit("/", 1)[-1]
        return key[len(self.root.rstrip("/")) + 1:]


_LISTINGS: dict[str, Listing] = {}
_FAILED: dict[str, tuple[float, StorageError]] = {}
_LOCK = threading.Lock()


def as_url(path: Any) -> str | None:
    """The remote URL `path` stands for, or `None` for a local path.

    A `pathlib.Path` made from a URL has lost one slash (`s3:/bucket/runs`): a folder named
    `s3:` is not a logdir anyone has, so that form is read as the URL it came from.

    Raises:
        UsageError: a malformed or refused URL (`insight.remote.check_url`).
    """
    if path is None:
        return None
    text = str(path)
    if _COLLAPSED.match(text):
        text = _COLLAPSED.sub(lambda m: m.group(1).lower() + "://", text, count=1)
    return check_url(text) if is_remote(text) else None


def listing(url: str, *, fresh: bool = False, max_age: float = LISTING_TTL) -> Listing:
    """Every object under `url`, listed at most `max_age` seconds ago unless `fresh`.

    A failed listing is kept as long: a rerun while the storage is unreachable reports it
    at once instead of waiting for the connection's retries again.

    Raises:
        StorageError: the bucket or prefix does not exist (or holds nothing), the credentials
            were refused, or the connection failed.
    """
    url = check_url(url)
    with _LOCK:
        known = _LISTINGS.get(url)
        failed = _FAILED.get(url)
    now = time.monotonic()
    if not fresh and known is not None and now - known.taken < max_age:
        return known
    if not fresh and failed is not None and now - failed[0] < max_age:
        exc = failed[1]
        raise StorageError(exc.what, exc.fix, exc.received, reason=exc.reason)
    try:
        out = _list(url)
    except StorageError as exc:
        with _LOCK:
            _FAILED[url] = (time.monotonic(), exc)
            _LISTINGS.pop(url, None)
        raise
    with _LOCK:
        if len(_LISTINGS) >= _MAX_LISTINGS:
            _LISTINGS.clear()
            _FAILED.clear()
        _LISTINGS[url] = out
        _FAILED.pop(url, None)
    return out


def _list(url: str) -> Listing:
    fs, root = filesystem(url)
    with storage_errors(url):
        fs.invalidate_cache(root)  # fsspec's own directory cache would answer without listing
        found = fs.find(root, detail=True)
    files = {key: (int(info.get("size") or 0), _etag(info))
             for key, info in sorted(found.items()) if info.get("type") != "directory"}
    if not files:
        raise StorageError("Nothing exists at this remote path: no object under it.",
                           "Check the bucket and prefix (they are case-sensitive).",
                           f"path={url!r}", reason="missing")
    digest = hashlib.sha256()
    for key, (size, tag) in files.items():
        digest.update(f"{key}\0{size}\0{tag}\n".encode())
    stamp = f"{len(files)}:{sum(s for s, _ in files.values())}:{digest.hexdigest()[:16]}"
    return Listing(url, root, files, list(files) == [root], stamp, time.monotonic())


def relist(path: Any) -> None:
    """List a remote logdir again now (the live mode's explicit refresh); nothing for a
    local path. A failure is left for the next read to report."""
    url = as_url(path)
    if url is not None:
        try:
            listing(url, fresh=True)
        except InsightError:
            pass  # kept as the failed listing: the page's read reports it


def remote_stamp(url: str) -> str:
    """The listing's stamp (listed at most `LISTING_TTL` seconds ago); never raises:
    `error:<reason>` when the storage cannot be listed, so the reader reports why."""
    try:
        return listing(url).stamp
    except StorageError as exc:
        return f"error:{exc.reason}"
    except InsightError:
        return "error"


def forget_listings(url: str | None = None) -> None:
    """Drop the kept listing of `url` (every listing when `None`)."""
    with _LOCK:
        if url is None:
            _LISTINGS.clear()
            _FAILED.clear()
        else:
            _LISTINGS.pop(url, None)
            _FAILED.pop(url, None)


def fetch_ranges(fs: Any, url: str, ranges: list[tuple[str, int, int]]
                 ) -> Iterator[tuple[int, bytes | StorageError]]:
    """`(index, bytes)` of each `(key, start, end)` range of `ranges`, in order: the ranges
    are fetched concurrently in batches of at most `FETCH_BATCH_BYTES`, the next batch
    downloading while the caller works on this one. A range that failed comes as its
    `StorageError`; the others still come (what was read is kept)."""
    batches: list[list[int]] = []
    total = 0
    for i, (_, start, end) in enumerate(ranges):
        if not batches or (batches[-1] and total + end - start > FETCH_BATCH_BYTES):
            batches.append([])
            total = 0
        batches[-1].append(i)
        total += end - start
    if not batches:
        return
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_fetch, fs, url, [ranges[i] for i in batches[0]])
        for n, batch in enumerate(batches):
            got = pending.result()
            if n + 1 < len(batches):
                pending = pool.submit(_fetch, fs, url, [ranges[i] for i in batches[n + 1]])
            yield from zip(batch, got, strict=True)


def _fetch(fs: Any, url: str, batch: list[tuple[str, int, int]]) -> list[bytes | StorageError]:
    try:
        with storage_errors(url):
            got = fs.cat_ranges([k for k, _, _ in batch], [s for _, s, _ in batch],
                                [e for _, _, e in batch], on_error="return")
    except StorageError as exc:
        return [exc] * len(batch)
    kind = url.split("://", 1)[0]
    return [g if isinstance(g, (bytes, StorageError)) else translate(g, f"{kind}://{key}")
            for (key, _, _), g in zip(batch, got, strict=True)]


def _etag(info: dict) -> str:
    return str(info.get("ETag") or info.get("etag") or info.get("generation")
               or info.get("LastModified") or info.get("mtime") or "")
