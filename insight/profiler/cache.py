"""Converted profiles, kept in the results cache (`insight.results`), keyed by the content
of their `.xplane.pb` files.

Converting a long profile with xprof takes minutes (its trace viewer alone, most of it); the
result depends only on the file's bytes, so it is kept in the results cache and any later
process (a new server, the CLI, the doctor, another replica on the same cache folder) reads it
back in seconds. Each entry is one key of the cache, `profile/<FORMAT>/<sha256>/<name>`:

- The digest is the SHA-256 of the file's content, read in 1 MiB chunks; it is remembered per
  `(path, size, mtime_ns)` (in this process and as a `profile-hash/...` key) so an unchanged
  file is not read again. A copy of a profile elsewhere hits the same entries; a rewritten
  file gets new ones.
- `entry_path` names an entry as a path (an `Entry`): opening it opens the file the cache
  keeps for that key now (diskcache writes every value to a file of its own), so readers
  that take a path (Parquet) read it in place; a missing entry is a path where nothing is.
- Blobs (`write_blob`/`read_blob`) are what xprof produced (JSON text, or the trace's
  protobuf), zstd-compressed (pyarrow's codec, already installed with Streamlit) behind a
  20-byte header: a magic tag, the length and the CRC32C of the uncompressed bytes. An entry
  that is truncated, corrupt or from another format reads as missing, and is rewritten.
- Writes are whole: diskcache writes the value's file first, then points the key at it in
  one SQLite transaction, so a reader sees the whole old entry or the whole new one.
  `converting` makes a second process converting the same profile wait for the first (a lock
  file beside the entry's name, where `fcntl` exists), so the work is done once.
- Nothing is pickled (`insight.results.PlainDisk`): a cache folder someone else wrote cannot
  run code here.

`write_blob`, `read_blob` and `atomic_write` keep working on plain paths (plain files).

Example:

>>> import tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> f = root / "host.xplane.pb"
>>> _ = f.write_bytes(b"xspace")
>>> digest = content_hash(f, root=root)
>>> write_blob(entry_path(digest, "overview_page.json", root=root), b'{"a": 1}')
>>> read_blob(entry_path(digest, "overview_page.json", root=root))
b'{"a": 1}'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from insight import results
from insight.results import cache_root

__all__ = ["content_hash", "entry_path", "read_blob", "write_blob", "atomic_write",
           "converting", "reporting", "report", "cache_root", "Entry", "FORMAT"]

FORMAT = 2  # bump when what an entry holds changes: old entries are then never read
_MAGIC = b"INSIGHT" + bytes([FORMAT])
_HEADER = struct.Struct("<8sQI")  # magic, uncompressed length, CRC32C
_CHUNK = 1 << 20
_HASHES: dict[tuple[str, int, int], str] = {}
_REPORT: ContextVar[Callable[[str], None] | None] = ContextVar("insight_profile_report",
                                                                 default=None)


def _store(root: Path | str | None) -> Any:
    return results.results_cache(root)


class Entry(type(Path())):  # type: ignore[misc]  # PosixPath or WindowsPath
    """An entry of the results cache named as a path. Its text is a stable name (the lock of
    `converting` sits beside it); opening it (`os.fspath`: `open`, `stat`, Parquet readers)
    opens the file the cache holds for the key now, or that name when there is none."""

    _key: str | None = None
    _root: str | None = None

    def current(self) -> str:
        """The file that holds the entry now, or the entry's name when it is missing."""
        if self._key is None:
            return super().__fspath__()
        with contextlib.suppress(*results.UNAVAILABLE):
            handle = _store(self._root).get(self._key, read=True)
            if handle is not None:
                with handle:
                    name = getattr(handle, "name", None)
                if isinstance(name, str):
                    return name
        return super().__fspath__()

    def __fspath__(self) -> str:
        return self.current()


def _entry(key: str, name: Path, root: Path | str | None) -> Entry:
    entry = Entry(name)
    entry._key, entry._root = key, str(root) if root is not None else None
    return entry


@contextlib.contextmanager
def _unavailable_as_oserror() -> Iterator[None]:
    """A cache that cannot store (locked, damaged) fails as a full disk would: an OSError,
    which the converters take as "not saved, converted again next time"."""
    try:
        yield
    except results.UNAVAILABLE as exc:
        raise OSError(f"the results cache could not store the entry ({exc})") from exc


def content_hash(path: str | Path, *, root: Path | None = None) -> str:
    """SHA-256 (hex) of a file's content, remembered per `(path, size, mtime_ns)` in this
    process and in the results cache (a file that did not change is not read again).

    Args:
        path: the file.
        root: the results cache's folder. Defaults to `insight.results.cache_dir()`.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key in _HASHES:
        return _HASHES[key]
    memo = "profile-hash/" + hashlib.sha256("|".join(map(str, key)).encode()).hexdigest()
    with contextlib.suppress(*results.UNAVAILABLE):
        known = _store(root).get(memo)
        if isinstance(known, str) and len(known) == 64 \
                and all(c in "0123456789abcdef" for c in known):
            _HASHES[key] = known
            return known
    digest = hashlib.sha256()
    with p.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    _HASHES[key] = digest.hexdigest()
    with contextlib.suppress(*results.UNAVAILABLE):  # read-only: rehashes
        _store(root).set(memo, _HASHES[key])
    return _HASHES[key]


def entry_path(digest: str, name: str, *, root: Path | None = None) -> Entry:
    """The entry `name` of the file with content hash `digest`, as a path (`Entry`)."""
    folder = Path(root) if root is not None else results.cache_dir()
    return _entry(f"profile/{FORMAT}/{digest}/{name}",
                  folder / "profiles" / digest[:2] / digest / name, root)


def atomic_write(path: Path, data: bytes | Callable[[Path], None]) -> None:
    """Write `data` (bytes, or a function writing the file it is given) to `path` whole:
    for an `Entry`, into the results cache; else to a temporary file beside `path`, renamed
    over it. Readers never see a partial file."""
    key = path._key if isinstance(path, Entry) else None
    if key and isinstance(data, bytes | bytearray | memoryview):
        with _unavailable_as_oserror():
            _store(path._root).set(key, bytes(data))
        return
    with _unavailable_as_oserror():
        folder = Path(_store(path._root).directory) if key else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes | bytearray | memoryview):
                f.write(data)
        if callable(data):
            data(Path(tmp))
        if key:
            with open(tmp, "rb") as f, _unavailable_as_oserror():
                _store(path._root).set(key, f, read=True)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _crc(data: bytes) -> int:
    import google_crc32c

    return google_crc32c.value(data)


def write_blob(path: Path, data: bytes) -> None:
    """Store `data` zstd-compressed with its length and checksum (atomically)."""
    import pyarrow as pa

    packed = pa.Codec("zstd", compression_level=1).compress(data, asbytes=True)
    atomic_write(path, _HEADER.pack(_MAGIC, len(data), _crc(data)) + packed)


def read_blob(path: Path) -> bytes | None:
    """What `write_blob` stored, or `None` when the entry is missing, truncated, corrupt or of
    another format (the caller converts again and overwrites it)."""
    import pyarrow as pa

    raw = None
    for _ in range(3):  # an entry replaced between finding its file and opening it
        try:
            raw = path.read_bytes()
            break
        except OSError:
            if not isinstance(path, Entry) or path.current() == str(path):
                return None
    if raw is None:
        return None
    if len(raw) < _HEADER.size:
        return None
    magic, size, crc = _HEADER.unpack_from(raw)
    if magic != _MAGIC:
        return None
    try:
        data = pa.Codec("zstd").decompress(memoryview(raw)[_HEADER.size:],
                                           decompressed_size=size, asbytes=True)
    except (OSError, ValueError, pa.ArrowException):
        return None
    return data if len(data) == size and _crc(data) == crc else None


@contextlib.contextmanager
def converting(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for producing the entry `path`: a second process converting the
    same profile waits here, then finds the entry written (check again inside). Without
    `fcntl` (Windows) nothing is locked and both convert; the writes stay atomic."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def reporting(callback: Callable[[str], None]) -> Iterator[None]:
    """Within this block, each slow step of a conversion (`report`) calls `callback(stage)`,
    e.g. to update a progress bar; a profile read from the cache reports nothing."""
    token = _REPORT.set(callback)
    try:
        yield
    finally:
        _REPORT.reset(token)


def report(stage: str) -> None:
    """Tell the `reporting` callback, if any, which slow step starts."""
    callback = _REPORT.get()
    if callback is not None:
        callback(stage)
