"""What a timeline draws: the events of a time window, small ones merged per pixel.

A profile of many steps holds hundreds of thousands of events, far more than a chart can
draw and far more than it has pixels for. `timeline_bars` keeps the events of one window
(a step, or any start/end), draws every event at least `min_px` pixels wide as its own bar,
and merges the narrower ones of each row into one bar per `min_px` pixels ("37 ops merged").
Nothing is lost: a narrower window (one step) shows them one by one.

Example:

>>> import pandas as pd
>>> from insight.profiler.tables import Trace
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
from insight.profiler.tables import Trace

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
    t = ev["ts"].to_numpy()
    ends = t + ev["dur"].to_numpy()
    idx = np.flatnonzero((t < hi) & (ends > lo))
    ts, te = t[idx].clip(lo, hi), ends[idx].clip(lo, hi)
    px = (hi - lo) / max(1, width_px)
    wide = (te - ts) >= min_px * px
    cols = ["row", "ts", "dur", "name", "op", "layer", "phase", "count", "self_dur"]
    keep_idx = idx[wide]
    keep = pd.DataFrame({
        "row": ev["row"].to_numpy()[keep_idx], "ts": ts[wide], "dur": (te - ts)[wide],
        **{c: ev[c].to_numpy()[keep_idx] for c in ("name", "op", "layer", "phase")},
        "count": np.ones(len(keep_idx), dtype=np.int64),
        "self_dur": ev["dur"].to_numpy()[keep_idx]})
    merged = _merge(ev, idx[~wide], ts[~wide], te[~wide], lo, min_px * px)
    bars = pd.concat([keep, merged], ignore_index=True)[cols] if len(merged) else keep
    if len(bars) > MAX_BARS:  # keep the longest: the chart stays drawable
        bars = bars.nlargest(MAX_BARS, "dur").reset_index(drop=True)
    counts = merged["count"].to_numpy() if len(merged) else np.zeros(0, np.int64)
    bars.attrs.update(window=(lo, hi), events=int(len(idx)),
                      merged_events=int(counts[counts > 1].sum()),
                      merged_bars=int((counts > 1).sum()), px_us=px)
    return bars


def _merge(ev: pd.DataFrame, idx: np.ndarray, ts: np.ndarray, te: np.ndarray, lo: float,
           bucket_us: float) -> pd.DataFrame:
    """One bar per (row, bucket of `bucket_us`) for the narrow events `idx` (numpy only:
    a profile of many steps has millions)."""
    if not len(idx):
        return pd.DataFrame()
    rows = ev["row"].to_numpy()[idx].astype(np.int64)
    bucket = np.floor((ts - lo) / bucket_us).astype(np.int64)
    key = rows * (int(bucket.max()) + 2) + bucket
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    count = np.diff(np.r_[starts, len(key)])
    first = idx[order[starts]]
    bar_ts = np.minimum.reduceat(ts[order], starts)
    bar_te = np.maximum.reduceat(te[order], starts)
    single = count == 1
    out = pd.DataFrame({
        "row": rows[order[starts]], "ts": bar_ts,
        "dur": np.maximum(bar_te - bar_ts, bucket_us),
        "count": count, "self_dur": np.add.reduceat(ev["dur"].to_numpy()[idx][order], starts)})
    for c in ("name", "op", "layer", "phase"):
        values = ev[c].to_numpy()[first].astype(object)
        values[~single] = "" if c != "name" else None
        out[c] = values
    out.loc[~single, "name"] = [f"{n} ops merged" for n in count[~single]]
    return out
