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

from collections.abc import Iterable
from typing import Any

import numpy as np

from insight.errors import UsageError

__all__ = ["shape_text", "output_shape_text", "param_count", "iter_layers", "as_model",
           "layer_paths", "resolve_layers", "saturating_activation"]


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
