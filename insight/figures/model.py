"""Figures of a model's structure: the layer graph and the parameters per layer.

Example:

>>> from insight.model.graph import GraphNode, LayerGraph
>>> g = LayerGraph(nodes=[GraphNode("a", "a", "InputLayer", "(None, 3)", 0),
...                       GraphNode("b", "b", "Dense", "(None, 2)", 8)], edges=[("a", "b")])
>>> len(graph_figure(g).layout.shapes)
2
"""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.graph_objects as go

from insight.figures.layout import layered_layout
from insight.figures.template import COLORWAY, FONT, apply_template
from insight.model.graph import LayerGraph

__all__ = ["graph_figure", "params_figure", "layer_family"]

_FAMILIES = [
    ("input", ("InputLayer",), "#dfe8f5"),
    ("conv", ("Conv", "Depthwise", "Separable"), "#fbe0c8"),
    ("dense", ("Dense", "EinsumDense", "Embedding"), "#d5ebd8"),
    ("pool", ("Pool",), "#e4def2"),
    ("norm", ("Normalization", "BatchNorm", "LayerNorm"), "#fff1bf"),
    ("merge", ("Concatenate", "Add", "Multiply", "Average", "Subtract", "Dot", "Maximum",
               "Minimum"), "#f5d3d8"),
    ("recurrent", ("LSTM", "GRU", "RNN", "Bidirectional", "Attention"), "#d3eef2"),
]
_OTHER = "#f1f1f1"


def layer_family(class_name: str) -> str:
    """A coarse family for colouring: input, conv, dense, pool, norm, merge, recurrent, other.

    >>> layer_family("Conv2D"), layer_family("GlobalAveragePooling2D"), layer_family("Flatten")
    ('conv', 'pool', 'other')
    """
    for family, keys, _ in _FAMILIES:
        if any(k in class_name for k in keys):
            return family
    return "other"


def _fill(class_name: str) -> str:
    fam = layer_family(class_name)
    return next((c for f, _, c in _FAMILIES if f == fam), _OTHER)


_DX, _DY = 190.0, 100.0  # centre-to-centre spacing, in figure pixels
_BOX_W, _BOX_H = 170.0, 64.0
_MAX_ROWS = 14  # taller graphs open on their top rows; drag to pan
_MIN_WIDTH = 420.0
_MARGIN = dict(l=10, r=10, t=50, b=10)


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _cluster_boxes(graph: LayerGraph, centre: dict[str, tuple[float, float]]
                   ) -> dict[str, tuple[float, float, float, float]]:
    """`{cluster: (x0, y0, x1, y1)}` around its nodes and inner clusters, innermost first."""
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for path in sorted(graph.clusters, key=lambda p: -p.count("/")):
        parts = [(x - _BOX_W / 2, y - _BOX_H / 2, x + _BOX_W / 2, y + _BOX_H / 2)
                 for n in graph.nodes if n.cluster == path for x, y in [centre[n.id]]]
        parts += [b for p, b in boxes.items() if p.rpartition("/")[0] == path]
        if parts:
            pad = 12.0
            boxes[path] = (min(p[0] for p in parts) - pad, min(p[1] for p in parts) - pad,
                           max(p[2] for p in parts) + pad, max(p[3] for p in parts) + pad + 14)
    return boxes


def graph_figure(graph: LayerGraph, *, title: str = "Layer graph") -> go.Figure:
    """The layer graph as a plotly figure: one box per layer (name, class, output shape),
    coloured by family; inputs and outputs outlined; nested models as dashed frames.

    Laid out in Python (`insight.figures.layout`), so it renders identically in the app, in
    HTML/PNG exports and in snapshot tests. Hover a box for its parameters.
    """
    fig = apply_template(go.Figure(), title=title)
    if not graph.known or not graph.nodes:
        text = "<br>".join(textwrap.wrap(graph.reason or "No layers.", 52))
        fig.add_annotation(text=text, x=0, y=1, xref="paper", yref="paper", showarrow=False,
                           align="left", xanchor="left", yanchor="top")
        fig.update_layout(height=180, xaxis_visible=False, yaxis_visible=False,
                          margin=_MARGIN)
        return fig
    layout = layered_layout([n.id for n in graph.nodes], graph.edges)
    centre = {k: (x * _DX, -r * _DY) for k, (x, r) in layout.items()}
    shapes = []
    for path, (x0, y0, x1, y1) in _cluster_boxes(graph, centre).items():
        shapes.append(dict(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, layer="below",
                           line=dict(color="#9a9a9a", width=1, dash="dash"), fillcolor="white"))
        fig.add_annotation(x=x0 + 6, y=y1 - 4, text=_short(graph.clusters[path], 40),
                           showarrow=False, xanchor="left", yanchor="top",
                           font=dict(size=10, color="#555"))
    for n in graph.nodes:
        x, y = centre[n.id]
        strong = bool(n.role)
        shapes.append(dict(type="rect", x0=x - _BOX_W / 2, x1=x + _BOX_W / 2,
                           y0=y - _BOX_H / 2, y1=y + _BOX_H / 2, layer="below",
                           fillcolor=_fill(n.class_name),
                           line=dict(color="#333" if strong else "#8a8a8a",
                                     width=2.4 if strong else 1)))
    for a, b in graph.edges:
        (xa, ya), (xb, yb) = centre[a], centre[b]
        fig.add_annotation(x=xb, y=yb + _BOX_H / 2, ax=xa, ay=ya - _BOX_H / 2, xref="x",
                           yref="y", axref="x", ayref="y", text="", showarrow=True,
                           arrowhead=2, arrowsize=1, arrowwidth=1.1, arrowcolor="#8a8a8a",
                           standoff=1)
    params = ["not loaded" if n.params is None else f"{n.params:,}" for n in graph.nodes]
    fig.add_trace(go.Scatter(
        x=[centre[n.id][0] for n in graph.nodes], y=[centre[n.id][1] for n in graph.nodes],
        mode="markers+text", marker=dict(size=44, opacity=0, symbol="square"),
        text=[f"<b>{_short(n.name)}</b><br>{_short(n.class_name)}<br>"
              f"{'' if n.shape == '?' else _short(n.shape, 26)}" for n in graph.nodes],
        textfont=dict(family=FONT, size=11, color="#222"),
        customdata=[[n.id, n.class_name, n.shape, p, n.role or "-"]
                    for n, p in zip(graph.nodes, params, strict=True)],
        hovertemplate=("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>output %{customdata[2]}"
                       "<br>parameters: %{customdata[3]}<br>role: %{customdata[4]}"
                       "<extra></extra>"),
        showlegend=False,
    ))
    xs = [c[0] for c in centre.values()] + [s["x0"] for s in shapes] + [s["x1"] for s in shapes]
    ys = [s["y0"] for s in shapes] + [s["y1"] for s in shapes]
    x_range = [min(xs) - 10, max(xs) + 10]
    if x_range[1] - x_range[0] < _MIN_WIDTH:  # narrow graphs: keep boxes near true size
        mid = (x_range[0] + x_range[1]) / 2
        x_range = [mid - _MIN_WIDTH / 2, mid + _MIN_WIDTH / 2]
    rows = max(r for _, r in layout.values()) + 1
    top = max(ys) + 6
    bottom = max(min(ys) - 6, top - _MAX_ROWS * _DY - 20) if rows > _MAX_ROWS else min(ys) - 6
    height = int(top - bottom) + _MARGIN["t"] + _MARGIN["b"]
    fig.update_layout(
        shapes=shapes, height=height, margin=_MARGIN, dragmode="pan", hovermode="closest",
        xaxis=dict(visible=False, range=x_range), yaxis=dict(visible=False, range=[bottom, top]),
    )
    if rows > _MAX_ROWS:
        fig.add_annotation(text=f"showing the first {_MAX_ROWS} of {rows} rows: drag to pan",
                           x=1, y=1.0, xref="paper", yref="paper", showarrow=False,
                           xanchor="right", yanchor="bottom", font=dict(size=11, color="#666"))
    return fig


def params_figure(layers: pd.DataFrame, *, title: str = "Parameters per layer") -> go.Figure:
    """Horizontal bars of each layer's parameter count, trainable and frozen apart.

    Args:
        layers: a frame like `insight.layer_table(...)` (`layer`, `params`, `trainable`,
            `class`, `depth`). Nested models' own rows are left out: their layers are shown.
        title: the figure title. Defaults to `"Parameters per layer"`.
    """
    frame = layers.copy()
    has_children = {p.rpartition("/")[0] for p in frame["layer"] if "/" in p}
    frame = frame[~frame["layer"].isin(has_children)]
    frame = frame.iloc[::-1]  # first layer on top
    fig = go.Figure()
    for trainable, color, name in ((True, COLORWAY[0], "trainable"),
                                   (False, "#b0b0b0", "frozen")):
        part = frame[frame["trainable"] == trainable]
        if part.empty:
            continue
        fig.add_trace(go.Bar(
            x=part["params"], y=part["layer"], orientation="h", name=name,
            marker_color=color, customdata=part[["class"]].to_numpy(),
            hovertemplate="%{y} (%{customdata[0]})<br>%{x:,} parameters<extra></extra>",
        ))
    apply_template(fig, title=title)
    height = max(260, 24 * len(frame) + 110)
    fig.update_layout(
        barmode="stack", height=height, showlegend=bool(len(fig.data) > 1),
        xaxis_title="parameters", yaxis=dict(type="category", automargin=True),
        font=dict(family=FONT), legend=dict(orientation="h", y=1.02, x=1, xanchor="right",
                                            yanchor="bottom"),
    )
    return fig
