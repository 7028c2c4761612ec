"""The layer graph of a model, read from its config: nodes, edges, nested-model clusters.

The graph comes from the model's *config* (what `insight.preflight` reads from the file), so it
can be drawn before TensorFlow is imported and for files that safe mode refuses to load.
Sequential models are a chain; Functional models are read from each layer's `inbound_nodes`
(branches, several inputs and outputs); a model used as a layer becomes a cluster whose inner
inputs and outputs connect to the outer graph. Output shapes come from the shapes recorded on
the tensors that consumers receive; once the model is loaded, `details` fills in the rest and
the parameter counts. A subclassed model's graph lives in Python code (`call()`), so it is
reported as unknown, with the reason.

Example:

>>> import insight
>>> g = layer_graph(insight.preflight("sample_models/multi_io/model.keras").config)
...     # doctest: +SKIP
>>> g.known, [n.id for n in g.nodes if n.role == "input"]  # doctest: +SKIP
(True, ['image', 'stats'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["GraphNode", "LayerGraph", "layer_graph", "layer_entry", "unknown_graph_reason"]

_MODEL_CLASSES = {"Sequential", "Functional", "Model"}


@dataclass(frozen=True)
class GraphNode:
    """One layer. `id` is its path (`"backbone/conv1"`), `cluster` the path of the nested
    model holding it (`""` at top level), `params` is `None` until the model is loaded.

    In a collapsed graph (`insight.model.blocks.collapse`) a node can also stand for a block:
    `kind` is then `"block"` (a name prefix) or `"model"` (a nested model) and `layers` the
    number of layers it holds."""

    id: str
    name: str
    class_name: str
    shape: str = "?"
    params: int | None = None
    cluster: str = ""
    role: str = ""  # "input", "output" or ""
    kind: str = "layer"  # "layer", "block" or "model"
    layers: int = 1


@dataclass
class LayerGraph:
    """Nodes, edges (`(src_id, dst_id)`) and clusters (`{path: label}`) of a model."""

    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)
    known: bool = True
    reason: str = ""


def unknown_graph_reason(class_name: str) -> str:
    """Why a subclassed model's graph cannot be drawn."""
    return (f"{class_name} is a subclassed model: how its layers connect is written in Python "
            "in its call() method, not stored in the file, so insight lists its layers but "
            "cannot draw the graph.")


def _shape_text(shape: Any) -> str:
    if not isinstance(shape, list | tuple):
        return "?"
    if shape and isinstance(shape[0], list | tuple):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


def _is_model(entry: Mapping[str, Any]) -> bool:
    cfg = entry.get("config")
    return isinstance(cfg, Mapping) and isinstance(cfg.get("layers"), list) and (
        entry.get("class_name") in _MODEL_CLASSES or "input_layers" in cfg)


def _entry_name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("name") or (entry.get("config") or {}).get("name") or "?")


def layer_entry(config: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The serialized layer at `path` (`"backbone/conv1"`) in a model config, or `None`.

    >>> cfg = {"class_name": "Sequential", "config": {"layers": [
    ...     {"class_name": "Dense", "config": {"name": "d", "units": 2}}]}}
    >>> layer_entry(cfg, "d")["config"]["units"], layer_entry(cfg, "e")
    (2, None)
    """
    entry: Mapping[str, Any] | None = config
    for name in path.split("/"):
        if entry is None or not _is_model(entry):
            return None
        entry = next((e for e in entry["config"]["layers"]
                      if isinstance(e, Mapping) and _entry_name(e) == name), None)
    return entry


def layer_graph(config: Mapping[str, Any],
                details: Mapping[str, tuple[str, int]] | None = None) -> LayerGraph:
    """Build the layer graph from a model config.

    Args:
        config: a serialized model, `{"class_name": ..., "config": {...}}`, as found in a
            `.keras` archive's `config.json` or an `.h5` file's `model_config`.
        details: `{layer_path: (output_shape_text, params)}` from the loaded model; fills in
            shapes the config does not record, and parameter counts. Defaults to `None`.

    Returns:
        A `LayerGraph`; `known=False` with a `reason` when the config lists no layers.
    """
    graph = LayerGraph()
    if not _is_model(config):
        graph.known = False
        graph.reason = unknown_graph_reason(str(config.get("class_name", "This model")))
        return graph
    entries, exits = _emit(config, "", graph)
    roles = {i: "input" for i in entries} | {i: "output" for i in exits}
    details = details or {}
    graph.nodes = [
        replace(n, role=roles.get(n.id, ""),
                shape=details[n.id][0] if n.id in details and details[n.id][0] != "?" else n.shape,
                params=details[n.id][1] if n.id in details
                else 0 if details and n.class_name == "InputLayer" else None)
        for n in graph.nodes
    ]
    graph.edges = list(dict.fromkeys(graph.edges))
    return graph


def _emit(model: Mapping[str, Any], prefix: str, graph: LayerGraph):
    """Add a model's layers under `prefix`; return its entry and exit node ids."""
    layers = [e for e in model["config"]["layers"] if isinstance(e, Mapping)]
    if any("inbound_nodes" in e for e in layers):
        return _emit_functional(model["config"], layers, prefix, graph)
    return _emit_sequential(model["config"], layers, prefix, graph)


def _add(entry: Mapping[str, Any], prefix: str, shape: str, graph: LayerGraph):
    name = _entry_name(entry)
    path = f"{prefix}{name}"
    if _is_model(entry):
        graph.clusters[path] = f"{name} ({entry.get('class_name')})"
        return _emit(entry, path + "/", graph)
    if entry.get("class_name") == "InputLayer":
        shape = _shape_text((entry.get("config") or {}).get("batch_shape"))
    graph.nodes.append(GraphNode(path, name, str(entry.get("class_name")), shape,
                                 cluster=prefix.rstrip("/")))
    return [path], [path]


def _emit_sequential(cfg: Mapping[str, Any], layers: list, prefix: str, graph: LayerGraph):
    entries: list[str] = []
    previous: list[str] = []
    build_shape = cfg.get("build_input_shape")
    if layers and layers[0].get("class_name") != "InputLayer" and build_shape:
        node_id = f"{prefix}input"
        graph.nodes.append(GraphNode(node_id, "input", "InputLayer", _shape_text(build_shape),
                                     cluster=prefix.rstrip("/")))
        entries = previous = [node_id]
    for i, entry in enumerate(layers):
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        shape = _shape_text(((nxt or {}).get("build_config") or {}).get("input_shape"))
        ins, outs = _add(entry, prefix, shape, graph)
        graph.edges.extend((p, d) for p in previous for d in ins)
        entries = entries or ins
        previous = outs
    return entries, previous


def _tensors(value: Any):
    """Yield `(layer_name, tensor_index, shape)` for every keras tensor in an inbound node."""
    if isinstance(value, Mapping):
        if value.get("class_name") == "__keras_tensor__":
            cfg = value.get("config") or {}
            hist = cfg.get("keras_history")
            if hist:
                yield str(hist[0]), int(hist[2]) if len(hist) > 2 else 0, cfg.get("shape")
            return
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)


def _refs(value: Any):
    """`input_layers`/`output_layers`: `["name", 0, 0]`, or a list or dict of them."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list) and value and isinstance(value[0], str):
        value = [value]
    for item in value or []:
        if isinstance(item, list) and item and isinstance(item[0], str):
            yield item[0], int(item[2]) if len(item) > 2 else 0


def _pick(ids: list[str], index: int) -> list[str]:
    return [ids[index]] if len(ids) > 1 and 0 <= index < len(ids) else ids


def _emit_functional(cfg: Mapping[str, Any], layers: list, prefix: str, graph: LayerGraph):
    consumed: dict[str, dict[int, Any]] = {}
    for entry in layers:
        for node in entry.get("inbound_nodes") or []:
            for src, index, shape in _tensors(node):
                consumed.setdefault(src, {})[index] = shape
    ports: dict[str, tuple[list[str], list[str]]] = {}
    for entry in layers:
        name = _entry_name(entry)
        shapes = consumed.get(name, {})
        shape = _shape_text([shapes[k] for k in sorted(shapes)] if len(shapes) > 1
                            else next(iter(shapes.values()), None))
        ports[name] = _add(entry, prefix, shape, graph)
        ins = ports[name][0]
        for node in entry.get("inbound_nodes") or []:
            refs = [(src, index) for src, index, _ in _tensors(node) if src in ports]
            # A nested model with several inputs takes its k-th tensor on its k-th input.
            paired = len(ins) > 1 and len(refs) == len(ins)
            for k, (src, index) in enumerate(refs):
                targets = [ins[k]] if paired else ins
                graph.edges.extend((s, d) for s in _pick(ports[src][1], index) for d in targets)
    entries = [i for ref, _ in _refs(cfg.get("input_layers")) if ref in ports
               for i in ports[ref][0]]
    exits = [i for ref, index in _refs(cfg.get("output_layers")) if ref in ports
             for i in _pick(ports[ref][1], index)]
    return entries, exits
