"""Remote model files and folders: fetched into insight's local cache, then read as local.

A model at `s3://...` or `gs://...` is never handed to Keras as a URL (Keras would download
and deserialise it itself, outside the preflight and the sandbox). `fetch_model` copies it
into the content-addressed cache of `insight.remote` (once per object version) and returns
the local copy, which then goes through the same preflight, sandboxed first load and safe
mode as a stranger's file on disk. This process remembers which local copy came from which
URL (`fetched_from`), so reports and pages name the URL, not the cache path.

A file URL must end in `.keras`, `.h5` or `.hdf5`. A folder URL (a SavedModel, a folder
holding one model, a folder of checkpoints) is fetched whole, but only when its top level
looks like one: a bucket prefix holding something else (a logdir, a dataset) is refused
before anything is downloaded. Weights-only checkpoints with no model among them get the
`model.keras` above them linked beside, as `find_checkpoints` looks for it on disk.

Example:

>>> fetch_model("sample_models/digits_cnn/model.keras")
'sample_models/digits_cnn/model.keras'
>>> local = fetch_model("s3://models/digits/model.keras")  # doctest: +SKIP
>>> fetched_from(local)  # doctest: +SKIP
's3://models/digits/model.keras'
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from insight.errors import InsightError, StorageError, UnsupportedModelError
from insight.remote import (
    basename,
    check_url,
    fetch,
    fetch_tree,
    filesystem,
    is_remote,
    join,
    link_view,
    parent,
    storage_errors,
)

__all__ = ["fetch_model", "fetched_from", "remember", "named_as", "MODEL_FILE_SUFFIXES"]

MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")
_WEIGHTS = ".weights.h5"
# What the top level of a remote model folder may hold for it to be fetched whole.
_FOLDER_MARKERS = ("saved_model.pb", *MODEL_FILE_SUFFIXES)

_SOURCES: dict[str, str] = {}
_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def fetch_model(path: str | os.PathLike) -> str:
    """The local path to read for `path`: a remote URL fetched into the cache, else `path`.

    Args:
        path: a local path (returned as given), or an `s3://`/`gs://` URL of a `.keras`/`.h5`
            file or of a model folder (a SavedModel, a folder of checkpoints).

    Returns:
        The local path, as a string.

    Raises:
        StorageError: the bucket or key is missing, the credentials are refused, the
            connection dropped (nothing half-written is left in the cache).
        UnsupportedModelError: a remote file that is not a model file, or a remote folder
            that holds no model at its top level.
        UsageError: a URL carrying credentials, a query or `..` (`insight.remote.check_url`).

    Example:

    >>> fetch_model("model.keras")
    'model.keras'
    """
    text = str(path)
    if not is_remote(text):
        return text
    url = check_url(text)
    with _lock(url):  # a page and a warm-up thread asking at once download once
        name = basename(url).lower()
        if name.endswith(MODEL_FILE_SUFFIXES):
            local = fetch(url)
        else:
            _check_folder(url)
            local = _with_model_above(url, fetch_tree(url))
    remember(local, url)
    return str(local)


def _with_model_above(url: str, local: Path) -> Path:
    """`local` (a fetched folder) as it is, or, for weights-only checkpoints with no model in
    them, a folder of links to its files with the `model.keras`/`model.h5` above `url` linked
    beside it: what `find_checkpoints` finds for a local folder."""
    names = [p.name.lower() for p in local.iterdir() if p.is_file()]
    if not any(n.endswith(_WEIGHTS) for n in names) or any(
            n.endswith(MODEL_FILE_SUFFIXES) and not n.endswith(_WEIGHTS) for n in names):
        return local
    above = above_url = None
    for candidate in ("model.keras", "model.h5"):
        try:
            above_url = join(parent(url), candidate)
            above = fetch(above_url)
            break
        except StorageError as exc:
            if exc.reason != "missing":
                raise
    if above is None:
        return local
    files = {f"{basename(url)}/{p.name}": p for p in local.iterdir() if p.is_file()}
    view = link_view("checkpoints", {**files, above.name: above}, salt=url)
    remember(view / above.name, above_url)
    return view / basename(url)


def remember(local: str | os.PathLike, url: str) -> None:
    """Record that the local `local` is the copy of `url` (what `fetched_from` answers).

    >>> remember("/tmp/copy.keras", "s3://b/m.keras"); fetched_from("/tmp/copy.keras")
    's3://b/m.keras'
    """
    _SOURCES[str(Path(local).resolve())] = url


def fetched_from(path: str | os.PathLike) -> str | None:
    """The URL the local `path` was fetched from by this process, or `None`."""
    try:
        return _SOURCES.get(str(Path(path).expanduser().resolve()))
    except (OSError, RuntimeError, ValueError):
        return None


def named_as(exc: InsightError, local: str, url: str) -> InsightError:
    """`exc` with the cache path `local` replaced by `url` in its text (the user gave the
    URL; the cache's layout is not theirs). Returns `exc` itself.

    >>> from insight.errors import ModelLoadError
    >>> str(named_as(ModelLoadError("Empty.", "", "path='/c/1/m.keras'"), "/c/1/m.keras",
    ...              "s3://b/m.keras"))
    "Empty. Received: path='s3://b/m.keras'"
    """
    if local == url:
        return exc
    for attr in ("what", "fix", "received"):
        setattr(exc, attr, str(getattr(exc, attr, "")).replace(local, url))
    exc.args = tuple(a.replace(local, url) if isinstance(a, str) else a for a in exc.args)
    return exc


def _check_folder(url: str) -> None:
    """Refuse a folder URL whose top level holds no model, before downloading anything."""
    fs, key = filesystem(url)
    with storage_errors(url):
        try:
            listing = fs.ls(key, detail=False)
        except FileNotFoundError:
            listing = []
    names = sorted(basename(str(item)) for item in listing)
    if not names:
        raise StorageError("Nothing exists at this remote path.",
                           "Check the bucket and key (they are case-sensitive).",
                           f"path={url!r}", reason="missing")
    if not any(n.lower().endswith(_FOLDER_MARKERS) for n in names):
        raise UnsupportedModelError(
            "The remote folder holds no model at its top level: no saved_model.pb and no "
            f".keras, .h5 or .hdf5 file (it holds {', '.join(names[:8])}).",
            "Give the URL of the model file itself (…/model.keras), a SavedModel folder or "
            "a folder of checkpoints.", f"path={url!r}")


def _lock(url: str) -> threading.Lock:
    with _GUARD:
        return _LOCKS.setdefault(url, threading.Lock())
