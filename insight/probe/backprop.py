"""Gradients of the loss with respect to every weight and every layer output, in one pass.

With labels, the target is the model's loss: the one recorded in the file's compile config
when it is a built-in Keras loss, else one inferred from the labels and the output (integer
labels and several units: sparse categorical cross-entropy; one unit: binary cross-entropy;
otherwise mean squared error). Without labels, the target is the score of the predicted
class (the largest output of each row), and `Gradients.target` says so.

Example:

>>> g = gradients(loaded, x[:64], y[:64])  # doctest: +SKIP
>>> g.target, g.table[["layer", "weight_grad_norm"]].head(2)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from insight.errors import DataError, UsageError
from insight.model.layers import as_model, iter_layers, resolve_layers
from insight.probe.capture import (
    COMPILED,
    TRACE_LOCK,
    as_inputs,
    first_output,
    input_spec,
    recording,
    signature_key,
)

__all__ = ["Gradients", "gradients", "resolve_loss", "GRAD_COLUMNS"]

GRAD_COLUMNS = ["layer", "class", "params", "weight_norm", "weight_grad_norm",
                "activation_grad_norm"]


@dataclass
class Gradients:
    """Gradients of one target for one batch.

    Attributes:
        weights: `{variable_path: gradient}` for every trainable weight.
        activations: `{layer_path: gradient}` of the target w.r.t. each layer's output.
        value: the target's value (the mean loss, or the mean predicted-class score).
        target: what was differentiated, in words.
        table: one row per layer: `GRAD_COLUMNS` (norms: L2 of the weight gradient; mean
            per-example L2 of the activation gradient).
    """

    weights: Mapping[str, np.ndarray]
    activations: Mapping[str, np.ndarray]
    value: float
    target: str
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def _compiled_loss_name(model_or_loaded: Any) -> Any:
    pf = getattr(model_or_loaded, "preflight", None)
    config = (getattr(pf, "config", None) or {}).get("compile_config") or {}
    return config.get("loss")


def resolve_loss(loss: Any, y: Any, outputs: Any, recorded: Any = None):
    """A Keras loss object for `y` and `outputs`, and its name.

    Args:
        loss: a loss name, a loss object, or `None` to use `recorded` or infer one.
        y: the labels (an array).
        outputs: the model's output for the batch (a tensor).
        recorded: the loss name stored in the file's compile config. Defaults to `None`.

    Raises:
        UsageError: an unknown loss name.
    """
    import keras

    name = loss if loss is not None else recorded if isinstance(recorded, str) else None
    if name is None:
        units = outputs.shape[-1] if len(outputs.shape) > 1 else 1
        integer = np.issubdtype(np.asarray(y).dtype, np.integer)
        if integer and units and units > 1:
            name = "sparse_categorical_crossentropy"
        elif units == 1 and set(np.unique(np.asarray(y))) <= {0, 1}:
            name = "binary_crossentropy"
        else:
            name = "mean_squared_error"
    if not isinstance(name, str):
        return name, type(name).__name__
    try:
        return keras.losses.get(name), name
    except (ValueError, TypeError) as exc:
        raise UsageError(f"Unknown loss {name!r}.",
                         "Use a Keras loss name such as 'sparse_categorical_crossentropy'.",
                         f"loss={name!r}") from exc




def own_variables(model: Any, paths: list[str], variables: list) -> dict[str, list[int]]:
    """Indices into `variables` of each layer's own trainable weights (none for models)."""
    index = {id(v): i for i, v in enumerate(variables)}
    layers = {p: layer for p, layer, _ in iter_layers(model)}
    return {p: [] if getattr(layers[p], "layers", None) else
            [index[id(v)] for v in layers[p].trainable_weights if id(v) in index]
            for p in paths}


def tape_gradients(model: Any, paths: list[str], variables: list, loss_obj: Any, x: Any,
                   y: Any = None) -> tuple[Any, list, list, list, list]:
    """Inside a traced function: one forward pass recording the outputs of `paths`, then the
    gradient of the mean loss (without labels: of the mean top output) with respect to
    `variables` and those outputs, all dense.

    Returns:
        `(target, weights, weight_grads, activations, activation_grads)`.
    """
    import tensorflow as tf

    store: dict[str, Any] = {}
    with tf.GradientTape() as tape:
        with recording(model, set(paths), store):
            outputs = model(x, training=False)
        # A copy: Keras' losses read softmax/sigmoid outputs' hidden logits and would route
        # the gradient around the output tensor, leaving the last layer's gradient at 0.
        out = tf.identity(tf.cast(first_output(outputs), tf.float32))
        if y is None:
            target = tf.reduce_mean(tf.reduce_max(tf.reshape(out, (tf.shape(out)[0], -1)),
                                                  axis=-1))
        else:
            target = tf.reduce_mean(loss_obj(y, out))
    acts = [first_output(store[p]) for p in paths]
    weights = [getattr(v, "value", v) for v in variables]
    grads = tape.gradient(target, weights + acts,
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    grads = [tf.convert_to_tensor(g) for g in grads]  # Embedding: IndexedSlices -> dense
    return target, weights, grads[:len(variables)], acts, grads[len(variables):]


def _gradient_function(model: Any, paths: list[str], x_example: Any, y_example: Any,
                       loss_obj: Any):
    import tensorflow as tf

    key = ("grad", tuple(paths), signature_key(x_example),
           None if y_example is None else signature_key(y_example), id(loss_obj))
    cache = COMPILED.setdefault(model, {})
    if key in cache:
        return cache[key]
    variables = list(model.trainable_variables)
    owned = own_variables(model, paths, variables)

    def norm(tensors):
        if not tensors:
            return tf.constant(float("nan"))
        return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(tf.cast(t, tf.float32)))
                                 for t in tensors]))

    def run(x, y=None):
        target, weights, w_grads, _, a_grads = tape_gradients(model, paths, variables,
                                                              loss_obj, x, y)
        # The norm table inside the graph: no host copies of every gradient to compute it.
        norms = tf.stack([
            tf.stack([norm([weights[i] for i in owned[p]]), norm([w_grads[i] for i in owned[p]]),
                      tf.reduce_mean(tf.norm(tf.reshape(tf.cast(g, tf.float32),
                                                        (tf.shape(g)[0], -1)), axis=1))])
            for p, g in zip(paths, a_grads, strict=True)])
        return target, w_grads, a_grads, norms

    signature = [input_spec(x_example)]
    if y_example is not None:
        signature.append(input_spec(y_example))
    fn = tf.function(run, input_signature=signature, reduce_retracing=True)
    with TRACE_LOCK:
        fn.get_concrete_function()
    cache[key] = (fn, variables, owned)
    return cache[key]


class _LazyArrays(Mapping):
    """`{name: tensor}` read as numpy arrays, converted on first access only."""

    def __init__(self, tensors: dict[str, Any]) -> None:
        self._tensors = tensors
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._arrays:
            self._arrays[key] = np.asarray(self._tensors[key])
        return self._arrays[key]

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


def _output_units(model: Any, x: Any) -> Any:
    """The first output (symbolic when the model has a graph, else from a one-row pass)."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if outputs:
        return outputs[0]
    return first_output(model(_head(x), training=False))


def gradients(model: Any, x: Any, y: Any = None, *, loss: Any = None,
              layers: str | Iterable[str] | None = None) -> Gradients:
    """Gradients of the loss (or of the predicted class's score) for the batch `x`.

    Args:
        model: a `keras.Model` or a `LoadedModel`.
        x: inputs (an array or `{input_name: array}`), one batch.
        y: labels for the first output, or `None` to differentiate the predicted class's
            score. Defaults to `None`.
        loss: a Keras loss name or object; `None` uses the file's recorded loss or infers one.
            Defaults to `None`.
        layers: layer paths for activation gradients; `None` for all. Defaults to `None`.

    Returns:
        `Gradients`, computed in one forward and one backward pass (activation gradients are
        converted to numpy when first read).

    Raises:
        UsageError: an unknown layer or loss.
        DataError: labels whose row count differs from the inputs'.
    """
    keras_model = as_model(model)
    paths = resolve_layers(keras_model, layers)
    x = as_inputs(x)
    loss_obj, loss_name = None, ""
    if y is not None:
        if isinstance(y, Mapping):
            y = next(iter(y.values()))
        y = np.asarray(y)
        rows = len(next(iter(x.values()))) if isinstance(x, Mapping) else len(x)
        if len(y) != rows:
            raise DataError("Labels and inputs have different numbers of rows.",
                            "Pass one label per input row.", f"rows x={rows}, y={len(y)}")
        loss_obj, loss_name = _cached_loss(keras_model, loss, y, x, _compiled_loss_name(model))
    fn, variables, owned = _gradient_function(keras_model, paths, x, y, loss_obj)
    value, w_grads, a_grads, norms = fn(x) if y is None else fn(x, y)
    weights = _LazyArrays({v.path: g for v, g in zip(variables, w_grads, strict=True)})
    acts = _LazyArrays(dict(zip(paths, a_grads, strict=True)))
    target = f"loss: {loss_name}" if y is not None else \
        "score of the predicted class (no labels given)"
    return Gradients(weights, acts, float(value), target,
                     _norm_table(keras_model, paths, variables, owned, norms.numpy()))


def _cached_loss(model: Any, loss: Any, y: np.ndarray, x: Any, recorded: Any):
    key = ("loss", loss if isinstance(loss, str | None) else id(loss), str(y.dtype),
           tuple(np.unique(y)[:3]) if y.size else (), recorded if isinstance(recorded, str)
           else None)
    cache = COMPILED.setdefault(model, {})
    if key not in cache:
        cache[key] = resolve_loss(loss, y, _output_units(model, x), recorded)
    return cache[key]


def _head(x: Any) -> Any:
    return {k: v[:1] for k, v in x.items()} if isinstance(x, Mapping) else x[:1]


def _norm_table(model: Any, paths: list[str], variables: list, owned: dict[str, list[int]],
                norms: np.ndarray) -> pd.DataFrame:
    layers = {p: layer for p, layer, _ in iter_layers(model)}
    rows = []
    for p, (w_norm, g_norm, a_norm) in zip(paths, norms, strict=True):
        rows.append({
            "layer": p, "class": type(layers[p]).__name__,
            "params": int(sum(int(np.prod(variables[i].shape)) for i in owned[p])),
            "weight_norm": float(w_norm), "weight_grad_norm": float(g_norm),
            "activation_grad_norm": float(a_norm),
        })
    return pd.DataFrame(rows, columns=GRAD_COLUMNS)
