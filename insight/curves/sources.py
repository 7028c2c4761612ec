"""Where the event-file reader's bytes come from: a local file, or ranges of a remote object.

`insight.curves.tfevents.EventFileReader` asks a source two things: its size and the bytes of
a range. `LocalFile` answers from disk (and knows where a sparse file's holes end);
`RemoteFile` answers from an `s3://` or `gs://` object, with the size its logdir's listing
saw and the bytes its logdir fetched for many files at once (`insight.curves.remote`), so one
decoder serves both and a remote tail re-reads only the appended range.

Example:

>>> src = LocalFile("logs/train/events.out.tfevents.1.v2")  # doctest: +SKIP
>>> src.size(), src.read(0, 8)[:2]  # doctest: +SKIP
(73720, b'\\x18\\x00')
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from insight.remote import storage_errors

__all__ = ["Source", "LocalFile", "RemoteFile"]

_HEADER = 12  # a TFRecord header: u64 length + u32 CRC of it


class Source:
    """The bytes of one event file, read by offset.

    Subclasses say `path` (shown in notes and used as the file's identity), `size()` and
    `read(offset, length)`; a short read means the data ends there for now.
    """

    path: Any

    def size(self) -> int:
        """The file's size now, in bytes.

        Raises:
            OSError: the file cannot be read (local files: noted by the reader, no raise).
        """
        raise NotImplementedError

    def read(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset` (fewer at the end of the data)."""
        raise NotImplementedError

    def data_after(self, offset: int, size: int) -> int:
        """Where data may start again at or after `offset`, skipping a hole the storage knows
        about without reading it (a sparse local file). Defaults to `offset`."""
        return offset


class LocalFile(Source):
    """An event file on disk.

    Args:
        path: the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def size(self) -> int:
        return self.path.stat().st_size

    def read(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(length)

    def data_after(self, offset: int, size: int) -> int:
        """The end of a hole of a sparse file at `offset` (zeros that no header starts in,
        which the file system knows without reading them: a 2 GB `truncate`d file is then read
        in milliseconds), less a header's width: a header may begin in the last zeros before
        the data (a length whose high bytes are zero)."""
        try:
            with open(self.path, "rb") as f:
                data = os.lseek(f.fileno(), offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # SEEK_DATA unsupported here: read the zeros
                return offset
            data = size  # only a hole from here to the end
        except AttributeError:  # pragma: no cover - no SEEK_DATA on this platform
            return offset
        return max(offset, data - _HEADER + 1)


class RemoteFile(Source):
    """An event file in object storage, read by ranged GETs.

    Its size is the one the last listing saw (`known_size`): asking the storage again per file
    would cost a request each. Bytes handed over by `preload` (its logdir fetches the appended
    ranges of every file concurrently) are served without a request; any other range is one
    ranged GET.

    Args:
        fs: the fsspec filesystem (`insight.remote.filesystem`).
        key: the object's path for `fs` (`bucket/key`).
        url: the URL it was listed under, shown in errors.
        size: its size as listed.
    """

    def __init__(self, fs: Any, key: str, url: str, size: int) -> None:
        self.fs = fs
        self.key = key
        self.path = url
        self.known_size = size
        self._buffer: tuple[int, bytes] | None = None

    def size(self) -> int:
        return self.known_size

    def preload(self, offset: int, data: bytes) -> None:
        """Keep `data` (the object's bytes from `offset`) for the next reads."""
        self._buffer = (offset, data)

    def read(self, offset: int, length: int) -> bytes:
        if self._buffer is not None:
            start, data = self._buffer
            if start <= offset < start + len(data):
                lo = offset - start
                if lo == 0 and length >= len(data):
                    self._buffer = None  # handed over whole: no copy
                    return data
                out = data[lo:lo + length]
                if lo + length >= len(data):
                    self._buffer = None
                return out
            self._buffer = None
        if length <= 0 or offset >= self.known_size:
            return b""
        with storage_errors(self.path):
            return self.fs.cat_file(self.key, start=offset,
                                    end=min(offset + length, self.known_size))
