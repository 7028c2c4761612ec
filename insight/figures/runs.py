"""Figures of runs with their hyperparameters: a parallel-coordinates plot, one line per run,
coloured by a chosen metric.

Example:

>>> import pandas as pd
>>> from insight.figures.runs import parallel_coordinates
>>> t = pd.DataFrame({"run": ["a", "b"], "lr": [0.1, 0.01], "opt": ["sgd", "adam"],
...                   "val_loss (best)": [0.5, 0.3]})
>>> parallel_coordinates(t, ["lr", "opt"], "val_loss (best)").data[0].type
'parcoords'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from insight.figures.template import apply_template

__all__ = ["parallel_coordinates"]


def parallel_coordinates(table: pd.DataFrame, hparams: Sequence[str], color: str, *,
                         direction: str = "", display: Mapping[str, str] | None = None,
                         log_axes: Sequence[str] = ()) -> go.Figure:
    """One axis per hyperparameter, then the metric `color`; one line per run.

    Text (and boolean) hyperparameters become axes with one tick per value, in sorted order;
    numeric ones spanning a decade or more get a log10 axis.

    Args:
        table: `insight.curves.hparams.HParamsRuns.table`.
        hparams: the hyperparameter columns, in axis order.
        color: the metric column that colours the lines (and is the last axis).
        direction: `"min"` when lower is better (the best runs are drawn dark). Defaults to
            `""`.
        display: display names of columns. Defaults to `None`.
        log_axes: columns drawn on a log10 axis whatever their span. Defaults to `()`.
    """
    display = dict(display or {})
    dims = [_dimension(table[h], display.get(h, h), h in log_axes) for h in hparams]
    metric = pd.to_numeric(table[color], errors="coerce").to_numpy(np.float64)
    label = display.get(color.rsplit(" (", 1)[0], color.rsplit(" (", 1)[0])
    label += " (" + color.rsplit(" (", 1)[1] if " (" in color else ""
    dims.append(dict(label=label, values=metric))
    fig = go.Figure(go.Parcoords(
        dimensions=dims,
        # no colour bar: the last axis is the metric, its values beside the lines' colours
        line=dict(color=metric, colorscale="Viridis", reversescale=direction == "min",
                  showscale=False),
        labelangle=0, labelside="top"))
    better = {"min": "lower is better", "max": "higher is better"}.get(direction, "")
    apply_template(fig, title=f"{len(table)} runs by hyperparameters<br><sup>coloured by "
                              f"{label}{f' ({better}: the best runs are yellow)' if better else ''}"
                              "; drag along an axis to filter</sup>")
    fig.update_layout(height=440, margin=dict(l=70, r=70, t=110, b=40))
    return fig


def _dimension(col: pd.Series, label: str, log: bool) -> dict:
    numbers = pd.to_numeric(col, errors="coerce")
    is_number = col.notna().any() and numbers.notna().eq(col.notna()).all() \
        and col.map(type).ne(bool).all()
    if is_number:
        values = numbers.to_numpy(np.float64)
        positive = values[np.isfinite(values)]
        if log or (len(positive) and positive.min() > 0
                   and positive.max() / positive.min() >= 10):
            ticks = np.unique(positive)
            return dict(label=f"{label} (log)", values=np.log10(values),
                        tickvals=np.log10(ticks), ticktext=[f"{t:g}" for t in ticks])
        return dict(label=label, values=values)
    text = col.astype(str).where(col.notna(), "(none)")
    levels = sorted(text.unique())
    codes = text.map({v: i for i, v in enumerate(levels)}).to_numpy(np.float64)
    return dict(label=label, values=codes, tickvals=list(range(len(levels))),
                ticktext=levels, range=[-0.3, len(levels) - 0.7] if len(levels) > 1
                else [-1, 1])
