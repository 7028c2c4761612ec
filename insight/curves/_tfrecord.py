"""TFRecord framing and CRC32C, the layer under `insight.curves.tfevents`.

A TFRecord file is a sequence of records::

    uint64 length | uint32 masked_crc32c(length) | payload[length] | uint32 masked_crc32c(payload)

all little-endian. `frame` walks the lengths (the only serial step: a tight Python loop that
jumps ahead once the lengths repeat); everything else works on whole arrays of records at
once: `header_ok` checks every length CRC, `crc_rows` checks the payload CRC of many
equal-length records by CRC linearity (records that differ from a template only in a few
byte positions cost one table lookup per differing byte), and `resync` finds the next valid
header after damage.

Example:

>>> masked_crc32c(b"")
2726488792
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["HEADER", "FOOTER", "crc32c", "masked_crc32c", "mask", "walk", "frame", "rows", "u32_at",
           "header_ok", "position_tables", "crc_rows", "resync", "MAX_RECORD"]

HEADER = 12  # u64 length + u32 masked CRC of the length
FOOTER = 4  # u32 masked CRC of the payload
_MASK_DELTA = 0xA282EAD8
_POLY = 0x82F63B78  # CRC32C (Castagnoli), reflected
_U64 = struct.Struct("<Q")


def _make_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> np.uint32(1)) ^ np.uint32(_POLY), t >> np.uint32(1))
    return t.astype(np.uint32)


TABLE = _make_table()
_TABLE_LIST = [int(v) for v in TABLE]

try:  # the C implementation (google-crc32c, a dependency); pure Python otherwise
    from google_crc32c import value as _crc_c
except ImportError:  # pragma: no cover - exercised only without the wheel
    _crc_c = None


def crc32c(data: bytes) -> int:
    """CRC32C of `data` (the C extension when installed, else a pure-Python table loop)."""
    if _crc_c is not None:
        return _crc_c(bytes(data))
    crc, t = 0xFFFFFFFF, _TABLE_LIST
    for b in bytes(data):
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc):
    """TFRecord's CRC masking; works on an int or a uint32 array."""
    if isinstance(crc, np.ndarray):
        return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(_MASK_DELTA)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC32C a TFRecord stores after the length and after the payload."""
    return mask(crc32c(data))


def walk(buf: bytes, pos: int, end: int, limit: int = 1 << 62
         ) -> tuple[list[int], list[int], int, bool]:
    """The plain framing loop: header positions and declared lengths of up to `limit`
    complete records from `pos`, the position after them, and whether it stopped at a record
    that does not fit (or at the end). Lengths are not checked here."""
    unpack = _U64.unpack_from
    offs: list[int] = []
    lens: list[int] = []
    add_off, add_len = offs.append, lens.append
    last = end - HEADER
    while pos <= last and limit:
        (n,) = unpack(buf, pos)
        nxt = pos + n + 16
        if nxt > end:
            return offs, lens, pos, True
        add_off(pos)
        add_len(n)
        pos = nxt
        limit -= 1
    return offs, lens, pos, pos > last


def _period(lens: list[int]) -> int:
    for p in range(1, min(32, len(lens) // 2) + 1):
        if lens[-p:] == lens[-2 * p:-p]:
            return p
    return 0


def frame(buf: bytes, arr: np.ndarray, pos: int, end: int
          ) -> tuple[np.ndarray, np.ndarray, int]:
    """Header positions and declared lengths of the complete records in `buf[pos:end]`, and
    where the walk stopped (the first record that does not fit, or `end`). A record whose
    length CRC fails ends the walk: it is returned last, for `header_ok` to find.

    The serial walk is short-cut: once the lengths repeat with a period (the same tags
    written step after step), the positions of the following records are predicted and all
    checked at once; the walk resumes at the first record that breaks the pattern.
    """
    offs_parts: list = []
    lens_parts: list = []
    batch = 4096  # records predicted at once

    def result(stop: int) -> tuple[np.ndarray, np.ndarray, int]:
        return np.concatenate(offs_parts), np.concatenate(lens_parts), stop

    while True:
        offs, lens, pos, done = walk(buf, pos, end, 64)
        offs_parts.append(np.asarray(offs, np.int64))
        lens_parts.append(np.asarray(lens, np.int64))
        ok = header_ok(arr, offs_parts[-1], lens_parts[-1])
        if not ok.all():  # never frame past a corrupt header (zeros frame as 0-length records)
            first = int(np.argmin(ok))
            offs_parts[-1], lens_parts[-1] = offs_parts[-1][:first + 1], lens_parts[-1][:first + 1]
            return result(int(offs[first]))
        period = 0 if done else _period(lens)
        if not period:
            if done:
                break
            continue
        sizes = np.asarray(lens[-period:], np.int64) + 16
        stride = int(sizes.sum())
        reps = min((end - pos) // stride, max(2, batch // period))
        if reps < 2:
            continue
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        ppos = (pos + np.arange(reps)[:, None] * stride + starts).ravel()
        plen = np.tile(sizes - 16, reps)
        # one period of records per row of a strided view: each predicted header is then a
        # column slice, not a gather of scattered positions
        heads = np.lib.stride_tricks.as_strided(arr[pos:], (reps, stride), (stride, 1),
                                                writeable=False)
        firsts = starts.tolist()
        got = np.stack([heads[:, a:a + 8].view("<u8")[:, 0] for a in firsts], 1).ravel()
        stored = np.stack([heads[:, a + 8:a + 12].view("<u4")[:, 0] for a in firsts], 1).ravel()
        same = got == plen.astype(np.uint64)
        crcs = np.tile(np.array([_length_crc(int(n)) for n in sizes - 16], np.uint32), reps)
        crc_ok = stored == crcs
        bad = np.flatnonzero(~(same & crc_ok))
        m = int(bad[0]) if bad.size else len(ppos)
        offs_parts.append(ppos[:m])
        lens_parts.append(plen[:m])
        if m < len(ppos) and same[m]:  # the length repeats but its CRC is wrong: corrupt
            offs_parts.append(ppos[m:m + 1])
            lens_parts.append(plen[m:m + 1])
            return result(int(ppos[m]))
        pos = int(ppos[m]) if m < len(ppos) else pos + reps * stride
        # predict more records next time while the pattern holds (a file's step varint
        # grows a byte at 128, 16384, ...: predicting the whole rest of it each time costs)
        batch = min(batch * 4, 1 << 20) if m == len(ppos) else 4096
    return result(pos)


def rows(arr: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """`arr[s:s + width]` for every start, as one `(len(starts), width)` uint8 array: a
    read-only strided view (no copy) when the starts are evenly spaced, as the records of
    one tag written step after step are, else a gathered copy."""
    n = len(starts)
    if width <= 0 or len(arr) < width:
        return np.zeros((n, max(width, 0)), np.uint8)
    if n > 2:
        gap = int(starts[1]) - int(starts[0])
        if gap >= width and int(starts[-1]) - int(starts[0]) == gap * (n - 1) and \
                int(starts[-1]) + width <= len(arr) and (np.diff(starts) == gap).all():
            return np.lib.stride_tricks.as_strided(arr[int(starts[0]):], (n, width), (gap, 1),
                                                   writeable=False)
    return np.lib.stride_tricks.sliding_window_view(arr, width)[starts]


def u32_at(arr: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The little-endian uint32 at each position."""
    return rows(arr, pos, 4).view("<u4")[:, 0]


_HEADER_CRC: dict[int, int] = {}


def _length_crc(n: int) -> int:
    crc = _HEADER_CRC.get(n)
    if crc is None:
        crc = _HEADER_CRC[n] = masked_crc32c(_U64.pack(n))
        if len(_HEADER_CRC) > 65536:
            _HEADER_CRC.clear()
    return crc


def header_ok(arr: np.ndarray, offs: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Whether each record's stored length CRC matches its length (a bool array)."""
    if not len(offs):
        return np.zeros(0, bool)
    uniq, inverse = np.unique(lens, return_inverse=True)
    expected = np.array([_length_crc(int(n)) for n in uniq], np.uint32)[inverse]
    return u32_at(arr, offs + 8) == expected


def position_tables(length: int, positions: np.ndarray) -> np.ndarray:
    """`(len(positions), 256)` tables: entry `[j, b]` is the linear CRC32C part contributed by
    byte value `b` at `positions[j]` of a `length`-byte message (zeros elsewhere).

    CRC32C is affine in the message bits, so for messages of one length that differ only at
    `positions`: `crc(m) = crc(base) ^ XOR_j table[j, m[positions[j]]]`, where `base` is any
    of them with those positions zeroed.
    """
    order = np.argsort(-np.asarray(positions))
    out = np.empty((len(positions), 256), np.uint32)
    v = TABLE.copy()  # a byte at the last position: one table step
    at = length - 1
    for j in order:
        for _ in range(at - int(positions[j])):  # each later zero byte shifts it once more
            v = TABLE[v & np.uint32(0xFF)] ^ (v >> np.uint32(8))
        at = int(positions[j])
        out[j] = v
    return out


_TABLES: dict[tuple, np.ndarray] = {}


def crc_rows(block: np.ndarray, base: bytes, positions: np.ndarray) -> np.ndarray:
    """Masked CRC32C of each row of `block` (`(n, len(base))` uint8), given that every row
    equals `base` outside `positions` (the caller checks that); `base` may hold anything at
    `positions`."""
    length = block.shape[1]
    zeroed = bytearray(base)
    for p in positions:
        zeroed[int(p)] = 0
    crc = np.full(len(block), crc32c(bytes(zeroed)), np.uint32)
    key = (length, tuple(int(p) for p in positions))
    tables = _TABLES.get(key)
    if tables is None:  # the same few record layouts recur in every file of a logdir
        if len(_TABLES) >= 256:
            _TABLES.clear()
        tables = _TABLES[key] = position_tables(length, positions)
    for j, p in enumerate(positions):
        crc ^= tables[j][block[:, int(p)]]
    return mask(crc)


_HEADER_TABLES = position_tables(8, np.arange(8))
_ZERO8 = crc32c(bytes(8))


# A record holds one protobuf message, and protobuf refuses messages of 2 GiB or more: a
# header that declares a longer record is never a real one. So a candidate's length has its
# top 33 bits clear (bytes 4-7 zero, byte 3 below 0x80), which 1 position in 8 billion of
# random bytes passes; and 12 zero bytes (a sparse file, a zeroed page) are never a header
# because the masked CRC of the length 0 is not 0. Only the positions that pass both get
# the full length-CRC check.
MAX_RECORD = 2**31 - 1
_ZERO_HEADER_OK = masked_crc32c(bytes(8)) == 0  # False: an all-zero header never checks out


def _candidates(arr: np.ndarray, pos: int, stop: int) -> np.ndarray:
    """Positions in `[pos, stop)` that can start a header (see `MAX_RECORD`)."""
    n = stop - pos
    ok = arr[pos + 3:pos + 3 + n] < 0x80
    for j in range(4, 8):
        ok &= arr[pos + j:pos + j + n] == 0
    cand = np.flatnonzero(ok)
    if cand.size and not _ZERO_HEADER_OK:
        window = rows(arr, cand + pos, HEADER)
        cand = cand[window.any(axis=1)]
    return cand + pos


def resync(arr: np.ndarray, start: int, end: int, chunk: int = 1 << 22) -> int | None:
    """The first position `>= start` holding a record header whose length CRC checks out,
    scanning `chunk` positions at a time; `None` when there is none before `end`. Runs of
    zeros are skipped at memory speed (a 2 GB sparse file takes seconds, not minutes)."""
    pos = start
    while pos + HEADER <= end:
        stop = min(end - HEADER + 1, pos + chunk)
        if not _ZERO_HEADER_OK and not arr[pos:stop + HEADER - 1].any():
            pos = stop  # only zeros: no header starts here
            continue
        cand = _candidates(arr, pos, stop)
        if cand.size:
            hdr = rows(arr, cand, HEADER)
            crc = np.full(len(cand), _ZERO8, np.uint32)
            for j in range(8):
                crc ^= _HEADER_TABLES[j][hdr[:, j]]
            stored = np.ascontiguousarray(hdr[:, 8:]).view("<u4").ravel()
            hits = np.flatnonzero(mask(crc) == stored)
            if hits.size:
                return int(cand[hits[0]])
        pos = stop
    return None
