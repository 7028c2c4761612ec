"""Remote files and folders copied into a local content-addressed cache.

A model file, a checkpoint folder or a profile in a bucket is never handed to Keras or xprof
as a URL (Keras would download and deserialise it itself, outside insight's preflight and
sandbox). It is copied here first, and the local copy is then treated exactly like a
stranger's file on disk.

Layout under `cache_root()` (`remote/` in insight's cache folder, `$INSIGHT_CACHE_DIR`):

```
blobs/<sha256>/<name>          one file, named as in the bucket (loaders read the suffix)
trees/<sha256>/<relative path> one folder; the hash covers every path and file hash
index/<sha256 of url+etag+size>  the content hash last fetched for that object version
```

A second fetch of an unchanged object reads one `info`/listing call and no bytes; a changed
object (new ETag or size) is fetched again. Writes go to a temporary name and are renamed into
place, so concurrent replicas sharing the cache never see a half-written file.

Example:

>>> local = fetch("s3://models/digits/model.keras")  # doctest: +SKIP
>>> local.name  # doctest: +SKIP
'model.keras'
>>> folder = fetch_tree("s3://models/digits/checkpoints")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from insight.errors import StorageError
from insight.remote.fs import BLOCK_SIZE, filesystem, storage_errors
from insight.remote.urls import basename, check_url
from insight.results import cache_root as insight_cache

__all__ = ["cache_root", "fetch", "fetch_tree", "link_view", "MAX_FETCH_BYTES"]

MAX_FETCH_BYTES = 8 * 2**30  # a remote file or folder larger than this is refused
_WORKERS = 16


def cache_root() -> Path:
    """Where fetched files live: `remote/` in insight's cache folder
    (`insight.profiler.cache.cache_root`: `$INSIGHT_CACHE_DIR`, else
    `$XDG_CACHE_HOME/insight`, else `~/.cache/insight`)."""
    return insight_cache() / "remote"


def fetch(url: str, *, max_bytes: int = MAX_FETCH_BYTES, root: Path | None = None) -> Path:
    """The local copy of the remote file at `url`, downloaded once per version.

    Args:
        url: `s3://bucket/key` or `gs://bucket/key` of one file.
        max_bytes: refuse a larger object before reading it. Defaults to 8 GiB.
        root: the cache folder. Defaults to `cache_root()`.

    Returns:
        `blobs/<sha256>/<name>` under the cache.

    Raises:
        StorageError: missing, denied, a dropped connection, a folder, or too large.
    """
    url = check_url(url)
    root = Path(root) if root else cache_root()
    fs, path = filesystem(url)
    with storage_errors(url):
        info = fs.info(path)
    if info.get("type") == "directory":
        raise StorageError("The remote path is a folder, not a file.",
                           "Give the URL of the model file itself.", f"path={url!r}",
                           reason="missing")
    _check_size(int(info.get("size") or 0), max_bytes, url)
    index = root / "index" / _version_key(url, [info])
    known = _read_index(index)
    name = basename(url)
    if known and (root / "blobs" / known / name).is_file():
        return root / "blobs" / known / name
    digest, tmp = _download(fs, path, url, root)
    final = root / "blobs" / digest / name
    _place(tmp, final)
    _write_index(index, digest)
    return final


def fetch_tree(url: str, *, max_bytes: int = MAX_FETCH_BYTES, root: Path | None = None) -> Path:
    """The local copy of the remote folder at `url` (every file under it, concurrently).

    Returns:
        `trees/<sha256>/` under the cache, holding the folder's files at their relative paths.

    Raises:
        StorageError: the folder is empty or missing, denied, a dropped connection, too large.
    """
    url = check_url(url)
    root = Path(root) if root else cache_root()
    fs, path = filesystem(url)
    with storage_errors(url):
        found = fs.find(path, detail=True)
    files = {key: info for key, info in found.items() if info.get("type") != "directory"}
    if not files:
        raise StorageError("The remote folder is empty or does not exist.",
                           "Check the bucket and prefix (they are case-sensitive).",
                           f"path={url!r}", reason="missing")
    _check_size(sum(int(i.get("size") or 0) for i in files.values()), max_bytes, url)
    index = root / "index" / _version_key(url, sorted(files.values(), key=lambda i: i["name"]))
    known = _read_index(index)
    if known and (root / "trees" / known).is_dir():
        return root / "trees" / known
    prefix = path.rstrip("/") + "/"
    rel = {key: key[len(prefix):] if key.startswith(prefix) else basename(key) for key in files}
    with ThreadPoolExecutor(min(_WORKERS, len(files))) as pool:
        done = dict(zip(files, pool.map(lambda k: _download(fs, k, url, root), files), strict=True))
    tree = hashlib.sha256()
    for key in sorted(files, key=rel.get):
        tree.update(f"{rel[key]}\0{done[key][0]}\n".encode())
    digest = tree.hexdigest()
    final = root / "trees" / digest
    if not final.is_dir():
        staging = Path(tempfile.mkdtemp(dir=_ensure(root / "tmp")))
        for key, (_, tmp) in done.items():
            target = staging / rel[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        _place(staging, final)
    else:
        for _, tmp in done.values():
            tmp.unlink(missing_ok=True)
    _write_index(index, digest)
    return final


def link_view(kind: str, files: dict[str, Path], *, salt: str = "") -> Path:
    """A local folder laid out as a remote one, made of fetched files: `files` maps each
    relative path to its cached copy, which is hard-linked there (copied across file
    systems). The folder is placed whole, so a reader never sees half of it; the same files
    give the same folder.

    Args:
        kind: the views' subfolder (`"profiles"`, `"projectors"`, `"checkpoints"`).
        files: relative path (with `/`) -> local file.
        salt: what else names the view (the URL it stands for). Defaults to `""`.

    Returns:
        `views/<kind>/<key>/` under the cache.

    >>> import tempfile
    >>> src = Path(tempfile.mkdtemp()) / "a.txt"; _ = src.write_text("x")
    >>> view = link_view("doc", {"run/a.txt": src}, salt="s3://b/logs")
    >>> (view / "run" / "a.txt").read_text()
    'x'
    """
    key = hashlib.sha256("\0".join([salt, *(f"{n}={p}" for n, p in sorted(files.items()))])
                         .encode()).hexdigest()[:32]
    view = cache_root() / "views" / kind / key
    if view.is_dir():
        return view
    staging = Path(tempfile.mkdtemp(dir=_ensure(view.parent)))
    for name, local in files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(local, target)  # no second copy of the cached file
        except OSError:
            shutil.copyfile(local, target)
    _place(staging, view)
    return view


def _place(staging: Path, final: Path) -> None:
    """Move the folder `staging` to `final` whole; a reader never sees half of it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staging, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another process placed it first


def _download(fs, path: str, url: str, root: Path) -> tuple[str, Path]:
    """Stream `path` into a temporary file under `root/tmp`, hashing it on the way."""
    tmp_dir = _ensure(root / "tmp")
    fd, name = tempfile.mkstemp(dir=tmp_dir)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, storage_errors(url), \
                fs.open(path, "rb", block_size=BLOCK_SIZE) as src:
            while chunk := src.read(BLOCK_SIZE):
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return digest.hexdigest(), Path(name)


def _place(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def _version_key(url: str, infos: list[dict]) -> str:
    """One object version: the URL with each object's name, ETag (or generation) and size."""
    h = hashlib.sha256(url.encode())
    for info in infos:
        tag = info.get("ETag") or info.get("etag") or info.get("generation") or info.get(
            "LastModified") or info.get("mtime") or ""
        h.update(f"\0{info.get('name')}\0{tag}\0{info.get('size')}".encode())
    return h.hexdigest()


def _read_index(index: Path) -> str | None:
    try:
        digest = json.loads(index.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return digest if isinstance(digest, str) and len(digest) == 64 else None


def _write_index(index: Path, digest: str) -> None:
    index.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=index.parent)
    with os.fdopen(fd, "w") as f:
        json.dump({"sha256": digest}, f)
    os.replace(name, index)


def _check_size(size: int, max_bytes: int, url: str) -> None:
    if size > max_bytes:
        raise StorageError(f"The remote object is {size / 2**30:.1f} GiB, more than the "
                           f"{max_bytes / 2**30:.1f} GiB insight copies locally.",
                           "Give a smaller file or folder.", f"path={url!r}, size={size}",
                           reason="other")


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
