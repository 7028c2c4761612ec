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

from insight.figures.layout import GraphLayout, sugiyama_layout
from insight.figures.template import COLORWAY, FONT, apply_template
from insight.model.graph import GraphNode, LayerGraph

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
_MAX_ROWS = 14  # taller graphs are shrunk to fit this many rows (or open on them, fit=False)
_MIN_WIDTH = 420.0
_MARGIN = dict(l=10, r=10, t=50, b=10)
_EDGE = "#8a8a8a"
_HIGHLIGHT = "#d62728"
_STACK = 6.0  # offset of the card drawn behind a collapsed block


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _cluster_boxes(graph: LayerGraph, centre: dict[str, tuple[float, float]],
                   label: float = 14.0) -> dict[str, tuple[float, float, float, float]]:
    """`{cluster: (x0, y0, x1, y1)}` around its nodes and inner clusters, innermost first,
    with `label` units at the top for the model's name."""
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for path in sorted(graph.clusters, key=lambda p: -p.count("/")):
        parts = [(x - _BOX_W / 2, y - _BOX_H / 2, x + _BOX_W / 2, y + _BOX_H / 2)
                 for n in graph.nodes if n.cluster == path for x, y in [centre[n.id]]]
        parts += [b for p, b in boxes.items() if p.rpartition("/")[0] == path]
        if parts:
            pad = 12.0
            boxes[path] = (min(p[0] for p in parts) - pad, min(p[1] for p in parts) - pad,
                           max(p[2] for p in parts) + pad, max(p[3] for p in parts) + pad + label)
    return boxes


def _box(x: float, y: float, fill: str, line: dict) -> dict:
    return dict(type="rect", x0=x - _BOX_W / 2, x1=x + _BOX_W / 2, y0=y - _BOX_H / 2,
                y1=y + _BOX_H / 2, layer="below", fillcolor=fill, line=line)


def _node_shapes(n: GraphNode, x: float, y: float, marked: bool) -> list[dict]:
    """A layer's box; a collapsed block's box with a second card behind it."""
    strong = bool(n.role)
    line = dict(color=_HIGHLIGHT if marked else "#333" if strong else "#8a8a8a",
                width=3 if marked else 2.4 if strong else 1)
    fill = "#eef1f6" if n.kind != "layer" else _fill(n.class_name)
    shapes = [_box(x + _STACK, y - _STACK, fill, dict(color="#8a8a8a", width=1))] \
        if n.kind != "layer" else []
    return shapes + [_box(x, y, fill, line)]


def _arrow(x0: float, y0: float, x1: float, y1: float) -> dict:
    return dict(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1.1, arrowcolor=_EDGE,
                standoff=1)


def _edges(graph: LayerGraph, layout: GraphLayout, centre: dict[str, tuple[float, float]]
           ) -> tuple[list[dict], list[float | None], list[float | None]]:
    """Arrows, and the polylines of long edges: from the source's bottom down through each
    dummy point's slot (straight through its rank, where the boxes are), into the target's
    top. Between ranks there are no boxes, so no edge crosses one."""
    arrows: list[dict] = []
    lx: list[float | None] = []
    ly: list[float | None] = []
    for a, b in graph.edges:
        (xa, ya), (xb, yb) = centre[a], centre[b]
        x0, y0 = xa, ya - _BOX_H / 2
        route = layout.routes.get((a, b), [])
        if route:
            lx.append(x0)
            ly.append(y0)
            for x, r in route:
                lx += [x * _DX, x * _DX]
                ly += [-r * _DY + _BOX_H / 2, -r * _DY - _BOX_H / 2]
            lx.append(None)
            ly.append(None)
            x0, y0 = lx[-2], ly[-2]
        arrows.append(_arrow(x0, y0, xb, yb + _BOX_H / 2))
    return arrows, lx, ly


def _label(n: GraphNode, lines: int) -> str:
    what = (_short(n.class_name) if n.kind == "layer" else f"{n.layers} layers"
            if n.kind == "block" else _short(f"{n.class_name} · {n.layers} layers"))
    text = [f"<b>{_short(n.name)}</b>", what, "" if n.shape == "?" else _short(n.shape, 26)]
    return "<br>".join(text[:lines])


def _text_fit(scale: float) -> tuple[int, int]:
    """How many lines of a box's label fit at this zoom, and at what font size."""
    room = _BOX_H * scale - 4  # box height in pixels, less some air
    if scale >= 0.68:
        return 3, 11
    for lines in (2, 1):
        size = int(room / (1.2 * lines))
        if size >= 8:
            return lines, min(11, size)
    return 0, 11


def _hover(n: GraphNode) -> str:
    if n.kind == "layer":
        return ("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>output %{customdata[2]}"
                "<br>parameters: %{customdata[3]}<br>role: %{customdata[4]}<extra></extra>")
    return (f"<b>%{{customdata[0]}}</b><br>{n.layers} layers ({n.class_name}): expand to see "
            "them<br>output %{customdata[2]}<br>parameters: %{customdata[3]}<extra></extra>")


def graph_figure(graph: LayerGraph, *, title: str = "Layer graph",
                 highlight: tuple[str, ...] = (), centre_on: str = "", fit: bool = True,
                 note: str = "") -> go.Figure:
    """The layer graph as a plotly figure: one box per layer (name, class, output shape),
    coloured by family; inputs and outputs outlined; nested models as dashed frames;
    collapsed blocks (`insight.model.blocks.collapse`) as stacked cards.

    Laid out in Python (`insight.figures.layout`, igraph's Sugiyama layout), so it renders
    identically in the app, in HTML/PNG exports and in snapshot tests. Edges that span
    several rows go around the boxes in between. Hover a box for its parameters; each box's
    point carries `[id, class, shape, params, role, kind]` as customdata (for clicks).

    Args:
        graph: the graph to draw (collapsed or not).
        title: the figure title. Defaults to `"Layer graph"`.
        highlight: node ids outlined in red (search hits). Defaults to `()`.
        centre_on: a node id the view opens on, at full size, when the graph is taller than
            the frame. Defaults to `""` (none).
        fit: the whole graph in the frame (shrunk when taller than 14 rows); `False`: full
            size, opening on the top rows (drag to pan). Defaults to `True`.
        note: a line at the top right (what is collapsed, a search without hits).
            Defaults to `""`.
    """
    fig = apply_template(go.Figure(), title=title)
    if not graph.known or not graph.nodes:
        text = "<br>".join(textwrap.wrap(graph.reason or "No layers.", 52))
        fig.add_annotation(text=text, x=0, y=1, xref="paper", yref="paper", showarrow=False,
                           align="left", xanchor="left", yanchor="top")
        fig.update_layout(height=180, xaxis_visible=False, yaxis_visible=False,
                          margin=_MARGIN)
        return fig
    layout = sugiyama_layout([n.id for n in graph.nodes], graph.edges)
    centre = {k: (x * _DX, -r * _DY) for k, (x, r) in layout.pos.items()}
    marked = set(highlight)
    shapes, labels, notes = [], [], []
    rows = layout.ranks
    shrink = 1.0 if rows <= _MAX_ROWS or not fit else (_MAX_ROWS * _DY + 20) / (rows * _DY)
    for path, (x0, y0, x1, y1) in _cluster_boxes(graph, centre, min(30.0, 14 / shrink)).items():
        shapes.append(dict(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, layer="below",
                           line=dict(color="#9a9a9a", width=1, dash="dash"), fillcolor="white"))
        labels.append(dict(x=x0 + 6, y=y1 - 4, text=_short(graph.clusters[path], 40),
                          showarrow=False, xanchor="left", yanchor="top",
                          font=dict(size=10, color="#555")))
    for n in graph.nodes:
        shapes += _node_shapes(n, *centre[n.id], n.id in marked)
    arrows, lx, ly = _edges(graph, layout, centre)
    if lx:
        fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", hoverinfo="skip", showlegend=False,
                                 line=dict(color=_EDGE, width=1.1)))
    xs = [c[0] for c in centre.values()] + [s["x0"] for s in shapes] + [s["x1"] for s in shapes]
    xs += [x - _BOX_W / 4 for x in lx if x is not None] + [x + _BOX_W / 4 for x in lx
                                                           if x is not None]
    ys = [s["y0"] for s in shapes] + [s["y1"] for s in shapes]
    x_range = [min(xs) - 10, max(xs) + 10]
    if x_range[1] - x_range[0] < _MIN_WIDTH:  # narrow graphs: keep boxes near true size
        mid = (x_range[0] + x_range[1]) / 2
        x_range = [mid - _MIN_WIDTH / 2, mid + _MIN_WIDTH / 2]
    top, bottom = max(ys) + 6, min(ys) - 6
    frame = min(top - bottom, _MAX_ROWS * _DY + 20) if rows > _MAX_ROWS else top - bottom
    scale = 1.0
    if rows > _MAX_ROWS and centre_on in centre:  # open on the search hit, full size
        mid = min(max(centre[centre_on][1], bottom + frame / 2), top - frame / 2)
        top, bottom = mid + frame / 2, mid - frame / 2
    elif rows > _MAX_ROWS and not fit:
        bottom = top - frame
        notes.append(_note(f"showing the first {_MAX_ROWS} of {rows} rows: drag to pan"))
    elif rows > _MAX_ROWS:
        scale = frame / (top - bottom)
    if note:
        notes.append(_note(note))
    lines, size = _text_fit(scale)
    params = ["not loaded" if n.params is None else f"{n.params:,}" for n in graph.nodes]
    fig.add_trace(go.Scatter(
        x=[centre[n.id][0] for n in graph.nodes], y=[centre[n.id][1] for n in graph.nodes],
        mode="markers+text" if lines else "markers",
        marker=dict(size=max(8, round(44 * scale)), opacity=0, symbol="square"),
        text=[_label(n, lines) for n in graph.nodes] if lines else None,
        textfont=dict(family=FONT, size=size, color="#222"),
        customdata=[[n.id, n.class_name, n.shape, p, n.role or "-", n.kind]
                    for n, p in zip(graph.nodes, params, strict=True)],
        hovertemplate=[_hover(n) for n in graph.nodes] if any(
            n.kind != "layer" for n in graph.nodes) else _hover(graph.nodes[0]),
        selected=dict(marker=dict(opacity=0)),
        unselected=dict(marker=dict(opacity=0), textfont=dict(color="#222")),
        showlegend=False,
    ))
    height = int(frame) + _MARGIN["t"] + _MARGIN["b"]
    fig.update_layout(
        shapes=shapes, annotations=labels + arrows + notes, height=height, margin=_MARGIN,
        dragmode="pan", hovermode="closest",
        xaxis=dict(visible=False, range=x_range), yaxis=dict(visible=False, range=[bottom, top]),
    )
    return fig


def _note(text: str) -> dict:
    return dict(text=text, x=1, y=1.0, xref="paper", yref="paper", showarrow=False,
                xanchor="right", yanchor="bottom", font=dict(size=11, color="#666"))


ROW_PX = 24  # height of one bar's row while the chart stays under MAX_HEIGHT
MAX_HEIGHT = 1200  # px: more rows get thinner (down to 12 px), the axis labels thinned


def params_figure(layers: pd.DataFrame, *, groups: dict[str, str] | None = None,
                  title: str = "Parameters per layer") -> go.Figure:
    """Horizontal bars of each layer's (or block's) parameter count, trainable and frozen
    apart.

    Args:
        layers: a frame like `insight.layer_table(...)` (`layer`, `params`, `trainable`,
            `class`, `depth`). Nested models' own rows are left out: their layers are shown.
        groups: layer -> block id; the layers of one block become one bar (the parameters
            summed, the hover says how many layers), the others keep their own. Defaults to
            `None` (a bar per layer).
        title: the figure title. Defaults to `"Parameters per layer"`.

    Example:

    >>> table = pd.DataFrame({"layer": ["b1_a", "b1_b", "out"], "params": [3, 4, 5],
    ...                       "trainable": True, "class": ["Dense"] * 3, "depth": 0})
    >>> list(params_figure(table, groups={"b1_a": "b1", "b1_b": "b1"}).data[0].y)
    ['out', 'b1']
    """
    frame = layers.copy()
    has_children = {p.rpartition("/")[0] for p in frame["layer"] if "/" in p}
    frame = frame[~frame["layer"].isin(has_children)]
    if groups:
        frame = _by_block(frame, groups)
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
    rows = len(frame)
    row_px = max(12, min(ROW_PX, (MAX_HEIGHT - 110) / max(rows, 1)))
    yaxis = dict(type="category", automargin=True)
    if row_px < 16:  # every other label, or they overlap
        yaxis.update(tickmode="array", tickvals=list(frame["layer"])[::-1][::2],
                     tickfont=dict(size=10))
    fig.update_layout(
        barmode="stack", height=max(260, round(row_px * rows) + 110),
        showlegend=bool(len(fig.data) > 1), xaxis_title="parameters", yaxis=yaxis,
        font=dict(family=FONT), legend=dict(orientation="h", y=1.02, x=1, xanchor="right",
                                            yanchor="bottom"),
    )
    return fig


def _by_block(frame: pd.DataFrame, groups: dict[str, str]) -> pd.DataFrame:
    """One row per block (in the order its first layer appears), the others as they are."""
    key = frame["layer"].map(lambda layer: groups.get(layer, layer))
    rows = []
    for name, part in frame.groupby(key, sort=False):
        block = len(part) > 1 or part["layer"].iloc[0] != name
        for trainable, sub in part.groupby("trainable", sort=False):
            rows.append({"layer": name, "params": int(sub["params"].sum()),
                         "trainable": trainable,
                         "class": f"block of {len(part)} layers" if block
                         else sub["class"].iloc[0]})
    return pd.DataFrame(rows, columns=["layer", "params", "trainable", "class"])
