"""What `insight.callbacks.DoctorCallback` needs to run the doctor during `fit`, cheaply: the
history logged so far as curve series, and the loss's gradient norm per layer on a fixed
probe batch from one compiled pass over the weights only.

Example:

>>> series = history_series([("loss", 0, 1.2), ("loss", 1, 0.8), ("val_loss", 1, 0.9)])
>>> series[0]["loss"][1].tolist(), series[0]["val_loss"][0].tolist()
([1.2, 0.8], [1])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["HISTORY_NAMES", "history_series", "WeightGradients"]

# Keras' log keys -> the doctor's curve names (`insight.doctor.series.training_series`)
HISTORY_NAMES = {"loss": "loss", "val_loss": "val_loss", "accuracy": "accuracy",
                 "acc": "accuracy", "val_accuracy": "val_accuracy", "val_acc": "val_accuracy",
                 "learning_rate": "learning_rate", "lr": "learning_rate"}


def history_series(rows: Iterable[tuple[str, int, float]]) -> list[dict[str, Any]]:
    """`[(log key, step, value)]` as one group of curve series (the shape
    `training_series` returns), or `[]` before a loss was logged; a repeated step keeps
    its last value."""
    rows = list(rows)
    series: dict[str, Any] = {"group": "fit"}
    for tag, key in HISTORY_NAMES.items():
        points = {step: value for t, step, value in rows if t == tag}
        if points and key not in series:
            series[key] = (np.fromiter(points, np.int64),
                           np.fromiter(points.values(), np.float64))
    return [series] if "loss" in series else []


class WeightGradients:
    """`WeightGradients(model, x, y)()` -> a `Gradients` whose table holds each layer's loss
    gradient norm on the batch `(x, y)` (the predicted class's score without `y`).

    One compiled pass over the weights only (no layer outputs recorded, no activation
    gradients): a check costs a few milliseconds, and its first trace a fraction of
    `insight.gradients`'. Built on first call; the model's current weights are read each time.
    """

    def __init__(self, model: Any, x: Any, y: Any = None) -> None:
        self.model, self.x, self.y = model, x, y
        self._fn = None

    def __call__(self):
        import pandas as pd

        from insight.probe.backprop import Gradients

        if self._fn is None:
            self._build()
        loss, squares = self._fn(*self._args)
        squares = squares.numpy().astype(np.float64)
        nan = [float("nan")] * len(self.paths)
        table = pd.DataFrame({  # object columns: pandas' string arrays cost ms to build
            "layer": np.array(self.paths, dtype=object),
            "class": np.array(self.classes, dtype=object), "params": self.params,
            "weight_norm": nan,
            "weight_grad_norm": [float(np.sqrt(squares[i].sum())) if len(i) else float("nan")
                                 for i in self.owned],
            "activation_grad_norm": nan}, copy=False)
        return Gradients({}, {}, float(loss), self.description, table)

    def _build(self) -> None:
        import tensorflow as tf

        from insight.model.layers import iter_layers
        from insight.probe.backprop import own_variables, score_description
        from insight.probe.capture import TRACE_LOCK, as_inputs
        from insight.probe.losses import model_loss, output_items

        model = self.model
        x = as_inputs(self.x, model)
        outputs = model(x, training=False)
        layers = [(p, layer) for p, layer, _ in iter_layers(model)
                  if type(layer).__name__ != "InputLayer" and not getattr(layer, "layers", None)]
        self.paths = [p for p, _ in layers]
        self.classes = [type(layer).__name__ for _, layer in layers]
        variables = list(model.trainable_variables)
        own = own_variables(model, self.paths, variables)
        self.owned = [np.asarray(own[p], np.int64) for p in self.paths]
        self.params = [int(sum(int(np.prod(variables[i].shape)) for i in own[p]))
                       for p in self.paths]
        if self.y is not None:
            plan = model_loss(model, self.y, outputs)
            terms, ys = plan.terms, [tf.constant(a) for a in plan.labels(self.y)]
            self.description = plan.description
        else:
            terms, ys = None, None
            self.description = score_description([n for n, _ in output_items(outputs, model)])

        def run(x, ys=None):
            with tf.GradientTape() as tape:
                outs = [o for _, o in output_items(model(x, training=False), model)]
                if ys is None:
                    target = tf.add_n([tf.reduce_mean(tf.reduce_max(tf.reshape(
                        tf.cast(o, tf.float32), (tf.shape(o)[0], -1)), -1)) for o in outs])
                else:
                    target = tf.add_n([t.weight * tf.reduce_mean(t.fn(yy, outs[t.index]))
                                       for t, yy in zip(terms, ys, strict=True)])
            grads = tape.gradient(target, variables,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            if not grads:
                return target, tf.zeros((0,))
            return target, tf.stack([tf.reduce_sum(tf.square(tf.cast(
                tf.convert_to_tensor(g), tf.float32))) for g in grads])

        self._fn = tf.function(run)
        self._args = (x,) if ys is None else (x, ys)
        with TRACE_LOCK:
            self._fn.get_concrete_function(*self._args)
