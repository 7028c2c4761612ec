"""Training-curve figures: overlaid scalar curves (smoothed over a faint raw line, best and
overfitting marks, NaN/Inf markers) and histograms over training (heatmap or ridge).

Builders take prepared arrays (`insight.panels.curves` does the reading, smoothing and
downsampling) and return `go.Figure`s in the one insight template.

Example:

>>> import numpy as np
>>> line = CurveLine("train", "#3b6fb6", "solid", np.arange(3), np.array([3.0, 2, 1]))
>>> fig = curves_figure([line], title="loss", x_title="step")
>>> [t.name for t in fig.data]
['train']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from insight.figures.template import apply_template, template_json

__all__ = ["CurveLine", "Mark", "curves_figure", "histogram_heatmap", "histogram_ridge"]

NONFINITE_COLOR = "#c0392b"
MARKERS_UP_TO = 30  # series this short get a marker on each point (one point is no line)


@dataclass
class CurveLine:
    """One series as drawn: `y` raw, `smoothed` (or `None`), `nonfinite` x positions with
    labels ("NaN", "+Inf", "-Inf") drawn as markers at `nonfinite_y`."""

    name: str
    color: str
    dash: str
    x: np.ndarray
    y: np.ndarray
    smoothed: np.ndarray | None = None
    nonfinite_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    nonfinite_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    nonfinite_label: list[str] = field(default_factory=list)
    group: str = ""


@dataclass
class Mark:
    """A point to mark (best validation epoch) or a span (overfitting, `x_end` set)."""

    x: float
    y: float | None
    label: str
    color: str = "#2e7d32"
    x_end: float | None = None


def curves_figure(lines: list[CurveLine], *, title: str, x_title: str, subtitle: str = "",
                  log_y: bool = False, marks: list[Mark] | None = None, x_is_date=False,
                  integer_x: bool = False, height: int = 400) -> go.Figure:
    """Overlaid curves; with smoothing, the raw curve is drawn faint behind the smoothed one.

    Series of at most `MARKERS_UP_TO` points get markers (a one-point series is otherwise
    invisible). With `integer_x` (steps, epochs) the x axis never shows fractional ticks.
    The y axis writes powers of ten as `1e-12`, never with SI prefixes ("1p", "50µ").

    Built as a plain dict and handed to plotly unvalidated: validating a few thousand points
    per trace cost ~100 ms per chart, most of a smoothing change (the builder is covered by
    tests instead).
    """
    traces: list[dict] = []
    nonfinite_shown = False
    for line in lines:
        smoothed = line.smoothed is not None
        dots = len(line.x) <= MARKERS_UP_TO
        traces.append(dict(
            type="scattergl", x=line.x, y=line.y, mode="lines+markers" if dots else "lines",
            name=line.name, legendgroup=line.name, showlegend=not smoothed,
            opacity=0.28 if smoothed else 1.0, marker=dict(color=line.color, size=
                                                           4 if smoothed else 6),
            line=dict(color=line.color, dash=line.dash, width=1.2 if smoothed else 1.8),
            hovertemplate=f"{line.name}<br>%{{x}}: %{{y:.5g}}" + (" (raw)" if smoothed else "")
            + "<extra></extra>"))
        if smoothed:
            traces.append(dict(
                type="scattergl", x=line.x, y=line.smoothed, name=line.name,
                mode="lines+markers" if dots else "lines", legendgroup=line.name,
                marker=dict(color=line.color, size=6),
                line=dict(color=line.color, dash=line.dash, width=2),
                hovertemplate=f"{line.name}<br>%{{x}}: %{{y:.5g}} (smoothed)<extra></extra>"))
        if len(line.nonfinite_x):
            traces.append(dict(
                type="scatter", x=line.nonfinite_x, y=line.nonfinite_y, mode="markers",
                name="NaN/Inf", legendgroup="nonfinite", showlegend=not nonfinite_shown,
                marker=dict(symbol="x", size=10, color=NONFINITE_COLOR, line=dict(width=1)),
                text=list(line.nonfinite_label),
                hovertemplate=f"{line.name}<br>%{{text}} at %{{x}}<extra></extra>"))
            nonfinite_shown = True
    shapes, notes = [], []
    for mark in marks or []:
        if mark.x_end is not None:
            shapes.append(dict(type="rect", xref="x", yref="paper", x0=mark.x, x1=mark.x_end,
                               y0=0, y1=1, fillcolor=mark.color, opacity=0.08,
                               line=dict(width=0), layer="below"))
            notes.append(dict(x=mark.x, y=1, xref="x", yref="paper", text=mark.label,
                              showarrow=False, xanchor="left", yanchor="top",
                              font=dict(color=mark.color, size=12)))
        else:
            traces.append(dict(
                type="scatter", x=[mark.x], y=[mark.y], mode="markers", name=mark.label,
                showlegend=True, marker=dict(symbol="star", size=14, color=mark.color,
                                             line=dict(color="white", width=1)),
                hovertemplate=f"{mark.label}<extra></extra>"))
    text = f"{title}<br><span style='font-size:12px;color:#666'>{subtitle}</span>" \
        if subtitle else title
    yaxis: dict = dict(type="log" if log_y else "linear", exponentformat="e")
    finite = np.concatenate([np.asarray(line.y, np.float64)[np.isfinite(line.y)]
                             for line in lines] or [np.zeros(0)])
    if len(finite) and finite.min() == finite.max() and not log_y:  # a flat line: centre it
        pad = abs(finite[0]) * 0.5 or 1.0
        yaxis["range"] = [finite[0] - pad, finite[0] + pad]
    xaxis: dict = dict(title=dict(text=x_title, standoff=4),
                       **({"type": "date"} if x_is_date else {}))
    if integer_x:
        xaxis.update(_integer_ticks([line.x for line in lines]))
    layout = dict(
        template=template_json(), title=dict(text=text), height=height, hovermode="closest",
        margin=dict(t=70, b=95), shapes=shapes, annotations=notes, yaxis=yaxis,
        legend=dict(orientation="h", yanchor="top", y=-0.32, x=0, font=dict(size=11)),
        xaxis=xaxis)
    return go.Figure(dict(data=traces, layout=layout), _validate=False)


def _integer_ticks(arrays: list[np.ndarray]) -> dict:
    """x-axis settings that keep ticks on whole steps: plotly picks fractional ones (0.5,
    1.5) for spans under about ten; those get a tick per step and half a step of room on
    each side (no tick past the data, a lone step centred). Wider spans are left to plotly,
    whose nice steps are then whole numbers."""
    xs = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays] or [np.zeros(0)])
    xs = xs[np.isfinite(xs)]
    if not len(xs):
        return {}
    lo, hi = float(xs.min()), float(xs.max())
    if hi - lo > 10:  # plotly's tick step is then at least 1 (its ~10 ticks at most)
        return {}
    return {"tickmode": "linear", "tick0": lo, "dtick": 1, "range": [lo - 0.5, hi + 0.5]}


def _rebin(hists: list[np.ndarray], bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of every histogram on one shared grid (cumulative counts interpolated)."""
    lo = min((h[:, 0].min() for h in hists if len(h)), default=0.0)
    hi = max((h[:, 1].max() for h in hists if len(h)), default=1.0)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        lo, hi = (lo - 0.5, lo + 0.5) if np.isfinite(lo) else (0.0, 1.0)
    edges = np.linspace(lo, hi, bins + 1)
    out = np.zeros((len(hists), bins))
    for i, h in enumerate(hists):
        if not len(h):
            continue
        xp = np.concatenate([[h[0, 0]], h[:, 1]])
        fp = np.concatenate([[0.0], np.cumsum(h[:, 2])])
        order = np.argsort(xp, kind="stable")
        cdf = np.interp(edges, xp[order], np.maximum.accumulate(fp[order]))
        out[i] = np.diff(cdf)
    return out, edges


def histogram_heatmap(steps: np.ndarray, hists: list[np.ndarray], *, title: str,
                      bins: int = 64, height: int = 380) -> go.Figure:
    """Value (y) by step (x), colour = count: how a weight distribution drifts."""
    counts, edges = _rebin(hists, bins)
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Heatmap(
        x=np.asarray(steps), y=centers, z=counts.T, colorscale="Blues",
        colorbar=dict(title="count"),
        hovertemplate="step %{x}<br>value %{y:.4g}<br>count %{z:.3g}<extra></extra>"))
    apply_template(fig, title=title)
    fig.update_layout(height=height)
    fig.update_xaxes(title_text="step", **_integer_ticks([steps]))
    fig.update_yaxes(title_text="value", exponentformat="e")
    return fig


def histogram_ridge(steps: np.ndarray, hists: list[np.ndarray], *, title: str,
                    bins: int = 32, max_rows: int = 24, height: int = 460) -> go.Figure:
    """One filled outline per step (at most `max_rows`, evenly chosen), first step at the
    back: TensorBoard's offset view."""
    pick = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), max_rows)).round()
                     .astype(int)) if len(steps) else np.zeros(0, int)
    counts, edges = _rebin([hists[i] for i in pick], bins)
    centers = (edges[:-1] + edges[1:]) / 2
    peak = counts.max() if counts.size and counts.max() > 0 else 1.0
    fig = go.Figure()
    n = len(pick)
    for row, i in enumerate(pick):
        base = float(n - 1 - row) * 0.5
        shade = int(60 + 140 * row / max(n - 1, 1))
        color = f"rgb({shade // 2},{shade // 2 + 40},{min(255, shade + 60)})"
        fig.add_trace(go.Scatter(x=centers, y=np.full(len(centers), base), mode="lines",
                                 line=dict(width=0), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=centers, y=base + counts[row] / peak, mode="lines", fill="tonexty",
            line=dict(color=color, width=1), fillcolor="rgba(255,255,255,0.85)",
            name=f"step {int(steps[i])}", showlegend=False,
            hovertemplate=f"step {int(steps[i])}<br>value %{{x:.4g}}<extra></extra>"))
    apply_template(fig, title=title)
    fig.update_layout(height=height)
    fig.update_xaxes(title_text="value", exponentformat="e")
    fig.update_yaxes(title_text="step", tickvals=[float(n - 1 - r) * 0.5 for r in range(n)],
                     ticktext=[str(int(steps[i])) for i in pick], showgrid=False)
    return fig
