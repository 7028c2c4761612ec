"""Read TensorBoard event files fast, without TensorFlow, also while they are being written.

Scalars come in two encodings: TF2's tensor summaries (`tf.summary.scalar`, Keras'
TensorBoard callback: a one-element tensor, `plugin_name == "scalars"`) and the legacy
`simple_value` (PyTorch's SummaryWriter, tensorboardX). Histograms come as TF2 tensors
(`plugin_name == "histograms"`, rows of `left, right, count`) or legacy `HistogramProto`.
All are read with the protobufs the tensorboard package ships.

Speed: event files are millions of near-identical small records. Records of one length
whose bytes equal a template record's except at the wall time, step and value positions
are decoded together with numpy, their payload CRCs checked by CRC linearity
(`insight.curves._tfrecord.crc_rows`); every other record (histograms, graphs, the odd one out) is
parsed with protobuf. Every record's length CRC and payload CRC are verified.

Damage: a truncated last record (a run still training) ends the read cleanly and is read on
the next call once complete. A record whose payload CRC fails is skipped and counted; a
corrupt length skips forward to the next valid record header. Nothing in a file raises.

Example:

>>> from insight.curves.tfevents import EventFileReader
>>> reader = EventFileReader("logs/train/events.out.tfevents.1.v2")  # doctest: +SKIP
>>> reader.read()  # points read; call again to read only what was appended  # doctest: +SKIP
42
>>> reader.scalars()["epoch_loss"].value[:3]  # doctest: +SKIP
array([2.04, 1.10, 0.64])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insight.curves import _tfrecord as rec
from insight.curves._event_decode import (
    KIND_OTHER,
    KIND_SCALAR,
    Template,
    analyze,
    decode_event,
    step_lengths,
)
from insight.curves.sources import LocalFile, Source

__all__ = ["EventFileReader", "Series", "Histogram", "is_event_file", "READ_CHUNK"]

READ_CHUNK = 256 << 20  # bytes read at once; a longer record is read whole when it is there
MAX_NOTES = 20  # damage notes kept per file
_EMPTY_CRC = rec.masked_crc32c(b"")


def is_event_file(path: Path) -> bool:
    """Whether `path` is named like an event file (`events.out.tfevents.*`)."""
    return "tfevents" in path.name and path.is_file()


@dataclass
class Series:
    """One tag's scalar points, in file order."""

    step: np.ndarray
    wall_time: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.step)


@dataclass
class Histogram:
    """One histogram event: `buckets` rows are `left, right, count`."""

    step: int
    wall_time: float
    buckets: np.ndarray


@dataclass
class _Chunks:
    steps: list = field(default_factory=list)
    walls: list = field(default_factory=list)
    values: list = field(default_factory=list)
    size: int = 0

    def add(self, step, wall, value) -> None:
        self.steps.append(np.asarray(step, np.int64))
        self.walls.append(np.asarray(wall, np.float64))
        self.values.append(np.asarray(value, np.float64))
        self.size += len(self.steps[-1])

    def series(self) -> Series:
        if len(self.steps) > 1:  # compact, so the next call is free
            self.steps = [np.concatenate(self.steps)]
            self.walls = [np.concatenate(self.walls)]
            self.values = [np.concatenate(self.values)]
        if not self.steps:
            return Series(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        return Series(self.steps[0], self.walls[0], self.values[0])


class EventFileReader:
    """Incremental reader of one event file: each `read()` parses only the bytes appended
    since the last one (a file that shrank is read again from the start).

    Args:
        path: a local file, or a `Source` (a remote object's ranges:
            `insight.curves.sources`).

    Attributes:
        path: the file (a URL for a remote one).
        source: where the bytes come from.
        offset: bytes consumed so far (complete records, or damage skipped).
        records: records read.
        damaged: records skipped because a CRC failed or they did not parse.
        notes: what was skipped and where (at most `MAX_NOTES`).
        pending: bytes of an incomplete last record, waiting for the writer.
    """

    def __init__(self, path: str | Path | Source) -> None:
        self.source = path if isinstance(path, Source) else LocalFile(path)
        self.path = self.source.path
        self._reset()

    def _reset(self) -> None:
        self.offset = 0
        self.records = 0
        self.damaged = 0
        self.notes: list[str] = []
        self.pending = 0
        self._resyncing = False
        self._plugins: dict[str, str] = {}  # tag -> plugin name, from any event's metadata
        self._scalars: dict[str, _Chunks] = {}
        self._histograms: dict[str, list[Histogram]] = {}
        self._deferred: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    # -- public ---------------------------------------------------------------------------

    def read(self) -> int:
        """Read what was appended since the last call; returns the number of new points.

        Never raises for file contents; an unreadable local file (permissions, vanished)
        counts as no new data and is noted.

        Raises:
            StorageError: a remote source could not be read; nothing is lost: the offset
                stays where the last complete record ended, and the next call resumes there.
        """
        try:
            size = self.source.size()
        except OSError as exc:
            self._note(f"cannot read the file ({exc.strerror})")
            return 0
        if size < self.offset:  # rewritten from scratch
            self._reset()
        before = self.points()
        while size > self.offset:
            want = min(READ_CHUNK, size - self.offset)
            try:
                if self._resyncing:
                    self.offset = self.source.data_after(self.offset, size)
                data = self.source.read(self.offset, want)
                needed = int.from_bytes(data[:8], "little") + 16 if len(data) >= 8 else 0
                if want < needed <= size - self.offset:  # one record longer than a chunk
                    want = needed
                    data = self.source.read(self.offset, want)
            except OSError as exc:  # a local file; a remote one raises StorageError
                self._note(f"cannot read the file ({exc.strerror})")
                break
            consumed = self._parse(data, self.offset)
            self.offset += consumed
            short = len(data) < want
            del data  # one chunk held at a time: the next read is not beside this one
            if consumed == 0 or self.offset >= size or short:
                break
        return self.points() - before

    def scalars(self) -> dict[str, Series]:
        """Scalar points by tag, in file order."""
        return {tag: c.series() for tag, c in self._scalars.items() if c.size}

    def histograms(self) -> dict[str, list[Histogram]]:
        """Histogram events by tag, in file order."""
        return {tag: list(h) for tag, h in self._histograms.items() if h}

    def points(self) -> int:
        """Scalar points plus histogram events read so far."""
        return (sum(c.size for c in self._scalars.values())
                + sum(len(h) for h in self._histograms.values()))

    # -- parsing --------------------------------------------------------------------------

    def _note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)

    def _parse(self, data: bytes, base: int) -> int:
        """Parse complete records of `data` (file bytes from `base`); returns bytes consumed."""
        arr = np.frombuffer(data, np.uint8)
        end = len(data)
        pos = 0
        if self._resyncing:
            found = rec.resync(arr, 0, end)
            if found is None:
                return max(0, end - rec.HEADER + 1)
            self._resyncing, pos = False, found
        offs_all, lens_all = [], []
        while True:
            offs, lens, stop = rec.frame(data, arr, pos, end)
            # `frame` checked every length CRC but leaves a failing record last
            bad = np.flatnonzero(~rec.header_ok(arr, offs[-1:], lens[-1:])) + len(offs) - 1
            if bad.size:  # a corrupt length: everything framed after it is garbage
                first = int(bad[0])
                offs_all.append(offs[:first])
                lens_all.append(lens[:first])
                stop = int(offs[first])
                corrupt = True
            else:
                offs_all.append(offs)
                lens_all.append(lens)
                corrupt = stop + rec.HEADER <= end and not rec.header_ok(
                    arr, np.array([stop]), np.array([int.from_bytes(data[stop:stop + 8],
                                                                    "little")]))[0]
            if not corrupt:
                break
            self.damaged += 1
            found = rec.resync(arr, stop + 1, end)
            if found is None:
                self._note(f"byte {base + stop}: corrupt record header; no valid record "
                           "after it (not an event file, or damaged to the end)")
                self._resyncing = True
                stop = max(stop + 1, end - rec.HEADER + 1)
                break
            self._note(f"byte {base + stop}: corrupt record header; skipped "
                       f"{found - stop} bytes to the next valid record")
            pos = found
        offs = np.concatenate(offs_all)
        lens = np.concatenate(lens_all)
        self.pending = 0 if self._resyncing else end - stop
        self._decode(data, arr, offs, lens, base)
        return stop

    def _decode(self, data: bytes, arr: np.ndarray, offs: np.ndarray, lens: np.ndarray,
                base: int) -> None:
        self.records += len(offs)
        starts = offs + rec.HEADER
        k = step_lengths(arr, starts, lens)  # -1: not the common layout
        fast = np.flatnonzero(k >= 0)
        slow: list[np.ndarray] = [np.flatnonzero(k < 0)]
        found: list[tuple] = []  # (tag, kind, plugin, record index, step, wall, value)
        if fast.size:
            uniq, codes = _group_codes(lens[fast] * 11 + k[fast])
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
            for g in range(len(uniq)):
                members = fast[order[bounds[g]:bounds[g + 1]]]
                self._templates(data, arr, starts, int(lens[members[0]]),
                                int(k[members[0]]), members, found, slow)
        slow_idx = self._skip_empty(arr, starts, lens, np.sort(np.concatenate(slow)), base)
        memo: dict[bytes, list | str] = {}
        for i in slow_idx:
            self._slow(data, int(starts[i]), int(lens[i]), int(i), base, found, memo)
        self._collect(found)

    def _skip_empty(self, arr: np.ndarray, starts: np.ndarray, lens: np.ndarray,
                    idx: np.ndarray, base: int) -> np.ndarray:
        """`idx` without its zero-length records (an empty Event carries nothing), whose
        CRCs are checked at once: a file of a million of them is read in milliseconds."""
        empty = lens[idx] == 0
        if not empty.any():
            return idx
        bad = idx[empty][rec.u32_at(arr, starts[idx[empty]]) != _EMPTY_CRC]
        if bad.size:
            self.damaged += int(bad.size)
            self._note(f"byte {base + int(starts[bad[0]]) - rec.HEADER}: payload CRC mismatch; "
                       f"{bad.size} empty record(s) skipped")
        return idx[~empty]

    def _templates(self, data, arr, starts, length, k, members, found, slow) -> None:
        """Decode the records of one (length, step-varint-length) group by templates."""
        pending = members
        rounds = 0
        while pending.size:
            rounds += 1
            first = int(starts[pending[0]])
            tpl = analyze(data[first:first + length], k)
            if tpl is None or rounds > 64:  # another layout (several values per event...):
                slow.append(pending)  # the whole rest of the group goes to protobuf
                return
            block = rec.rows(arr, starts[pending], length)
            if tpl.kind == KIND_OTHER:
                # the template's records (same bytes up to its tag's end) go to protobuf
                same = _same(block, data[first:first + length], tpl, k)
                slow.append(pending[same])
                pending = pending[~same]
                continue
            match = tpl.matches(block)
            if match.all():  # the usual case: no copies
                idx, pending = pending, pending[:0]
            else:
                block, idx, pending = block[match], pending[match], pending[~match]
            crc = rec.crc_rows(block, tpl.payload, tpl.varying)
            stored = rec.u32_at(arr, starts[idx] + length)
            good = crc == stored
            if not good.all():
                for i in idx[~good][:MAX_NOTES]:
                    self._note(f"byte {int(starts[i]) - rec.HEADER}: payload CRC mismatch; "
                               "record skipped")
                self.damaged += int((~good).sum())
                block, idx = block[good], idx[good]
            step, wall, value = tpl.decode(block)
            found.append((tpl.tag, tpl.kind, tpl.plugin, idx, step, wall, value))

    def _slow(self, data: bytes, start: int, length: int, index: int, base: int,
              found: list, memo: dict) -> None:
        # Short records that repeat byte for byte (a million zero-length records, the same
        # file_version event) are checked and parsed once per read: protobuf costs ~20 µs
        # a record, which a hostile file multiplies by millions.
        key = data[start:start + length + 4] if length <= 256 else None
        decoded = memo.get(key) if key is not None else None
        if decoded is None:
            decoded = self._check_decode(data[start:start + length],
                                         int.from_bytes(data[start + length:start + length + 4],
                                                        "little"))
            if key is not None and len(memo) < 100_000:
                memo[key] = decoded
        if isinstance(decoded, str):
            self.damaged += 1
            self._note(f"byte {base + start - rec.HEADER}: {decoded}")
            return
        for tag, kind, plugin, step, wall, value in decoded:
            if plugin:
                self._plugins.setdefault(tag, plugin)
            if kind == "histogram":
                self._histograms.setdefault(tag, []).append(Histogram(step, wall, value))
            elif kind in (KIND_SCALAR, "tensor"):
                one = np.array([index])
                found.append((tag, kind, plugin, one, np.array([step]), np.array([wall]),
                              np.array([value], np.float64)))

    def _check_decode(self, payload: bytes, stored: int) -> list | str:
        """The decoded values of one record, or what is wrong with it."""
        if rec.masked_crc32c(payload) != stored:
            return "payload CRC mismatch; record skipped"
        try:
            return decode_event(payload, self._plugins)
        except Exception as exc:  # noqa: BLE001 - any protobuf failure is damage
            return f"not an Event ({type(exc).__name__})"

    def _collect(self, found: list) -> None:
        """File the decoded points by tag; tensors whose tag has shown no plugin metadata
        yet wait in `_deferred` (they then sort before this read's points)."""
        for tag, _, plugin, *_ in found:
            if plugin:
                self._plugins.setdefault(tag, plugin)
        waiting, self._deferred = self._deferred, []
        found += [(tag, "tensor", "", np.full(len(step), -1), step, wall, value)
                  for tag, step, wall, value in waiting]
        by_tag: dict[str, list[tuple]] = {}
        for tag, kind, _, idx, step, wall, value in found:
            plugin = self._plugins.get(tag, "")
            if kind == KIND_SCALAR or plugin == "scalars":
                by_tag.setdefault(tag, []).append((idx, step, wall, value))
            elif kind == "tensor" and not plugin and len(self._deferred) < 10_000:
                self._deferred.append((tag, step, wall, value))
        for tag, parts in by_tag.items():
            if len(parts) > 1:
                parts.sort(key=lambda p: int(p[0][0]) if len(p[0]) else -2)
                idx = np.concatenate([p[0] for p in parts])
                cols = [np.concatenate([p[j] for p in parts]) for j in (1, 2, 3)]
                if (np.diff(idx) < 0).any():  # groups interleave (else already file order)
                    order = np.argsort(idx, kind="stable")
                    cols = [c[order] for c in cols]
            else:
                cols = parts[0][1:]
            self._scalars.setdefault(tag, _Chunks()).add(*cols)


def _group_codes(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(key, return_inverse=True)` without its sort when the keys span a small
    range (record lengths of one file's scalars do), 16-bit codes when there are few groups
    (numpy's stable sort of them is then a radix sort)."""
    lo, hi = int(key.min()), int(key.max())
    if hi - lo < 1 << 20:
        present = np.zeros(hi - lo + 1, bool)
        present[key - lo] = True
        uniq = np.flatnonzero(present)
        lut = np.cumsum(present, dtype=np.int32) - 1
        codes = lut[key - lo]
        uniq += lo
    else:
        uniq, codes = np.unique(key, return_inverse=True)
    return uniq, codes.astype(np.uint16) if len(uniq) < 65536 else codes


def _same(block: np.ndarray, payload: bytes, tpl: Template, k: int) -> np.ndarray:
    """Rows that equal the template up to its tag's end (outside wall time and step)."""
    if tpl.tag_end <= 0:
        out = np.zeros(len(block), bool)
        out[0] = True
        return out
    lo = 10 + k if k else 9
    head = np.frombuffer(payload, np.uint8)[lo:tpl.tag_end]
    return (block[:, lo:tpl.tag_end] == head).all(axis=1)
