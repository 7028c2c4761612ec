"""What a timeline draws: the events of a time window, small ones merged per pixel.

A profile of many steps holds hundreds of thousands of events, far more than a chart can
draw and far more than it has pixels for. `timeline_bars` keeps the events of one window
(a step, or any start/end), draws every event at least `min_px` pixels wide as its own bar,
and merges the narrower ones of each row into one bar per `min_px` pixels ("37 ops merged").
Nothing is lost: a narrower window (one step) shows them one by one.

Example:

>>> import pandas as pd
>>> from insight.trace_data import Trace
>>> ev = pd.DataFrame({"thread": ["t"] * 3, "lane": [0] * 3, "row": [0] * 3,
...                    "ts": [0.0, 1.0, 500.0], "dur": [0.5, 0.5, 400.0], "name": list("abc"),
...                    "op": [""] * 3, "layer": [""] * 3, "phase": [""] * 3,
...                    "hlo_module": [""] * 3})
>>> t = Trace(ev, ["t"], [("t", 0)], pd.DataFrame(columns=["step", "name", "start", "end"]),
...           (0.0, 900.0))
>>> bars = timeline_bars(t, width_px=100)
>>> bars["count"].tolist(), bars.attrs["merged_events"]
([1, 2], 2)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from insight.errors import UsageError
from insight.trace_data import Trace

__all__ = ["timeline_bars", "step_window", "MAX_BARS"]

MAX_BARS = 20_000  # past this even merged bars are coarsened (never reached at 1 px / row)


def step_window(trace: Trace, step: int) -> tuple[float, float]:
    """`(start, end)` in microseconds of step `step` (its marker), padded by 2%.

    Raises:
        UsageError: no such step (the message gives the range).
    """
    found = trace.steps[trace.steps["step"] == step]
    if found.empty:
        have = (f"steps {trace.steps['step'].min()}..{trace.steps['step'].max()}"
                if len(trace.steps) else "no step markers")
        raise UsageError(f"No step {step} in this profile: it has {have}.", "Pick another "
                         "step, or -1 for the whole profile.", f"step={step}")
    start, end = float(found["start"].iloc[0]), float(found["end"].iloc[0])
    pad = 0.02 * (end - start)
    return max(trace.span[0], start - pad), min(trace.span[1], end + pad)


def timeline_bars(trace: Trace, start: float = -1.0, end: float = -1.0, *,
                  width_px: int = 1400, min_px: float = 1.0) -> pd.DataFrame:
    """The bars to draw for `[start, end]` (microseconds; `-1` for the trace's bounds).

    Events overlapping the window are clipped to it. Events at least `min_px` pixels wide
    (of a `width_px`-wide chart) are kept one by one; in each row the narrower ones are
    merged into one bar per `min_px` pixels, from the first start to the last end.

    Returns:
        A frame `row, ts, dur, name, op, layer, phase, count, self_dur` (`count` > 1 for merged
        bars, `name` then says how many); `.attrs` holds `window`, `events` (in the window),
        `merged_events`, `merged_bars` and `px_us` (microseconds per pixel).
    """
    lo = trace.span[0] if start is None or start < 0 else float(start)
    hi = trace.span[1] if end is None or end < 0 else float(end)
    if hi <= lo:
        raise UsageError("The time window is empty: its end is not after its start.",
                         "Choose an end after the start.", f"start={start}, end={end}")
    ev = trace.events
    ends = ev["ts"].to_numpy() + ev["dur"].to_numpy()
    inside = ev[(ev["ts"].to_numpy() < hi) & (ends > lo)]
    ts = inside["ts"].to_numpy().clip(lo, hi)
    te = (inside["ts"] + inside["dur"]).to_numpy().clip(lo, hi)
    px = (hi - lo) / max(1, width_px)
    wide = (te - ts) >= min_px * px
    keep = inside[wide].assign(ts=ts[wide], dur=(te - ts)[wide], count=1)
    keep["self_dur"] = inside["dur"].to_numpy()[wide]
    small = inside[~wide].assign(ts=ts[~wide], te=te[~wide])
    merged = pd.DataFrame(columns=keep.columns)
    if len(small):
        bucket = np.floor((small["ts"].to_numpy() - lo) / (min_px * px)).astype(np.int64)
        grouped = small.assign(bucket=bucket).groupby(["row", "bucket"], sort=False)
        merged = grouped.agg(ts=("ts", "min"), te=("te", "max"), count=("name", "size"),
                             self_dur=("dur", "sum"), name=("name", "first"),
                             op=("op", "first"), layer=("layer", "first"),
                             phase=("phase", "first")).reset_index()
        single = merged["count"] == 1
        merged["dur"] = (merged["te"] - merged["ts"]).clip(lower=min_px * px)
        merged.loc[~single, "name"] = merged.loc[~single, "count"].map(
            lambda n: f"{n} ops merged")
        merged.loc[~single, ["op", "layer", "phase"]] = ""
        merged = merged.drop(columns=["bucket", "te"])
    cols = ["row", "ts", "dur", "name", "op", "layer", "phase", "count", "self_dur"]
    bars = pd.concat([keep[cols], merged[cols]], ignore_index=True) if len(merged) else \
        keep[cols].reset_index(drop=True)
    if len(bars) > MAX_BARS:  # keep the longest: the chart stays drawable
        bars = bars.nlargest(MAX_BARS, "dur").reset_index(drop=True)
    bars.attrs.update(window=(lo, hi), events=int(len(inside)),
                      merged_events=int((merged["count"][merged["count"] > 1]).sum())
                      if len(merged) else 0,
                      merged_bars=int((merged["count"] > 1).sum()) if len(merged) else 0,
                      px_us=px)
    return bars
