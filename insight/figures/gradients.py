"""Figures of gradients: norms by depth, weight and gradient histograms, attribution maps.

Builders take plain frames and arrays (from `insight.probe.backprop` and
`insight.probe.attribution`) and return `go.Figure`s with the shared template; they run no model.

Example:

>>> import pandas as pd
>>> table = pd.DataFrame({"layer": ["a", "b"], "weight_norm": [1.0, float("nan")],
...                       "weight_grad_norm": [0.1, float("nan")],
...                       "activation_grad_norm": [0.01, 0.0]})
>>> fig = gradient_norms_figure(table)
>>> fig.layout.yaxis.type
'log'
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from insight.figures.template import COLORWAY, apply_template, e_notation

__all__ = ["gradient_norms_figure", "histograms_figure", "AttributionPart",
           "attribution_figure", "MAX_LAYER_TICKS", "MAX_VARIABLES"]

MAX_LAYER_TICKS = 32  # layer names on the norms' axis; above, every k-th
MAX_VARIABLES = 6  # rows of a layer's weight histograms (an attention layer has 8 or more)
_SERIES = [
    ("weight_grad_norm", "weight gradient", COLORWAY[0], "solid"),
    ("activation_grad_norm", "output gradient (mean per example)", COLORWAY[1], "solid"),
    ("weight_norm", "weights (for scale)", "#9a9a9a", "dot"),
]


def gradient_norms_figure(table: pd.DataFrame, *, title: str = "Gradient norms by depth",
                          subtitle: str = "", marked: dict[str, str] | None = None
                          ) -> go.Figure:
    """Per-layer norms on a log axis, first layer on the left: a fall over depth is a vanishing
    gradient, a climb an exploding one. Zero gradients (nothing reaches the layer) are marked
    on the floor of the axis.

    Args:
        table: `insight.probe.backprop.Gradients.table` (`layer`, `weight_norm`,
            `weight_grad_norm`, `activation_grad_norm`).
        title: the figure title. Defaults to `"Gradient norms by depth"`.
        subtitle: a second line, e.g. what was differentiated. Defaults to `""`.
        marked: `{layer: words}` to mark on the chart (the doctor's vanishing or exploding
            layers: a shaded band with the words above it). Defaults to none.
    """
    layers = table["layer"].tolist()
    values = table[[c for c, *_ in _SERIES]].to_numpy(np.float64)
    positive = values[np.isfinite(values) & (values > 0)]
    floor = float(positive.min()) / 10 if positive.size else 1e-8
    fig = go.Figure()
    zeros_x, zeros_text = [], []
    for column, name, color, dash in _SERIES:
        col = table[column].to_numpy(np.float64)
        y = np.where(col > 0, col, np.nan)
        fig.add_trace(go.Scatter(
            x=layers, y=y, name=name, mode="lines+markers",
            connectgaps=column != "activation_grad_norm",  # layers without weights: skipped
            line=dict(color=color, dash=dash, width=2 if dash == "solid" else 1.2),
            marker=dict(size=7 if dash == "solid" else 5),
            hovertemplate="%{x}<br>" + name + ": %{y:.3g}<extra></extra>",
        ))
        if column != "weight_norm":
            for layer, v in zip(layers, col, strict=True):
                if v == 0:
                    zeros_x.append(layer)
                    zeros_text.append(f"{layer}: {name.split(' (')[0]} is exactly 0")
    if zeros_x:
        fig.add_trace(go.Scatter(
            x=zeros_x, y=[floor] * len(zeros_x), mode="markers", name="zero: no gradient",
            marker=dict(symbol="x", size=10, color=COLORWAY[3]), customdata=zeros_text,
            hovertemplate="%{customdata}<extra></extra>",
        ))
    for layer, words in (marked or {}).items():
        if layer in layers:
            fig.add_vrect(x0=layers.index(layer) - 0.45, x1=layers.index(layer) + 0.45,
                          fillcolor=COLORWAY[3], opacity=0.12, line_width=0,
                          annotation_text=words, annotation_position="top",
                          annotation_font=dict(size=11, color=COLORWAY[3]))
    apply_template(fig, title=title + (f"<br><sup>{subtitle}</sup>" if subtitle else ""))
    step = -(-len(layers) // MAX_LAYER_TICKS)  # every layer named up to MAX_LAYER_TICKS
    ticks = layers[::step]
    if ticks and ticks[-1] != layers[-1]:  # the last layer is named too
        ticks = ticks[:-1] if (len(layers) - 1) % step < step / 2 else ticks
        ticks.append(layers[-1])
    many = len(layers) > MAX_LAYER_TICKS // 2
    named = "" if step == 1 else f" (every {_ordinal(step)} named; hover for each)"
    fig.update_layout(
        height=560, margin=dict(t=130, b=40), hovermode="closest",
        yaxis=dict(type="log", title="L2 norm (log scale)", exponentformat="e",
                   dtick=_decades_per_tick(positive, floor)),
        xaxis=dict(type="category", categoryorder="array", categoryarray=layers,
                   title=f"layer, by depth{named}", tickmode="array", tickvals=ticks,
                   ticktext=ticks, tickangle=-90 if many else -30 if len(layers) > 6
                   else 0, tickfont=dict(size=10 if many else 12), automargin=True),
        legend=dict(orientation="h", y=1.0, x=0, yanchor="bottom", font=dict(size=11)),
    )
    return fig


def _ordinal(n: int) -> str:
    """`2` -> `"2nd"`, `11` -> `"11th"`."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _decades_per_tick(positive: np.ndarray, floor: float) -> int:
    """A log axis' tick step in decades: one label per decade up to 12 decades, then fewer
    (at most ~12 labels)."""
    top = float(positive.max()) if positive.size else 1.0
    decades = np.log10(max(top, floor) / floor) + 1
    return max(1, int(np.ceil(decades / 12)))


def _hist(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    bins = int(np.clip(round(2 * np.sqrt(values.size)), 5, bins))
    if not values.size:
        return np.zeros(bins), np.linspace(0, 1, bins + 1)
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.histogram(values, bins=bins, range=(lo, hi))


def _constant(values: np.ndarray) -> float | None:
    """The one value every finite element holds, or `None`."""
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    return float(values[0]) if values.size and values.min() == values.max() else None


def histograms_figure(panels: Sequence[tuple[str, Mapping[str, np.ndarray]]], *, title: str,
                      bins: int = 40) -> go.Figure:
    """Histograms side by side (e.g. weights | gradients), one row per variable (a kernel and
    its bias each on their own scales: a bias of zeros does not flatten the kernel), each from
    its smallest to its largest value, as the share of its values per bin.

    Args:
        panels: `[(column title, {variable name: values})]`; the variables of the first
            column name the rows (at most `MAX_VARIABLES`).
        title: the figure title.
        bins: bins per histogram. Defaults to `40`.
    """
    names = list(dict.fromkeys(n for _, d in panels for n in d))
    more = len(names) - MAX_VARIABLES
    names = names[:MAX_VARIABLES]
    rows = max(1, len(names))
    fig = make_subplots(rows=rows, cols=len(panels), column_titles=[t for t, _ in panels],
                        horizontal_spacing=0.1, vertical_spacing=min(0.12, 0.5 / rows))
    colors = {n: COLORWAY[i % len(COLORWAY)] for i, n in enumerate(names)}
    for row, name in enumerate(names, start=1):
        short = name.rsplit("/", 1)[-1]
        for col, (_, arrays) in enumerate(panels, start=1):
            if name not in arrays:
                continue
            values = arrays[name]
            counts, edges = _hist(values, bins)
            share = counts / max(counts.sum(), 1)
            x = np.concatenate([[edges[0]], np.repeat(edges, 2)[1:-1], [edges[-1]]])
            y = np.concatenate([[0.0], np.repeat(share, 2), [0.0]])  # steps over every bin
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines", line=dict(color=colors[name], width=1.5),
                fill="toself", name=f"{short} ({np.size(values):,} values)", showlegend=False,
                hovertemplate=f"{short}<br>%{{x:.3g}}: %{{y:.1%}} of values<extra></extra>",
            ), row=row, col=col)
            same = _constant(values)
            note = (f"all {np.size(values):,} values are {same:.3g}" if same is not None
                    else f"{np.size(values):,} values")
            pad = (edges[-1] - edges[0]) * 0.03  # the outer bins' edges stay in view
            fig.update_xaxes(range=[edges[0] - pad, edges[-1] + pad], row=row, col=col)
            axes = fig.get_subplot(row, col)  # each axis is anchored on its partner
            fig.add_annotation(text=note, x=1, y=1, xref=f"{axes.yaxis.anchor} domain",
                               yref=f"{axes.xaxis.anchor} domain", xanchor="right",
                               yanchor="top", showarrow=False, bgcolor="rgba(255,255,255,0.8)",
                               font=dict(size=11, color="#555"))
        fig.update_yaxes(title_text=short, row=row, col=1)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    e_notation(fig)
    if more > 0:
        title += f"<br><sup>the first {MAX_VARIABLES} of {len(names) + more} variables</sup>"
    apply_template(fig, title=title)
    fig.update_layout(height=150 + 190 * rows, showlegend=False, margin=dict(t=100, b=50))
    fig.update_xaxes(title_text="value", row=rows)
    return fig


# Inferno as rgb() strings: Streamlit's chart element rewrites the hex colours #000001..#000040
# (its theme placeholders) anywhere in a figure, and Inferno starts at #000004.
_INFERNO = [[pos, "rgb({}, {}, {})".format(*pc.hex_to_rgb(c))]
            for pos, c in pc.get_colorscale("Inferno")]
# Overlays fade to transparent where the attribution is small, so the input shows through.
_OVERLAY = [[0.0, "rgba(230,60,20,0)"], [0.15, "rgba(230,60,20,0)"],
            [1.0, "rgba(230,60,20,0.95)"]]
_SIGNED_OVERLAY = [[0.0, "rgba(33,102,172,0.95)"], [0.42, "rgba(33,102,172,0)"],
                   [0.58, "rgba(178,24,43,0)"], [1.0, "rgba(178,24,43,0.95)"]]


@dataclass
class AttributionPart:
    """One input's attribution, ready to draw.

    Attributes:
        name: the input's name.
        kind: `"image"` (`image` and `values` are `(H, W)`), `"tokens"` or `"features"` (one
            bar per item).
        values: the attribution map or one value per item.
        image: the grayscale input, for images.
        labels: item labels, for bars.
    """

    name: str
    kind: str
    values: np.ndarray
    image: np.ndarray | None = None
    labels: Sequence[str] = ()


def attribution_figure(parts: Sequence[AttributionPart], *, title: str, note: str = "",
                       signed: bool = False) -> go.Figure:
    """Attributions of one example: for an image its input, the map, and the map over the
    input; for tokens or features one bar each.

    Args:
        parts: one `AttributionPart` per input.
        title: the figure title.
        note: how it was computed (`Attribution.note`), shown under the title.
        signed: values can be negative (integrated gradients, token attributions); drawn on a
            red-blue scale centred on 0. Defaults to `False`.
    """
    specs, titles, widths = [], [], []
    for p in parts:
        if p.kind == "image":
            specs += [{}, {}, {}]
            titles += [f"input {p.name!r}", "attribution", "attribution over the input"]
            widths += [1, 1, 1]
        else:
            specs.append({})
            titles.append(f"attribution per {'token' if p.kind == 'tokens' else 'feature'} "
                          f"of {p.name!r}")
            widths.append(max(1.5, min(4.0, len(p.labels) / 6)))
    # Titles wrap to their column's share of ~900 px (an export's width) and never meet.
    usable = 900 * (1 - 0.06 * (len(widths) - 1))  # less the gaps between columns
    chars = [max(10, int(w / sum(widths) * usable / 8.5)) for w in widths]
    lines = max(len(textwrap.wrap(t, c)) for t, c in zip(titles, chars, strict=True))
    titles = ["<br>".join(textwrap.wrap(t, c)) for t, c in zip(titles, chars, strict=True)]
    fig = make_subplots(rows=1, cols=len(specs), subplot_titles=titles, column_widths=widths,
                        horizontal_spacing=0.06)
    scale = "RdBu_r" if signed else _INFERNO
    overlay = _SIGNED_OVERLAY if signed else _OVERLAY
    col = 1
    for p in parts:
        values = np.asarray(p.values, np.float64)
        bound = float(np.nanmax(np.abs(values))) if values.size else 1.0
        bound = bound or 1.0
        zrange = dict(zmin=-bound, zmax=bound) if signed else dict(zmin=0.0, zmax=bound)
        if p.kind == "image":
            gray = dict(z=p.image, colorscale="Greys", showscale=False,
                        hovertemplate="(%{y}, %{x}) input %{z:.3g}<extra></extra>")
            heat = dict(z=values, colorscale=scale, **zrange,
                        hovertemplate="(%{y}, %{x}) attribution %{z:.3g}<extra></extra>")
            fig.add_trace(go.Heatmap(**gray), row=1, col=col)
            lo, hi = fig.layout[f"xaxis{col + 1}"].domain  # a scale under the map itself
            fig.add_trace(go.Heatmap(**heat, colorbar=dict(
                orientation="h", thickness=10, x=(lo + hi) / 2, xanchor="center", y=-0.04,
                yanchor="top", len=hi - lo, lenmode="fraction")), row=1, col=col + 1)
            fig.add_trace(go.Heatmap(**gray), row=1, col=col + 2)
            fig.add_trace(go.Heatmap(**{**heat, "colorscale": overlay}, showscale=False), row=1,
                          col=col + 2)
            for c in range(col, col + 3):
                axis = "x" if c == 1 else f"x{c}"
                fig.update_xaxes(visible=False, constrain="domain", row=1, col=c)
                fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=axis,
                                 constrain="domain", row=1, col=c)
            col += 3
        else:
            labels = [str(s) for s in p.labels]
            colors = [COLORWAY[3] if v >= 0 else COLORWAY[0] for v in values] if signed \
                else COLORWAY[1]
            fig.add_trace(go.Bar(x=labels, y=values, marker_color=colors, showlegend=False,
                                 hovertemplate="%{x}<br>attribution %{y:.3g}<extra></extra>"),
                          row=1, col=col)
            fig.update_xaxes(type="category", tickangle=-45, automargin=True, row=1, col=col)
            col += 1
    sub = "<br>".join(textwrap.wrap(note, 150))
    apply_template(fig, title=title + (f"<br><sup>{sub}</sup>" if sub else ""))
    fig.update_annotations(font_size=13)  # the subplot titles
    extra = 16 * sub.count("<br>") + 17 * (lines - 1)
    fig.update_layout(height=420 + extra, showlegend=False, margin=dict(t=100 + extra, b=70))
    return e_notation(fig)
