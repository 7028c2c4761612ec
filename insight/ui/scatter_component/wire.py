"""The scatter component's wire format: a plotly figure as one binary message whose arrays
travel once.

A figure's arrays become blobs named by their content (a hash), so a blob the browser
already holds is named, not sent again. The point clouds of the projector repeat across
messages in another way too: a colour change splits the same points into other traces, so
every trace's `x`, `y` (`z`) and `customdata` are new arrays made of the same values. A
trace whose `customdata` starts with the point index (the projector's hover convention) is
therefore sent as a gather: the whole cloud's arrays once (the base), and per trace which
points it holds; traces that split the points between them share one byte per point saying
whose it is. A colour change then sends about one byte per point, not the figure.

Layout of a message: a little-endian uint32 header length, the header (UTF-8 JSON), zero
padding to 8 bytes, then the new blobs, each 8-byte aligned. In the header's figure an array
is `{"$blob": id}` (`"shape"` added for 2-D arrays) and a gathered one
`{"$gather": base, "idx": {"$codes": id, "code": i}}` or `{"$gather": base, "idx": {"$blob": id}}`.

Example:

>>> import numpy as np
>>> fig = {"data": [{"type": "scattergl", "x": np.arange(3.0)}], "layout": {}}
>>> message, held = pack(fig, held=frozenset())
>>> unpack(message, {})["data"][0]["x"].tolist()
[0.0, 1.0, 2.0]
>>> again, _ = pack(fig, held=held)
>>> len(again) < len(message)  # the browser holds `x`: only its name travels
True
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from plotly.utils import PlotlyJSONEncoder

__all__ = ["pack", "unpack", "MAX_POINT_INDEX"]

# Point indices that make a gather: the float32 hover index is exact up to 2**24.
MAX_POINT_INDEX = 1 << 24
_GATHERED = ("x", "y", "z", "customdata")  # a trace's per-point arrays
_NONE = 255  # in the codes: a point no partition trace holds
_DTYPES = {"float64": "f8", "float32": "f4", "int32": "i4", "uint32": "u4", "int16": "i2",
           "uint16": "u2", "int8": "i1", "uint8": "u1"}
_NUMPY = {v: np.dtype(k) for k, v in _DTYPES.items()}


class _Blobs:
    """The message's blobs, by content: each named once, kept only where not held."""

    def __init__(self, held: frozenset[str]) -> None:
        self.held = held
        self.used: list[str] = []
        self.new: dict[str, tuple[str, bytes]] = {}

    def add(self, kind: str, payload: bytes) -> str:
        name = hashlib.blake2b(payload, digest_size=12, person=kind.encode()[:16]).hexdigest()
        if name not in self.used:
            self.used.append(name)
        if name not in self.held and name not in self.new:
            self.new[name] = (kind, payload)
        return name

    def array(self, value: np.ndarray) -> dict[str, Any]:
        """`{"$blob": id}` for a numeric array; text and objects travel as a JSON blob."""
        value = np.asarray(value)
        if value.dtype.kind == "i" and value.dtype.itemsize == 8:
            small = value.size == 0 or (value.min() >= -2**31 and value.max() < 2**31)
            value = value.astype(np.int32 if small else np.float64)
        elif value.dtype.kind == "u" and value.dtype.itemsize == 8:
            value = value.astype(np.uint32 if value.size == 0 or value.max() < 2**32
                                 else np.float64)
        kind = _DTYPES.get(value.dtype.name)
        if kind is None:  # strings, objects, booleans: as plotly would write them
            payload = json.dumps(value.tolist(), cls=PlotlyJSONEncoder).encode()
            ref: dict[str, Any] = {"$blob": self.add("json", payload)}
        else:
            ref = {"$blob": self.add(kind, np.ascontiguousarray(value).tobytes())}
        if value.ndim == 2:
            ref["shape"] = list(value.shape)
        return ref


def _point_index(trace: Mapping[str, Any]) -> np.ndarray | None:
    """The points a trace holds, from its `customdata`'s first column; `None` if it has none."""
    custom = trace.get("customdata")
    if not isinstance(custom, np.ndarray) or custom.ndim != 2 or not len(custom):
        return None
    try:
        first = custom[:, 0].astype(np.float64)
    except (TypeError, ValueError):
        return None
    idx = first.astype(np.int64)
    if not np.array_equal(idx, first) or idx.min() < 0 or idx.max() >= MAX_POINT_INDEX:
        return None
    return idx


def _bases(traces: list[dict[str, Any]], indices: list[np.ndarray | None]
           ) -> dict[str, np.ndarray]:
    """The whole cloud's arrays, one row per point, for each per-point key that every
    indexed trace has and that agrees between traces."""
    rows = [i for i, idx in enumerate(indices) if idx is not None]
    n = max(int(indices[i].max()) for i in rows) + 1
    bases = {}
    for key in _GATHERED:
        parts = [traces[i].get(key) for i in rows]
        if not all(isinstance(p, np.ndarray) and len(p) == len(indices[i])
                   for p, i in zip(parts, rows, strict=True)):
            continue
        first = parts[0]
        if any(p.dtype != first.dtype or p.shape[1:] != first.shape[1:] for p in parts):
            continue
        base = np.zeros((n, *first.shape[1:]), dtype=first.dtype)
        for p, i in zip(parts, rows, strict=True):
            base[indices[i]] = p
        if all(np.array_equal(base[indices[i]], p) for p, i in zip(parts, rows, strict=True)):
            bases[key] = base
    return bases


def _partition(indices: list[np.ndarray | None], n: int) -> tuple[np.ndarray, dict[int, int]]:
    """One byte per point naming the trace that holds it, for the traces that hold their
    points in ascending order and share none (up to 254 of them); `{trace: code}`."""
    codes = np.full(n, _NONE, dtype=np.uint8)
    members: dict[int, int] = {}
    for i, idx in enumerate(indices):
        if idx is None or len(members) >= _NONE - 1 or len(idx) == 0:
            continue
        if np.any(np.diff(idx) <= 0) or np.any(codes[idx] != _NONE):
            continue
        codes[idx] = len(members)
        members[i] = len(members)
    return codes, members


def _arrays(value: Any) -> Any:
    """`value` with plotly's base64 typed arrays (`{"dtype", "bdata", "shape"}`, what
    `to_plotly_json` writes for numeric arrays) back as numpy arrays."""
    if isinstance(value, Mapping):
        if isinstance(value.get("bdata"), str) and value.get("dtype") in _NUMPY:
            array = np.frombuffer(base64.b64decode(value["bdata"]), _NUMPY[value["dtype"]])
            shape = value.get("shape")
            if shape:
                array = array.reshape([int(s) for s in str(shape).split(",")])
            return array
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_arrays(v) for v in value]
    return value


def _encode(value: Any, blobs: _Blobs) -> Any:
    if isinstance(value, np.ndarray):
        return blobs.array(value)
    if isinstance(value, Mapping):
        return {k: _encode(v, blobs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, blobs) for v in value]
    return value


def pack(figure: Mapping[str, Any], *, held: Iterable[str],
         extra: Mapping[str, Any] | None = None) -> tuple[bytes, frozenset[str]]:
    """One message for `figure` (`fig.to_plotly_json()`: numpy arrays stay arrays).

    Args:
        figure: `data` (traces) and `layout`.
        held: the blobs the browser holds (what the last message named); only the others
            are sent.
        extra: more header fields (the component's settings). Defaults to none.

    Returns:
        The message, and the blobs it names: what the browser holds once it has drawn it.
    """
    blobs = _Blobs(frozenset(held))
    traces = [_arrays(t) for t in figure.get("data", ())]
    indices = [_point_index(t) for t in traces]
    data: list[Any] = []
    bases: dict[str, np.ndarray] = {}
    base_refs: dict[str, dict[str, Any]] = {}
    if any(idx is not None for idx in indices):
        bases = _bases(traces, indices)
    if bases:
        n = len(next(iter(bases.values())))
        codes, members = _partition(indices, n)
        base_refs = {k: blobs.array(v) for k, v in bases.items()}
        codes_ref = blobs.add("u1", codes.tobytes()) if members else None
        for i, trace in enumerate(traces):
            if indices[i] is None:
                data.append(_encode(trace, blobs))
                continue
            idx = ({"$codes": codes_ref, "code": members[i]} if i in members
                   else blobs.array(indices[i].astype(np.int32)))
            rest = _encode({k: v for k, v in trace.items() if k not in bases}, blobs)
            data.append({**rest, **{k: {"$gather": base_refs[k], "idx": idx} for k in bases}})
    else:
        data = [_encode(t, blobs) for t in traces]
    header = {**(extra or {}), "figure": {"data": data, "layout": _encode(
        _arrays(figure.get("layout", {})), blobs)}}
    header["base"] = hashlib.blake2b("".join(ref["$blob"] for ref in base_refs.values())
                                     .encode(), digest_size=8).hexdigest() if bases else ""
    blob_table, body, offset = [], [], 0
    for name, (kind, payload) in blobs.new.items():
        blob_table.append({"id": name, "dtype": kind, "offset": offset, "nbytes": len(payload)})
        pad = -len(payload) % 8
        body += [payload, b"\0" * pad]
        offset += len(payload) + pad
    header["blobs"] = blob_table
    header["uses"] = blobs.used
    # The message's name: what it draws (blobs are named by content, so a figure sent again
    # keeps its name whatever was held).
    header["msg"] = hashlib.blake2b(json.dumps({**header, "blobs": []}, cls=PlotlyJSONEncoder)
                                    .encode(), digest_size=8).hexdigest()
    text = json.dumps(header, cls=PlotlyJSONEncoder, separators=(",", ":")).encode()
    text += b" " * (-(4 + len(text)) % 8)
    return struct.pack("<I", len(text)) + text + b"".join(body), frozenset(blobs.used)


def unpack(message: bytes, cache: dict[str, Any]) -> dict[str, Any]:
    """The figure a message carries, with its arrays (the browser's decoding, in Python: for
    tests). `cache` holds the blobs of earlier messages and receives this one's."""
    size = struct.unpack_from("<I", message)[0]
    header = json.loads(message[4:4 + size])
    start = 4 + size
    for blob in header["blobs"]:
        raw = message[start + blob["offset"]:start + blob["offset"] + blob["nbytes"]]
        kind = blob["dtype"]
        cache[blob["id"]] = (json.loads(raw) if kind == "json"
                             else np.frombuffer(raw, dtype=_NUMPY[kind]))
    missing = [u for u in header["uses"] if u not in cache]
    if missing:
        raise KeyError(f"blobs neither sent nor held: {missing}")

    def array(ref: dict[str, Any]) -> np.ndarray:
        value = np.asarray(cache[ref["$blob"]], dtype=object if isinstance(
            cache[ref["$blob"]], list) else None)
        return value.reshape(ref["shape"]) if "shape" in ref else value

    def decode(value: Any) -> Any:
        if isinstance(value, dict) and "$blob" in value:
            return array(value)
        if isinstance(value, dict) and "$gather" in value:
            idx = value["idx"]
            rows = (np.flatnonzero(cache[idx["$codes"]] == idx["code"]) if "$codes" in idx
                    else array(idx))
            return array(value["$gather"])[rows]
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return {"data": decode(header["figure"]["data"]),
            "layout": decode(header["figure"]["layout"]), **{
                k: v for k, v in header.items() if k not in ("figure", "blobs")}}
