"""What the Overview shows: the model card and the layer table, as plain data.

Example:

>>> import insight
>>> loaded = insight.load_model("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> insight.layer_table(loaded)[["layer", "class", "params"]].head(2)  # doctest: +SKIP
   layer   class  params
0  conv1  Conv2D      80
1  pool1  MaxPooling2D   0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insight.model.layers import iter_layers, output_shape_text, param_count, shape_text
from insight.model.loading import LoadedModel

__all__ = ["model_card", "layer_table", "model_summary", "model_kind"]

LAYER_COLUMNS = ["layer", "class", "output_shape", "params", "trainable", "activation", "depth"]



def _activation(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    if act is None:
        return ""
    return str(getattr(act, "__name__", type(act).__name__))


def model_kind(model: Any) -> str:
    """`"sequential"`, `"functional"` or `"subclassed"`."""
    import keras

    if isinstance(model, keras.Sequential):
        return "sequential"
    if type(model).__name__ == "Functional" or (
        hasattr(model, "_operations") and getattr(model, "_is_graph_network", False)):
        return "functional"
    try:
        cfg = model.get_config()
    except Exception:  # user code
        cfg = {}
    if isinstance(cfg, dict) and "input_layers" in cfg and "output_layers" in cfg:
        return "functional"
    return "subclassed"



def layer_table(loaded: LoadedModel) -> pd.DataFrame:
    """One row per layer, nested layers included with their path.

    Columns: `layer` (path), `class`, `output_shape`, `params` (weights the layer owns,
    nested models: all of theirs), `trainable`, `activation`, `depth` (0 = top level).
    """
    rows = [
        {
            "layer": path,
            "class": type(layer).__name__,
            "output_shape": output_shape_text(layer),
            "params": param_count(layer),
            "trainable": bool(layer.trainable),
            "activation": _activation(layer),
            "depth": depth,
        }
        for path, layer, depth in iter_layers(loaded.model)
    ]
    return pd.DataFrame(rows, columns=LAYER_COLUMNS)


def _tensor_specs(tensors: Any, names: list[str] | None = None) -> list[dict[str, str]]:
    if tensors is None:
        return []
    if isinstance(tensors, dict):
        names, tensors = list(tensors), list(tensors.values())
    if not isinstance(tensors, list | tuple):
        tensors = [tensors]
    out = []
    for i, t in enumerate(tensors):
        history = getattr(t, "_keras_history", None)
        producer = getattr(getattr(history, "operation", None), "name", None)
        name = (names[i] if names and i < len(names) else None) or producer \
            or getattr(t, "name", f"#{i}")
        out.append({"name": str(name), "shape": shape_text(tuple(t.shape)),
                    "dtype": str(getattr(t, "dtype", "?"))})
    return out


def _io(model: Any, loaded: LoadedModel) -> tuple[list[dict], list[dict]]:
    try:
        inputs = _tensor_specs(model.inputs)
    except (AttributeError, ValueError):
        inputs = []
    if not inputs:
        build = (loaded.preflight.config or {}).get("build_config") or {}
        shape = build.get("input_shape")
        if shape:
            inputs = [{"name": "input", "shape": shape_text(tuple(shape)), "dtype": "?"}]
    try:
        outputs = _tensor_specs(model.outputs, list(getattr(model, "output_names", []) or []))
    except (AttributeError, ValueError):
        outputs = []
    return inputs, outputs


def model_card(loaded: LoadedModel) -> dict[str, Any]:
    """The model card: identity, format, inputs/outputs, parameter counts, findings.

    Returns:
        A JSON-ready dict with keys `name`, `format`, `file`, `file_size`, `keras_version`
        (saved with), `model_class`, `kind`, `built`, `inputs`, `outputs`, `total_params`,
        `trainable_params`, `non_trainable_params`, `layer_count`, `safe_mode`, `findings`,
        `limits`, `graph_note` (why the graph is unknown, or `""`).
    """
    import keras

    from insight.model.graph import unknown_graph_reason

    model, pf = loaded.model, loaded.preflight
    weights = list(getattr(model, "weights", []))
    trainable = list(getattr(model, "trainable_weights", []))
    total = int(sum(int(np.prod(w.shape)) for w in weights))
    n_train = int(sum(int(np.prod(w.shape)) for w in trainable))
    inputs, outputs = _io(model, loaded)
    size = pf.model_file.stat().st_size if pf.model_file.is_file() else sum(
        p.stat().st_size for p in pf.model_file.rglob("*") if p.is_file())
    kind = "savedmodel" if loaded.format == "savedmodel" else model_kind(model)
    card_class = pf.model_class or type(model).__name__
    return {
        "name": loaded.name,
        "format": {"keras": ".keras (Keras v3)", "h5": "legacy HDF5 (.h5)",
                   "savedmodel": "TF SavedModel"}[loaded.format],
        "file": str(pf.model_file),
        "file_size": int(size),
        "keras_version": pf.keras_version or "not recorded",
        "loaded_with_keras": keras.__version__,
        "model_class": card_class,
        "kind": kind,
        "built": bool(getattr(model, "built", True)),
        "inputs": inputs,
        "outputs": outputs,
        "total_params": total,
        "trainable_params": n_train,
        "non_trainable_params": total - n_train,
        "layer_count": sum(1 for _ in iter_layers(model)),
        "safe_mode": loaded.safe_mode,
        "findings": pf.findings(),
        "limits": dict(loaded.limits),
        "graph_note": unknown_graph_reason(card_class) if kind == "subclassed" else "",
    }


def model_summary(loaded: LoadedModel) -> dict[str, Any]:
    """Everything `insight summary --json` prints: card, layers and preflight.

    Example:

    >>> summary = model_summary(loaded)  # doctest: +SKIP
    >>> sorted(summary)  # doctest: +SKIP
    ['card', 'layers', 'preflight']
    """
    return {
        "card": model_card(loaded),
        "layers": layer_table(loaded).to_dict(orient="records"),
        "preflight": loaded.preflight.to_dict(),
    }
