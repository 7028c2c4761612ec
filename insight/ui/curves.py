"""Widgets of the Training page: the curve controls, the logdir's health, the histogram picker.

Defaults, choices, ranges and help come from the panels' `Param` schemas
(`insight.panels.curves`), so a widget and a deep link always mean the same thing.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from insight.errors import DataError, StorageError
from insight.panels.curves import SMOOTHING_TITLES, X_TITLES
from insight.panels.registry import Param
from insight.ui.feedback import show_error
from insight.ui.widgets import param_of

__all__ = ["require_logdir", "curve_controls", "logdir_health", "logdir_error", "no_scalars",
           "histogram_controls", "VERDICT_COLUMNS"]

VERDICT_COLUMNS = {  # the train_val_verdicts table
    "unit": st.column_config.TextColumn("unit", help="What the steps count: epochs or "
                                        "steps (batches, or whatever the logger counted)."),
    "best_val_step": st.column_config.NumberColumn("best val at"),
    "best_val": st.column_config.NumberColumn("best val", format="%.4g"),
    "last_train": st.column_config.NumberColumn("last train", format="%.4g"),
    "last_val": st.column_config.NumberColumn("last val", format="%.4g"),
    "overfitting_from": None,  # the verdict says it
    "verdict": st.column_config.TextColumn("verdict", width="large"),
}


def _param(name: str) -> Param:
    return param_of("training_curves", name)


def require_logdir() -> str:
    """The sidebar's logdir, or what to give and `st.stop()`."""
    logdir = st.session_state.get("insight_logdir")
    if not logdir:
        st.info("**No logdir.** Give one in the sidebar (or `insight serve --logdir DIR`): a "
                "TensorBoard logdir, a CSVLogger `.csv` or a Keras history `.json`. The samples "
                "bring their own.", icon=":material/arrow_back:")
        st.stop()
    return logdir


def curve_controls() -> tuple[bool, dict[str, Any]]:
    """Draw the filters, axes and smoothing controls; returns `(live, params)`: whether to
    follow runs still being written, and the `training_curves` parameters but `metric`."""
    top = st.columns([1.8, 1.8, 2.4, 1.4], vertical_alignment="bottom")
    runs = top[0].text_input("Runs (regex)", key="train_runs",
                             placeholder="e.g. train|validation")
    tags = top[1].text_input("Tags (regex)", key="train_tags", placeholder="e.g. loss|acc")
    x_axis = _param("x")
    x = top[2].segmented_control("x axis", x_axis.choices, default=x_axis.default,
                                 key="train_x", format_func=X_TITLES.get) or x_axis.default
    log_y = top[3].toggle("Log y", key="train_log")  # the toggles stacked: room for labels
    live = top[3].toggle("Live", key="train_live", help="Follow runs still being written: "
                         "re-read only the bytes appended since the last look, every 2 s.")
    row = st.columns([2, 3, 3], vertical_alignment="bottom")
    smoothing, weight, window, points = (_param(n) for n in
                                         ("smoothing", "weight", "window", "points"))
    method = row[0].selectbox("Smoothing", smoothing.choices, key="train_smoothing",
                              index=smoothing.choices.index(smoothing.default),
                              format_func=SMOOTHING_TITLES.get)
    if method == "ema":
        row[1].slider("Weight", weight.min_value, weight.max_value, weight.default, weight.step,
                      key="train_weight", help=weight.help)
    elif method != "none":
        row[1].slider("Window (points)", window.min_value, window.max_value, window.default,
                      window.step, key="train_window", help=window.help)
    shown = row[2].select_slider("Points per series", points.presets, points.default,
                                 key="train_points", help=points.help)
    return live, dict(runs=runs, tags=tags, x=x, y_scale="log" if log_y else "linear",
                      smoothing=method, weight=st.session_state.get("train_weight",
                                                                    weight.default),
                      window=st.session_state.get("train_window", window.default),
                      points=shown)


def logdir_health(status: dict[str, Any], logdir: str, live: bool) -> None:
    """The `logdir_status` card in a line, and its problems and NaN/Inf values as warnings."""
    line = (f"`{logdir}` · {status['files']} file(s) · {status['series']} series · "
            f"{status['points']:,} points")
    st.caption(line + (" · **live**" if live else ""))
    for problem in status["problems"]:
        st.warning(problem, icon=":material/warning:")
    if status["nonfinite"]:
        n = status["nonfinite"]
        st.warning(f"**{n:,} NaN/Inf value{'s' if n > 1 else ''}** in these logs: marked with "
                   "a red × on the curves where they occur.", icon=":material/warning:")


def logdir_error(exc: BaseException) -> None:
    """Why the logdir cannot be read, headed as the logdir's problem (a missing bucket,
    refused credentials, a dropped connection, a path that is not a log); anything else as
    `show_error` shows it. In live mode the next look retries where the read stopped."""
    if isinstance(exc, (StorageError, DataError)):
        st.error(f"**Cannot read the logdir.** {exc}", icon=":material/error:")
        return
    show_error(exc)


def no_scalars(filtered: bool) -> None:
    """The empty state: nothing matches the filters, or nothing is logged yet."""
    st.info("**No scalars here yet**" + (" matching these filters." if filtered else
            ": no event file, CSVLogger CSV or history JSON with values. In live mode "
            "curves appear as soon as the first points are written."),
            icon=":material/show_chart:")


def histogram_controls(index: pd.DataFrame) -> dict[str, Any]:
    """Which histogram series of a `histogram_index` table to draw, and how; returns the
    `histogram_history` parameters."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    choice = left.selectbox("Histogram", range(len(index)), key="train_hist",
                            format_func=lambda i: f"{index.run.iloc[i]} · {index.tag.iloc[i]}",
                            help="Weight histograms written by Keras' "
                                 "TensorBoard(histogram_freq=...) or tf.summary.histogram.")
    mode = param_of("histogram_history", "mode")
    view = right.segmented_control("View", mode.choices, default=mode.default,
                                   key="train_hist_mode") or mode.default
    return {"run": index.run.iloc[choice], "tag": index.tag.iloc[choice], "mode": view}
