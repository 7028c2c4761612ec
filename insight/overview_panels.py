"""The Overview's panels: model card, layer table, layer graph, parameters per layer.

Importing this module registers them (`insight.panels` does it on first use).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> dot = build_panel("layer_graph", PanelContext(loaded))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from insight.figures.model import graph_dot, params_figure
from insight.graph import layer_graph
from insight.panels import Panel, PanelContext, register
from insight.summary import layer_table, model_card

__all__: list[str] = []


def _card(ctx: PanelContext) -> dict[str, Any]:
    return model_card(ctx.loaded)


def _table(ctx: PanelContext):
    return layer_table(ctx.loaded)


def _graph(ctx: PanelContext) -> str:
    graph = layer_graph(ctx.loaded.model)
    if not graph.known:
        return ""
    return graph_dot(graph)


def _params(ctx: PanelContext):
    return params_figure(layer_table(ctx.loaded), title=f"Parameters per layer: {ctx.loaded.name}")


register(Panel("model_card", "Model card", "card", _card,
               description="Name, format, inputs and outputs, parameter counts, file findings."))
register(Panel("layer_table", "Layers", "table", _table,
               description="Every layer with class, output shape, parameters and activation."))
register(Panel("layer_graph", "Layer graph", "dot", _graph,
               description="How the layers connect, nested models as clusters."))
register(Panel("param_chart", "Parameters per layer", "figure", _params,
               description="Where the model's parameters are."))
