"""Keras callbacks that log what happens inside a model during training.

`ActivationLogger` writes per-layer activation and gradient statistics of a fixed probe
batch as ordinary TensorBoard scalars (`tf.summary`), one run per layer
(`<log_dir>/<layer path>/`), one tag per statistic, so TensorBoard and insight's Training
page draw each statistic as one chart with a line per layer: dead units or vanishing
gradients show up layer against layer, epoch after epoch.

The statistics come from one compiled function (traced once, on the first log): a forward
pass in inference mode whose layer outputs are captured the way `insight.probe.capture` does
(`recording`), one backward pass of the loss (`insight.probe.backprop.resolve_loss`) and the
per-layer reductions, all in the graph. The values are then written with one
`tf.summary.experimental.write_raw_pb` per layer (scalar tensors with the `scalars` plugin,
exactly what `tf.summary.scalar` writes): tracing `tf.summary.scalar` ops into the graph
would cost seconds once, this costs a few milliseconds per log.

Tags written per layer:
- `mean_abs`: mean absolute output value.
- `std`: standard deviation of the output values.
- `zero_fraction`: share of output values exactly zero.
- `dead_fraction`: share of units (last axis) that are zero for every probe example.
- `weight_grad_norm`: L2 norm of the loss gradient w.r.t. the layer's trainable weights
  (only layers that have some).
- `output_grad_norm`: mean per-example L2 norm of the gradient w.r.t. the layer's output.

Example:

>>> from insight.callbacks import ActivationLogger
>>> logger = ActivationLogger("logs/probe", x_train[:64], y_train[:64])  # doctest: +SKIP
>>> model.fit(x_train, y_train, epochs=10, callbacks=[logger])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from insight.errors import UsageError

__all__ = ["ActivationLogger", "LOGGED_STATS"]

LOGGED_STATS = ("mean_abs", "std", "zero_fraction", "dead_fraction", "weight_grad_norm",
                "output_grad_norm")
_SHAPE_ONLY = ("InputLayer", "Flatten", "Reshape", "Dropout", "Permute", "RepeatVector",
               "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise")


class ActivationLogger(keras.callbacks.Callback):
    """Log per-layer activation and gradient statistics as TensorBoard scalars.

    Args:
        log_dir: where to write; each layer gets the run `<log_dir>/<layer path>`.
        x: the probe inputs (an array or `{input_name: array}`); the first `examples` rows
            are used every time.
        y: their labels, for gradients of the loss; `None` differentiates the predicted
            class's score. Defaults to `None`.
        freq: `"epoch"` to log after every epoch, or an int `n` to log every `n` training
            batches. Defaults to `"epoch"`.
        examples: probe rows. Defaults to `64`.
        layers: layer paths to log; `None` for every layer except shape-only ones
            (Flatten, Reshape, Dropout...). Defaults to `None`.
        loss: the loss for gradients; `None` uses the model's compiled loss when it is a
            name or a loss object, else infers one from the labels. Defaults to `None`.

    Raises:
        UsageError: a bad `freq`, `examples` or layer name (on the first log).
    """

    def __init__(self, log_dir: str | Path, x: Any, y: Any = None, *, freq: str | int = "epoch",
                 examples: int = 64, layers: str | Iterable[str] | None = None,
                 loss: Any = None) -> None:
        super().__init__()
        if not (freq == "epoch" or (isinstance(freq, int) and freq > 0)):
            raise UsageError("freq must be 'epoch' or a positive number of batches.", "",
                             f"freq={freq!r}")
        if examples < 1:
            raise UsageError("examples must be at least 1.", "", f"examples={examples!r}")
        from insight.probe.capture import as_inputs, count_rows, slice_rows

        x = as_inputs(x)
        rows = min(int(examples), count_rows(x))
        self.log_dir = Path(log_dir)
        self.freq = freq
        self._x = slice_rows(x, 0, rows)
        self._y = None if y is None else np.asarray(y)[:rows]
        self._layers = layers
        self._loss = loss
        self._fn = None
        self._batches = 0
        self.paths: list[str] = []
        self.logged_steps: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.freq == "epoch":
            self.log(epoch)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches += 1
        if self.freq != "epoch" and self._batches % int(self.freq) == 0:
            self.log(self._batches)

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in getattr(self, "_writers", []):
            writer.flush()

    def log(self, step: int) -> np.ndarray:
        """Compute the statistics now and write them at `step`; returns them
        (`(layers, len(LOGGED_STATS))`, rows in `self.paths` order)."""
        import tensorflow as tf

        if self._fn is None:
            self._fn = self._build()
        args = [self._x] + ([] if self._y is None else [self._y])
        values = self._fn(*args).numpy()
        for p, row, writer in zip(self.paths, values, self._writers, strict=True):
            stats = [(n, v) for n, v in zip(LOGGED_STATS, row, strict=True)
                     if n != "weight_grad_norm" or self._owned[p]]
            with writer.as_default():  # one raw write per layer: cheap, and no graph to trace
                tf.summary.experimental.write_raw_pb(_summary(stats), step=int(step))
        self.logged_steps.append(int(step))
        return values

    def _build(self):
        import tensorflow as tf

        from insight.model.layers import iter_layers, resolve_layers
        from insight.probe.backprop import own_variables, resolve_loss, tape_gradients
        from insight.probe.capture import TRACE_LOCK, first_output, input_spec

        model = self.model
        if self._layers is None:
            paths = [p for p, layer, _ in iter_layers(model)
                     if type(layer).__name__ not in _SHAPE_ONLY and not getattr(layer, "layers",
                                                                                 None)]
        else:
            paths = resolve_layers(model, self._layers)
        variables = list(model.trainable_variables)
        owned = own_variables(model, paths, variables)
        loss_obj = None
        if self._y is not None:
            loss = self._loss
            if loss is None:
                loss = getattr(model, "loss", None)
                loss = loss if isinstance(loss, str | keras.losses.Loss) else None
            out = first_output(model(self._x[:1] if not isinstance(self._x, dict) else
                                     {k: v[:1] for k, v in self._x.items()}, training=False))
            loss_obj, _ = resolve_loss(loss, self._y, out)
        self.paths = paths
        self._writers = [tf.summary.create_file_writer(str(self.log_dir / p)) for p in paths]
        self._owned = {p: bool(owned[p]) for p in paths}

        def run(x, y=None):
            _, _, w_grads, acts, a_grads = tape_gradients(model, paths, variables, loss_obj, x, y)
            acts = [tf.cast(a, tf.float32) for a in acts]
            w_grads = [tf.cast(g, tf.float32) for g in w_grads]
            a_grads = [tf.cast(g, tf.float32) for g in a_grads]
            rows = []
            for p, a, g in zip(paths, acts, a_grads, strict=True):
                units = tf.reshape(a, (-1, tf.shape(a)[-1])) if a.shape.rank > 1 else \
                    tf.reshape(a, (-1, 1))
                nonzero = tf.cast(tf.not_equal(units, 0.0), tf.float32)
                w_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(w_grads[i]))
                                           for i in owned[p]])) if owned[p] else \
                    tf.constant(float("nan"))
                row = tf.stack([
                    tf.reduce_mean(tf.abs(a)), tf.math.reduce_std(a),
                    1.0 - tf.reduce_mean(nonzero),
                    tf.reduce_mean(tf.cast(tf.equal(tf.reduce_max(nonzero, axis=0), 0.0),
                                           tf.float32)),
                    w_norm,
                    tf.reduce_mean(tf.norm(tf.reshape(g, (tf.shape(g)[0], -1)), axis=1))])
                rows.append(row)
            return tf.stack(rows)

        signature = [input_spec(self._x)]
        if self._y is not None:
            signature.append(input_spec(self._y))
        fn = tf.function(run, input_signature=signature)
        with TRACE_LOCK:
            fn.get_concrete_function()
        return fn


def _summary(stats: list[tuple[str, float]]) -> bytes:
    """A serialized `Summary` of float32 scalars, byte for byte what `tf.summary.scalar`
    writes (a scalar tensor, plugin `scalars`)."""
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2

    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    out = summary_pb2.Summary()
    for name, value in stats:
        tensor = tensor_pb2.TensorProto(dtype=1, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                        tensor_content=np.float32(value).tobytes())
        out.value.add(tag=name, tensor=tensor, metadata=meta)
    return out.SerializeToString()
