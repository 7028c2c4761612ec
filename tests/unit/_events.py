"""Hand-made event files for the reader tests: exact bytes, any encoding, any damage."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

from insight.curves._tfrecord import masked_crc32c


def record(payload: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, payload, its masked CRC."""
    head = struct.pack("<Q", len(payload))
    return (head + struct.pack("<I", masked_crc32c(head)) + payload
            + struct.pack("<I", masked_crc32c(payload)))


def scalar(tag: str, step: int, value: float, *, wall: float | None = None,
           encoding: str = "content", metadata: bool = True) -> bytes:
    """A serialized Event holding one scalar: `encoding` is "content" (TF2 tensor_content
    float32), "float_val", "double_val" or "simple" (legacy simple_value)."""
    ev = event_pb2.Event(wall_time=1_700_000_000.0 + step if wall is None else wall, step=step)
    v = ev.summary.value.add(tag=tag)
    if encoding == "simple":
        v.simple_value = value
    else:
        t = tensor_pb2.TensorProto(tensor_shape=tensor_shape_pb2.TensorShapeProto())
        if encoding == "content":
            t.dtype, t.tensor_content = 1, np.float32(value).tobytes()
        elif encoding == "float_val":
            t.dtype = 1
            t.float_val.append(value)
        else:
            t.dtype = 2
            t.double_val.append(value)
        v.tensor.CopyFrom(t)
        if metadata:
            v.metadata.plugin_data.plugin_name = "scalars"
    return ev.SerializeToString()


def file_version() -> bytes:
    return event_pb2.Event(wall_time=1_700_000_000.0, file_version="brain.Event:2") \
        .SerializeToString()


def legacy_histogram(tag: str, step: int, values: np.ndarray) -> bytes:
    counts, edges = np.histogram(values, bins=10)
    h = summary_pb2.HistogramProto(min=float(values.min()), max=float(values.max()),
                                   num=len(values), sum=float(values.sum()),
                                   sum_squares=float((values ** 2).sum()),
                                   bucket_limit=edges[1:].tolist(), bucket=counts.tolist())
    ev = event_pb2.Event(wall_time=1_700_000_000.0, step=step)
    ev.summary.value.add(tag=tag, histo=h)
    return ev.SerializeToString()


def tensor_histogram(tag: str, step: int, buckets: np.ndarray) -> bytes:
    """A TF2 histogram (tf.summary.histogram's layout): a `(k, 3)` float64 tensor of `left,
    right, count` rows, tagged with the histograms plugin."""
    rows = np.asarray(buckets, np.float64)
    shape = tensor_shape_pb2.TensorShapeProto()
    for n in rows.shape:
        shape.dim.add(size=n)
    t = tensor_pb2.TensorProto(dtype=2, tensor_shape=shape, tensor_content=rows.tobytes())
    ev = event_pb2.Event(wall_time=1_700_000_000.0 + step, step=step)
    v = ev.summary.value.add(tag=tag)
    v.tensor.CopyFrom(t)
    v.metadata.plugin_data.plugin_name = "histograms"
    return ev.SerializeToString()


def merged(step: int, values: dict[str, float]) -> bytes:
    """A TF1 merged summary: one event holding several `simple_value`s."""
    ev = event_pb2.Event(wall_time=1_700_000_000.0 + step, step=step)
    for tag, value in values.items():
        ev.summary.value.add(tag=tag, simple_value=value)
    return ev.SerializeToString()


def flip(data: bytes, payloads: list[bytes], index: int, offset: int) -> bytes:
    """`data` (the records of `payloads`) with one bit flipped at `offset` bytes into the
    payload of record `index` (negative offsets count from the payload's end)."""
    start = len(b"".join(record(p) for p in payloads[:index])) + 12
    at = start + (offset % len(payloads[index]))
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def write(path: Path, payloads: list[bytes]) -> bytes:
    """Write the records; returns the file's bytes."""
    data = b"".join(record(p) for p in payloads)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data
