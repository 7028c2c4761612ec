"""What a model ends in, output by output: the layer, its activation, its units, and the loss
and optimizer it was compiled with (read from the file's compile config, or from the model
when it is compiled in memory, as during `fit`).

Example:

>>> heads = model_heads(loaded)  # doctest: +SKIP
>>> [(h.name, h.activation, h.units, h.loss) for h in heads]  # doctest: +SKIP
[('predictions', 'softmax', 10, 'sparse_categorical_crossentropy')]
>>> loss_name("mse"), loss_name({"class_name": "BinaryCrossentropy", "config": {}})
(('mean_squared_error', None), ('binary_crossentropy', None))
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from insight.model.layers import PASS_THROUGH, as_model, iter_layers, layer_inputs, producer
from insight.probe.losses import compiled_loss, output_items

__all__ = ["Head", "model_heads", "loss_name", "activation_name", "optimizer_setting",
           "optimizer_momentum",
           "SPARSE_CE", "CATEGORICAL_CE", "BINARY_CE", "REGRESSION",
           "RELU_FAMILY", "SATURATING", "DEFAULT_LR", "ADAPTIVE"]

SPARSE_CE = {"sparse_categorical_crossentropy"}
CATEGORICAL_CE = {"categorical_crossentropy", "categorical_focal_crossentropy", "crossentropy"}
BINARY_CE = {"binary_crossentropy", "binary_focal_crossentropy"}
REGRESSION = {"mean_squared_error", "mean_absolute_error", "huber", "log_cosh",
              "mean_squared_logarithmic_error", "mean_absolute_percentage_error"}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
            "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
            "logcosh": "log_cosh", "huber_loss": "huber", "ce": "crossentropy",
            "kld": "kl_divergence", "kullback_leibler_divergence": "kl_divergence"}
RELU_FAMILY = {"relu", "relu6"}  # exactly 0 below a threshold: units can die
SATURATING = {"sigmoid", "tanh", "hard_sigmoid", "softsign", "hard_tanh"}
# Keras' default learning rates, for optimizers given by name ("adam").
DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001, "nadam": 0.001, "adamax": 0.001,
              "rmsprop": 0.001, "adagrad": 0.001, "adadelta": 0.001, "ftrl": 0.001,
              "lion": 0.001, "adafactor": 0.001, "lamb": 0.001, "muon": 0.001}
ADAPTIVE = {"adam", "adamw", "nadam", "adamax", "rmsprop", "lion", "lamb", "adafactor", "muon"}
_LAYER_ACTIVATIONS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu",
                      "ELU": "elu", "PReLU": "prelu"}


@dataclass(frozen=True)
class Head:
    """One output of a model and how it is trained.

    Attributes:
        name: the output's name (`insight.probe.losses.output_items`).
        index: its position among the outputs.
        layer: the path of the layer whose activation makes it (pass-through layers such as
            Reshape or Dropout skipped), or `None` when unknown (subclassed models).
        activation: that layer's activation (`"softmax"`, `"sigmoid"`, `"linear"`, ...),
            `""` when unknown.
        units: the size of its last axis, or `None`.
        loss: the canonical name of its loss (`"sparse_categorical_crossentropy"`), or
            `None` when nothing was compiled.
        loss_text: the loss as recorded, for messages.
        from_logits: the loss's `from_logits`, `None` when it has none.
    """

    name: str
    index: int
    layer: str | None
    activation: str
    units: int | None
    loss: str | None
    loss_text: str = ""
    from_logits: bool | None = None

    @property
    def classifier(self) -> bool:
        """Whether it outputs class probabilities or is trained as a classifier."""
        return self.activation in ("softmax", "sigmoid") or \
            (self.loss or "") in SPARSE_CE | CATEGORICAL_CE | BINARY_CE

    @property
    def classes(self) -> int | None:
        """The number of classes it tells apart (2 for one sigmoid unit), or `None`."""
        if not self.classifier or not self.units:
            return None
        return 2 if self.units == 1 else self.units


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def loss_name(spec: Any) -> tuple[str | None, bool | None]:
    """`(canonical name, from_logits)` of a loss as compile or a compile config holds it: a
    name, a serialized Keras loss, a loss object or a function. `(None, None)` for none."""
    if spec is None:
        return None, None
    if isinstance(spec, str):
        name = _snake(spec) if any(c.isupper() for c in spec) else spec.lower()
        return _ALIASES.get(name, name), None
    if isinstance(spec, Mapping):
        if spec.get("class_name") == "function" and isinstance(spec.get("config"), str):
            return loss_name(spec["config"])
        config = spec.get("config") if isinstance(spec.get("config"), Mapping) else {}
        name = _snake(str(spec.get("class_name") or ""))
        return _ALIASES.get(name, name) or None, config.get("from_logits")
    from_logits = getattr(spec, "from_logits", None)
    if from_logits is None:
        from_logits = (getattr(spec, "_fn_kwargs", None) or {}).get("from_logits")
    cls = type(spec).__name__
    if cls in ("LossFunctionWrapper", "FunctionLoss") or callable(spec) and \
            not hasattr(spec, "get_config"):
        fn = getattr(spec, "fn", spec)
        name = getattr(fn, "__name__", cls)
        return _ALIASES.get(name, name), from_logits
    name = _snake(cls)
    return _ALIASES.get(name, name), from_logits


def activation_name(layer: Any) -> str:
    """A layer's activation by name (`"relu"`, `"softmax"`, `"linear"`), `""` when it has
    none (BatchNormalization, Add...)."""
    cls = type(layer).__name__
    if cls in _LAYER_ACTIVATIONS:
        return _LAYER_ACTIVATIONS[cls]
    act = getattr(layer, "activation", None)
    if act is None:
        return ""
    return str(getattr(act, "__name__", None) or type(act).__name__).lower()


def _making_layer(tensor: Any, paths: dict[int, str]) -> Any:
    """The layer whose activation makes `tensor`: nested models opened, pass-through layers
    (a single input) walked back."""
    layer = producer(tensor)
    for _ in range(64):
        if layer is None:
            return None
        inner = getattr(layer, "outputs", None) if getattr(layer, "layers", None) else None
        if inner:
            layer = producer(inner[0])
            continue
        if PASS_THROUGH.fullmatch(type(layer).__name__) and len(layer_inputs(layer)) == 1:
            layer = producer(layer_inputs(layer)[0])
            continue
        return layer
    return layer


def _per_output(spec: Any, names: list[str]) -> list[Any]:
    if isinstance(spec, Mapping) and not ("class_name" in spec and "config" in spec):
        return [spec.get(n) for n in names]
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return list(spec) if len(spec) == len(names) else [None] * len(names)
    return [spec] * len(names)


def _output_tensors(model: Any) -> list[tuple[str, Any]]:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if outputs:
        return output_items(outputs if len(outputs) > 1 else outputs[0], model)
    return []


def model_heads(model: Any) -> list[Head]:
    """One `Head` per output of `model` (a `keras.Model` or a `LoadedModel`), with the loss
    the file (or the compiled model) records for it.

    A subclassed model, whose outputs are known only when it runs, gets one head made by its
    last layer.
    """
    keras_model = as_model(model)
    paths = {id(layer): p for p, layer, _ in iter_layers(keras_model)}
    items = _output_tensors(keras_model)
    found = compiled_loss(model)
    if not items:  # subclassed: the last layer stands for the output
        tops = [layer for _, layer, d in iter_layers(keras_model) if d == 0]
        last = tops[-1] if tops else None
        units = getattr(last, "units", None)
        spec = _per_output(found[0], ["output"])[0] if found else None
        name, logits = loss_name(spec)
        return [Head("output", 0, paths.get(id(last)), activation_name(last) if last else "",
                     units, name, _text(spec), logits)]
    specs = _per_output(found[0] if found else None, [n for n, _ in items])
    heads = []
    for i, ((name, tensor), spec) in enumerate(zip(items, specs, strict=True)):
        layer = _making_layer(tensor, paths)
        shape = tuple(getattr(tensor, "shape", ()) or ())
        units = int(shape[-1]) if len(shape) > 1 and shape[-1] is not None else \
            (1 if len(shape) == 1 else None)
        canonical, logits = loss_name(spec)
        heads.append(Head(name, i, paths.get(id(layer)), activation_name(layer) if layer else "",
                          units, canonical, _text(spec), logits))
    return heads


def _text(spec: Any) -> str:
    if spec is None:
        return ""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        config = spec.get("config")
        if spec.get("class_name") == "function" and isinstance(config, str):
            return config
        logits = config.get("from_logits") if isinstance(config, Mapping) else None
        return f"{spec.get('class_name')}" + ("(from_logits=True)" if logits else "")
    return str(getattr(spec, "name", None) or getattr(spec, "__name__", None) or spec)


def optimizer_setting(model: Any) -> tuple[str, float | None] | None:
    """`(optimizer name, learning rate)` as compiled (the model's own optimizer when it is
    compiled, else the file's compile config); the rate is the initial one of a schedule,
    Keras' default for an optimizer given by name, `None` when unknown. `None` when no
    optimizer is recorded."""
    keras_model = as_model(model)
    opt = getattr(keras_model, "optimizer", None) if getattr(keras_model, "compiled", False) \
        else None
    if opt is not None:
        name = type(opt).__name__.lower()
        try:
            rate = float(opt.learning_rate)
        except (TypeError, ValueError, AttributeError):
            rate = _schedule_rate(getattr(opt, "_learning_rate", None))
        return name, rate
    pf = getattr(model, "preflight", None)
    config = ((getattr(pf, "config", None) or {}).get("compile_config") or {}).get("optimizer")
    if isinstance(config, str):
        return config.lower(), DEFAULT_LR.get(config.lower())
    if isinstance(config, Mapping):
        name = str(config.get("class_name") or "").lower()
        rate = (config.get("config") or {}).get("learning_rate")
        if isinstance(rate, int | float) and not isinstance(rate, bool):
            return name, float(rate)
        return name, _schedule_rate(rate)
    return None


def optimizer_momentum(model: Any) -> float:
    """The (heavy-ball) momentum of an SGD optimizer as compiled, else 0. Its steps are
    `1 / (1 - momentum)` times the learning rate once it builds up."""
    keras_model = as_model(model)
    opt = getattr(keras_model, "optimizer", None) if getattr(keras_model, "compiled", False) \
        else None
    if opt is not None:
        value = getattr(opt, "momentum", 0.0)
    else:
        pf = getattr(model, "preflight", None)
        config = ((getattr(pf, "config", None) or {}).get("compile_config") or {}).get(
            "optimizer")
        value = (config.get("config") or {}).get("momentum", 0.0) \
            if isinstance(config, Mapping) else 0.0
    try:
        value = float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return value if 0.0 <= value < 1.0 else 0.0


def _schedule_rate(rate: Any) -> float | None:
    """The initial learning rate of a (serialized) schedule, or `None`."""
    if isinstance(rate, Mapping):
        config = rate.get("config") if isinstance(rate.get("config"), Mapping) else rate
        value = config.get("initial_learning_rate")
        return float(value) if isinstance(value, int | float) else None
    value = getattr(rate, "initial_learning_rate", None)
    return float(value) if isinstance(value, int | float) else None
