"""The Training page's panels: curves, the series index, train/validation verdicts, the
logdir's health and weight histograms over training. They read only the logdir
(`uses=("logdir",)`, no model): an incremental `insight.curves.Logdir`, memoised per logdir,
re-reads only appended bytes when a run is still being written.

Example:

>>> from insight.panels import build_panel, PanelContext
>>> ctx = PanelContext(logdir=Path("sample_models/digits_cnn/logs"))  # doctest: +SKIP
>>> fig = build_panel("training_curves", ctx, metric="epoch_loss")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.curves.logdir import (
    SMOOTHING,
    Logdir,
    best_step,
    downsample,
    label_series,
    metric_direction,
    overfitting,
    smooth,
    train_val_pairs,
)
from insight.errors import UsageError
from insight.figures.activations import message_figure
from insight.figures.curves import (
    CurveLine,
    Mark,
    curves_figure,
    histogram_heatmap,
    histogram_ridge,
)
from insight.figures.template import COLORWAY
from insight.panels.registry import Panel, PanelContext, Param, register
from insight.patterns import user_regex

__all__ = ["logs_for", "X_AXES", "X_TITLES", "SMOOTHING_TITLES", "metric_order",
           "overfitting_warnings"]

X_AXES = ("step", "relative", "wall")
X_TITLES = {"step": "Step", "relative": "Relative", "wall": "Wall"}
SMOOTHING_TITLES = {"none": "None", "ema": "EMA (TensorBoard)",
                    "moving_average": "Centred moving average", "gaussian": "Gaussian"}
_LOGDIR = ("logdir",)
SPLIT_COLORS = {"train": COLORWAY[0], "validation": COLORWAY[1], "": COLORWAY[0]}


def logs_for(ctx: PanelContext) -> Logdir:
    """The context's logdir reader (memoised, so it reads only appended bytes), refreshed.

    Raises:
        UsageError: no logdir given.
        DataError: the path is not a log.
    """
    if ctx.logdir is None:
        raise UsageError("No logdir given.", "Choose one in the sidebar or pass --logdir: a "
                         "TensorBoard logdir, a CSVLogger .csv or a Keras history .json.",
                         "logdir=None")
    path = Path(ctx.logdir)
    logs = ctx.cached(f"logdir-reader|{path}", lambda: Logdir(path))
    logs.refresh()
    return logs


def metric_order(index: pd.DataFrame) -> list[str]:
    """The metrics of a `curve_index` table in the order the Training page draws them:
    losses and errors first (lower is better), then accuracies and the like (higher is
    better), then the rest, alphabetically within each."""
    def rank(metric: str) -> tuple[bool, bool, str]:
        direction = metric_direction(metric)
        return direction != "min", direction != "max", metric

    return sorted(index["metric"].unique(), key=rank)


def overfitting_warnings(verdicts: pd.DataFrame) -> list[str]:
    """One Markdown line for each metric of a `train_val_verdicts` table whose validation
    value rises while training keeps falling (its `overfitting_from` step is set)."""
    rising = verdicts[verdicts["overfitting_from"].notna()]
    return [f"**Overfitting in `{v.metric}` ({v.group})**: validation loss rises from step "
            f"{int(v.overfitting_from)} while training loss keeps falling; the best validation "
            f"value was at step {int(v.best_val_step)}." for v in rising.itertuples()]


def _regex(text: str, what: str) -> re.Pattern:
    return user_regex(text, what)


def _selected(logs: Logdir, runs: str, tags: str) -> pd.DataFrame:
    labels = label_series(list(logs.series()))
    if labels.empty:
        return labels
    run_re, tag_re = _regex(runs, "runs"), _regex(tags, "tags")
    keep = labels.run.map(lambda r: bool(run_re.search(r))) & labels.tag.map(
        lambda t: bool(tag_re.search(t)))
    return labels[keep]


def _index(ctx: PanelContext, runs: str = "", tags: str = "") -> pd.DataFrame:
    logs = logs_for(ctx)
    series = logs.series()
    labels = _selected(logs, runs, tags)
    rows = []
    for r in labels.itertuples(index=False):
        s = series[(r.run, r.tag)]
        finite = np.isfinite(s.value)
        rows.append({**r._asdict(), "points": len(s), "nonfinite": int((~finite).sum()),
                     "first_step": int(s.step[0]) if len(s) else None,
                     "last_step": int(s.step[-1]) if len(s) else None,
                     "last": float(s.value[-1]) if len(s) else None,
                     "min": float(s.value[finite].min()) if finite.any() else None,
                     "max": float(s.value[finite].max()) if finite.any() else None})
    cols = ["run", "tag", "group", "split", "metric", "points", "nonfinite", "first_step",
            "last_step", "last", "min", "max"]
    return pd.DataFrame(rows, columns=cols)


def _x(s, axis: str, origin: float) -> np.ndarray:
    if axis == "step" or not np.isfinite(s.wall_time).any():
        return s.step
    if axis == "wall":
        return pd.to_datetime(s.wall_time, unit="s").to_numpy()
    return s.wall_time - origin


def _curves(ctx: PanelContext, metric: str = "", runs: str = "", tags: str = "",
            x: str = "step", y_scale: str = "linear", smoothing: str = "ema",
            weight: float = 0.6, window: int = 9, points: int = 2000):
    logs = logs_for(ctx)
    series = logs.series()
    labels = _selected(logs, runs, tags)
    labels = labels[labels.metric == metric] if metric else labels
    if labels.empty:
        return message_figure(f"No scalar series match metric {metric!r} with these filters.",
                              title=metric or "Training curves")
    groups = sorted(labels.group.unique())
    by_split = len(groups) == 1
    no_wall = x != "step" and not any(np.isfinite(series[(r, t)].wall_time).any()
                                      for r, t in zip(labels.run, labels.tag, strict=True))
    axis = "step" if no_wall else x
    lines, marks, shown, total, unit = [], [], 0, 0, 1.0
    if axis == "relative":
        span = max(np.nanmax(series[(r, t)].wall_time) - np.nanmin(series[(r, t)].wall_time)
                   for r, t in zip(labels.run, labels.tag, strict=True))
        unit = 3600.0 if span > 7200 else 60.0 if span > 120 else 1.0
    for r in labels.sort_values(["group", "split"]).itertuples(index=False):
        s = series[(r.run, r.tag)]
        total += len(s)
        origin = np.nanmin(s.wall_time) if np.isfinite(s.wall_time).any() else 0.0
        xs = _x(s, axis, origin)
        xs = xs / unit if axis == "relative" else xs
        keep = downsample(s.step if axis == "step" else np.arange(len(s)), s.value, points)
        shown += len(keep)
        raw = s.value[keep]
        sm = smooth(s.value, smoothing, weight=weight, window=window, at=keep) \
            if smoothing != "none" else None
        bad = np.flatnonzero(~np.isfinite(raw))  # positions among the drawn points
        color = SPLIT_COLORS.get(r.split, COLORWAY[2]) if by_split else \
            COLORWAY[groups.index(r.group) % len(COLORWAY)]
        dash = "dash" if (r.split == "validation" and not by_split) else "solid"
        name = r.run if r.tag == r.metric else f"{r.run} · {r.tag}"
        lines.append(CurveLine(name, color, dash, xs[keep], raw, sm, xs[keep][bad],
                               _anchor(raw, sm, bad), [_label(v) for v in raw[bad]], r.group))
        if r.split == "validation" and metric_direction(r.metric):
            best = best_step(s.step, s.value, metric_direction(r.metric))
            if best is not None:
                at = int(np.flatnonzero(s.step == best[0])[0])
                marks.append(Mark(xs[at], best[1], f"best {r.run if not by_split else 'val'}"
                                  f": step {best[0]} ({best[1]:.4g})"))
    for p in train_val_pairs(list(zip(labels.run, labels.tag, strict=True))).itertuples():
        if metric_direction(p.metric) != "min":
            continue
        tr, va = series[(p.train_run, p.train_tag)], series[(p.val_run, p.val_tag)]
        onset = overfitting(tr.step, tr.value, va.step, va.value)
        if onset is not None:
            at = int(np.flatnonzero(va.step == onset["step"])[0])
            xs = _x(va, axis, np.nanmin(va.wall_time) if np.isfinite(va.wall_time).any() else 0)
            xs = xs / unit if axis == "relative" else xs
            marks.append(Mark(xs[at], None, f"overfitting from step {onset['step']} (val "
                              f"+{onset['rise']:.0%})", color="#c0392b", x_end=xs[-1]))
    parts = [f"showing {shown:,} of {total:,} points"]
    if smoothing != "none":
        parts.append(f"smoothing: {SMOOTHING_TITLES[smoothing]} "
                     + (f"{weight:g}" if smoothing == "ema" else f"{window} pts"))
    if no_wall:
        parts.append("no wall times in these logs: x is the step")
    x_title = {"step": "step", "wall": "wall time",
               "relative": f"relative time ({ {1.0: 's', 60.0: 'min', 3600.0: 'h'}[unit]})"}[axis]
    return curves_figure(lines, title=metric or "Training curves", subtitle=" · ".join(parts),
                         x_title=x_title, log_y=y_scale == "log", marks=marks,
                         x_is_date=axis == "wall")


def _anchor(raw: np.ndarray, sm: np.ndarray | None, bad: np.ndarray) -> np.ndarray:
    """Where to draw NaN/Inf markers: at the last finite (smoothed) value before them."""
    ref = sm if sm is not None else raw
    finite = np.flatnonzero(np.isfinite(ref))
    if not len(finite):
        return np.zeros(len(bad))
    pos = np.searchsorted(finite, bad) - 1
    return ref[finite[np.clip(pos, 0, len(finite) - 1)]]


def _label(v: float) -> str:
    return "NaN" if np.isnan(v) else ("+Inf" if v > 0 else "-Inf")


def _verdicts(ctx: PanelContext, runs: str = "", tags: str = "") -> pd.DataFrame:
    logs = logs_for(ctx)
    series = logs.series()
    labels = _selected(logs, runs, tags)
    rows = []
    for p in train_val_pairs(list(zip(labels.run, labels.tag, strict=True))).itertuples():
        direction = metric_direction(p.metric)
        tr, va = series[(p.train_run, p.train_tag)], series[(p.val_run, p.val_tag)]
        best = best_step(va.step, va.value, direction)
        onset = overfitting(tr.step, tr.value, va.step, va.value) if direction == "min" \
            else None
        verdict = ("overfitting: validation loss rises from step "
                   f"{onset['step']} while training loss falls" if onset else
                   "no sign of overfitting" if direction == "min" else "")
        rows.append({"group": p.group, "metric": p.metric, "best_val_step":
                     best[0] if best else None, "best_val": best[1] if best else None,
                     "last_val": float(va.value[-1]) if len(va) else None,
                     "overfitting_from": onset["step"] if onset else None, "verdict": verdict})
    return pd.DataFrame(rows, columns=["group", "metric", "best_val_step", "best_val",
                                       "last_val", "overfitting_from", "verdict"])


def _status(ctx: PanelContext) -> dict[str, Any]:
    logs = logs_for(ctx)
    series = logs.series()
    return {"files": logs.files(), "series": len(series),
            "points": int(sum(len(s) for s in series.values())),
            "nonfinite": int(sum((~np.isfinite(s.value)).sum() for s in series.values())),
            "histogram_tags": len(logs.histogram_index()), "problems": logs.problems()}


def _histogram_index(ctx: PanelContext) -> pd.DataFrame:
    return pd.DataFrame(logs_for(ctx).histogram_index(), columns=["run", "tag", "steps"])


def _histograms(ctx: PanelContext, run: str = "", tag: str = "", mode: str = "heatmap"):
    logs = logs_for(ctx)
    hists = logs.histogram_series(run, tag)
    if not hists:
        return message_figure(f"No histograms for run {run!r}, tag {tag!r}.",
                              title="Histograms over training")
    steps = np.array([h.step for h in hists])
    title = f"{tag} ({run}) over training"
    buckets = [h.buckets for h in hists]
    if mode == "ridge":
        return histogram_ridge(steps, buckets, title=title)
    return histogram_heatmap(steps, buckets, title=title)


_FILTERS = (Param("runs", "str", "", help="Regular expression on run names."),
            Param("tags", "str", "", help="Regular expression on tags."))
register(Panel("training_curves", "Training curves", "figure", _curves, params=(
    Param("metric", "str", "", help="The metric to draw (train and validation together)."),
    *_FILTERS,
    Param("x", "str", "step", X_AXES, "Step, time since the run's first point, or wall time."),
    Param("y_scale", "str", "linear", ("linear", "log"), "Linear or log y axis."),
    Param("smoothing", "str", "ema", SMOOTHING, "Smoothing method."),
    Param("weight", "float", 0.6, help="EMA weight in [0, 1): TensorBoard's debiased EMA, "
          "same formula and default.", min_value=0.0, max_value=0.99, step=0.01),
    Param("window", "int", 9, help="Points the centred moving average spans; the Gaussian's "
          "standard deviation is a quarter of it.", min_value=3, max_value=201, step=2),
    Param("points", "int", 2000, help="Most points drawn per series: downsampled with "
          "MinMaxLTTB, which keeps every minimum and maximum; NaN/Inf always shown.",
          presets=(500, 1000, 2000, 5000, 10000)),
), needs_model=False, uses=_LOGDIR,
    description="One metric's curves over every run, smoothed over the faint raw curve, best "
                "validation step starred, overfitting shaded, NaN/Inf marked."))
register(Panel("curve_index", "Scalar series", "table", _index, params=_FILTERS,
               needs_model=False, uses=_LOGDIR,
               description="Every scalar series with its split, metric, points and range."))
register(Panel("train_val_verdicts", "Train/validation", "table", _verdicts, params=_FILTERS,
               needs_model=False, uses=_LOGDIR,
               description="Best validation step and overfitting onset per metric."))
register(Panel("logdir_status", "Logdir", "card", _status, needs_model=False, uses=_LOGDIR,
               description="Files, series and points read; damaged or incomplete records."))
register(Panel("histogram_index", "Histogram tags", "table", _histogram_index,
               needs_model=False, uses=_LOGDIR,
               description="Every histogram series (run, tag, steps)."))
register(Panel("histogram_history", "Histograms over training", "figure", _histograms, params=(
    Param("run", "str", "", help="The run."), Param("tag", "str", "", help="The tag."),
    Param("mode", "str", "heatmap", ("heatmap", "ridge"), "Heatmap or ridge (offset) view."),
), needs_model=False, uses=_LOGDIR,
    description="How a weight (or any histogram) distribution changes over training."))
