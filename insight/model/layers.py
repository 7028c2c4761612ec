"""Layer helpers used everywhere: walk a model's layers, name them by path, print shapes.

Paths join nested names with `/` (`"backbone/conv1"`), the way every page, panel and CLI
names a layer.

Example:

>>> shape_text((None, 8, 8, 1))
'(None, 8, 8, 1)'
>>> layer_paths(loaded.model)[:3]  # doctest: +SKIP
['conv1', 'pool1', 'conv2']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from insight.errors import UsageError

__all__ = ["shape_text", "output_shape_text", "param_count", "iter_layers", "as_model",
           "layer_paths", "resolve_layers", "saturating_activation", "PASS_THROUGH",
           "producer", "layer_inputs", "output_layer_paths"]


def shape_text(shape: Any) -> str:
    """Render a shape, or a list of shapes, the way Keras' summary does.

    >>> shape_text((None, 8, 8, 1))
    '(None, 8, 8, 1)'
    >>> shape_text([(None, 10), (None, 1)])
    '[(None, 10), (None, 1)]'
    """
    if shape is None:
        return "?"
    if isinstance(shape, list | tuple) and shape and isinstance(shape[0], list | tuple):
        return "[" + ", ".join(shape_text(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def output_shape_text(layer: Any) -> str:
    try:
        out = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return "?"
    if isinstance(out, list | tuple):
        return shape_text([tuple(t.shape) for t in out])
    if isinstance(out, dict):
        return shape_text([tuple(t.shape) for t in out.values()])
    return shape_text(tuple(out.shape))


def param_count(layer: Any) -> int:
    try:
        return int(sum(int(np.prod(w.shape)) for w in layer.weights))
    except (AttributeError, ValueError):
        return 0


def iter_layers(model: Any, prefix: str = "", depth: int = 0):
    """Yield `(path, layer, depth)` for every layer, descending into nested models.

    Paths join nested names with `/` (`"backbone/conv1"`). Sequential models' implicit input
    layer is not listed (Keras does not list it either).
    """
    for layer in getattr(model, "layers", []) or []:
        path = f"{prefix}{layer.name}"
        yield path, layer, depth
        if getattr(layer, "layers", None) and layer is not model:
            yield from iter_layers(layer, path + "/", depth + 1)


def as_model(model: Any) -> Any:
    """The `keras.Model` inside a `LoadedModel`, or `model` itself."""
    return getattr(model, "model", model) if not hasattr(model, "layers") else model


def layer_paths(model: Any) -> list[str]:
    """Paths of the layers whose outputs can be captured (input layers excluded).

    >>> layer_paths(loaded.model)[:3]  # doctest: +SKIP
    ['conv1', 'pool1', 'conv2']
    """
    return [p for p, layer, _ in iter_layers(as_model(model))
            if type(layer).__name__ != "InputLayer"]


def resolve_layers(model: Any, layers: str | Iterable[str] | None) -> list[str]:
    """Validate layer paths; `None` means all.

    Raises:
        UsageError: an unknown layer; the message lists the valid ones.
    """
    valid = layer_paths(model)
    if layers is None:
        return valid
    wanted = [layers] if isinstance(layers, str) else list(layers)
    unknown = [w for w in wanted if w not in valid]
    if unknown:
        raise UsageError(
            f"No such layer: {unknown[0]!r}. Existing layers are: {', '.join(valid)}.",
            "Use a path from the layer table (nested layers as 'outer/inner').",
            f"layers={wanted!r}")
    return wanted


def saturating_activation(layer: Any) -> str | None:
    """`"sigmoid"`, `"tanh"` or `"softmax"` when the layer ends in one, else `None`."""
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) or (type(layer).__name__.lower()
                                               if type(layer).__name__ == "Softmax" else None)
    return name if name in ("sigmoid", "tanh", "softmax") else None


# Layers that pass their input's values on (reshaped, pooled, dropped, padded): a dead unit or
# an output's activation is looked for in the layer before them (the doctor's checks and the
# Activations page's flags both read this).
PASS_THROUGH = re.compile(r"Flatten|Reshape|Permute|RepeatVector|Identity|Concatenate|"
                          r".*Dropout|Gaussian(Noise|Dropout)|(Global)?(Max|Average)Pooling\dD|"
                          r"ZeroPadding\dD|Cropping\dD|UpSampling\dD|InputLayer")


def producer(tensor: Any) -> Any:
    """The layer (operation) that made a symbolic Keras tensor, or `None`."""
    history = getattr(tensor, "_keras_history", None)
    return getattr(history, "operation", None) if history is not None else None


def layer_inputs(layer: Any) -> list:
    """The symbolic tensors a layer was first called on (`[]` when unknown)."""
    try:
        return list(layer._inbound_nodes[0].input_tensors)
    except (AttributeError, IndexError):
        return []


def output_layer_paths(model: Any) -> set[str]:
    """Paths of the layers that make the model's outputs (nested models' inner ones too, and
    the pass-through layers after them): their saturation is a confident prediction."""
    keras_model = as_model(model)
    paths = {id(layer): p for p, layer, _ in iter_layers(keras_model)}
    found: set[str] = set()
    try:
        outputs = list(keras_model.outputs or [])
    except (AttributeError, ValueError):
        outputs = []
    for t in outputs:
        layer = producer(t)
        for _ in range(64):
            if layer is None or id(layer) not in paths:
                break
            found.add(paths[id(layer)])
            inner = getattr(layer, "outputs", None) if getattr(layer, "layers", None) else None
            nxt = inner[0] if inner else (layer_inputs(layer)[0] if PASS_THROUGH.fullmatch(
                type(layer).__name__) and len(layer_inputs(layer)) == 1 else None)
            layer = producer(nxt) if nxt is not None else None
    if not found:
        layers = [p for p, layer, d in iter_layers(keras_model) if d == 0]
        found = set(layers[-1:])
    return found
