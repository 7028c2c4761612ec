"""The step-time breakdown: xprof's from its step markers, else insight's own from the timeline.

xprof splits a profile's time into steps only inside root step markers
(`tf.profiler.experimental.Trace("train", step_num=i, _r=1)`), which `insight.capture_profile`
writes. `keras.callbacks.TensorBoard(profile_batch=...)`, the most common source of profiles,
writes none: Keras 3 marks each profiled batch "Profiled batch" with its number but without
the root flag, so xprof reports no step at all. For such a profile the steps come from the
timeline (`Trace.steps`: Keras' "Profiled batch" marks, else each call of the train or predict
function it repeats) and each step's time is split by what ran during it, each moment counted
once, in the first of these categories that covers it:

- Compilation: compile events (XLA, TensorFlow);
- Input: waiting for the next batch (`IteratorGetNext`);
- Device compute: kernels on a GPU or TPU (its streams);
- Host compute: TensorFlow and XLA ops on the host's threads (tf.data's own threads, which
  prefetch alongside the step, are left out);
- All others: the rest of the step (Python, Keras callbacks, dispatch, waiting).

Example:

>>> import pandas as pd
>>> from insight.profiler.tables import Trace
>>> ev = pd.DataFrame({"thread": ["python", "tf_Compute", "tf_data_iterator_get_next"],
...                    "ts": [0.0, 400.0, 100.0], "dur": [1000.0, 500.0, 200.0],
...                    "name": ["Profiled batch", "Conv2D", "IteratorGetNextOp::DoCompute"],
...                    "op": ["", "m/conv/Conv2D", ""]})
>>> steps = pd.DataFrame({"step": [2], "name": ["Profiled batch"], "start": [0.0],
...                       "end": [1000.0]})
>>> t = Trace(ev, [], [], steps, (0.0, 1000.0), step_source="marked")
>>> timeline_breakdown(t)[["step", "Input", "Host compute", "All others"]].round(3).values.tolist()
[['Profiled batch 2', 0.2, 0.5, 0.3]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from insight.profiler.tables import BREAKDOWN, Trace, step_breakdown

__all__ = ["timeline_breakdown", "profile_steps", "inferred_from", "run_steps"]

COLUMNS = ["step", *BREAKDOWN.values(), "step_time_ms"]


def inferred_from(trace: Trace) -> str:
    """Where a trace's steps come from, in words (`""` when it has none).

    Example: `Keras' "Profiled batch" marks`, `the calls of multi_step_on_iterator`.
    """
    if trace.steps.empty:
        return ""
    names = sorted(set(trace.steps["name"].astype(str)))
    if trace.step_source == "calls":
        return f"the calls of {names[0]}"
    if names == ["Profiled batch"]:
        return "Keras' \"Profiled batch\" marks"
    return "the step numbers of " + ", ".join(f'"{n}"' for n in names) + " events"


def _categories(ev: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """`(category, mask of the events that count for it)`, first category first."""
    name = ev["name"].astype(str)
    thread = ev["thread"].astype(str)
    kernel = ev["kernel"].to_numpy(dtype=bool) if "kernel" in ev.columns else \
        np.zeros(len(ev), dtype=bool)
    op = ev["op"].astype(str).to_numpy() != "" if "op" in ev.columns else \
        np.zeros(len(ev), dtype=bool)
    host = op & ~kernel & ~thread.str.startswith("tf_data").to_numpy()
    return [("Compilation", name.str.contains("Compil", regex=False).to_numpy()),
            ("Input", name.str.contains("IteratorGetNext", regex=False).to_numpy()),
            ("Device compute", kernel), ("Host compute", host)]


def timeline_breakdown(trace: Trace) -> pd.DataFrame:
    """Each of `trace.steps`' time by category (milliseconds), from the events in it.

    Every moment of a step counts once, in the first category covering it (Compilation,
    Input, Device compute, Host compute; see the module's docstring); what no event covers
    is "All others", so the categories add up to the step's time.

    Args:
        trace: a `Trace` with steps (`trace_events`).

    Returns:
        The columns of `insight.profiler.tables.step_breakdown`: `step` (the step's name and
        number), one column per category and `step_time_ms`; empty without steps.
    """
    steps = trace.steps
    if steps.empty:
        return pd.DataFrame(columns=COLUMNS)
    start = steps["start"].to_numpy(dtype=float)
    end = steps["end"].to_numpy(dtype=float)
    ev = trace.events
    ts = ev["ts"].to_numpy(dtype=float)
    te = ts + ev["dur"].to_numpy(dtype=float)
    cats = _categories(ev)
    points = np.unique(np.concatenate([start, end, *(ts[m] for _, m in cats),
                                       *(te[m] for _, m in cats)]))
    mids, widths = (points[:-1] + points[1:]) / 2, np.diff(points)
    owner = np.full(len(mids), -1)
    for k, (_, mask) in enumerate(cats):
        starts, ends = np.sort(ts[mask]), np.sort(te[mask])
        covered = np.searchsorted(starts, mids, "right") > np.searchsorted(ends, mids, "right")
        owner[(owner < 0) & covered] = k
    lo, hi = np.searchsorted(points, start), np.searchsorted(points, end)
    out = pd.DataFrame({"step": [f"{n} {int(s)}" for n, s in
                                 zip(steps["name"], steps["step"], strict=True)]})
    for label in BREAKDOWN.values():
        out[label] = 0.0
    for k, (label, _) in enumerate(cats):
        cum = np.concatenate([[0.0], np.cumsum(np.where(owner == k, widths, 0.0))])
        out[label] = (cum[hi] - cum[lo]) / 1e3
    out["step_time_ms"] = (end - start) / 1e3
    out["All others"] = (out["step_time_ms"] - out[[c for c, _ in cats]].sum(axis=1)).clip(0)
    return out[COLUMNS]


def profile_steps(overview: list[dict[str, Any]],
                  trace: Trace | Callable[[], Trace]) -> pd.DataFrame:
    """The step-time breakdown of a profile: xprof's when it found step markers, else
    `timeline_breakdown` of the steps inferred from its timeline.

    Args:
        overview: the overview_page tool's JSON.
        trace: the same profile's `Trace`, or a function returning it (called only when
            xprof found no steps: a long profile's timeline takes a while to read).

    Returns:
        The `step_breakdown` frame; `.attrs["source"]` is `"xprof"`, `"inferred"` or `""`
        (no steps), `.attrs["inferred_from"]` says from what (`inferred_from`).
    """
    steps = step_breakdown(overview)
    if not steps.empty:
        steps.attrs.update(source="xprof", inferred_from="")
        return steps
    if callable(trace):
        trace = trace()
    steps = timeline_breakdown(trace)
    steps.attrs.update(source="inferred" if len(steps) else "",
                       inferred_from=inferred_from(trace))
    return steps


def _compute(key: str, compute: Callable[[], Any]) -> Any:
    return compute()


def run_steps(run: Any, layers: frozenset[str] = frozenset(),
              memo: Callable[[str, Callable[[], Any]], Any] = _compute) -> pd.DataFrame:
    """`profile_steps` of one profile run (`insight.profiler.capture.ProfileRun`), its tool
    data and timeline memoised under the keys the Profiler's panels use, so the doctor and
    the Profiler page convert a profile once between them.

    Args:
        run: the profile run.
        layers: the model's layer names, to map timeline ops to layers. Defaults to none.
        memo: `memo(key, compute)`. Defaults to computing.
    """
    from insight.profiler.capture import profile_trace, tool_data

    def tool(name: str) -> Any:
        return memo(f"xprof|{run.folder}|{run.stamp}|{name}", lambda: tool_data(run, name))

    def trace() -> Trace:
        return memo(f"trace|{run.folder}|{run.stamp}",
                    lambda: profile_trace(run, layers))  # parsed, cached on disk

    return memo(f"steps|{run.folder}|{run.stamp}",
                lambda: profile_steps(tool("overview_page"), trace))
