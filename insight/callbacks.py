"""Keras callbacks that log what happens inside a model during training.

`DoctorCallback` runs the doctor's cheap checks while the model trains (see its docstring).
`ActivationLogger` writes per-layer activation and gradient statistics of a fixed probe batch
as TensorBoard scalars, one run per layer (`<log_dir>/<layer path>/`), one tag per statistic,
so TensorBoard and insight's Training page draw each statistic as one chart with a line per
layer: dead units or vanishing gradients show up layer against layer, epoch after epoch.

The statistics come from one compiled function, traced once (see `background`): a forward
pass in inference mode whose layer outputs are recorded (`insight.probe.capture.recording`),
one backward pass of the loss (`insight.probe.backprop.tape_gradients`) and the per-layer
reductions (a small layer's by numpy after the run: `insight.probe.logged`). Each log
writes one `tf.summary.experimental.write_raw_pb` per layer (byte for byte what
`tf.summary.scalar` writes, without tracing summary ops).

Tags written per layer:
- `mean_abs`: mean absolute output value.
- `std`: standard deviation of the output values.
- `zero_fraction`: share of output values exactly zero.
- `dead_fraction`: share of units (last axis) that are zero for every probe example.
- `weight_grad_norm`: L2 norm of the loss gradient w.r.t. the layer's trainable weights
  (only layers that have some).
- `output_grad_norm`: mean per-example L2 norm of the gradient w.r.t. the layer's output.

Example:

>>> from insight.callbacks import ActivationLogger, DoctorCallback
>>> logger = ActivationLogger("logs/probe", x_train[:64], y_train[:64])  # doctest: +SKIP
>>> doctor = DoctorCallback("logs", x_train[:32], y_train[:32], stop_on="error")  # doctest: +SKIP
>>> model.fit(x_train, y_train, epochs=10, callbacks=[logger, doctor])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras
import numpy as np

from insight.errors import UsageError
from insight.probe.logged import LOGGED_STATS, finish, in_graph

__all__ = ["ActivationLogger", "DoctorCallback", "LOGGED_STATS", "STOP_ON"]

_SHAPE_ONLY = ("InputLayer", "Flatten", "Reshape", "Dropout", "Permute", "RepeatVector",
               "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise")


class ActivationLogger(keras.callbacks.Callback):
    """Log per-layer activation and gradient statistics as TensorBoard scalars.

    Args:
        log_dir: where to write; each layer gets the run `<log_dir>/<layer path>`.
        x: the probe inputs (an array, `{input_name: array}`, or a list in `model.inputs`
            order); the first `examples` rows are used every time.
        y: their labels, for gradients of the loss: an array, or for several outputs a dict
            by output name (or `y_<name>`) or a list in output order. `None` differentiates
            the predicted class's score of each output. Defaults to `None`.
        freq: `"epoch"` to log after every epoch, or an int `n` to log every `n` training
            batches. Defaults to `"epoch"`.
        examples: probe rows. Defaults to `64`.
        layers: layer paths to log; `None` for every layer except shape-only ones
            (Flatten, Reshape, Dropout...). Defaults to `None`.
        loss: the loss for gradients (one for every output, or a dict or list of them);
            `None` uses the model's compiled loss and `loss_weights`, else infers one per
            output from the labels (`insight.probe.losses.model_loss`). Defaults to `None`.
        background: trace in a thread while the first epoch trains (from its second batch,
            done before its last), so the first log only runs the function. Keras runs its
            compiled step meanwhile; a callback of yours that calls the model in Python
            during those batches would run through the patched layers, so it is asked for,
            not the default. Defaults to `False` (trace on the first log).

    Attributes:
        paths: the logged layers (known from the first log on).
        target: what the gradients differentiate, in words (from the first log on), e.g.
            `"loss: 1.0 x sparse_categorical_crossentropy(digit) + 0.5 x mse(value)"`.
        logged_steps: the steps logged so far.

    Raises:
        UsageError: a bad `freq`, `examples` or layer name (on the first log), or labels
            that miss an output with a loss.
    """

    def __init__(self, log_dir: str | Path, x: Any, y: Any = None, *, freq: str | int = "epoch",
                 examples: int = 64, layers: str | Iterable[str] | None = None,
                 loss: Any = None, background: bool = False) -> None:
        super().__init__()
        if not (freq == "epoch" or (isinstance(freq, int) and freq > 0)):
            raise UsageError("freq must be 'epoch' or a positive number of batches.", "",
                             f"freq={freq!r}")
        if examples < 1:
            raise UsageError("examples must be at least 1.", "", f"examples={examples!r}")
        from insight.probe.capture import as_inputs, count_rows, slice_rows

        x = x if isinstance(x, list | tuple) else as_inputs(x)
        rows = min(int(examples), count_rows(x[0] if isinstance(x, list | tuple) else x))
        self.log_dir, self.freq, self.background = Path(log_dir), freq, bool(background)
        self._rows = rows
        self._x = [np.asarray(v)[:rows] for v in x] if isinstance(x, list | tuple) else \
            slice_rows(x, 0, rows)
        self._y = None if y is None else _first_rows(y, rows)
        self._layers, self._loss = layers, loss
        self._fn = self._pending = None  # the function once traced; prepared, maybe not
        self._tracer: Future | None = None  # a background trace
        self._on_host: tuple[bool, ...] = ()  # per layer: reduced by numpy (set by the trace)
        self._last: int | None = None  # the batch before which it must be done
        self._batches = 0
        self.paths: list[str] = []
        self.logged_steps: list[int] = []
        self.target = ""

    def on_train_begin(self, logs: dict | None = None) -> None:
        # Trace only while Keras runs its compiled step, which makes no Python calls of the
        # model: from batch 1 (batch 0 traced it) to the epoch's last (None: on the first log).
        steps = (self.params or {}).get("steps")
        per_call = int(getattr(self.model, "steps_per_execution", 1) or 1)
        self._last = steps - per_call if (self.background and self._fn is None and steps
                                          and not self.model.run_eagerly) else None

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._last is None:
            return
        if self._fn is None and self._tracer is None and 0 < batch < self._last:
            pool = ThreadPoolExecutor(1, thread_name_prefix="insight-trace")
            self._tracer = pool.submit(self._ready, warm=True)
            pool.shutdown(wait=False)  # its thread ends with the trace
        elif batch >= self._last:
            self._take_trace()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.freq == "epoch":
            self.log(epoch)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches += 1
        if self.freq != "epoch" and self._batches % int(self.freq) == 0:
            self.log(self._batches)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._take_trace()  # Keras is about to trace its test step: not while we patch

    def on_train_end(self, logs: dict | None = None) -> None:
        self._take_trace()
        for writer in getattr(self, "_writers", []):
            writer.flush()

    def _take_trace(self) -> None:
        """Wait for a background trace (what failed there is redone on the first log, which
        raises what it raises)."""
        self._last = None
        if self._tracer is not None:
            tracer, self._tracer = self._tracer, None
            self._fn = None if tracer.exception() else self._pending

    def _ready(self, warm: bool = False):
        """The statistics function prepared and traced; `warm`: also run once on one row,
        which makes TensorFlow optimize the graph (otherwise the first log's work)."""
        from insight.probe.capture import TRACE_LOCK, slice_rows

        if self._pending is None:
            self._pending = self._prepare()
        with TRACE_LOCK:  # one trace at a time: tracing patches layer calls
            self._pending.get_concrete_function()
        if warm:
            self._pending(slice_rows(self._x, 0, 1), *([] if self._y is None else
                                                        [[v[:1] for v in self._y]]))
        return self._pending

    def log(self, step: int) -> np.ndarray:
        """Compute the statistics now and write them at `step`; returns them
        (`(layers, len(LOGGED_STATS))`, rows in `self.paths` order)."""
        import tensorflow as tf

        self._take_trace()
        if self._fn is None:
            self._fn = self._ready()
        args = [self._x] + ([] if self._y is None else [self._y])
        values = finish(self._on_host, *self._fn(*args))
        for p, row, writer in zip(self.paths, values, self._writers, strict=True):
            stats = [(n, v) for n, v in zip(LOGGED_STATS, row, strict=True)
                     if n != "weight_grad_norm" or self._owned[p]]
            with writer.as_default():  # one raw write per layer: cheap, and no graph to trace
                tf.summary.experimental.write_raw_pb(_summary(stats), step=int(step))
        self.logged_steps.append(int(step))
        return values

    def _prepare(self):
        """The statistics function, not yet traced, and what the logs need (paths, target,
        labels, writers)."""
        import tensorflow as tf

        from insight.model.layers import iter_layers, resolve_layers
        from insight.probe.backprop import (
            output_structure,
            own_variables,
            score_description,
            tape_gradients,
        )
        from insight.probe.capture import as_inputs, input_spec
        from insight.probe.losses import model_loss, output_items

        model = self.model
        x, y = self._x, self._y
        if isinstance(x, list):
            x = as_inputs(x, model)
        if self._layers is None:
            paths = [p for p, layer, _ in iter_layers(model)
                     if type(layer).__name__ not in _SHAPE_ONLY and not getattr(layer, "layers",
                                                                                 None)]
        else:
            paths = resolve_layers(model, self._layers)
        variables = list(model.trainable_variables)
        owned = own_variables(model, paths, variables)
        terms = None
        outputs = output_structure(model, x)  # symbolic: no forward pass (one if no graph)
        if y is not None:
            plan = model_loss(model, y, outputs, loss=self._loss)
            terms, y = plan.terms, plan.labels(y)
            target = plan.description
        else:
            target = score_description([n for n, _ in output_items(outputs, model)])

        def run(x, y=None):
            _, _, w_grads, acts, a_grads = tape_gradients(model, paths, variables, terms, x, y)
            # Which layers numpy reduces is known once traced (a Python value, not an output).
            self._on_host, stats, raw = in_graph(
                acts, a_grads, [[w_grads[i] for i in owned[p]] for p in paths], self._rows)
            return stats, raw

        signature = [input_spec(x)] + ([] if y is None else [input_spec(list(y))])
        self._x, self._y, self.target, self.paths = x, y, target, paths
        self._writers = [tf.summary.create_file_writer(str(self.log_dir / p)) for p in paths]
        self._owned = {p: bool(owned[p]) for p in paths}
        # No autograph: the function has no tensor-dependent Python control flow, and
        # Keras' own training step is traced without it (`do_not_convert`) too.
        return tf.function(run, input_signature=signature, autograph=False)


def _first_rows(y: Any, rows: int) -> Any:
    """The first `rows` labels of an array, or of each array of a dict or list."""
    if isinstance(y, dict):
        return {k: np.asarray(v)[:rows] for k, v in y.items()}
    if isinstance(y, list | tuple) and y and all(np.ndim(v) > 0 for v in y):
        return [np.asarray(v)[:rows] for v in y]
    return np.asarray(y)[:rows]


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


STOP_ON = (None, "error", "warning")


class DoctorCallback(keras.callbacks.Callback):
    """The doctor during `fit`: its cheap checks on the curves so far and a fixed small batch.

    When training starts it checks the setup once (output activation against the loss, the
    labels of the probe batch, the learning rate, the initial weights). Then, after every
    epoch (or every `freq` batches), it checks the curves logged so far (NaN in the loss,
    divergence, oscillation, a loss that does not fall, accuracy at chance, overfitting...)
    and, when given a probe batch, the gradients of the loss on it (vanishing, exploding,
    NaN/Inf with the first layer). Each new finding (a check and layer not reported before,
    or reported less severely) is written to `<log_dir>/doctor.jsonl` (read by the Doctor
    page) and as a TensorBoard text summary (`tf.summary.text`, run `<log_dir>/doctor`, tag
    `doctor/<check>`). With `stop_on`, a finding that severe ends training
    (`model.stop_training = True`): a NaN loss, a diverging loss, NaN gradients.

    Args:
        log_dir: where to write (the TensorBoard logdir of the run).
        x: the probe inputs for the gradient checks (the first `examples` rows are used), or
            `None` for no gradient checks. Defaults to `None`.
        y: their labels (the gradients are then of the loss). Defaults to `None`.
        freq: `"epoch"`, or check every `freq` training batches (the running epoch means
            in Keras' batch logs). Defaults to `"epoch"`.
        examples: rows of the probe batch. Defaults to `32`.
        stop_on: `"error"` or `"warning"` to stop training at a finding that severe, `None`
            never. Defaults to `None`.

    Attributes:
        findings: `[(step, Finding)]` written so far.
        stopped_by: the finding that stopped training, or `None`.

    Raises:
        UsageError: a bad `freq`, `examples` or `stop_on`.

    Example:

    >>> cb = DoctorCallback("logs", x[:32], y[:32], stop_on="error")  # doctest: +SKIP
    >>> model.fit(x, y, epochs=20, callbacks=[cb])  # doctest: +SKIP
    >>> [f.check for _, f in cb.findings]  # doctest: +SKIP
    ['loss_diverging', 'loss_nan']
    """

    def __init__(self, log_dir: str | Path, x: Any = None, y: Any = None, *,
                 freq: str | int = "epoch", examples: int = 32,
                 stop_on: str | None = None) -> None:
        super().__init__()
        if not (freq == "epoch" or (isinstance(freq, int) and not isinstance(freq, bool)
                                    and freq > 0)):
            raise UsageError("freq must be 'epoch' or a positive number of batches.", "",
                             f"freq={freq!r}")
        if examples < 1:
            raise UsageError("examples must be at least 1.", "", f"examples={examples!r}")
        if stop_on not in STOP_ON:
            raise UsageError("stop_on must be None, 'error' or 'warning'.", "",
                             f"stop_on={stop_on!r}")
        from insight.doctor.log import LOG_NAME

        self.log_dir = Path(log_dir)
        self.log_path = self.log_dir / LOG_NAME
        self.freq = freq
        self.stop_on = stop_on
        self._x = None if x is None else _first_rows(x, examples)
        self._y = None if y is None else _first_rows(y, examples)
        self._rows: list[tuple[str, int, float]] = []  # (tag, step, value)
        self._reported: dict[tuple[str, str | None], int] = {}
        self._batches = 0
        self._epoch = 0
        self._writer = None
        self._grad_fn = None
        self.findings: list = []
        self.stopped_by = None
        if freq == "epoch":  # no batch hook: Keras then skips reading the logs every batch
            self.on_train_batch_end = keras.callbacks.Callback.on_train_batch_end.__get__(self)

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs: dict | None = None) -> None:
        from insight.doctor import all_checks

        static = [c for c in all_checks() if c.cheap and set(c.needs) <= {"model", "compile",
                                                                           "labels"}]
        self._run(static, step=0, with_curves=False)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches += 1
        if self._batches % int(self.freq) == 0:
            self._record(logs, self._batches)
            self._run(self._runtime_checks(), step=self._batches)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        step = epoch if self.freq == "epoch" else self._batches
        self._record(logs if self.freq == "epoch" else
                     {k: v for k, v in (logs or {}).items() if k.startswith("val_")}, step)
        if self.freq == "epoch":
            self._run(self._runtime_checks(), step=epoch)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.flush()

    # ------------------------------------------------------------------ work
    def _runtime_checks(self) -> list:
        from insight.doctor import all_checks

        wanted = {"curves"} | ({"gradients"} if self._x is not None else set())
        return [c for c in all_checks() if c.cheap and set(c.needs) & wanted
                and set(c.needs) <= wanted | {"model", "compile"}]

    def _record(self, logs: dict | None, step: int) -> None:
        for key, value in (logs or {}).items():
            try:
                self._rows.append((str(key), int(step), float(value)))
            except (TypeError, ValueError):
                continue

    def _curves(self) -> list[dict[str, Any]]:
        from insight.doctor.runtime import history_series

        return history_series(self._rows)

    def _run(self, checks: list, *, step: int, with_curves: bool = True) -> None:
        from insight.data import Dataset
        from insight.doctor import Evidence, run_checks, severity_rank

        dataset = None
        if self._x is not None and not isinstance(self._x, dict | list | tuple):
            dataset = Dataset(x=np.asarray(self._x), y=self._y, name="probe batch")
        ev = Evidence(self.model, dataset, curves=self._curves() if with_curves else None,
                      probe=None if self._x is None else (self._x, self._y),
                      gradients=None if self._x is None else self._gradients)
        report = run_checks(ev, checks=checks)
        new = [f for f in report.findings if severity_rank(f.severity) <
               self._reported.get(f.key, 99)]
        if not new:
            return
        for f in new:
            self._reported[f.key] = severity_rank(f.severity)
        self._write(new, step)
        if self.stop_on is not None and self.model is not None:
            stop = [f for f in new if severity_rank(f.severity) <= severity_rank(self.stop_on)]
            if stop:
                self.stopped_by = stop[0]
                self.model.stop_training = True

    def _gradients(self):
        """The loss's gradient norm per layer on the probe batch (`WeightGradients`)."""
        from insight.doctor.runtime import WeightGradients

        if self._grad_fn is None:
            self._grad_fn = WeightGradients(self.model, self._x, self._y)
        return self._grad_fn()

    def _write(self, findings: list, step: int) -> None:
        import tensorflow as tf

        from insight.doctor.log import write_findings

        write_findings(self.log_path, findings, step=step, epoch=self._epoch)
        self.findings += [(step, f) for f in findings]
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir / "doctor"))
        with self._writer.as_default():
            for f in findings:
                text = (f"**{f.severity.upper()}** ({f.category})"
                        + (f" at `{f.layer}`" if f.layer else "") + f"\n\n{f.explanation}\n\n"
                        f"**Fix:** {f.suggestion}\n\nEvidence: {f.evidence_text()}")
                tf.summary.text(f"doctor/{f.check}", text, step=int(step))
        self._writer.flush()

