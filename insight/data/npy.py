"""NumPy files read with their size known first: `.npy` headers checked before any allocation.

`np.load` trusts the header: an `.npy` of 128 bytes whose header declares 10^12 floats asks
for 8 TB (a raw `MemoryError`, or the OOM killer), and a 2 MB `.npz` of compressed zeros
holds a 2 GiB array that is inflated before anything looks at its shape. Here each array's
header is read first (`numpy.lib.format`: magic, then the shape/dtype dict, a few hundred
bytes), and the array is refused when its declared bytes exceed what the file (or zip
member) holds after the header, or the `max_bytes` budget of the whole file. Object
(pickled) arrays are refused from the header too, before a byte of the payload is read.
Members of an `.npz` that are not `.npy` arrays are refused rather than read whole.

Example:

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
>>> np.save(path, np.zeros((3, 2), np.float32))
>>> read_npy(path, "x.npy").shape
(3, 2)
"""

from __future__ import annotations

import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from insight.errors import DataError

__all__ = ["read_npy", "read_npz", "npy_header", "MAX_DATA_BYTES", "MAX_MEMBERS"]

MAX_DATA_BYTES = 2**30  # 1 GiB of arrays per data file: digits is 0.5 MB, MNIST 190 MB
MAX_MEMBERS = 1000  # arrays in one .npz (a model has a few inputs and outputs)
_FIX = "Save it again with np.savez('data.npz', x=x, y=y) or np.save."


def _gib(n: int) -> str:
    if n >= 2**27:
        return f"{n / 2**30:.3g} GiB"
    return f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n:,} bytes"


def npy_header(fp: IO[bytes], shown: str, key: str = "x") -> tuple[tuple[int, ...], bool,
                                                                    np.dtype]:
    """`(shape, fortran_order, dtype)` from an open `.npy` stream positioned at its start;
    the stream is left at the first byte of the data.

    Raises:
        DataError: not an `.npy` (no magic), a header numpy cannot parse, or an object dtype
            (pickled Python objects: refused, unpickling runs code).
    """
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        else:  # 2.0 and 3.0 share the layout (3.0 allows UTF-8 field names)
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    except Exception as exc:  # noqa: BLE001 - numpy parses the header with tokenize and
        # ast.literal_eval: ValueError, SyntaxError, tokenize.TokenError (found by atheris),
        # RecursionError, MemoryError...; whatever it raises, the header is unreadable
        # numpy's message quotes the bytes it found; a data file may be any file, so only
        # the kind of failure is said
        raise DataError(f"The array {key!r} has no readable NumPy header (it does not start "
                        f"with a valid \\x93NUMPY header: {type(exc).__name__}).", _FIX,
                        shown) from None
    if any(n < 0 for n in shape):
        raise DataError(f"The array {key!r} declares a negative dimension.", _FIX,
                        f"{shown}, {key}_shape={tuple(shape)}")
    if dtype.hasobject:
        raise DataError(
            f"The array {key!r} holds Python objects (a pickled array); pickled arrays are "
            "refused for safety: unpickling can run code from the file.",
            "Save plain numeric or string arrays, e.g. np.array(class_names, dtype=str).", shown)
    return tuple(shape), fortran, dtype


def _declared(shape: tuple[int, ...], dtype: np.dtype) -> int:
    # Python ints: no overflow at 10^12 x 10^12. A zero-width dtype ('|S0') is counted as one
    # byte an element: numpy allocates at least that much for it (a 100-byte file declaring
    # 25e9 elements of S0 asked for 23 GiB before this).
    return math.prod(shape) * max(dtype.itemsize, 1)


def _check_size(key: str, shape: tuple, dtype: np.dtype, available: int, budget: int,
                limit: int, shown: str) -> int:
    nbytes = _declared(shape, dtype)
    received = f"{shown}, {key}_shape={shape}, dtype={dtype}"
    if nbytes > available:
        raise DataError(
            f"The array {key!r} declares shape {shape} of {dtype} ({_gib(nbytes)}) but the file "
            f"holds only {_gib(available)} after its header: the header lies or the file is "
            "truncated.", _FIX, received)
    if nbytes > budget:
        raise DataError(
            f"The data file holds {_gib(limit - budget + nbytes)} of arrays (the array {key!r} "
            f"alone is {_gib(nbytes)}), more than insight reads ({_gib(limit)}).",
            "Give a sample of the data, e.g. np.savez('sample.npz', x=x[:5000], y=y[:5000]).",
            received)
    return nbytes


def _read(fp: IO[bytes], shape: tuple, fortran: bool, dtype: np.dtype, key: str,
          shown: str) -> np.ndarray:
    """The data after the header, read straight into the array (one allocation, writable)."""
    arr = np.empty(math.prod(shape), dtype=dtype)
    view = memoryview(arr.view(np.uint8)) if arr.nbytes else memoryview(b"")
    if dtype.itemsize == 0:  # numpy widened '|S0' to '|S1': nothing of it is in the file
        view = memoryview(b"")
    got = 0
    try:
        while got < len(view):
            n = fp.readinto(view[got:])
            if not n:
                raise EOFError(f"{got:,} of {len(view):,} bytes")
            got += n
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"The array {key!r} is truncated or corrupt ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else 'empty'}).",
                        _FIX, shown) from None
    if fortran:
        return arr.reshape(shape[::-1]).transpose()
    return arr.reshape(shape)


def read_npy(path: str | Path, shown: str, *, max_bytes: int = MAX_DATA_BYTES) -> np.ndarray:
    """The array of an `.npy` file, its header checked against the file size and `max_bytes`
    before anything is allocated.

    Raises:
        DataError: no NumPy header, a pickled array, a header that declares more than the
            file holds or more than `max_bytes`, a truncated file.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fp:
            shape, fortran, dtype = npy_header(fp, shown)
            _check_size("x", shape, dtype, size - fp.tell(), max_bytes, max_bytes, shown)
            return _read(fp, shape, fortran, dtype, "x", shown)
    except OSError as exc:
        raise DataError(f"Cannot read the file ({exc.strerror or exc}).", "Check the path.",
                        shown) from None


def read_npz(path: str | Path, shown: str, *, max_bytes: int = MAX_DATA_BYTES
             ) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` archive by key, each member's header checked against its
    uncompressed size and the archive's `max_bytes` budget before it is inflated.

    Raises:
        DataError: not a zip, a member that is not an `.npy`, more than `MAX_MEMBERS`
            members, a pickled array, a header that lies, more than `max_bytes` in all.
    """
    budget = max_bytes
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise DataError(f"The .npz archive has {len(members):,} members; insight reads "
                                f"at most {MAX_MEMBERS:,}.", "Save the inputs and labels only.",
                                shown)
            for info in members:
                if not info.filename or info.filename.endswith("/"):  # is_dir() fails on ""
                    continue
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with zf.open(info) as fp:
                    shape, fortran, dtype = npy_header(fp, shown, key)
                    header = fp.tell()
                    budget -= _check_size(key, shape, dtype, info.file_size - header, budget,
                                          max_bytes, shown)
                    out[key] = _read(fp, shape, fortran, dtype, key, shown)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError,
            OSError, ValueError, zlib.error, RuntimeError, IndexError, KeyError,
            struct.error) as exc:
        # NotImplementedError: a compression method zipfile lacks; RuntimeError: an encrypted
        # member; ValueError: a bad member name or offset
        raise DataError(f"The file is not a readable NumPy .npz archive; it may be truncated or "
                        f"in another format ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else 'empty'}).",
                        _FIX, shown) from None
    return out
