"""xprof tool outputs as tidy tables: steps, timeline events, top ops, memory over time.

Every function takes the JSON one xprof tool returned (`insight.profiler.capture.tool_data`)
and returns a pandas DataFrame; nothing here runs xprof or TensorFlow. Ops are attributed to
the Keras layer whose name scope they ran under
(`"StatefulPartitionedCall/digits_cnn_1/conv1_1/Relu"` -> layer `conv1`); ops under
`gradient_tape/` are that layer's backward pass.

Example:

>>> from insight.profiler.tables import datatable, layer_of
>>> datatable({"cols": [{"id": "a"}], "rows": [{"c": [{"v": 1}]}]})["a"].tolist()
[1]
>>> layer_of("StatefulPartitionedCall/gradient_tape/m_1/conv1_1/Conv2DBackpropFilter",
...          {"conv1", "dense"})
('conv1', 'backward')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["datatable", "step_breakdown", "overview_summary", "Trace", "trace_events",
           "framework_ops", "hlo_ops", "memory_timeline", "layer_of", "layer_names",
           "function_steps", "STEP_FUNCTIONS", "BREAKDOWN", "build_trace", "with_layers",
           "thread_labels", "kernel_threads"]

# overview_page step table columns -> what the chart calls them
BREAKDOWN = {"infeedTimeMs": "Input", "outfeedTimeMs": "Output",
             "compileTimeMs": "Compilation", "kernelLaunchTimeMs": "Kernel launch",
             "hostComputeTimeMs": "Host compute", "deviceComputeTimeMs": "Device compute",
             "deviceToDeviceTimeMs": "Device to device",
             "deviceCollectivesTimeMs": "Collectives", "otherTimeMs": "All others"}
_OPTIMIZERS = {"adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
               "ftrl", "lion", "lamb", "loss_scale_optimizer", "optimizer"}
_SUFFIX = re.compile(r"_\d+$")


def datatable(table: dict[str, Any]) -> pd.DataFrame:
    """A Google-Charts DataTable (`{"cols": [...], "rows": [{"c": [{"v": ...}]}], "p": {}}`,
    the format of most xprof tools) as a DataFrame; its `p` properties go to `.attrs`."""
    cols = [c["id"] for c in table.get("cols", [])]
    rows = [[(cell or {}).get("v") for cell in row.get("c", [])] for row in table.get("rows", [])]
    frame = pd.DataFrame(rows, columns=cols) if cols else pd.DataFrame()
    frame.attrs.update(table.get("p", {}) or {})
    return frame


def step_breakdown(overview: list[dict[str, Any]]) -> pd.DataFrame:
    """The overview page's step-time breakdown: one row per step, one column per category
    (milliseconds) and `step_time_ms`; empty when the profile has no step markers."""
    frame = datatable(overview[1]) if len(overview) > 1 else pd.DataFrame()
    if frame.empty:
        return pd.DataFrame(columns=["step", *BREAKDOWN.values(), "step_time_ms"])
    out = pd.DataFrame({"step": frame["stepnum"].astype(str)})
    for col, label in BREAKDOWN.items():
        out[label] = pd.to_numeric(frame.get(col, 0.0), errors="coerce").fillna(0.0)
    out["step_time_ms"] = pd.to_numeric(frame["stepTimeMs"], errors="coerce")
    return out


def overview_summary(overview: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers and xprof's own diagnostics from the overview page."""
    p = (overview[1].get("p", {}) if len(overview) > 1 else {}) or {}
    env = (overview[2].get("p", {}) if len(overview) > 2 else {}) or {}
    diag = datatable(overview[-1]) if overview and overview[-1] else pd.DataFrame()
    messages = [f"{r['severity']}: {r['message']}" for _, r in diag.iterrows()] \
        if {"severity", "message"} <= set(diag.columns) else []
    steps = step_breakdown(overview)

    def num(key: str) -> float:
        try:
            return float(p.get(key, "nan"))
        except ValueError:
            return float("nan")

    return {"steps": len(steps), "step_ms_mean": num("steptime_ms_average"),
            "step_ms_min": num("steptime_ms_minimum"), "step_ms_max": num("steptime_ms_maximum"),
            "device": env.get("device_type", ""), "conclusion": p.get("input_conclusion", ""),
            "diagnostics": messages,
            "no_step_markers": len(steps) == 0 or any("No step marker" in m for m in messages)}


def _config_layers(config: Any, out: set[str]) -> None:
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str) and \
                "class_name" in config:
            out.add(inner["name"])
        for value in config.values():
            _config_layers(value, out)
    elif isinstance(config, list):
        for value in config:
            _config_layers(value, out)


def layer_names(preflight: Any = None, loaded: Any = None) -> frozenset[str]:
    """Layer names of a model, from its loaded layers or, without loading, its file's
    config (`Preflight.config`)."""
    names: set[str] = set()
    if loaded is not None:
        from insight.model.layers import layer_paths

        try:
            names.update(p.split("/")[-1] for p in layer_paths(loaded.model))
        except Exception:  # noqa: BLE001  e.g. a SavedModel wrapper: fall back to the config
            pass
    if preflight is not None and getattr(preflight, "config", None):
        _config_layers(preflight.config, names)
    return frozenset(names)


def layer_of(op_name: str, layers: Iterable[str]) -> tuple[str, str]:
    """The Keras layer an op ran in, from its name scopes, and the phase: `"forward"`,
    `"backward"` (under `gradient_tape/`), `"optimizer"` or `""` when unknown.

    The last scope (before the op's own name) that is a layer name wins, so the inner layer
    of a nested model is found; Keras' `_1` suffixes on scopes are ignored.
    """
    if not op_name:
        return "", ""
    parts = op_name.split(":")[0].split("/")
    scopes = [_SUFFIX.sub("", s) for s in parts[:-1]]
    layers = layers if isinstance(layers, set | frozenset) else set(layers)
    backward = "gradient_tape" in scopes
    for s in reversed(scopes):
        if s in layers:
            return s, "backward" if backward else "forward"
    if any(s.lower() in _OPTIMIZERS for s in scopes):
        return "", "optimizer"
    return "", "backward" if backward else ""


@dataclass
class Trace:
    """A profile's timeline: one row per complete event, times in microseconds from the
    first event.

    Attributes:
        events: `thread, lane, ts, dur, name, op, layer, phase, hlo_module, row, kernel`;
            `lane` is the nesting depth inside its thread, `row` the y position of
            (thread, lane), `kernel` whether the event is a kernel on a GPU/TPU (a device's
            stream or XLA ops line).
        threads: thread labels in display order.
        rows: `(thread, lane)` of each row index.
        steps: `step, name, start, end` of each step: the events that carry a step number
            (`step_source="marked"`), else each call of the repeated train/predict function
            (`step_source="calls"`, see `function_steps`); empty when neither is there.
        span: `(start, end)` of the whole trace.
        step_source: `"marked"`, `"calls"` or `""` (no steps). Defaults to `""`.
    """

    events: pd.DataFrame
    threads: list[str]
    rows: list[tuple[str, int]]
    steps: pd.DataFrame
    span: tuple[float, float]
    max_lanes: int = 8
    notes: list[str] = field(default_factory=list)
    step_source: str = ""


def thread_labels(meta: list[dict[str, Any]]) -> dict[tuple[Any, Any], str]:
    """`(pid, tid)` -> the thread's row label, from the trace's `"ph": "M"` events."""
    procs = {e["pid"]: e["args"]["name"] for e in meta if e.get("name") == "process_name"}
    raw = {(e["pid"], e.get("tid")): str(e["args"]["name"]).split("/")[0]
           for e in meta if e.get("name") == "thread_name"}
    counts: dict[str, int] = {}
    labels = {}
    many_procs = len(procs) > 1
    for key in sorted(raw):
        base = raw[key]
        if many_procs:
            base = f"{procs.get(key[0], key[0])} {base}"
        counts[base] = counts.get(base, 0) + 1
        labels[key] = base if counts[base] == 1 else f"{base} #{counts[base]}"
    return labels


def kernel_threads(meta: list[dict[str, Any]]) -> set[tuple[Any, Any]]:
    """`(pid, tid)` of the lines holding a GPU/TPU's kernels: its streams, or its XLA ops
    (not the derived lines that repeat them, like "Steps" or "TensorFlow Ops")."""
    devices = {e["pid"] for e in meta if e.get("name") == "process_name" and
               str(e["args"]["name"]).startswith("/device:") and
               not str(e["args"]["name"]).startswith("/device:CPU")}
    return {(e["pid"], e.get("tid")) for e in meta if e.get("name") == "thread_name" and
            e["pid"] in devices and re.match(r"(Stream\b|XLA Ops$)", str(e["args"]["name"]))}


# A Keras train/test/predict function, as `tf.function` names it on the timeline:
# "multi_step_on_iterator", "EagerLocalExecute: __inference_one_step_on_data_870", ...
STEP_FUNCTIONS = re.compile(r"(?:one_step_on_data|one_step_on_iterator|multi_step_on_iterator|"
                            r"(?:train|test|predict)_(?:function|step))")


def _function_name(name: str) -> str:
    name = re.sub(r"^\w+: ", "", name)  # "EagerLocalExecute: __inference_f_12"
    return re.sub(r"_\d+$", "", name.removeprefix("__inference_"))


def function_steps(events: pd.DataFrame) -> pd.DataFrame:
    """Steps inferred from a profile without step markers: each call of the function a
    training or inference loop repeats, at its outermost on the timeline.

    Keras' train, test and predict functions (`multi_step_on_iterator`, `one_step_on_data`,
    `train_function`, ...) are looked for first; else any `tf.function` (`__inference_...`)
    called at least twice at the same outermost depth. Of the matching names, the outermost
    and then the most called one wins; the Python thread's calls come first.

    Args:
        events: `Trace.events` (sorted by thread, then time).

    Returns:
        `step, name, start, end` (steps numbered from 0, `name` the function's), empty when
        nothing repeats.
    """
    cols = ["step", "name", "start", "end"]
    names = events["name"].astype(str)
    for pattern, least in ((STEP_FUNCTIONS, 1), (re.compile(r"__inference_"), 2)):
        found = events[names.str.contains(pattern)]
        python = found["thread"].astype(str).str.startswith("python")
        found = found[python] if python.any() else found  # where the loop calls it
        if found.empty:
            continue
        found = found.assign(function=found["name"].map(_function_name))
        top = found[found["lane"] == found["lane"].min()]
        counts = top.groupby(["thread", "function"]).size()
        (thread, function), n = counts.idxmax(), int(counts.max())
        if n < least:
            continue
        calls = top[(top["thread"] == thread) & (top["function"] == function)]
        calls = calls.sort_values("ts")
        calls = calls[calls["ts"] >= (calls["ts"] + calls["dur"]).cummax().shift(fill_value=0)]
        return pd.DataFrame({"step": np.arange(len(calls)), "name": function,
                             "start": calls["ts"].to_numpy(),
                             "end": (calls["ts"] + calls["dur"]).to_numpy()})
    return pd.DataFrame(columns=cols)


def _depths(tid: np.ndarray, ts: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Nesting depth of each event in its thread (events sorted by thread, ts, -dur)."""
    depth = np.zeros(len(ts), dtype=np.int32)
    stack: list[float] = []
    last = None
    for i, (t, s, e) in enumerate(zip(tid.tolist(), ts.tolist(), end.tolist(), strict=True)):
        if t != last:
            stack, last = [], t
        while stack and stack[-1] <= s:
            stack.pop()
        depth[i] = len(stack)
        stack.append(e)
    return depth


def trace_events(trace: dict[str, Any], layers: Iterable[str] = (), *,
                 max_lanes: int = 8) -> Trace:
    """The trace_viewer tool's events as a `Trace` (instant and `end:` events dropped).

    Args:
        trace: the trace_viewer JSON (`{"traceEvents": [...]}`).
        layers: the model's layer names, to attribute ops to layers. Defaults to `()`.
        max_lanes: nesting depths shown per thread; deeper events share the last lane.
            Defaults to `8`.
    """
    layers = frozenset(layers)
    raw = trace.get("traceEvents", [])
    meta = [e for e in raw if e.get("ph") == "M"]
    xs = [e for e in raw if e.get("ph") == "X" and not e.get("name", "").startswith("end: ")]
    labels = thread_labels(meta)
    kernels = kernel_threads(meta)
    if not xs:
        empty = pd.DataFrame(columns=["thread", "lane", "ts", "dur", "name", "op", "layer",
                                      "phase", "hlo_module", "row", "kernel"])
        return Trace(empty, [], [], pd.DataFrame(columns=["step", "name", "start", "end"]),
                     (0.0, 0.0), max_lanes, ["The trace holds no complete events."])
    args = [e.get("args") or {} for e in xs]
    ev = pd.DataFrame({
        "thread": [labels.get((e["pid"], e.get("tid")), f"{e['pid']}/{e.get('tid')}")
                   for e in xs],
        "ts": np.fromiter((float(e["ts"]) for e in xs), float, len(xs)),
        "dur": np.fromiter((float(e.get("dur", 0.0)) for e in xs), float, len(xs)),
        "name": [e["name"] for e in xs],
        "op": [a.get("long_name") or a.get("hlo_op") or "" for a in args],
        "hlo_module": [a.get("hlo_module", "") for a in args],
        "step_num": [a.get("step_num") for a in args],
        "kernel": [(e["pid"], e.get("tid")) in kernels for e in xs],
    })
    return build_trace(ev, layers, max_lanes)


def build_trace(ev: pd.DataFrame, layers: Iterable[str] = (), max_lanes: int = 8) -> Trace:
    """A `Trace` from one row per complete event: `thread` (its label), `ts`, `dur`
    (microseconds), `name`, `op`, `hlo_module`, `step_num` (`None` when not a step) and
    `kernel`, in the order xprof gave them (what `trace_events` reads from the JSON, and
    `insight.profiler.trace_store` from xprof's protobuf)."""
    t0 = float(ev["ts"].min())
    ev["ts"] -= t0
    ev = ev.sort_values(["thread", "ts", "dur"], ascending=[True, True, False],
                        kind="stable").reset_index(drop=True)
    ev["lane"] = np.minimum(_depths(ev["thread"].to_numpy(), ev["ts"].to_numpy(),
                                    (ev["ts"] + ev["dur"]).to_numpy()), max_lanes - 1)
    ev = _attribute(ev, frozenset(layers))
    counts = ev["thread"].value_counts()
    threads = sorted(counts.index, key=lambda t: (not t.startswith("python"), -counts[t], t))
    lanes = ev.groupby("thread")["lane"].max()
    rows = [(t, lane) for t in threads for lane in range(int(lanes[t]) + 1)]
    index = {r: i for i, r in enumerate(rows)}
    ev["row"] = [index[(t, lane)] for t, lane in zip(ev["thread"], ev["lane"], strict=True)]
    marked = ev[ev["step_num"].notna()]
    steps = pd.DataFrame({"step": pd.to_numeric(marked["step_num"], errors="coerce"),
                          "name": marked["name"].str.replace(r"\s+\d+$", "", regex=True),
                          "start": marked["ts"],
                          "end": marked["ts"] + marked["dur"]}).dropna(subset=["step"])
    steps = steps.drop_duplicates("step").sort_values("start").reset_index(drop=True)
    steps["step"] = steps["step"].astype(int)
    source = "marked" if len(steps) else ""
    if steps.empty:
        steps = function_steps(ev)
        source = "calls" if len(steps) else ""
    span = (0.0, float((ev["ts"] + ev["dur"]).max()))
    ev = ev.drop(columns=["step_num"])
    for col in ("thread", "name", "op", "layer", "phase", "hlo_module"):
        # plain object arrays: pandas' Arrow-backed strings cost a copy on every to_numpy()
        ev[col] = pd.Series(ev[col].to_numpy(dtype=object), index=ev.index, dtype=object)
    return Trace(ev, threads, rows, steps, span, max_lanes, step_source=source)


def _attribute(ev: pd.DataFrame, layers: frozenset[str]) -> pd.DataFrame:
    """`ev` with its `layer` and `phase` columns set from its ops (each distinct op once)."""
    codes, ops = pd.factorize(ev["op"])
    found = [layer_of(o, layers) for o in ops] + [("", "")]  # code -1: no op
    for k, col in enumerate(("layer", "phase")):
        ev[col] = pd.Series(np.array([f[k] for f in found], dtype=object)[codes],
                            index=ev.index, dtype=object)
    return ev


def with_layers(trace: Trace, layers: Iterable[str]) -> Trace:
    """`trace` with its ops attributed to the layers `layers` (a copy; e.g. a cached trace,
    stored without a model, read for one)."""
    ev = _attribute(trace.events.copy(), frozenset(layers))
    return Trace(ev, trace.threads, trace.rows, trace.steps, trace.span, trace.max_lanes,
                 list(trace.notes), trace.step_source)


def framework_ops(op_stats: list[dict[str, Any]], layers: Iterable[str] = ()) -> pd.DataFrame:
    """TensorFlow ops by total self time (idle excluded): `type, op, layer, phase, where,
    occurrences, self_time_us, total_time_us, self_time_percent`."""
    table = datatable(op_stats[-1]) if op_stats else pd.DataFrame()
    cols = ["layer", "phase", "type", "self_time_us", "self_time_percent", "occurrences",
            "op", "where", "total_time_us"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    table = table[(table["type"] != "IDLE") & (table["type"].fillna("") != "")]
    layers = frozenset(layers)
    attributed = [layer_of(o, layers) for o in table["operation"]]
    out = pd.DataFrame({
        "type": table["type"],
        "op": table["operation"].str.replace(r"^StatefulPartitionedCall/", "", regex=True),
        "layer": [a[0] for a in attributed], "phase": [a[1] for a in attributed],
        "where": table["host_or_device"],
        "occurrences": pd.to_numeric(table["occurrences"]).astype(int),
        "self_time_us": pd.to_numeric(table["total_self_time"]),
        "total_time_us": pd.to_numeric(table["total_time"]),
    })
    total = out["self_time_us"].sum()
    out["self_time_percent"] = 100.0 * out["self_time_us"] / total if total else 0.0
    return out.sort_values("self_time_us", ascending=False).reset_index(drop=True)[cols]


def hlo_ops(hlo_stats: dict[str, Any] | None, trace: Trace | None = None) -> pd.DataFrame:
    """XLA (HLO) ops by total self time: from xprof's hlo_stats when it has rows (GPU/TPU),
    else summed from the timeline's HLO events (XLA on CPU, where hlo_stats is empty).
    `.attrs["source"]` says which; the frame is empty when nothing ran through XLA."""
    cols = ["op", "category", "self_time_us", "self_time_percent", "occurrences", "layer",
            "module"]
    table = datatable(hlo_stats) if hlo_stats else pd.DataFrame()
    if not table.empty:
        out = pd.DataFrame({
            "op": table["hlo_op_name"], "category": table["category"],
            "module": table["program_id"], "layer": table.get("tf_op_name", ""),
            "occurrences": pd.to_numeric(table["occurrences"]).astype(int),
            "self_time_us": pd.to_numeric(table["total_self_time"])})
        source = "xprof hlo_stats"
    elif trace is not None and not trace.events.empty:
        hlo = trace.events[trace.events["hlo_module"] != ""]
        if hlo.empty:
            out, source = pd.DataFrame(columns=cols), "none"
        else:
            out = hlo.groupby(["name", "hlo_module"], as_index=False).agg(
                occurrences=("dur", "size"), self_time_us=("dur", "sum"))
            out = out.rename(columns={"name": "op", "hlo_module": "module"})
            out["category"] = out["op"].map(_hlo_category)
            out["layer"] = ""
            source = "timeline"
    else:
        out, source = pd.DataFrame(columns=cols), "none"
    if not out.empty:
        total = out["self_time_us"].sum()
        out["self_time_percent"] = 100.0 * out["self_time_us"] / total if total else 0.0
        out = out.sort_values("self_time_us", ascending=False).reset_index(drop=True)[cols]
    out.attrs["source"] = source
    return out


def _hlo_category(name: str) -> str:
    base = re.sub(r"\.\d+$", "", name)
    if "fusion" in base:
        return "fusion"
    return base.replace("wrapped_", "") or name


def memory_timeline(memory: dict[str, Any]) -> pd.DataFrame:
    """The memory profile: one row per allocation event of each allocator, time in ms from
    the first event: `allocator, time_ms, heap_mib, stack_mib, in_use_mib, peak_mib, activity,
    requested_bytes, op, step`."""
    rows = []
    for allocator, prof in (memory.get("memoryProfilePerAllocator") or {}).items():
        for snap in prof.get("memoryProfileSnapshots", []):
            agg = snap.get("aggregationStats", {})
            act = snap.get("activityMetadata", {})
            heap, stack = int(agg.get("heapAllocatedBytes", 0)), \
                int(agg.get("stackReservedBytes", 0))
            rows.append((allocator, int(snap.get("timeOffsetPs", 0)) / 1e9, heap / 2**20,
                         stack / 2**20, (heap + stack) / 2**20,
                         int(agg.get("peakBytesInUse", 0)) / 2**20,
                         act.get("memoryActivity", ""), int(act.get("requestedBytes", 0)),
                         act.get("tfOpName", ""), act.get("stepId", "")))
    frame = pd.DataFrame(rows, columns=["allocator", "time_ms", "heap_mib", "stack_mib",
                                        "in_use_mib", "peak_mib", "activity",
                                        "requested_bytes", "op", "step"])
    if not frame.empty:
        frame["time_ms"] -= frame["time_ms"].min()
        frame = frame.sort_values(["allocator", "time_ms"]).reset_index(drop=True)
    return frame
