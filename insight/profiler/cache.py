"""A disk cache of converted profiles, keyed by the content of their `.xplane.pb` files.

Converting a long profile with xprof takes minutes (its trace viewer alone, most of it); the
result depends only on the file's bytes, so it is kept on disk and any later process (a new
server, the CLI, the doctor) reads it back in seconds::

    <cache_root>/profiles/<sha256 of the file>/<entry>      (`entry_path`)
    <cache_root>/profiles/hashes/<key of path, size, mtime>  (`content_hash`'s own memo)

- The key is the SHA-256 of the file's content, read in 1 MiB chunks; the digest itself is
  remembered per `(path, size, mtime_ns)` so an unchanged file is not read again. A copy of a
  profile elsewhere hits the same entries; a rewritten file gets new ones.
- Blobs (`write_blob`/`read_blob`) are what xprof produced (JSON text, or the trace's
  protobuf), zstd-compressed (pyarrow's codec, already installed with Streamlit) behind a
  20-byte header: a magic tag, the length and the CRC32C of the uncompressed bytes. An entry
  that is truncated, corrupt or from another format reads as missing, and is rewritten.
- Every write goes to a temporary file beside the entry, then `os.replace`: a reader sees the
  whole old entry or the whole new one, never half. Two processes converting the same profile
  at once both write complete entries; the last rename wins. `converting` makes the second
  wait for the first instead (a lock file, where `fcntl` exists), so the work is done once.
- Nothing is pickled: a cache folder someone else wrote cannot run code here.

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

__all__ = ["content_hash", "entry_path", "read_blob", "write_blob", "atomic_write",
           "converting", "reporting", "report", "cache_root", "FORMAT"]

FORMAT = 1  # bump when what an entry holds changes: old entries are then never read
_MAGIC = b"INSIGHT" + bytes([FORMAT])
_HEADER = struct.Struct("<8sQI")  # magic, uncompressed length, CRC32C
_CHUNK = 1 << 20
_HASHES: dict[tuple[str, int, int], str] = {}
_REPORT: ContextVar[Callable[[str], None] | None] = ContextVar("insight_profile_report",
                                                                 default=None)


def cache_root() -> Path:
    """insight's cache folder (`$INSIGHT_CACHE_DIR`, else `$XDG_CACHE_HOME/insight`)."""
    env = os.environ.get("INSIGHT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "insight"


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else cache_root() / "profiles"


def content_hash(path: str | Path, *, root: Path | None = None) -> str:
    """SHA-256 (hex) of a file's content, remembered per `(path, size, mtime_ns)` in this
    process and on disk (a file that did not change is not read again).

    Args:
        path: the file.
        root: the cache folder. Defaults to `<cache_root>/profiles`.
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key in _HASHES:
        return _HASHES[key]
    memo = _root(root) / "hashes" / hashlib.sha256("|".join(map(str, key)).encode()).hexdigest()
    try:
        known = memo.read_text().strip()
        if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
            _HASHES[key] = known
            return known
    except OSError:
        pass
    digest = hashlib.sha256()
    with p.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    _HASHES[key] = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only cache still works, it just rehashes
        atomic_write(memo, _HASHES[key].encode())
    return _HASHES[key]


def entry_path(digest: str, name: str, *, root: Path | None = None) -> Path:
    """Where the entry `name` of the file with content hash `digest` lives."""
    return _root(root) / digest[:2] / digest / name


def atomic_write(path: Path, data: bytes | Callable[[Path], None]) -> None:
    """Write `data` (bytes, or a function writing the file it is given) to a temporary file
    beside `path`, then rename it over `path`: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes | bytearray | memoryview):
                f.write(data)
        if callable(data):
            data(Path(tmp))
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

    try:
        raw = path.read_bytes()
    except OSError:
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
