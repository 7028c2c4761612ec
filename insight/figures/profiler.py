"""Profile figures: step-time breakdown, timeline, top ops treemap, memory over time.

Pure builders from the tables of `insight.profiler.tables` / `insight.profiler.timeline` to
plotly figures.

Example:

>>> import pandas as pd
>>> from insight.figures.profiler import step_breakdown_figure
>>> f = step_breakdown_figure(pd.DataFrame({"step": ["0"], "Host compute": [2.0],
...                                         "step_time_ms": [2.0]}), title="Steps")
>>> [t.name for t in f.data]
['Host compute']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from insight.figures.template import COLORWAY, apply_template

__all__ = ["step_breakdown_figure", "timeline_figure", "ops_treemap", "memory_figure"]

MERGED_COLOR = "#b9b9b9"
OTHER_COLOR = "#8aa1bd"


def _plain_numbers(fig: go.Figure) -> go.Figure:
    """Axis ticks as `5e-05` or `2000`, never plotly's SI prefixes ("50µ", "20f", "2k"), which
    read as units next to a unit in the axis title."""
    fig.update_xaxes(exponentformat="e")
    fig.update_yaxes(exponentformat="e")
    return fig


def step_breakdown_figure(steps: pd.DataFrame, *, title: str) -> go.Figure:
    """Stacked bars: each step's time by category (only categories that took time)."""
    fig = go.Figure()
    cats = [c for c in steps.columns if c not in ("step", "step_time_ms")
            and pd.to_numeric(steps[c], errors="coerce").fillna(0).sum() > 0]
    for n, cat in enumerate(cats):
        fig.add_bar(x=steps["step"], y=steps[cat], name=cat,
                    marker_color=COLORWAY[n % len(COLORWAY)],
                    hovertemplate=f"{cat}: %{{y:.3f}} ms<extra>%{{x}}</extra>")
    fig.update_layout(barmode="stack", xaxis_title="step", yaxis_title="time (ms)",
                      legend=dict(orientation="h", y=-0.25), height=360)
    fig.update_xaxes(type="category")
    return _plain_numbers(apply_template(fig, title=title))


def _colors(bars: pd.DataFrame) -> np.ndarray:
    layers = sorted(x for x in bars["layer"].unique() if x)
    index = {name: COLORWAY[i % len(COLORWAY)] for i, name in enumerate(layers)}
    colors = bars["layer"].map(lambda x: index.get(x, OTHER_COLOR)).to_numpy(dtype=object)
    colors[bars["count"].to_numpy() > 1] = MERGED_COLOR
    return colors


def timeline_figure(bars: pd.DataFrame, rows: list[tuple[str, int]], *, title: str,
                    steps: pd.DataFrame | None = None) -> go.Figure:
    """Threads as rows (one lane per nesting depth), ops as bars coloured by Keras layer
    (grey: merged bars, blue-grey: ops outside any layer), step markers as shaded bands.

    Args:
        bars: from `insight.profiler.timeline.timeline_bars` (times in microseconds).
        rows: `(thread, lane)` of each row index (`Trace.rows`).
        title: the figure title.
        steps: `step, name, start, end` bands to shade (those in the window). Defaults to `None`.
    """
    lo, hi = bars.attrs.get("window", (0.0, 1.0))
    layer = np.where(bars["layer"] != "", bars["layer"] + np.where(
        bars["phase"] != "", " (" + bars["phase"] + ")", ""), np.where(
        bars["count"] > 1, "-", "not in a layer" + np.where(
            bars["phase"] != "", " (" + bars["phase"] + ")", "")))
    op = np.where(bars["op"] != "", bars["op"], np.where(
        bars["count"] > 1, "narrower than a pixel: choose a step or a shorter window",
        bars["name"]))
    custom = np.stack([bars["name"].to_numpy(dtype=object), op.astype(object),
                       layer.astype(object), (bars["self_dur"] / 1e3).to_numpy(),
                       bars["count"].to_numpy()], axis=1) if len(bars) else None
    fig = go.Figure(go.Bar(
        x=(bars["dur"] / 1e3).to_numpy(), base=(bars["ts"] / 1e3).to_numpy(),
        y=bars["row"].to_numpy(), orientation="h", width=0.8,
        marker=dict(color=_colors(bars), line=dict(width=0)), customdata=custom,
        hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>layer: "
                      "%{customdata[2]}<br>duration: %{customdata[3]:.4f} ms"
                      "<br>start: %{base:.4f} ms<extra></extra>",
        name="ops", showlegend=False))
    first = {}
    for i, (thread, lane) in enumerate(rows):
        if lane == 0:
            first[thread] = i
    shapes, notes = [], []
    shown = steps[(steps["end"] >= lo) & (steps["start"] <= hi)] if steps is not None and \
        len(steps) else pd.DataFrame(columns=["step", "name", "start", "end"])
    every = max(1, len(shown) // 25)  # at most ~25 labels; every band is still shaded
    for n, (_, s) in enumerate(shown.iterrows()):  # one layout update, not add_vrect per step
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=s["start"] / 1e3,
                           x1=s["end"] / 1e3, y0=0, y1=1, fillcolor="#3b6fb6", opacity=0.06,
                           line_width=0, layer="below"))
        if n % every == 0:
            notes.append(dict(x=s["start"] / 1e3, y=1, xref="x", yref="paper", xanchor="left",
                              yanchor="top", showarrow=False, font=dict(size=10),
                              text=f"{s['name']} {int(s['step'])}"))
    fig.update_layout(shapes=shapes, annotations=notes)
    n = max(1, len(rows))
    fig.update_layout(height=min(1400, 140 + 18 * n), bargap=0.1, dragmode="zoom",
                      xaxis=dict(title="time (ms)", range=[lo / 1e3, hi / 1e3]),
                      yaxis=dict(tickvals=list(first.values()), ticktext=list(first),
                                 range=[n - 0.5, -0.5], zeroline=False, showgrid=False,
                                 fixedrange=False),
                      margin=dict(l=150, r=20, t=60, b=50))
    return _plain_numbers(apply_template(fig, title=title))


def ops_treemap(ops: pd.DataFrame, *, title: str, group: str = "layer",
                max_ops: int = 200) -> go.Figure:
    """Self time as nested rectangles: `group` (layer, or category) > op type > op.

    The top margin grows with the title's lines (`<br>`): keep each line short, the map is
    often drawn in a narrow column.
    """
    ops = ops.head(max_ops)
    labels, parents, values, ids = [], [], [], []
    kind = "type" if "type" in ops.columns else "category"
    g = ops[group].replace("", "(no layer)" if group == "layer" else "(other)") \
        if group in ops.columns else pd.Series(["all"] * len(ops), index=ops.index)
    for top, part in ops.assign(_g=g).groupby("_g", sort=False):
        ids.append(f"g/{top}")
        labels.append(str(top))
        parents.append("")
        values.append(float(part["self_time_us"].sum()))
        two_levels = group == kind  # HLO ops: category > op
        for typ, sub in part.groupby(kind, sort=False):
            parent = f"g/{top}" if two_levels else f"g/{top}/{typ}"
            if not two_levels:
                ids.append(parent)
                labels.append(str(typ))
                parents.append(f"g/{top}")
                values.append(float(sub["self_time_us"].sum()))
            for n, (_, r) in enumerate(sub.iterrows()):
                ids.append(f"{parent}/{n}/{r['op']}")
                labels.append(str(r["op"]).split("/")[-1] or str(typ))
                parents.append(parent)
                values.append(float(r["self_time_us"]))
    fig = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=values,
                               branchvalues="total", marker=dict(colors=None),
                               hovertemplate="<b>%{label}</b><br>self time: %{value:,.1f} µs"
                                             "<br>%{percentRoot:.1%} of the shown ops"
                                             "<extra></extra>"))
    lines = title.count("<br>") + 1  # a title line each: room for all of them above the map
    fig.update_layout(height=440 + 20 * lines, margin=dict(l=10, r=10, t=30 + 20 * lines, b=10),
                      treemapcolorway=COLORWAY)
    return apply_template(fig, title=title)


def memory_figure(memory: pd.DataFrame, *, title: str) -> go.Figure:
    """Memory in use (heap + stack) and the peak over time, per allocator."""
    fig = go.Figure()
    for n, (alloc, part) in enumerate(memory.groupby("allocator", sort=True)):
        color = COLORWAY[n % len(COLORWAY)]
        fig.add_scatter(x=part["time_ms"], y=part["in_use_mib"], mode="lines",
                        line=dict(color=color, shape="hv"), name=f"{alloc}: in use",
                        customdata=np.stack([part["activity"], part["op"],
                                             part["requested_bytes"]], axis=1),
                        hovertemplate="%{y:.3f} MiB in use at %{x:.3f} ms<br>%{customdata[0]}"
                                      " of %{customdata[2]:,} B<br>%{customdata[1]}"
                                      "<extra></extra>")
        fig.add_scatter(x=part["time_ms"], y=part["peak_mib"], mode="lines",
                        line=dict(color=color, dash="dot", shape="hv"),
                        name=f"{alloc}: peak", hovertemplate="peak %{y:.3f} MiB<extra></extra>")
    fig.update_layout(xaxis_title="time since the first allocation event (ms)",
                      yaxis_title="memory (MiB)", height=380,
                      legend=dict(orientation="h", y=-0.25))
    return _plain_numbers(apply_template(fig, title=title))
