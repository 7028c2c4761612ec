"""HDF5 files read as data: links into other files, bounded attributes, a stored zip member.

A legacy `.h5` model and the `model.weights.h5` inside a `.keras` archive are HDF5 files, and
HDF5 can point elsewhere: external links, datasets whose bytes live in other files, virtual
datasets. Opening the model through them reads files the user never chose. These helpers list
them without following any, read an attribute only when its stored size is sane, and open a
member stored uncompressed in a zip archive in place (through a window on the archive file).

Example:

>>> import h5py
>>> from insight.model.hdf5 import h5_external_links
>>> with h5py.File("model.h5") as f:  # doctest: +SKIP
...     h5_external_links(f)
['model_weights/leak -> /etc/passwd:/ (external link)']
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from insight.errors import ModelLoadError

__all__ = ["MAX_ATTR_BYTES", "archive_weights_links", "h5_external_links", "read_bounded_attr"]

MAX_ATTR_BYTES = 64 * 1024**2
_MAX_H5_OBJECTS = 100_000  # links visited in one HDF5 file before giving up


def h5_external_links(f: Any) -> list[str]:
    """Links and datasets of an open HDF5 file that point into other files.

    External links (`h5py.ExternalLink`), datasets stored in external raw files, and virtual
    datasets whose sources live in other files: opening the model through them reads files
    the user never chose. Hard links are walked without recursion, soft links not followed,
    and the walk stops after `_MAX_H5_OBJECTS` links.

    Args:
        f: an open `h5py.File` (or group).

    Returns:
        `"name -> target (what)"` strings, in walk order.
    """
    import h5py

    found: list[str] = []
    seen: set[Any] = set()
    stack: list[tuple[Any, str]] = [(f, "")]
    visited = 0
    while stack and visited < _MAX_H5_OBJECTS:
        group, prefix = stack.pop()
        for name in list(group.keys())[:_MAX_H5_OBJECTS]:
            visited += 1
            path = f"{prefix}/{name}" if prefix else name
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                found.append(f"{path} -> {link.filename}:{link.path} (external link)")
                continue
            if isinstance(link, h5py.SoftLink):
                continue
            obj = group.get(name)
            if obj is None:  # a link to nothing (a damaged or crafted file)
                continue
            info = h5py.h5o.get_info(obj.id)
            key = getattr(info, "token", None) or getattr(info, "addr", None)
            if key in seen:
                continue
            seen.add(key)
            if isinstance(obj, h5py.Group):
                stack.append((obj, path))
            elif isinstance(obj, h5py.Dataset):
                if obj.external:
                    files = ", ".join(str(e[0]) for e in obj.external[:3])
                    found.append(f"{path} -> {files} (external dataset)")
                elif obj.is_virtual:
                    files = ", ".join(sorted({m.file_name for m in obj.virtual_sources()})[:3])
                    found.append(f"{path} -> {files} (virtual dataset)")
    return found


def read_bounded_attr(f: Any, name: str, shown: str) -> Any:
    """An attribute of `f`, refused when its stored size is over `MAX_ATTR_BYTES`."""
    import h5py

    if name not in f.attrs:
        return None
    attr = h5py.h5a.open(f.id, name.encode())
    if attr.get_storage_size() > MAX_ATTR_BYTES:
        raise ModelLoadError(
            f"The HDF5 attribute {name} holds {attr.get_storage_size() / 1024**2:,.0f} MB; "
            f"a model config is kilobytes (refused over {MAX_ATTR_BYTES // 1024**2} MB).",
            "Check where the file comes from; insight does not load it.",
            f"path={shown!r}",
        )
    return f.attrs[name]


def archive_weights_links(zf: zipfile.ZipFile) -> list[str]:
    """External links of the archive's `model.weights.h5`, read in place when it is stored
    uncompressed (as Keras saves it): through a window on the archive file, since seeking a
    `ZipExtFile` re-reads the member from its start (seconds on MobileNetV2)."""
    import h5py

    try:
        info = zf.getinfo("model.weights.h5")
    except KeyError:
        return []
    if info.compress_type != zipfile.ZIP_STORED or zf.filename is None:
        return []
    try:
        with open(zf.filename, "rb") as raw:
            raw.seek(info.header_offset)
            header = raw.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                return []
            start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") \
                + int.from_bytes(header[28:30], "little")
            with h5py.File(_Window(raw, start, info.file_size), "r") as f:
                return [f"model.weights.h5: {link}" for link in h5_external_links(f)]
    except (OSError, RuntimeError, ValueError, KeyError, TypeError):
        return []  # a damaged weights file is Keras' to report, with its own words


class _Window(io.RawIOBase):
    """A read-only file over `size` bytes of `raw` from `start` (a stored zip member)."""

    def __init__(self, raw: Any, start: int, size: int) -> None:
        super().__init__()
        self._raw, self._start, self._size, self._pos = raw, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), max(0, self._size - self._pos))
        self._raw.seek(self._start + self._pos)
        data = self._raw.read(want)
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)
