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
from insight.probing import (
    COMPILED,
    TRACE_LOCK,
    as_inputs,
    as_model,
    first_output,
    input_spec,
    recording,
    resolve_layers,
    signature_key,
)
from insight.summary import iter_layers

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

    weights: dict[str, np.ndarray]
    activations: dict[str, np.ndarray]
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




def _gradient_function(model: Any, paths: list[str], x_example: Any, y_example: Any,
                       loss_obj: Any):
    import tensorflow as tf

    key = ("grad", tuple(paths), signature_key(x_example),
           None if y_example is None else signature_key(y_example), id(loss_obj))
    cache = COMPILED.setdefault(model, {})
    if key in cache:
        return cache[key]
    wanted = set(paths)
    variables = list(model.trainable_variables)

    def run(x, y=None):
        store: dict[str, Any] = {}
        with tf.GradientTape() as tape:
            with recording(model, wanted, store):
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
        grads = tape.gradient(target, [getattr(v, "value", v) for v in variables] + acts,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads = [tf.convert_to_tensor(g) for g in grads]  # Embedding: IndexedSlices -> dense
        return target, grads[:len(variables)], grads[len(variables):]

    signature = [input_spec(x_example)]
    if y_example is not None:
        signature.append(input_spec(y_example))
    fn = tf.function(run, input_signature=signature, reduce_retracing=True)
    with TRACE_LOCK:
        fn.get_concrete_function()
    cache[key] = (fn, variables)
    return cache[key]


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
        `Gradients`, computed in one forward and one backward pass.

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
        probe = keras_model(_head(x), training=False)
        loss_obj, loss_name = resolve_loss(loss, y, first_output(probe),
                                           _compiled_loss_name(model))
    fn, variables = _gradient_function(keras_model, paths, x, y, loss_obj)
    value, w_grads, a_grads = fn(x) if y is None else fn(x, y)
    weights = {v.path: g.numpy() for v, g in zip(variables, w_grads, strict=True)}
    acts = {p: g.numpy() for p, g in zip(paths, a_grads, strict=True)}
    target = f"loss: {loss_name}" if y is not None else \
        "score of the predicted class (no labels given)"
    table = _norm_table(keras_model, paths, variables, w_grads, acts)
    return Gradients(weights, acts, float(value), target, table)


def _head(x: Any) -> Any:
    return {k: v[:1] for k, v in x.items()} if isinstance(x, Mapping) else x[:1]


def _norm_table(model: Any, paths: list[str], variables: list, w_grads: list,
                acts: dict[str, np.ndarray]) -> pd.DataFrame:
    grad_by_var = {id(v): g.numpy() for v, g in zip(variables, w_grads, strict=True)}
    layers = {p: layer for p, layer, _ in iter_layers(model)}
    rows = []
    for p in paths:
        layer = layers[p]
        own = [] if getattr(layer, "layers", None) else list(layer.trainable_weights)
        wg = [grad_by_var[id(v)] for v in own if id(v) in grad_by_var]
        a = acts[p].reshape(len(acts[p]), -1) if acts[p].ndim > 1 else acts[p][:, None]
        rows.append({
            "layer": p, "class": type(layer).__name__,
            "params": int(sum(int(np.prod(v.shape)) for v in own)),
            "weight_norm": float(np.sqrt(sum(float(np.sum(np.square(v.numpy())))
                                             for v in own))) if own else float("nan"),
            "weight_grad_norm": float(np.sqrt(sum(float(np.sum(np.square(g))) for g in wg)))
            if wg else float("nan"),
            "activation_grad_norm": float(np.mean(np.linalg.norm(a, axis=1))),
        })
    return pd.DataFrame(rows, columns=GRAD_COLUMNS)
