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
    train_val_verdict,
)
from insight.errors import DataError, UsageError
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
from insight.remote import is_remote

__all__ = ["logs_for", "X_AXES", "X_TITLES", "SMOOTHING_TITLES", "metric_order",
           "step_unit", "VERDICT_TABLE"]

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
    path = ctx.logdir if is_remote(str(ctx.logdir)) else Path(ctx.logdir)  # a URL stays whole
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


def step_unit(logs: Logdir, rows: pd.DataFrame) -> str:
    """`"epoch"` when every series of `rows` (`run`, `metric` columns) counts epochs (a
    CSVLogger CSV, a history JSON, or the TensorBoard callback's `epoch_*` tags), else
    `"step"`."""
    tables = logs.table_runs()
    epochs = [str(r) in tables or str(m).startswith("epoch_")
              for r, m in zip(rows["run"], rows["metric"], strict=True)]
    return "epoch" if epochs and all(epochs) else "step"


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


def _metric(ctx: PanelContext, logs: Logdir, selected: pd.DataFrame, metric: str, runs: str,
            tags: str) -> str:
    """The metric to draw: `metric`, or the first of `metric_order` (losses first) among
    the selected series when it is empty.

    Raises:
        DataError: the logs hold no scalars.
        UsageError: an unknown metric (the message lists the known ones), or filters that
            leave no series of it.
    """
    labels = label_series(list(logs.series()))
    every = metric_order(labels)
    if not every:
        raise DataError("These logs hold no scalar series yet.",
                        "Log with keras.callbacks.TensorBoard, a CSVLogger or tf.summary; in "
                        "live mode curves appear as soon as the first points are written.",
                        f"logdir={str(ctx.logdir)!r}")
    if metric and metric not in every:
        raise UsageError(f"No metric {metric!r} in these logs. The metrics are: "
                         f"{_listed(every)}.", "Pass one of them as metric (or none for the "
                         "first).", f"metric={metric!r}")
    shown = metric_order(selected)
    if metric in shown or (not metric and shown):
        return metric or shown[0]
    runs_of = sorted((labels[labels.metric == metric] if metric else labels).run.unique())
    raise UsageError(f"No series{f' of metric {metric!r}' if metric else ''} match these "
                     f"filters. {'Its' if metric else 'The'} runs are: {_listed(runs_of)}.",
                     "Loosen the runs and tags regular expressions.",
                     f"metric={metric!r}, runs={runs!r}, tags={tags!r}")


def _listed(names: list[str], most: int = 30) -> str:
    return ", ".join(names[:most]) + (f", … ({len(names) - most} more)" if len(names) > most
                                      else "")


def _curves(ctx: PanelContext, metric: str = "", runs: str = "", tags: str = "",
            x: str = "step", y_scale: str = "linear", smoothing: str = "ema",
            weight: float = 0.6, window: int = 9, points: int = 2000):
    logs = logs_for(ctx)
    series = logs.series()
    selected = _selected(logs, runs, tags)
    metric = _metric(ctx, logs, selected, metric, runs, tags)
    labels = selected[selected.metric == metric]
    unit = step_unit(logs, labels)
    groups = sorted(labels.group.unique())
    by_split = len(groups) == 1
    roles = labels.split.map({"validation": "validation"}).fillna(
        "train" if (labels.split == "validation").any() else "")  # train_val_pairs' sides
    once = roles.value_counts()
    no_wall = x != "step" and not any(np.isfinite(series[(r, t)].wall_time).any()
                                      for r, t in zip(labels.run, labels.tag, strict=True))
    axis = "step" if no_wall else x
    lines, marks, shown, total, scale = [], [], 0, 0, 1.0
    if axis == "relative":
        span = max(np.nanmax(series[(r, t)].wall_time) - np.nanmin(series[(r, t)].wall_time)
                   for r, t in zip(labels.run, labels.tag, strict=True))
        scale = 3600.0 if span > 7200 else 60.0 if span > 120 else 1.0
    for r in labels.assign(role=roles).sort_values(["group", "split"]).itertuples(index=False):
        s = series[(r.run, r.tag)]
        total += len(s)
        origin = np.nanmin(s.wall_time) if np.isfinite(s.wall_time).any() else 0.0
        xs = _x(s, axis, origin)
        xs = xs / scale if axis == "relative" else xs
        keep = downsample(s.step if axis == "step" else np.arange(len(s)), s.value, points)
        shown += len(keep)
        raw = s.value[keep]
        sm = smooth(s.value, smoothing, weight=weight, window=window, at=keep) \
            if smoothing != "none" else None
        bad = np.flatnonzero(~np.isfinite(raw))  # positions among the drawn points
        color = SPLIT_COLORS.get(r.split, COLORWAY[2]) if by_split else \
            COLORWAY[groups.index(r.group) % len(COLORWAY)]
        dash = "dash" if (r.split == "validation" and not by_split) else "solid"
        name = r.role if by_split and r.role and once[r.role] == 1 else \
            r.run if r.tag == r.metric else f"{r.run} · {r.tag}"
        lines.append(CurveLine(name, color, dash, xs[keep], raw, sm, xs[keep][bad],
                               _anchor(raw, sm, bad), [_label(v) for v in raw[bad]], r.group))
        direction = metric_direction(r.metric)
        best = best_step(s.step, s.value, direction) if r.split == "validation" else None
        if best is not None:  # starred on the line drawn (the smoothed one, if any)
            at = int(np.flatnonzero(s.step == best[0])[0])
            on = best[1] if sm is None else float(smooth(
                s.value, smoothing, weight=weight, window=window, at=np.array([at]))[0])
            value = f"raw {best[1]:.4g}" if sm is not None else f"{best[1]:.4g}"
            marks.append(Mark(xs[at], on, f"best {r.run if not by_split else 'val'}: "
                              f"{unit} {best[0]} ({value})"))
    for p in train_val_pairs(list(zip(labels.run, labels.tag, strict=True))).itertuples():
        direction = metric_direction(p.metric)
        if not direction:
            continue
        tr, va = series[(p.train_run, p.train_tag)], series[(p.val_run, p.val_tag)]
        onset = overfitting(tr.step, tr.value, va.step, va.value, direction=direction)
        if onset is not None:
            at = int(np.flatnonzero(va.step == onset["step"])[0])
            xs = _x(va, axis, np.nanmin(va.wall_time) if np.isfinite(va.wall_time).any() else 0)
            xs = xs / scale if axis == "relative" else xs
            change = f"+{onset['rise']:.0%}" if direction == "min" else f"−{onset['rise']:.0%}"
            marks.append(Mark(xs[at], None, f"overfitting from {unit} {onset['step']} (val "
                              f"{change})", color="#c0392b", x_end=xs[-1]))
    parts = [f"showing {shown:,} of {total:,} points"]
    if smoothing != "none":
        parts.append(f"smoothing: {SMOOTHING_TITLES[smoothing]} "
                     + (f"{weight:g}" if smoothing == "ema" else f"{window} pts"))
    if no_wall:
        parts.append("no wall times in these logs: x is the step")
    x_title = {"step": unit, "wall": "wall time",
               "relative": f"relative time ({ {1.0: 's', 60.0: 'min', 3600.0: 'h'}[scale]})"}[axis]
    return curves_figure(lines, title=metric, subtitle=" · ".join(parts), x_title=x_title,
                         log_y=y_scale == "log", marks=marks, x_is_date=axis == "wall",
                         integer_x=axis == "step")


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


VERDICT_TABLE = ["group", "metric", "unit", "best_val_step", "best_val", "last_train",
                 "last_val", "overfitting_from", "verdict"]


def _verdicts(ctx: PanelContext, runs: str = "", tags: str = "") -> pd.DataFrame:
    logs = logs_for(ctx)
    series = logs.series()
    labels = _selected(logs, runs, tags)
    rows = []
    for p in train_val_pairs(list(zip(labels.run, labels.tag, strict=True))).itertuples():
        direction = metric_direction(p.metric)
        tr, va = series[(p.train_run, p.train_tag)], series[(p.val_run, p.val_tag)]
        best = best_step(va.step, va.value, direction)
        unit = step_unit(logs, pd.DataFrame({"run": [p.train_run, p.val_run],
                                             "metric": [p.metric, p.metric]}))
        v = train_val_verdict(tr.step, tr.value, va.step, va.value, direction, unit=unit)
        rows.append({"group": p.group, "metric": p.metric, "unit": unit,
                     "best_val_step": best[0] if best else None,
                     "best_val": best[1] if best else None, "last_train": v.train_last,
                     "last_val": v.val_last, "overfitting_from": v.onset, "verdict": v.text})
    table = pd.DataFrame(rows, columns=VERDICT_TABLE)
    return table.astype({"best_val_step": "Int64", "overfitting_from": "Int64"})


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
    index = [(r, t) for r, t, _ in logs.histogram_index()]
    if not index:
        raise DataError("These logs hold no histograms.",
                        "keras.callbacks.TensorBoard(histogram_freq=1) writes the weights' "
                        "histograms every epoch (tf.summary.histogram any tensor's).",
                        f"logdir={str(ctx.logdir)!r}")
    found = [(r, t) for r, t in index if (not run or r == run) and (not tag or t == tag)]
    if not found:
        raise UsageError(f"No histograms for run {run!r}, tag {tag!r}. The histogram series "
                         f"are (run: tag): {_listed([f'{r}: {t}' for r, t in index])}.",
                         "Pass one of them as run and tag (or neither, for the first).",
                         f"run={run!r}, tag={tag!r}")
    run, tag = found[0]
    hists = logs.histogram_series(run, tag)
    steps = np.array([h.step for h in hists])
    title = f"{tag} ({run}) over training"
    buckets = [h.buckets for h in hists]
    if mode == "ridge":
        return histogram_ridge(steps, buckets, title=title)
    return histogram_heatmap(steps, buckets, title=title)


_FILTERS = (Param("runs", "str", "", help="Regular expression on run names."),
            Param("tags", "str", "", help="Regular expression on tags."))
register(Panel("training_curves", "Training curves", "figure", _curves, params=(
    Param("metric", "str", "", help="The metric to draw (train and validation together); "
          "empty: the first in the Training page's order (losses first)."),
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
               description="Per metric: best validation step, and the verdict: overfitting "
                           "(from which step), a large train/validation gap, no sign, or not "
                           "enough epochs to tell."))
register(Panel("logdir_status", "Logdir", "card", _status, needs_model=False, uses=_LOGDIR,
               description="Files, series and points read; damaged or incomplete records."))
register(Panel("histogram_index", "Histogram tags", "table", _histogram_index,
               needs_model=False, uses=_LOGDIR,
               description="Every histogram series (run, tag, steps)."))
register(Panel("histogram_history", "Histograms over training", "figure", _histograms, params=(
    Param("run", "str", "", help="The run; empty: the first with histograms."),
    Param("tag", "str", "", help="The tag; empty: the run's first."),
    Param("mode", "str", "heatmap", ("heatmap", "ridge"), "Heatmap or ridge (offset) view."),
), needs_model=False, uses=_LOGDIR,
    description="How a weight (or any histogram) distribution changes over training."))
