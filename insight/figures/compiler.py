"""Figures of the XLA compiler page: what fusion did to the op counts, the graph of one HLO
computation, and the step time compiled vs not.

Builders take plain frames or an `insight.compiler.hlo.HloComputation` plus lookups, never a model.

Example:

>>> import pandas as pd
>>> table = pd.DataFrame({"opcode": ["add", "fusion"], "before": [4, 0], "after": [0, 2]})
>>> fig = op_counts_figure(table, title="Ops")
>>> [t.name for t in fig.data]
['after optimisation', 'before optimisation']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import plotly.graph_objects as go

from insight.compiler.hlo import HloComputation, HloInstruction
from insight.figures.layout import sugiyama_layout
from insight.figures.template import COLORWAY, apply_template

__all__ = ["op_counts_figure", "hlo_graph_figure", "step_time_figure", "HIDDEN_OPCODES",
           "op_category", "duration", "speed", "visible_graph"]

# Left out of the graph unless asked for: sources (weights, literals) and no-op reshuffles,
# whose edges pass through to their consumers.
HIDDEN_OPCODES = ("parameter", "constant", "bitcast", "get-tuple-element", "tuple")
_CATEGORIES = {  # category -> (colour, label)
    "fusion": (COLORWAY[0], "fusion"),
    "matmul": (COLORWAY[1], "convolution / dot"),
    "reduce": (COLORWAY[2], "reduce / window"),
    "data": (COLORWAY[4], "parameter / constant"),
    "other": (COLORWAY[7], "other"),
}
_ROW = 30  # pixels per graph rank
_MAX_HEIGHT = 6000
_MAX_LABELS = 300  # above this many nodes, names appear on hover only


def op_category(opcode: str) -> str:
    """`"fusion"`, `"matmul"`, `"reduce"`, `"data"` or `"other"` (the graph's colours)."""
    if opcode == "fusion":
        return "fusion"
    if opcode in ("convolution", "dot", "custom-call"):
        return "matmul"
    if opcode.startswith("reduce") or opcode in ("select-and-scatter", "scatter"):
        return "reduce"
    if opcode in ("parameter", "constant", "iota"):
        return "data"
    return "other"


def op_counts_figure(table: pd.DataFrame, *, title: str) -> go.Figure:
    """Horizontal bars of instructions by opcode, before and after optimisation.

    Args:
        table: columns `opcode`, `before`, `after` (`XlaCompilation.op_count_table`).
        title: the figure title.
    """
    frame = table.assign(total=table["before"] + table["after"]).sort_values(
        ["total", "opcode"], ascending=[True, False], kind="stable")
    fig = go.Figure()
    # Traced after-then-before so each group reads top-down "before, after", as the legend does.
    for col, name, colour in (("after", "after optimisation", COLORWAY[0]),
                              ("before", "before optimisation", "#9aa5b1")):
        fig.add_bar(y=frame["opcode"], x=frame[col], name=name, orientation="h",
                    marker_color=colour, text=frame[col].where(frame[col] > 0, ""),
                    textposition="outside", cliponaxis=False,
                    hovertemplate="%{y}: %{x} instructions<extra>" + name + "</extra>")
    apply_template(fig, title=title)
    fig.update_layout(barmode="group", bargap=0.25, height=max(320, 60 + 34 * len(frame)),
                      # below the axis: above the plot, a narrow column wraps it onto the subtitle
                      legend=dict(orientation="h", x=0, y=0, yref="container",
                                  yanchor="bottom", traceorder="reversed"),
                      xaxis_title="instructions (a fusion counts once)",
                      yaxis=dict(categoryorder="array", categoryarray=list(frame["opcode"])),
                      margin=dict(t=70, b=110))
    return _plain_numbers(fig)


def visible_graph(comp: HloComputation, hidden: tuple[str, ...]
                  ) -> tuple[list[HloInstruction], list[tuple[str, str]]]:
    """Shown instructions and edges between them, edges passing through hidden ones."""
    by_name = {i.name: i for i in comp.instructions}
    shown = [i for i in comp.instructions if i.opcode not in hidden or i.root]
    keep = {i.name for i in shown}
    sources: dict[str, set[str]] = {}

    def visible_sources(name: str) -> set[str]:
        if name in keep:
            return {name}
        if name not in sources:
            sources[name] = set()
            inst = by_name.get(name)
            for op in inst.operands if inst else ():
                sources[name] |= visible_sources(op)
        return sources[name]

    edges = []
    for inst in shown:
        for src in dict.fromkeys(s for op in inst.operands for s in sorted(visible_sources(op))):
            edges.append((src, inst.name))
    return shown, edges


def hlo_graph_figure(comp: HloComputation, *, title: str,
                     layers: Callable[[HloInstruction], list[str]],
                     members: Mapping[str, str] | None = None,
                     hidden: tuple[str, ...] = HIDDEN_OPCODES,
                     highlight: str = "") -> go.Figure:
    """The dataflow graph of one HLO computation, top to bottom.

    Args:
        comp: the computation.
        title: the figure title.
        layers: `layers(instruction) -> [layer path]` for the hover.
        members: `{fusion name: its member ops as text}` for the hover. Defaults to `None`.
        hidden: opcodes left out (edges pass through them). Defaults to `HIDDEN_OPCODES`.
        highlight: a layer path whose instructions are outlined, the others faded.
            Defaults to `""` (none).
    """
    members = members or {}
    shown, edges = visible_graph(comp, hidden)
    layout = sugiyama_layout([i.name for i in shown], edges)
    pos = layout.pos
    top = min((r for _, r in pos.values()), default=0)
    bottom = max((r for _, r in pos.values()), default=0)
    ranks = bottom - top + 1
    width = max((abs(x) for x, _ in pos.values()), default=0)
    ex, ey = [], []
    for a, b in edges:
        if a not in pos or b not in pos:
            continue
        # an edge spanning ranks runs through its dummy points: free slots, never a node
        route = layout.routes.get((a, b), [])
        ex += [pos[a][0], *(x for x, _ in route), pos[b][0], None]
        ey += [pos[a][1], *(r for _, r in route), pos[b][1], None]
    fig = go.Figure()
    fig.add_scatter(x=ex, y=ey, mode="lines", line=dict(color="#b9c0c8", width=1),
                    hoverinfo="skip", showlegend=False)
    # Names beside the rightmost node of each rank only: a label never runs into a node.
    rightmost: dict[int, float] = {}
    for x, r in pos.values():
        rightmost[r] = max(x, rightmost.get(r, x))
    labels = len(shown) <= _MAX_LABELS
    for cat, (colour, label) in _CATEGORIES.items():
        nodes = [i for i in shown if op_category(i.opcode) == cat]
        if not nodes:
            continue
        hover = [_hover(i, layers(i), members.get(i.name, "")) for i in nodes]
        marked = [bool(highlight) and any(n == highlight or n.startswith(highlight + "/")
                                          for n in layers(i)) for i in nodes]
        fig.add_scatter(
            x=[pos[i.name][0] for i in nodes], y=[pos[i.name][1] for i in nodes],
            mode="markers+text" if labels else "markers", name=label,
            text=[_label(i, layers(i)) if pos[i.name][0] == rightmost[pos[i.name][1]] else ""
                  for i in nodes] if labels else None,
            textposition="middle right", textfont=dict(size=11),
            marker=dict(size=[16 if i.opcode == "fusion" else 11 for i in nodes],
                        color=colour, symbol=["square" if i.root else "circle" for i in nodes],
                        opacity=[1.0 if m or not highlight else 0.35 for m in marked],
                        line=dict(color=["#c0392b" if m else "white" for m in marked],
                                  width=[3 if m else 1 for m in marked])),
            hovertext=hover, hoverinfo="text")
    apply_template(fig, title=title)
    fig.update_layout(
        height=int(min(_MAX_HEIGHT, max(360, 110 + _ROW * ranks))),
        xaxis=dict(visible=False, range=[-width - 1, width + (2.5 if labels else 1)]),
        yaxis=dict(visible=False, range=[bottom + 0.7, top - 0.7]),
        legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"), margin=dict(t=90),
        hovermode="closest", dragmode="pan")
    return fig


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _label(inst: HloInstruction, layers: list[str]) -> str:
    """`name  · layer` (the innermost part of the first layer path), the layer in grey."""
    if not layers:
        return _short(inst.name)
    where = layers[0].rsplit("/", 1)[-1] + (" …" if len(layers) > 1 else "")
    return f"{_short(inst.name)} <span style='color:#777'>· {_short(where, 20)}</span>"


def _hover(inst: HloInstruction, layers: list[str], members: str) -> str:
    lines = [f"<b>{inst.name}</b> ({inst.opcode}{', ' + inst.kind if inst.kind else ''})",
             f"shape: {inst.shape}"]
    if layers:
        lines.append(f"layer: {', '.join(layers)}")
    if inst.op_type:
        lines.append(f"TF op: {inst.op_type}")
    if members:
        lines.append(f"fused: {members}")
    return "<br>".join(lines)


def _plain_numbers(fig: go.Figure) -> go.Figure:
    """Axis ticks as `5e-05` or `2000`, never plotly's SI prefixes ("50µ", "2k")."""
    fig.update_xaxes(exponentformat="e")
    fig.update_yaxes(exponentformat="e")
    return fig


def duration(ms: float) -> str:
    """A duration as people read one: `"0.65 ms"`, `"12.3 ms"`, `"356 ms"`, `"1.79 s"`.

    >>> [duration(v) for v in (0.6543, 12.34, 356.2, 1790.0, 65_000.0)]
    ['0.654 ms', '12.3 ms', '356 ms', '1.79 s', '65 s']
    """
    if ms >= 999.5:
        return f"{ms / 1e3:,.3g} s" if ms < 999_500 else f"{ms / 1e3:,.0f} s"
    return f"{ms:.3g} ms"


def speed(ratio: float) -> str:
    """How a mode compares with eager, from `speedup` (eager time / this mode's time).

    >>> speed(4.0), speed(0.25)
    ('4× faster than eager', '4× slower than eager')
    """
    if ratio >= 1:
        return f"{ratio:.2g}× faster than eager"
    return f"{1 / ratio:.2g}× slower than eager"


def step_time_figure(table: pd.DataFrame, *, title: str) -> go.Figure:
    """Bars of the median step time per mode (eager, `tf.function`, XLA), the fastest run
    as a marker, the first call (trace + compile) in the hover.

    Each bar is labelled with its time (`duration`) and how it compares with eager (`speed`);
    the right margin grows with the longest label, so labels stay inside the figure.

    Args:
        table: `insight.compiler.xla.step_times` output.
        title: the figure title.
    """
    names = {"eager": "eager", "graph": "tf.function (no XLA)", "xla": "XLA (jit_compile)"}
    short = {"eager": "eager", "graph": "tf.function", "xla": "XLA"}
    modes = [names.get(m, m) for m in table["mode"]]
    colours = ["#9aa5b1", COLORWAY[1], COLORWAY[0]][: len(table)]
    fig = go.Figure()
    text = [duration(ms) + ("" if mode == "eager" else f" · {speed(s)}")
            for mode, ms, s in zip(table["mode"], table["median_ms"], table["speedup"],
                                   strict=True)]
    first = ", ".join(f"{short.get(m, m)} {s:.2f} s" for m, s in
                      zip(table["mode"], table["first_call_s"], strict=True))
    hover = [[int(n), f"{s:.2f} s", duration(lo), duration(ms)] for n, s, lo, ms in
             zip(table["runs"], table["first_call_s"], table["min_ms"], table["median_ms"],
                 strict=True)]
    fig.add_bar(y=modes, x=table["median_ms"], orientation="h", marker_color=colours,
                text=text, textposition="outside", cliponaxis=False, showlegend=False,
                customdata=hover,
                hovertemplate="%{y}<br>median %{customdata[3]} over %{customdata[0]} runs"
                              "<br>fastest %{customdata[2]}"
                              "<br>first call (trace + compile) %{customdata[1]}"
                              "<extra></extra>")
    fig.add_scatter(y=modes, x=table["min_ms"], mode="markers", name="fastest run",
                    customdata=[[h[2]] for h in hover],
                    marker=dict(symbol="line-ns-open", size=16, color="#222"),
                    hovertemplate="fastest %{customdata[0]}<extra></extra>")
    apply_template(fig, title=f"{title}<br><sup>first call (trace + compile): {first}</sup>")
    # ~7 px per character of the 13 px labels, past the end of the longest bar
    right = 30 + 7 * max((len(t) for t in text), default=0)
    fig.update_layout(height=320, xaxis_title="median milliseconds per step (same batch)",
                      xaxis=dict(rangemode="tozero"),
                      yaxis=dict(autorange="reversed"), margin=dict(t=100, r=right),
                      legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom"))
    return _plain_numbers(fig)
