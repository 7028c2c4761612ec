"""Decoding `Event` payloads for `insight.curves.tfevents`: the template analysis behind the fast
path, and the protobuf path (tensorboard's own `event_pb2`) for everything else.

The fast path relies on how protobuf lays an Event out (fields in number order):
`09 <wall_time f64> [10 <step varint>] 2a <len> <Summary>`, the Summary holding one Value
(`tag`, then `simple_value` or a one-element `tensor`, then optional `metadata`). `analyze`
finds where the wall time, step and value bytes sit in one record; every record of the same
length that equals it everywhere else has, byte for byte, the same tag and metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["KIND_SCALAR", "KIND_TENSOR", "KIND_OTHER", "Template", "analyze", "step_lengths",
           "decode_event", "tensor_array", "MAX_TENSOR_VALUES"]

KIND_SCALAR = "scalar"  # simple_value, or a tensor tagged as scalars
KIND_TENSOR = "tensor"  # a one-element numeric tensor without plugin metadata (yet)
KIND_OTHER = "other"  # anything else: parsed with protobuf
_SCALAR_CLASS = 1  # SummaryMetadata.DATA_CLASS_SCALAR
# TensorProto dtypes readable from tensor_content (little-endian)
_CONTENT = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?",
            17: "<u2", 19: "<f2", 22: "<u4", 23: "<u8"}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """`(field, wire_type, value_start, value_end)` of the fields in `buf[start:end]`."""
    out = []
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, stop = _varint(buf, pos)
        elif wire == 1:
            stop = pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            stop = pos + n
        elif wire == 5:
            stop = pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((field, wire, pos, stop))
        pos = stop
    if pos != end:
        raise ValueError("field overruns its message")
    return out


@dataclass
class Template:
    """Where the varying bytes of one kind of scalar record sit."""

    payload: bytes
    tag: str
    kind: str
    plugin: str
    tag_end: int
    k: int  # bytes of the step varint (0: no step field, i.e. step 0)
    value_pos: int = -1
    value_dtype: str = "<f4"
    varying: np.ndarray | None = None
    base: np.ndarray | None = None
    const_mask: np.ndarray | None = None

    def finish(self) -> Template:
        width = np.dtype(self.value_dtype).itemsize
        self.varying = np.r_[np.arange(1, 9), np.arange(10, 10 + self.k),
                             np.arange(self.value_pos, self.value_pos + width)]
        self.base = np.frombuffer(self.payload, np.uint8)
        mask = np.full(len(self.payload), 0xFF, np.uint8)
        mask[self.varying] = 0
        self.const_mask = mask
        # the constant bytes compared 8 at a time: windows at 0, 8, ... and one ending at the
        # record's end (it may overlap the one before), each with its mask of constant bytes
        n = len(self.payload)
        starts = sorted({*range(0, n - 7, 8), n - 8}) if n >= 8 else []
        self._words = [(a, int(np.frombuffer(self.payload[a:a + 8], "<u8")[0]),
                        int(mask[a:a + 8].view("<u8")[0])) for a in starts]
        self._words = [w for w in self._words if w[2]]
        return self

    def matches(self, block: np.ndarray) -> np.ndarray:
        """Which rows of `block` (records of this length) equal the template outside its
        wall time, step and value bytes."""
        if len(self.payload) < 8:
            return ~(np.bitwise_xor(block, self.base) & self.const_mask).any(axis=1)
        bad = np.zeros(len(block), bool)
        for a, word, m in self._words:
            col = block[:, a:a + 8].view("<u8")[:, 0]  # a strided view: no copy
            bad |= (col ^ np.uint64(word)) & np.uint64(m) != 0
        return ~bad

    def decode(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`step, wall_time, value` of rows that match this template."""
        wall = block[:, 1:9].view("<f8")[:, 0].copy()
        step = np.zeros(len(block), np.uint64)
        for j in range(self.k):
            step |= (block[:, 10 + j] & np.uint8(0x7F)).astype(np.uint64) << np.uint64(7 * j)
        width = np.dtype(self.value_dtype).itemsize
        raw = block[:, self.value_pos:self.value_pos + width].view(self.value_dtype)[:, 0]
        value = raw.astype(np.float64)
        return step.view(np.int64), wall, value


def _plugin(payload: bytes, start: int, end: int) -> tuple[str, int]:
    from tensorboard.compat.proto.summary_pb2 import SummaryMetadata

    meta = SummaryMetadata.FromString(payload[start:end])
    return meta.plugin_data.plugin_name, int(meta.data_class)


def _shape_size(payload: bytes, start: int, end: int) -> int:
    size = 1
    for field, wire, a, b in _fields(payload, start, end):
        if field == 2 and wire == 2:  # dim
            for f2, w2, a2, _ in _fields(payload, a, b):
                if f2 == 1 and w2 == 0:
                    size *= _varint(payload, a2)[0]
        elif field == 3:  # unknown_rank
            return -1
    return size


def _tensor_value(payload: bytes, start: int, end: int) -> tuple[int, str] | None:
    """Position and dtype of a one-element numeric tensor's value, or `None`."""
    dtype, where = 0, []
    for field, wire, a, b in _fields(payload, start, end):
        if field == 1 and wire == 0:
            dtype = _varint(payload, a)[0]
        elif field == 2 and wire == 2:
            if _shape_size(payload, a, b) != 1:
                return None
        elif field == 4 and wire == 2:
            where.append((a, b, "content"))
        elif field == 5 and wire in (2, 5):
            where.append((a, b, "<f4"))
        elif field == 6 and wire in (1, 2):
            where.append((a, b, "<f8"))
        elif field != 3:  # version_number is harmless; any other value field is not
            return None
    if len(where) != 1:
        return None
    a, b, kind = where[0]
    kind = _CONTENT.get(dtype) if kind == "content" else kind
    if kind is None or kind == "?" or b - a != np.dtype(kind).itemsize:
        return None
    return a, kind


def analyze(payload: bytes, k: int) -> Template | None:
    """The template of one record if it has the common layout (`None` otherwise; a
    template of kind `KIND_OTHER` when it is a single value of another kind)."""
    try:
        fields = _fields(payload, 0, len(payload))
        want = [(1, 1, 1, 9)] + ([(2, 0, 10, 10 + k)] if k else [])
        if fields[:-1] != want or fields[-1][:2] != (5, 2) or fields[-1][3] != len(payload):
            return None
        values = _fields(payload, fields[-1][2], fields[-1][3])
        if len(values) != 1 or values[0][:2] != (1, 2):
            return None
        parts = {}
        for field, wire, a, b in _fields(payload, values[0][2], values[0][3]):
            if field in parts:
                return None
            parts[field] = (wire, a, b)
        if 1 not in parts:
            return None
        _, ta, tb = parts.pop(1)
        tag = payload[ta:tb].decode("utf-8", "replace")
        plugin, data_class = _plugin(payload, parts[9][1], parts[9][2]) if 9 in parts \
            else ("", 0)
        parts.pop(9, None)
        tpl = Template(payload, tag, KIND_OTHER, plugin, tb, k)
        if set(parts) == {2} and parts[2][0] == 5:  # simple_value
            tpl.kind, tpl.value_pos = KIND_SCALAR, parts[2][1]
            return tpl.finish()
        if set(parts) == {8} and parts[8][0] == 2:  # tensor
            found = _tensor_value(payload, parts[8][1], parts[8][2])
            scalar = plugin == "scalars" or data_class == _SCALAR_CLASS
            if found is not None and (scalar or not plugin):
                tpl.kind = KIND_SCALAR if scalar else KIND_TENSOR
                tpl.value_pos, tpl.value_dtype = found
                return tpl.finish()
        return tpl
    except (ValueError, IndexError):
        return None
    except Exception:  # noqa: BLE001 - a metadata blob protobuf refuses
        return None


def step_lengths(arr: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Per record: the byte length of its step varint (0: no step field), or -1 when the
    record does not start `09 <8 bytes> (10 <varint>)? 2a`."""
    k = np.full(len(starts), -1, np.int64)
    last = len(arr) - 1
    idx = np.flatnonzero(lens >= 12)
    idx = idx[arr[starts[idx]] == 0x09]
    b9 = arr[starts[idx] + 9]
    k[idx[b9 == 0x2A]] = 0
    cur = idx[b9 == 0x10]
    for j in range(10):
        if not cur.size:
            break
        b = arr[np.minimum(starts[cur] + 10 + j, last)]
        done = b < 0x80
        k[cur[done]] = j + 1
        cur = cur[~done]
    k[(k > 0) & (10 + k + 2 > lens)] = -1
    return k


MAX_TENSOR_VALUES = 1 << 24  # a summary tensor larger than this is not a scalar/histogram


def tensor_array(t) -> np.ndarray | None:
    """A numeric `TensorProto` as a numpy array (no TensorFlow), or `None` (also for shapes
    with negative dimensions or more than `MAX_TENSOR_VALUES` values: a 20-byte tensor that
    declares `[10**6, 10**6]` with one `float_val` would otherwise be broadcast to 8 TB)."""
    shape = [d.size for d in t.tensor_shape.dim]
    if any(n < 0 for n in shape):
        return None
    count = math.prod(shape)  # Python ints: no int64 wrap-around
    if count > MAX_TENSOR_VALUES:
        return None
    if t.tensor_content:
        code = _CONTENT.get(t.dtype)
        if code is None and t.dtype == 14:  # bfloat16
            bits = np.frombuffer(t.tensor_content, "<u2").astype(np.uint32) << 16
            flat = bits.view(np.float32)
        elif code is None:
            return None
        else:
            flat = np.frombuffer(t.tensor_content, code)
    else:
        if t.dtype in (1,):
            flat = np.asarray(t.float_val, np.float32)
        elif t.dtype == 2:
            flat = np.asarray(t.double_val, np.float64)
        elif t.dtype in (3, 4, 5, 6, 17):
            flat = np.asarray(t.int_val, np.int64)
        elif t.dtype in (9, 23):
            flat = np.asarray(t.int64_val, np.int64)
        elif t.dtype == 19:
            flat = np.asarray(t.half_val, np.uint16).view(np.float16)
        elif t.dtype == 14:
            flat = (np.asarray(t.half_val, np.uint32) << 16).astype(np.uint32).view(np.float32)
        elif t.dtype == 10:
            flat = np.asarray(t.bool_val, bool)
        else:
            return None
    if flat.size == count:
        return flat.reshape(shape)
    if flat.size == 1:
        return np.full(shape, flat[0])
    if flat.size == 0:
        return np.zeros(shape, flat.dtype)
    return None


def _legacy_buckets(h) -> np.ndarray:
    """A `HistogramProto` as `left, right, count` rows (TensorBoard's own conversion)."""
    limits = list(h.bucket_limit)
    if not limits:
        return np.zeros((0, 3))
    lefts = [h.min] + limits[:-1]
    rights = limits[:-1] + [h.max]
    return np.array([lefts, rights, list(h.bucket)[:len(limits)]], np.float64).T


def decode_event(payload: bytes, plugins: dict[str, str] | None = None) -> list[tuple]:
    """`(tag, kind, plugin, step, wall_time, value)` for each value of an event's summary:
    kind `"scalar"` (value a float), `"tensor"` (a one-element tensor whose tag has no plugin
    metadata yet) or `"histogram"` (value `(n, 3)` rows of left, right, count)."""
    from tensorboard.compat.proto.event_pb2 import Event

    ev = Event.FromString(payload)
    if not ev.HasField("summary"):
        return []
    plugins = plugins or {}
    out = []
    for v in ev.summary.value:
        meta = v.metadata if v.HasField("metadata") else None
        plugin = meta.plugin_data.plugin_name if meta is not None else ""
        plugin = plugin or plugins.get(v.tag, "")
        scalar_class = meta is not None and meta.data_class == _SCALAR_CLASS
        which = v.WhichOneof("value")
        head = (v.tag,)
        if which == "simple_value":
            out.append((*head, KIND_SCALAR, plugin, ev.step, ev.wall_time, float(v.simple_value)))
        elif which == "histo":
            out.append((*head, "histogram", plugin or "histograms", ev.step, ev.wall_time,
                        _legacy_buckets(v.histo)))
        elif which == "tensor":
            arr = tensor_array(v.tensor)
            if arr is None or arr.dtype == bool:
                continue
            if plugin == "histograms" and arr.ndim == 2 and arr.shape[1] == 3:
                out.append((*head, "histogram", plugin, ev.step, ev.wall_time,
                            arr.astype(np.float64)))
            elif arr.size == 1 and (plugin == "scalars" or scalar_class):
                out.append((*head, KIND_SCALAR, plugin, ev.step, ev.wall_time,
                            float(arr.reshape(-1)[0])))
            elif arr.size == 1 and not plugin:
                out.append((*head, KIND_TENSOR, "", ev.step, ev.wall_time,
                            float(arr.reshape(-1)[0])))
    return out
