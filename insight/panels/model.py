"""The Overview's panels: model card, layer table, layer graph, parameters per layer.

Importing this module registers them (`insight.panels` does it on first use).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> dot = build_panel("layer_graph", PanelContext(loaded))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from insight.figures.model import graph_figure, params_figure
from insight.model.graph import layer_graph
from insight.model.summary import layer_table, model_card
from insight.panels.registry import Panel, PanelContext, register

__all__: list[str] = []


def _card(ctx: PanelContext) -> dict[str, Any]:
    return model_card(ctx.loaded)


def _table(ctx: PanelContext):
    return layer_table(ctx.loaded)


def _graph(ctx: PanelContext):
    """From the file's config alone (before loading, or when loading was refused), then with
    the loaded model's output shapes and parameter counts."""
    pf = ctx.preflight
    config, details, name = pf.config, None, str((pf.config or {}).get("config", {}).get(
        "name", pf.path.stem) if pf.config else pf.path.stem)
    if ctx.loaded is not None:
        table = layer_table(ctx.loaded)
        details = dict(zip(table["layer"], zip(table["output_shape"], table["params"],
                                               strict=True), strict=True))
        name = ctx.loaded.name
        if config is None:  # a SavedModel: its Keras wrapper's config
            config = {"class_name": "Functional", "config": ctx.loaded.model.get_config()}
    return graph_figure(layer_graph(config or {}, details), title=f"Layer graph: {name}")


def _params(ctx: PanelContext):
    return params_figure(layer_table(ctx.loaded), title=f"Parameters per layer: {ctx.loaded.name}")


register(Panel("model_card", "Model card", "card", _card,
               description="Name, format, inputs and outputs, parameter counts, file findings."))
register(Panel("layer_table", "Layers", "table", _table,
               description="Every layer with class, output shape, parameters and activation."))
register(Panel("layer_graph", "Layer graph", "figure", _graph, needs_model=False,
               description="How the layers connect, nested models as frames; drawn from the "
                           "file's config, so also for models safe mode refuses."))
register(Panel("param_chart", "Parameters per layer", "figure", _params,
               description="Where the model's parameters are."))
