"""One layer in detail, the way Netron shows it: its class and config (kernel size, strides,
padding, activation, dtype...), where it connects, and its weights' names, shapes and dtypes.

The config comes from the file (`insight.preflight`: nothing runs, no TensorFlow), so it is
there before the model loads and for files safe mode refuses; the weights, their values and
the parameter count need the loaded model.

Example:

>>> import insight
>>> pf = insight.preflight("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> card = layer_details(pf.config, "conv1")  # doctest: +SKIP
>>> card["class"], card["kernel_size"], card["strides"], card["padding"]  # doctest: +SKIP
('Conv2D', '(3, 3)', '(1, 1)', 'same')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from insight.errors import UsageError
from insight.model.graph import layer_entry, layer_graph
from insight.model.layers import iter_layers, output_shape_text, param_count, shape_text

__all__ = ["layer_details", "layer_weights", "simplify_config"]

_FIXED = ("layer", "class", "inputs", "outputs", "output_shape", "params", "weights")
_SKIPPED = {"name", "layers", "input_layers", "output_layers", "build_input_shape"}


def _serialized(value: Any) -> bool:
    return isinstance(value, Mapping) and "class_name" in value and "config" in value


def _plain(value: Any) -> Any:
    """A config value as text or numbers: a dtype policy by its name, an initializer or
    regularizer by its class and set arguments."""
    if _serialized(value):
        cfg = value.get("config") or {}
        if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and "name" in cfg:
            return str(cfg["name"])
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items() if v is not None and
                         not isinstance(v, Mapping | list) and k != "name")
        return f"{value['class_name']}({args})" if args else str(value["class_name"])
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return _tuple_text(value)
    return value


def _tuple_text(value: Any) -> str:
    """`[3, 3]` -> `"(3, 3)"`, the way Keras prints a kernel size (nested lists too)."""
    if not isinstance(value, list | tuple):
        return str(_plain(value))
    items = [_tuple_text(v) for v in value]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def simplify_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A layer's config for reading: unset (`None`) entries and its name dropped, serialized
    objects shortened (`"float32"`, `"GlorotUniform"`, `"RandomNormal(stddev=0.05)"`), lists
    as Keras prints tuples (`"(3, 3)"`).

    >>> simplify_config({"name": "c", "kernel_size": [3, 3], "kernel_regularizer": None,
    ...                  "dtype": {"class_name": "DTypePolicy", "config": {"name": "float32"}}})
    {'kernel_size': '(3, 3)', 'dtype': 'float32'}
    """
    return {k: _plain(v) for k, v in config.items() if v is not None and k not in _SKIPPED}


def layer_details(config: Mapping[str, Any] | None, path: str, *, model: Any = None
                  ) -> dict[str, Any]:
    """A card of one layer: `layer`, `class`, `inputs`, `outputs` (the layers it connects
    to), `output_shape`, `params`, its config entries, and `weights` once loaded.

    Args:
        config: the model config (`Preflight.config`); `None` for a file without one.
        path: the layer's path (`"conv1"`, `"backbone/conv1"`).
        model: the loaded `keras.Model`, for the weights, the parameter count and the
            config of layers the file's config does not list (a subclassed model's).
            Defaults to `None`.

    Returns:
        A flat dict; config entries named like a fixed field are prefixed with `config_`.

    Raises:
        UsageError: no layer has that path; the message lists the layers.
    """
    graph = layer_graph(config or {})
    node = next((n for n in graph.nodes if n.id == path), None)
    entry = layer_entry(config or {}, path)
    found = {p: obj for p, obj, _ in iter_layers(model)} if model is not None else {}
    layer = found.get(path)
    if node is None and entry is None and layer is None:
        known = [n.id for n in graph.nodes] or list(found)
        raise UsageError(f"No such layer: {path!r}. Existing layers are: "
                         f"{', '.join(known) or '(none known before the model loads)'}.",
                         "Use a path from the layer table (nested layers as 'outer/inner').",
                         f"layer={path!r}")
    card: dict[str, Any] = {"layer": path, "class": (
        node.class_name if node else str(entry.get("class_name")) if entry
        else type(layer).__name__)}
    if node is not None:
        card["inputs"] = ", ".join(a for a, b in graph.edges if b == path) or "-"
        card["outputs"] = ", ".join(b for a, b in graph.edges if a == path) or "-"
    if layer is not None:
        card["output_shape"] = output_shape_text(layer)
        card["params"] = param_count(layer)
    elif node is not None:
        card["output_shape"] = node.shape
        card["params"] = "not loaded"
    raw = entry.get("config") if entry else None
    if raw is None and layer is not None:
        try:
            raw = layer.get_config()
        except Exception:  # user code
            raw = None
    if isinstance(raw, Mapping):
        if isinstance(raw.get("layers"), list):
            card["layer_count"] = len(raw["layers"])
        for key, value in simplify_config(raw).items():
            card[f"config_{key}" if key in _FIXED or key in card else key] = value
    if layer is not None:
        card["weights"] = [{k: v for k, v in w.items() if k != "values"}
                           for w in layer_weights(layer)]
    return card


def _stat(x: float) -> float:
    return float(f"{x:.4g}")


def layer_weights(layer: Any) -> list[dict[str, Any]]:
    """Each weight of a layer (a nested model: all of its own layers'), as
    `{name, shape, dtype, params, trainable, mean, std, min, max, values}`; `name` is the
    variable's path (`"conv1/kernel"`), `values` a numpy array."""
    rows = []
    for v in getattr(layer, "weights", []) or []:
        values = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
        flat = values.astype(np.float64, copy=False).ravel() if values.size and \
            np.issubdtype(values.dtype, np.number) else np.zeros(0)
        rows.append({
            "name": str(getattr(v, "path", None) or getattr(v, "name", "?")),
            "shape": shape_text(tuple(int(d) for d in values.shape)),
            "dtype": str(getattr(v, "dtype", values.dtype)),
            "params": int(values.size),
            "trainable": bool(getattr(v, "trainable", False)),
            **({"mean": _stat(flat.mean()), "std": _stat(flat.std()),
                "min": _stat(flat.min()), "max": _stat(flat.max())} if flat.size else {}),
            "values": values,
        })
    return rows
