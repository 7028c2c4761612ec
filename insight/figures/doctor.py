"""Figures of the doctor's evidence: one small chart per finding where one helps.

`finding_figure(plot, title=...)` draws the plain data a check kept for its finding
(`insight.doctor.Report.plot(finding)`), by its `kind`:

- `"gradient_norms"`: the Gradients page's norms by depth (`gradient_norms_figure`) with the
  finding's layers circled in red;
- `"curve"`: training (and validation) curves with the step that matters marked (NaN,
  divergence, overfitting onset);
- `"bars"`: one bar per class or layer, the ones that matter in red (class counts, dead
  units per layer);
- `"lr_finder"`: the learning-rate range test's loss against the rate (log axis), the
  steepest fall, the divergence and the file's rate marked.

Example:

>>> fig = finding_figure({"kind": "bars", "title": "Examples per class", "labels": ["0", "1"],
...                       "values": [90, 10], "highlight": ["1"]})
>>> fig.data[0].marker.color
('#3b6fb6', '#b8453c')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from insight.figures.gradients import gradient_norms_figure
from insight.figures.template import COLORWAY, apply_template, e_notation

__all__ = ["finding_figure", "FIGURE_HEIGHT", "MARK_COLOR"]

FIGURE_HEIGHT = 340  # a finding's figure sits beside its text: small
MARK_COLOR = COLORWAY[3]


def finding_figure(plot: Mapping[str, Any], *, title: str | None = None) -> go.Figure:
    """The figure of one finding's evidence (see the module docstring for the kinds).

    Args:
        plot: the data a check kept (`Report.plot(finding)`), with its `kind`.
        title: the title (the finding's name); the plot's own title then becomes the
            subtitle. `None` uses the plot's own as the title. Defaults to `None`.

    Raises:
        ValueError: an unknown kind.
    """
    kind = plot.get("kind")
    builders = {"gradient_norms": _gradient_norms, "curve": _curve, "bars": _bars,
                "lr_finder": _lr_finder}
    if kind not in builders:
        raise ValueError(f"Unknown doctor figure kind {kind!r}; it is one of "
                         f"{', '.join(builders)}. Received: kind={kind!r}")
    own = str(plot.get("title", ""))
    if title and kind != "gradient_norms":
        title = f"{title}<br><sup>{own}</sup>" if own else title
    fig = builders[kind](plot, title or own)
    if kind != "gradient_norms":
        below = kind == "curve"  # its legend sits under the axis
        fig.update_layout(height=FIGURE_HEIGHT + (60 if below else 0),
                          margin=dict(t=90 if title else 60, b=110 if below else 40, l=60,
                                      r=20))
    return fig


def _gradient_norms(plot: Mapping[str, Any], title: str) -> go.Figure:
    table = pd.DataFrame(plot["table"])
    fig = gradient_norms_figure(table, title=title or "Gradient norms by depth",
                                subtitle=("gradient norms by depth, " if title else "")
                                + f"of the {plot.get('target', 'loss')}")
    marked = [m for m in plot.get("marked", []) if m in set(table["layer"])]
    rows = table.set_index("layer")
    y = [rows.loc[m, "weight_grad_norm"] for m in marked]
    floor = float(np.nanmin(np.where(table["weight_grad_norm"] > 0,
                                     table["weight_grad_norm"], np.nan))) / 10 \
        if (table["weight_grad_norm"] > 0).any() else 1e-8
    y = [v if isinstance(v, float) and v > 0 and math.isfinite(v) else floor for v in y]
    if marked:
        fig.add_trace(go.Scatter(
            x=marked, y=y, mode="markers", name="where the doctor looks",
            marker=dict(symbol="circle-open", size=18, color=MARK_COLOR, line=dict(width=3)),
            hovertemplate="%{x}: flagged<extra></extra>"))
    fig.update_layout(height=480, margin=dict(t=70, b=40), title_font_size=14,
                      legend=dict(orientation="h", y=-0.42, yanchor="top", x=0,
                                  font=dict(size=10)))
    fig.update_xaxes(title_text="")
    return fig


def _curve(plot: Mapping[str, Any], title: str) -> go.Figure:
    fig = go.Figure()
    for i, line in enumerate(plot.get("lines", [])):
        x = np.asarray(line["x"], np.float64)
        y = np.asarray(line["y"], np.float64)
        ok = np.isfinite(y)
        fig.add_trace(go.Scatter(
            x=x[ok], y=y[ok], name=line["name"], mode="lines+markers" if len(x) <= 60
            else "lines", line=dict(color=COLORWAY[i % len(COLORWAY)], width=2),
            marker=dict(size=5), hovertemplate="%{x}: %{y:.4g}<extra>" + line["name"] +
            "</extra>"))
        if (~ok).any():
            top = float(np.nanmax(y[ok])) if ok.any() else 1.0
            fig.add_trace(go.Scatter(
                x=x[~ok], y=[top] * int((~ok).sum()), mode="markers", name="NaN/Inf",
                legendgroup="nonfinite", showlegend=not any(t.name == "NaN/Inf"
                                                            for t in fig.data),
                marker=dict(symbol="x", size=9, color=MARK_COLOR),
                hovertemplate="%{x}: " + line["name"] + " NaN/Inf<extra></extra>"))
    mark = plot.get("mark")
    if mark is not None:
        fig.add_vline(x=float(mark), line=dict(color=MARK_COLOR, dash="dash", width=2))
        fig.add_annotation(x=float(mark), y=1, yref="paper", text=plot.get("mark_text", ""),
                           showarrow=False, xanchor="left", yanchor="bottom",
                           font=dict(color=MARK_COLOR, size=11))
    apply_template(fig, title=title)
    fig.update_layout(xaxis_title=plot.get("x_title", "step"),
                      yaxis_title=plot.get("y_title", ""), hovermode="x unified",
                      legend=dict(orientation="h", y=-0.3, yanchor="top", x=0,
                                  font=dict(size=11)))
    return e_notation(fig)


def _bars(plot: Mapping[str, Any], title: str) -> go.Figure:
    labels = [str(v) for v in plot["labels"]]
    highlight = {str(v) for v in plot.get("highlight", [])}
    percent = bool(plot.get("percent"))
    fig = go.Figure(go.Bar(
        x=labels, y=plot["values"],
        marker=dict(color=tuple(MARK_COLOR if v in highlight else COLORWAY[0] for v in labels)),
        hovertemplate="%{x}: %{y" + (":.0%" if percent else ":,") + "}<extra></extra>"))
    apply_template(fig, title=title)
    fig.update_layout(xaxis=dict(title=plot.get("x_title", ""), type="category"),
                      yaxis=dict(title=plot.get("y_title", ""),
                                 tickformat=".0%" if percent else None,
                                 range=[0, 1] if percent else None), showlegend=False)
    return fig


def _lr_finder(plot: Mapping[str, Any], title: str) -> go.Figure:
    fig = go.Figure(go.Scatter(
        x=plot["lrs"], y=plot["losses"], mode="lines", name="loss (smoothed)",
        line=dict(color=COLORWAY[0], width=2),
        hovertemplate="rate %{x:.2g}: loss %{y:.4g}<extra></extra>"))
    marks = [("steepest", plot.get("steepest"), COLORWAY[2], "falls fastest"),
             ("diverged", plot.get("diverged"), MARK_COLOR, "diverges"),
             ("current", plot.get("current"), "#555555", "file's rate")]
    losses = np.asarray(plot["losses"], np.float64)
    lo, hi = (float(np.nanmin(losses)), float(np.nanmax(losses))) if losses.size else (0.0, 1.0)
    for _, x, color, text in marks:  # vertical lines as traces: shapes on log axes mislead
        if x is None:
            continue
        fig.add_trace(go.Scatter(
            x=[float(x), float(x)], y=[lo, hi], mode="lines+text", name=text,
            line=dict(color=color, dash="dash", width=2), text=["", f" {text}: {x:.2g}"],
            textposition="middle right", textfont=dict(color=color, size=11),
            hovertemplate=f"{text}: {x:.2g}<extra></extra>"))
    apply_template(fig, title=title or "Learning-rate range test")
    fig.update_layout(xaxis=dict(type="log", title="learning rate", exponentformat="e"),
                      yaxis_title="loss", showlegend=False)
    return fig
