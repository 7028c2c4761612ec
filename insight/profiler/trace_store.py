"""A profile's timeline straight from xprof's protobuf, and stored as Parquet.

xprof's trace viewer builds its JSON in Python, one `json.dumps` per event, and reading it back
is a `json.loads` of as much again: for a long profile that is most of a minute and gigabytes
of dicts. `trace_from_proto` reads the `Trace` protobuf xprof's C++ side produces before that
step (the same events: `xprof.convert.trace_events_json` is what turns it into the JSON) into
the `insight.profiler.tables.Trace` `trace_events` would give. `save_trace`/`load_trace` keep
that table on disk as Parquet (strings dictionary-encoded), so another process opens the
timeline in a second or two; the layers of a model are attributed when it is read.

Example:

>>> from xprof.protobuf import trace_events_old_pb2  # doctest: +SKIP
>>> proto = trace_events_old_pb2.Trace()  # doctest: +SKIP
>>> trace_from_proto(proto.SerializeToString()).notes  # doctest: +SKIP
['The trace holds no complete events.']
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.profiler.tables import (
    Trace,
    build_trace,
    kernel_threads,
    layer_of,
    thread_labels,
    trace_events,
)

__all__ = ["trace_from_proto", "save_trace", "load_trace", "proto_to_json"]

_STRINGS = ("thread", "name", "op", "layer", "phase", "hlo_module")
_VERSION = 1


def _parse(raw: bytes) -> Any:
    from xprof.protobuf import trace_events_old_pb2

    proto = trace_events_old_pb2.Trace()
    proto.ParseFromString(raw)
    return proto


def _meta(proto: Any) -> list[dict[str, Any]]:
    """The process and thread names, as the JSON's `"ph": "M"` events."""
    out: list[dict[str, Any]] = []
    for did, device in sorted(proto.devices.items()):
        if device.name:
            out.append({"ph": "M", "pid": did, "name": "process_name",
                        "args": {"name": device.name}})
        for rid, resource in sorted(device.resources.items()):
            if resource.name:
                out.append({"ph": "M", "pid": did, "tid": rid, "name": "thread_name",
                            "args": {"name": resource.name}})
    return out


def proto_to_json(raw: bytes) -> dict[str, Any]:
    """The trace viewer's JSON (what `xprof`'s `trace_viewer` tool returns, parsed) from the
    protobuf: xprof's own converter, for callers that want the JSON itself."""
    from xprof.convert import raw_to_tool_data

    return json.loads(raw_to_tool_data.process_raw_trace(raw))


def trace_from_proto(raw: bytes, layers: Iterable[str] = (), *, max_lanes: int = 8) -> Trace:
    """The `Trace` of xprof's trace protobuf (`trace_events` of its JSON, without the JSON).

    Args:
        raw: the serialized `xprof.Trace` (trace_events_old.proto).
        layers: the model's layer names. Defaults to `()`.
        max_lanes: nesting depths shown per thread. Defaults to `8`.
    """
    proto = _parse(raw)
    meta = _meta(proto)
    labels, kernels = thread_labels(meta), kernel_threads(meta)
    events = proto.trace_events
    n = len(events)
    pid = np.empty(n, np.int64)
    tid = np.empty(n, np.int64)
    ts = np.empty(n, np.float64)
    dur = np.empty(n, np.float64)
    names: list[str] = []
    op: list[str] = []
    module: list[str] = []
    step: list[str | None] = []
    for i, e in enumerate(events):  # one pass, plain attribute reads (upb, in C)
        pid[i], tid[i], ts[i], dur[i] = e.device_id, e.resource_id, e.timestamp_ps, \
            e.duration_ps
        names.append(e.name)
        a = e.args
        if a:
            op.append(a.get("long_name") or a.get("hlo_op") or "")
            module.append(a.get("hlo_module", ""))
            step.append(a.get("step_num"))
        else:
            op.append("")
            module.append("")
            step.append(None)
    del proto, events
    names_a = np.array(names, dtype=object)
    # the JSON drops nothing here; trace_events keeps complete ("X") events not named "end: "
    keep = (dur > 0) & ~pd.Series(names_a).str.startswith("end: ").to_numpy(dtype=bool)
    if not keep.any():
        return trace_events({"traceEvents": meta}, layers, max_lanes=max_lanes)
    key = pid[keep] << 32 | tid[keep]
    uniq, codes = np.unique(key, return_inverse=True)
    pairs = [(int(k >> 32), int(k & 0xFFFFFFFF)) for k in uniq]
    thread = np.array([labels.get(p, f"{p[0]}/{p[1]}") for p in pairs], dtype=object)[codes]
    kernel = np.array([p in kernels for p in pairs], dtype=bool)[codes]
    ev = pd.DataFrame({"thread": thread, "ts": ts[keep] / 1e6, "dur": dur[keep] / 1e6,
                       "name": names_a[keep],
                       "op": np.array(op, dtype=object)[keep],
                       "hlo_module": np.array(module, dtype=object)[keep],
                       "step_num": np.array(step, dtype=object)[keep], "kernel": kernel})
    return build_trace(ev, layers, max_lanes)


def save_trace(path: Path, trace: Trace) -> None:
    """Write `trace` to `path` as Parquet (its other fields in the file's metadata). Write a
    trace without layers (`trace_from_proto(raw)`): `load_trace` attributes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ev = trace.events.copy()
    for col in _STRINGS:
        ev[col] = pd.Categorical(ev[col].astype(str))  # a few distinct strings each
    table = pa.Table.from_pandas(ev, preserve_index=False)
    meta = {"version": _VERSION, "threads": trace.threads,
            "rows": [list(r) for r in trace.rows], "span": list(trace.span),
            "max_lanes": trace.max_lanes, "notes": trace.notes,
            "step_source": trace.step_source,
            "steps": {c: trace.steps[c].tolist() for c in ("step", "name", "start", "end")}}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           b"insight.trace": json.dumps(meta).encode()})
    pq.write_table(table, path, compression="zstd")


def load_trace(path: Path, layers: Iterable[str] = ()) -> Trace | None:
    """The trace `save_trace` wrote, its ops attributed to `layers`; `None` when the file is
    missing, unreadable or from another version (convert again)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[b"insight.trace"])
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
        return None
    if meta.get("version") != _VERSION:
        return None
    ev = table.replace_schema_metadata(None).to_pandas()
    ops = ev["op"].cat  # each distinct op attributed once, then taken by its code
    found = [layer_of(o, frozenset(layers)) for o in ops.categories] + [("", "")]
    codes = ops.codes.to_numpy()
    for k, col in enumerate(("layer", "phase")):  # code -1 (none) takes the last: ("", "")
        ev[col] = pd.Series(np.array([f[k] for f in found], dtype=object)[codes],
                            index=ev.index, dtype=object)
    for col in _STRINGS:  # plain object arrays, as trace_events makes them (a take)
        values = ev[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.cat.categories.to_numpy(dtype=object)[values.cat.codes.to_numpy()]
        ev[col] = pd.Series(values, index=ev.index, dtype=object)
    steps = pd.DataFrame(meta["steps"], columns=["step", "name", "start", "end"])
    if len(steps):
        steps["step"] = steps["step"].astype(int)
        steps[["start", "end"]] = steps[["start", "end"]].astype(float)
    trace = Trace(ev, list(meta["threads"]), [tuple(r) for r in meta["rows"]], steps,
                  tuple(meta["span"]), int(meta["max_lanes"]), list(meta["notes"]),
                  meta["step_source"])
    return trace
