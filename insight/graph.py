"""The layer graph of a model: nodes, edges and nested-model clusters, as plain data.

Sequential models are a chain; Functional models are read from their config's
`inbound_nodes` (branches, several inputs and outputs); a model used as a layer becomes a
cluster whose inner inputs and outputs connect to the outer graph. A subclassed model's graph
lives in Python code (`call()`), so it is reported as unknown, with the reason.

Example:

>>> g = layer_graph(loaded.model)  # doctest: +SKIP
>>> g.known, len(g.nodes), g.edges[:1]  # doctest: +SKIP
(True, 8, [('input', 'conv1')])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from insight.summary import model_kind, output_shape_text, param_count

__all__ = ["GraphNode", "LayerGraph", "layer_graph", "unknown_graph_reason"]


@dataclass(frozen=True)
class GraphNode:
    """One layer in the graph. `id` is its path (`"backbone/conv1"`), `cluster` the path of
    the nested model holding it (`""` at top level)."""

    id: str
    name: str
    class_name: str
    shape: str
    params: int
    cluster: str = ""
    role: str = ""  # "input", "output" or ""


@dataclass
class LayerGraph:
    """Nodes, edges (`(src_id, dst_id)`) and clusters (`{path: label}`) of a model."""

    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)
    known: bool = True
    reason: str = ""


def unknown_graph_reason(model: Any) -> str:
    """Why a subclassed model's graph cannot be drawn."""
    return (f"{type(model).__name__} is a subclassed model: how its layers connect is written "
            "in Python in its call() method, not stored in the file, so insight lists its "
            "layers but cannot draw the graph.")


def layer_graph(model: Any) -> LayerGraph:
    """Build the layer graph of a Keras model.

    Args:
        model: a `keras.Model`.

    Returns:
        A `LayerGraph`; `known=False` with a `reason` for subclassed models.
    """
    graph = LayerGraph()
    kind = model_kind(model)
    if kind == "subclassed":
        graph.known = False
        graph.reason = unknown_graph_reason(model)
        return graph
    entries, exits = _emit(model, "", graph)
    for node_id in entries:
        _set_role(graph, node_id, "input")
    for node_id in exits:
        _set_role(graph, node_id, "output")
    return graph


def _set_role(graph: LayerGraph, node_id: str, role: str) -> None:
    for i, n in enumerate(graph.nodes):
        if n.id == node_id and not n.role:
            graph.nodes[i] = GraphNode(n.id, n.name, n.class_name, n.shape, n.params,
                                       n.cluster, role)


def _emit(model: Any, prefix: str, graph: LayerGraph) -> tuple[list[str], list[str]]:
    """Add `model`'s layers under `prefix`; return its entry and exit node ids."""
    if model_kind(model) == "sequential":
        return _emit_sequential(model, prefix, graph)
    return _emit_functional(model, prefix, graph)


def _add_layer(layer: Any, prefix: str, graph: LayerGraph) -> tuple[list[str], list[str]]:
    path = f"{prefix}{layer.name}"
    if getattr(layer, "layers", None) and model_kind(layer) != "subclassed":
        graph.clusters[path] = f"{layer.name} ({type(layer).__name__}, " \
                               f"{param_count(layer):,} params)"
        return _emit(layer, path + "/", graph)
    graph.nodes.append(GraphNode(path, layer.name, type(layer).__name__, output_shape_text(layer),
                                 param_count(layer), prefix.rstrip("/")))
    return [path], [path]


def _emit_sequential(model: Any, prefix: str, graph: LayerGraph):
    entries: list[str] = []
    previous: list[str] = []
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        node_id = f"{prefix}input"
        shape = "(" + ", ".join("None" if d is None else str(d) for d in inputs[0].shape) + ")"
        graph.nodes.append(GraphNode(node_id, "input", "InputLayer", shape, 0,
                                     prefix.rstrip("/")))
        entries = previous = [node_id]
    for layer in model.layers:
        ins, outs = _add_layer(layer, prefix, graph)
        graph.edges.extend((p, i) for p in previous for i in ins)
        entries = entries or ins
        previous = outs
    return entries, previous


def _history_refs(value: Any):
    """Yield `(layer_name, tensor_index)` for every keras tensor in an inbound node."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            hist = (value.get("config") or {}).get("keras_history")
            if hist:
                yield hist[0], int(hist[2]) if len(hist) > 2 else 0
            return
        for v in value.values():
            yield from _history_refs(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _history_refs(v)


def _pick(ids: list[str], index: int) -> list[str]:
    return [ids[index]] if 0 <= index < len(ids) and len(ids) > 1 else ids


def _emit_functional(model: Any, prefix: str, graph: LayerGraph):
    config = model.get_config()
    ports: dict[str, tuple[list[str], list[str]]] = {}
    layers = {layer.name: layer for layer in model.layers}
    for entry in config.get("layers", []):
        name = entry.get("name") or entry.get("config", {}).get("name")
        layer = layers.get(name)
        if layer is None:
            continue
        ports[name] = _add_layer(layer, prefix, graph)
        ins = ports[name][0]
        for node in entry.get("inbound_nodes", []):
            for src, index in _history_refs(node):
                if src in ports:
                    graph.edges.extend((s, d) for s in _pick(ports[src][1], index) for d in ins)
    entries = [i for ref in _refs(config.get("input_layers")) if ref in ports
               for i in ports[ref][0]]
    exits: list[str] = []
    for ref, index in _refs(config.get("output_layers"), with_index=True):
        if ref in ports:
            exits.extend(_pick(ports[ref][1], index))
    return entries, exits


def _refs(value: Any, with_index: bool = False):
    """`input_layers`/`output_layers` entries: `["name", 0, 0]` or a list/dict of them."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = [value]
    for item in value or []:
        if isinstance(item, list) and item and isinstance(item[0], str):
            yield (item[0], int(item[2]) if len(item) > 2 else 0) if with_index else item[0]
