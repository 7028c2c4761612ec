"""The Overview's panels: model card, layer table, layer graph, parameters per layer, and one
layer in detail (its config and weights).

Importing this module registers them (`insight.panels` does it on first use).

Example:

>>> from insight.panels import build_panel, PanelContext
>>> fig = build_panel("layer_graph", PanelContext(loaded), expand="conv2_block1",
...                   search="conv2_block1_add")  # doctest: +SKIP
>>> card = build_panel("layer_details", PanelContext(loaded), layer="conv1")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from insight.errors import UsageError
from insight.figures.activations import message_figure
from insight.figures.gradients import histograms_figure
from insight.figures.model import graph_figure, params_figure
from insight.model.blocks import COLLAPSE_ABOVE, collapse, find_layers, layer_blocks
from insight.model.details import layer_details, layer_weights
from insight.model.graph import LayerGraph, layer_graph
from insight.model.layers import iter_layers
from insight.model.summary import layer_table, model_card
from insight.panels.registry import Panel, PanelContext, Param, register

__all__ = ["graph_choices", "full_graph"]

BLOCKS = ("auto", "collapsed", "expanded")


def _card(ctx: PanelContext) -> dict[str, Any]:
    return model_card(ctx.loaded)


def _table(ctx: PanelContext):
    return layer_table(ctx.loaded)


def _config(ctx: PanelContext) -> tuple[dict | None, str]:
    """The model config (the file's, else a SavedModel's Keras wrapper's) and the name."""
    pf = ctx.preflight
    config = pf.config
    name = str((config or {}).get("config", {}).get("name", pf.path.stem) if config
               else pf.path.stem)
    if ctx.loaded is not None:
        name = ctx.loaded.name
        if config is None:  # a SavedModel: its Keras wrapper's config
            config = {"class_name": "Functional", "config": ctx.loaded.model.get_config()}
    return config, name


def full_graph(ctx: PanelContext) -> LayerGraph:
    """Every layer, from the file's config alone (before loading, or when loading was
    refused), then with the loaded model's output shapes and parameter counts."""
    config, _ = _config(ctx)
    details = None
    if ctx.loaded is not None:
        table = layer_table(ctx.loaded)
        details = dict(zip(table["layer"], zip(table["output_shape"], table["params"],
                                               strict=True), strict=True))
    return layer_graph(config or {}, details)


def graph_choices(ctx: PanelContext) -> tuple[list[str], list[str]]:
    """What the Overview's graph widgets offer: the blocks that open collapsed (empty when the
    graph opens with every layer shown) and every layer's path, in graph order.

    >>> blocks, layers = graph_choices(PanelContext(preflight=pf))  # doctest: +SKIP
    >>> blocks[:2], layers[:2]  # doctest: +SKIP
    (['conv1', 'conv2'], ['input_layer_1', 'conv1_pad'])
    """
    graph = full_graph(ctx)
    blocks = [b.id for b in layer_blocks(graph)] if len(graph.nodes) > COLLAPSE_ABOVE else []
    return blocks, [n.id for n in graph.nodes]


def _graph(ctx: PanelContext, blocks: str = "auto", expand: str = "", search: str = "",
           fit: bool = True):
    _, name = _config(ctx)
    graph = full_graph(ctx)
    found = layer_blocks(graph)
    shut = bool(found) and (blocks == "collapsed" or
                            (blocks == "auto" and len(graph.nodes) > COLLAPSE_ABOVE))
    hits = find_layers(graph, search)
    opened = [e.strip() for e in expand.split(",") if e.strip()]
    note = f"no layer matches {search.strip()!r}" if search.strip() and not hits else ""
    if shut:
        holding = [b.id for b in found if hits and hits[0] in b.layers]
        view = collapse(graph, found, [*opened, *holding])
        if len(view.nodes) < len(graph.nodes) and not note:
            note = f"{len(graph.nodes)} layers in {len(view.nodes)} boxes: expand a block"
    else:
        if opened:  # nothing collapsed, but a wrong id still says so
            collapse(graph, found, opened)
        view = graph
    shown = {n.id for n in view.nodes}
    rep = {layer: b.id for b in reversed(found) for layer in b.layers if b.id in shown}
    marked = tuple(dict.fromkeys(h if h in shown else rep[h] for h in hits
                                 if h in shown or h in rep))
    return graph_figure(view, title=f"Layer graph: {name}", highlight=marked,
                        centre_on=marked[0] if marked else "", fit=fit, note=note)


def _params(ctx: PanelContext, by: str = "auto"):
    table = layer_table(ctx.loaded)
    groups = None
    if by == "block" or (by == "auto" and len(table) > COLLAPSE_ABOVE):
        groups = {layer: b.id for b in layer_blocks(full_graph(ctx)) if not b.parent
                  for layer in b.layers}
    what = "block" if groups else "layer"
    return params_figure(table, groups=groups,
                         title=f"Parameters per {what}: {ctx.loaded.name}")


def _layer_path(ctx: PanelContext, layer: str) -> str:
    """`layer`, or the first layer that is not an input."""
    if layer:
        return layer
    graph = full_graph(ctx)
    first = next((n.id for n in graph.nodes if n.class_name != "InputLayer"), None)
    if first is None and ctx.loaded is not None:
        first = next((p for p, obj, _ in iter_layers(ctx.loaded.model)
                      if type(obj).__name__ != "InputLayer"), None)
    if first is None:
        raise UsageError("This model has no layers to show.", "", "layer=''")
    return first


def _details(ctx: PanelContext, layer: str = "") -> dict[str, Any]:
    config, _ = _config(ctx)
    model = ctx.loaded.model if ctx.loaded is not None else None
    return layer_details(config, _layer_path(ctx, layer), model=model)


def _weights(ctx: PanelContext, layer: str = ""):
    path = _layer_path(ctx, layer)
    found = {p: obj for p, obj, _ in iter_layers(ctx.loaded.model)}
    if path not in found:
        layer_details(_config(ctx)[0], path, model=ctx.loaded.model)  # raises, listing layers
        return message_figure(f"{path!r} has no weights.", title=f"Weights of {path}")
    obj = found[path]
    title = f"Weights of {path} ({type(obj).__name__})"
    if getattr(obj, "layers", None):
        return message_figure(f"{path!r} is a nested model: pick one of its layers.",
                              title=title)
    rows = layer_weights(obj)
    if not rows:
        return message_figure(f"{path!r} ({type(obj).__name__}) has no weights.", title=title)
    return histograms_figure([("weights", {r["name"]: r["values"] for r in rows})],
                             title=title)


_LAYER = Param("layer", "str", "", help="A layer path (nested layers as 'outer/inner'); "
                                        "empty: the first layer after the inputs.")

register(Panel("model_card", "Model card", "card", _card,
               description="Name, format, inputs and outputs, parameter counts, file findings."))
register(Panel("layer_table", "Layers", "table", _table,
               description="Every layer with class, output shape, parameters and activation."))
register(Panel(
    "layer_graph", "Layer graph", "figure", _graph, needs_model=False,
    params=(
        Param("blocks", "str", "auto", choices=BLOCKS,
              help=f"Repeating blocks (name prefixes like conv2_block1_*) and nested models as "
                   f"one box each: auto (above {COLLAPSE_ABOVE} layers), collapsed or "
                   f"expanded."),
        Param("expand", "str", "", help="Blocks shown open, comma-separated ids "
                                        "(conv2_block1, or a nested model's path)."),
        Param("search", "str", "", help="Outline the layers whose path contains this text, "
                                        "open the block holding the first and centre it."),
        Param("fit", "bool", True, help="The whole graph in the frame (shrunk when tall); "
                                        "off: full size, drag to pan."),
    ),
    description="How the layers connect, nested models as frames, repeating blocks "
                "collapsed on big models; drawn from the file's config, so also for models "
                "safe mode refuses."))
register(Panel("param_chart", "Parameters per layer", "figure", _params,
               params=(Param("by", "str", "auto", choices=("auto", "layer", "block"),
                             help=f"One bar per layer, or per repeating block (conv2, "
                                  f"block_3...); auto: per block above {COLLAPSE_ABOVE} "
                                  f"layers."),),
               description="Where the model's parameters are."))
register(Panel("layer_details", "Layer details", "card", _details, params=(_LAYER,),
               needs_model=False,
               description="One layer as Netron shows it: class, config (kernel size, "
                           "strides, padding, activation, dtype...), connections, and its "
                           "weights' names, shapes and dtypes once the model is loaded."))
register(Panel("layer_weights_histogram", "Layer weights", "figure", _weights,
               params=(_LAYER,),
               description="Histograms of one layer's weights (kernel, bias, moving "
                           "statistics), as the share of values per bin."))
