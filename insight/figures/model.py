"""Figures of a model's structure: the layer graph (DOT) and parameters per layer (plotly).

Example:

>>> from insight.graph import GraphNode, LayerGraph
>>> g = LayerGraph(nodes=[GraphNode("a", "a", "InputLayer", "(None, 3)", 0),
...                       GraphNode("b", "b", "Dense", "(None, 2)", 8)], edges=[("a", "b")])
>>> print(graph_dot(g).splitlines()[0])
digraph model {
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from insight.figures.template import COLORWAY, FONT, apply_template
from insight.graph import LayerGraph

__all__ = ["graph_dot", "params_figure", "layer_family"]

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


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(graph: LayerGraph) -> str:
    """DOT source for `st.graphviz_chart` (or any Graphviz): one box per layer with its
    name, class and output shape; nested models as dashed clusters; inputs and outputs bold.
    """
    lines = [
        "digraph model {",
        '  graph [rankdir=TB, nodesep=0.3, ranksep=0.35, fontname="Helvetica", fontsize=11];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
        'color="#7a7a7a", penwidth=1];',
        '  edge [color="#8a8a8a", arrowsize=0.6];',
    ]
    by_cluster: dict[str, list[str]] = {}
    for n in graph.nodes:
        label = f"{n.name}\\n{n.class_name}\\n{n.shape}"
        extra = ', penwidth=2.2, color="#333333"' if n.role else ""
        line = (f'{_q(n.id)} [label="{label.replace(chr(34), "")}", '
                f'fillcolor="{_fill(n.class_name)}"{extra}];')
        by_cluster.setdefault(n.cluster, []).append(line)
    lines += ["  " + line for line in by_cluster.pop("", [])]
    lines += _clusters("", graph.clusters, by_cluster, 1)
    lines += [f"  {_q(a)} -> {_q(b)};" for a, b in dict.fromkeys(graph.edges)]
    lines.append("}")
    return "\n".join(lines)


def _clusters(parent: str, clusters: dict[str, str], members: dict[str, list[str]],
              depth: int) -> list[str]:
    out: list[str] = []
    pad = "  " * depth
    for path, label in clusters.items():
        if path.rpartition("/")[0] != parent:
            continue
        cid = "cluster_" + "".join(c if c.isalnum() else "_" for c in path)
        out.append(f"{pad}subgraph {cid} {{")
        out.append(f'{pad}  label={_q(label)}; style="rounded,dashed"; color="#9a9a9a";')
        out += [f"{pad}  {line}" for line in members.get(path, [])]
        out += _clusters(path, clusters, members, depth + 1)
        out.append(f"{pad}}}")
    return out


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
