"""The results cache: expensive results on disk, keyed by content hashes, shared by processes.

Converted profiles, projections and activation statistics depend only on the bytes they were
computed from (a model file, a dataset, a profile) and their parameters, so they are kept in
one `diskcache.Cache` (SQLite for the index, one file per value) that every process pointed
at the same folder reads: the CLI, a restarted server, or several `insight serve` replicas
behind a proxy with the folder on shared storage. The second process to ask reads the first
one's result instead of computing it again.

- The folder is `results/` in insight's cache folder (`cache_root()`: `$INSIGHT_CACHE_DIR`,
  else `$XDG_CACHE_HOME/insight`, else `~/.cache/insight`; `cache_dir`); at most
  `SIZE_LIMIT` bytes (diskcache evicts the least recently stored).
- Keys are `kind/<sha256 of JSON [FORMAT, kind, key_parts]>`: the parts are plain JSON
  (file hashes from `file_hash`, parameters), never Python objects.
- Values are plain: `None`, numbers, strings, `bytes`, numpy arrays (not of objects), pandas
  DataFrames (as Parquet, with their `attrs`), and dicts, lists and tuples of those. They are
  stored as one blob this module writes and reads itself (JSON, `np.save` without pickle,
  Parquet): **nothing is pickled**. diskcache pickles whatever it does not know; `PlainDisk`
  refuses to store such values, and reads an entry that some other writer pickled (or whose
  file lies outside the folder) as missing. A cache folder someone else wrote cannot run code
  here; at worst it holds wrong results, as a result is only as good as whoever wrote it.
- A result one process is computing, the others wait for and read (a lock file per key,
  `fcntl.flock`), so two replicas opening the same page at once compute it once.
- A cache that cannot be opened or written (read-only, full) costs the saving, not the result.

Example:

>>> import tempfile
>>> import numpy as np
>>> store = results_cache(tempfile.mkdtemp())
>>> cached("demo", {"n": 3}, lambda: np.arange(3), cache=store)
array([0, 1, 2])
>>> cached("demo", {"n": 3}, lambda: 1 / 0, cache=store)  # a hit: nothing computed
array([0, 1, 2])
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sqlite3
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import diskcache

__all__ = ["cache_root", "cache_dir", "results_cache", "cached", "file_hash", "counters",
           "encode", "decode", "PlainDisk", "FORMAT", "SIZE_LIMIT", "UNAVAILABLE"]

FORMAT = 1  # bump when a blob's layout changes: older entries are then never read
SIZE_LIMIT = 8 * 2**30
_MAGIC = b"INSR\x01"
_LEN = struct.Struct("<Q")
_LOG = logging.getLogger("insight.results")
# what a cache that cannot be used raises: a folder not writable, a database locked past the
# timeout or damaged (a cache then costs the saving, never the result)
UNAVAILABLE = (OSError, sqlite3.Error, diskcache.Timeout)
_CACHES: dict[str, diskcache.Cache] = {}
_GUARD = threading.Lock()
_COUNTS: Counter = Counter()
_FILE_HASHES: dict[tuple[str, int, int], str] = {}


class _Refused(OSError):
    """An entry this process will not read (diskcache's `get` treats an OSError as a miss)."""


class PlainDisk(diskcache.Disk):
    """diskcache's storage without pickle: string keys; int, float, str and bytes values (and
    files, `read=True`). Bytes always go to a file of their own (so a large entry can be read
    by path); an entry written with pickle, or naming a file outside the folder, reads as
    missing and is never removed outside the folder."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError(f"Results cache keys are strings. Received: key={type(key)}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise _Refused("a pickled key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> tuple:
        if type(value) is str and len(value) < 4096 or type(value) in (int, float):
            return 0, diskcache.core.MODE_RAW, None, value
        if type(value) is bytes:
            filename, full_path = self.filename(key, value)
            self._write(full_path, io.BytesIO(value), "xb")
            return len(value), diskcache.core.MODE_BINARY, filename, None
        if read:
            return super().store(value, read, key)
        raise TypeError("The results cache stores strings, numbers and bytes (no pickle). "
                        f"Received: value={type(value).__name__}")

    def _inside(self, filename: str | None) -> None:
        if filename is None:
            return
        root = os.path.realpath(self._directory)
        if os.path.commonpath([root, os.path.realpath(os.path.join(root, filename))]) != root:
            raise _Refused(f"a file outside the cache folder: {filename!r}")

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY):
            raise _Refused(f"an entry of mode {mode} (pickle or text)")
        self._inside(filename)
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path: str) -> None:
        try:
            self._inside(file_path)
        except _Refused:
            return
        super().remove(file_path)


def cache_root() -> Path:
    """insight's cache folder, the one every cache of insight lives under:
    `$INSIGHT_CACHE_DIR`, else `$XDG_CACHE_HOME/insight`, else `~/.cache/insight`.

    Example:

    >>> import os
    >>> os.environ["INSIGHT_CACHE_DIR"] = "/srv/insight-cache"
    >>> str(cache_root())
    '/srv/insight-cache'
    >>> del os.environ["INSIGHT_CACHE_DIR"]
    """
    env = os.environ.get("INSIGHT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")  # an empty value means unset (XDG spec)
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "insight"


def cache_dir() -> Path:
    """The results cache's folder: `results/` in `cache_root()`."""
    return cache_root() / "results"


def results_cache(directory: str | Path | None = None) -> diskcache.Cache:
    """The `diskcache.Cache` in `directory` (default `cache_dir()`), opened once per process.

    Args:
        directory: the folder. Defaults to `None` (`cache_dir()`).

    Raises:
        OSError: the folder cannot be created or opened.
    """
    path = os.path.realpath(Path(directory).expanduser() if directory else cache_dir())
    with _GUARD:
        if path not in _CACHES:
            # A rollback journal, not diskcache's default WAL: WAL's shared memory needs every
            # process on one host, and replicas on several hosts share the folder over a
            # network file system (which must honour POSIX locks: NFSv4, EFS)
            _CACHES[path] = _open(path)
        return _CACHES[path]


def _open(path: str) -> diskcache.Cache:
    """The cache at `path`. Replicas starting together each run diskcache's schema set-up;
    SQLite answers one of them "database is locked" at once (a lock upgrade it will not
    wait for), so the opening is tried again a few times."""
    for attempt in range(8):
        try:
            return diskcache.Cache(path, disk=PlainDisk, size_limit=SIZE_LIMIT,
                                   disk_min_file_size=0, eviction_policy="least-recently-stored",
                                   sqlite_journal_mode="delete", sqlite_mmap_size=0)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 7:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def file_hash(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, or of a folder's files (names and bytes, in order);
    remembered in this process per `(path, size, mtime_ns)`."""
    p = Path(path).resolve()
    st = p.stat()
    memo = (str(p), st.st_size, st.st_mtime_ns)
    if memo not in _FILE_HASHES:
        digest = hashlib.sha256()
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            if p.is_dir():
                digest.update(f"\0{f.relative_to(p)}\0".encode())
            with f.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        _FILE_HASHES[memo] = digest.hexdigest()
    return _FILE_HASHES[memo]


def _key(kind: str, key_parts: Any) -> str:
    text = json.dumps([FORMAT, kind, key_parts], sort_keys=True, allow_nan=False)
    return f"{kind}/{hashlib.sha256(text.encode()).hexdigest()}"


def cached(kind: str, key_parts: Any, compute: Callable[[], Any], *,
           cache: diskcache.Cache | None = None) -> Any:
    """`compute()`'s result, read from the results cache when any process stored it under
    the same kind and key parts, else computed now and stored.

    Args:
        kind: what it is (`"projection"`): a prefix of the key, and the counters' name.
        key_parts: plain JSON (strings, numbers, lists, dicts): content hashes of the inputs
            (`file_hash`) and the parameters.
        compute: makes the value; it must be plain (see the module's docstring).
        cache: the cache. Defaults to `None` (`results_cache()`).

    Returns:
        The value (on a miss, `compute()`'s own object).

    Raises:
        TypeError: key parts that are not JSON, or a value that is not plain.
    """
    key = _key(kind, key_parts)
    try:
        store = cache if cache is not None else results_cache()
        blob = store.get(key)
    except (*UNAVAILABLE, TypeError) as exc:
        _LOG.warning("results cache unavailable (%s): computing %s", exc, kind)
        store, blob = None, None
    if isinstance(blob, bytes):
        try:
            value = decode(blob)
        except ValueError as exc:
            _LOG.warning("results cache: unreadable %s entry (%s): computing again", kind, exc)
        else:
            _count(store, kind, "hits")
            return value
    with _computing(store, key):  # another process computing it: wait, then read its result
        if store is not None and blob is None:
            with contextlib.suppress(*UNAVAILABLE, ValueError):
                if isinstance(found := store.get(key), bytes):
                    value = decode(found)
                    _count(store, kind, "hits")
                    return value
        value = compute()
        blob = encode(value)
        _count(store, kind, "misses")
        if store is not None:
            try:
                store.set(key, blob)
            except UNAVAILABLE as exc:
                _LOG.warning("results cache: could not store %s (%s)", kind, exc)
    return value


@contextlib.contextmanager
def _computing(store: diskcache.Cache | None, key: str) -> Iterator[None]:
    """An exclusive lock per key (a lock file in the folder, `fcntl.flock`: across threads,
    processes, and hosts on a file system that honours it), so a result is computed once
    while others wait for it. Without `fcntl` or a writable folder nothing is locked."""
    try:
        import fcntl

        path = Path(store.directory) / "locks" / f"{key}.lock"  # type: ignore[union-attr]
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path, "a+b")  # noqa: SIM115  (closed below)
    except (ImportError, AttributeError, OSError):
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _count(store: diskcache.Cache | None, kind: str, what: str) -> None:
    _COUNTS[kind, what] += 1
    _LOG.info("results cache %s: %s", what[:-1] if what == "hits" else "miss", kind)
    if store is not None:
        try:
            store.incr(f"counter/{kind}/{what}")
        except UNAVAILABLE:
            pass


def counters(cache: diskcache.Cache | None = None, *, shared: bool = False) -> dict[str, int]:
    """Hits and misses per kind: `{"projection/hits": 2, ...}`, of this process, or with
    `shared=True` of every process using `cache` (kept in the cache itself)."""
    if not shared:
        return {f"{k}/{w}": n for (k, w), n in _COUNTS.items()}
    store = cache if cache is not None else results_cache()
    return {k[len("counter/"):]: int(store.get(k, 0)) for k in store.iterkeys()
            if isinstance(k, str) and k.startswith("counter/")}


def _plain(value: Any, arrays: list) -> Any:
    """JSON for `value`; arrays, frames and bytes go to `arrays` (referenced by index)."""
    import numpy as np

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        arrays.append(np.frombuffer(value, np.uint8))
        return {"b": len(arrays) - 1}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("The results cache stores arrays of numbers or fixed-width "
                            f"strings, not objects. Received: dtype={value.dtype}")
        arrays.append(value)
        return {"a": len(arrays) - 1}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("The results cache stores dicts with string keys. "
                            f"Received: keys={list(value)[:5]}")
        return {"d": {k: _plain(v, arrays) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"t" if isinstance(value, tuple) else "l": [_plain(v, arrays) for v in value]}
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        buf = io.BytesIO()
        bare = value.copy(deep=False)
        bare.attrs = {}  # kept in the JSON, with their arrays (pandas would drop those)
        bare.to_parquet(buf, index=True)
        arrays.append(np.frombuffer(buf.getvalue(), np.uint8))
        return {"f": len(arrays) - 1, "attrs": _plain(dict(value.attrs), arrays)}
    raise TypeError("The results cache stores plain values (numbers, strings, bytes, arrays, "
                    f"DataFrames, dicts, lists). Received: {type(value).__name__}")


def _value(tree: Any, arrays: Any) -> Any:
    if not isinstance(tree, dict):
        return tree
    if "a" in tree:
        return arrays[f"a{tree['a']}"]
    if "b" in tree:
        return arrays[f"a{tree['b']}"].tobytes()
    if "d" in tree:
        return {k: _value(v, arrays) for k, v in tree["d"].items()}
    if "l" in tree:
        return [_value(v, arrays) for v in tree["l"]]
    if "t" in tree:
        return tuple(_value(v, arrays) for v in tree["t"])
    import pandas as pd

    frame = pd.read_parquet(io.BytesIO(arrays[f"a{tree['f']}"].tobytes()))
    frame.attrs = _value(tree["attrs"], arrays)
    return frame


def encode(value: Any) -> bytes:
    """`value` (plain: see the module's docstring) as one blob: JSON for its shape and an
    `.npz` of its arrays (written with `allow_pickle=False`)."""
    import numpy as np

    arrays: list = []
    tree = json.dumps(_plain(value, arrays)).encode()
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **{f"a{i}": a for i, a in enumerate(arrays)})
    return _MAGIC + _LEN.pack(len(tree)) + tree + buf.getvalue()


def decode(blob: bytes) -> Any:
    """What `encode` wrote (arrays read with `allow_pickle=False`).

    Raises:
        ValueError: not a blob of this format (or an array of objects in it).
    """
    import numpy as np

    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _LEN.size:
        raise ValueError("not a results-cache blob")
    try:
        (n,) = _LEN.unpack_from(blob, len(_MAGIC))
        start = len(_MAGIC) + _LEN.size
        tree = json.loads(blob[start:start + n])
        with np.load(io.BytesIO(blob[start + n:]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return _value(tree, arrays)
    except Exception as exc:  # noqa: BLE001  truncated zip, bad JSON, Parquet: all unreadable
        raise ValueError(f"an unreadable results-cache blob ({type(exc).__name__}: {exc})"
                         ) from exc
