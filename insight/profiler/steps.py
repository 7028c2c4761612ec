"""The steps a profile capture times: one inference or one training step per batch.

`capture_profile` runs these inside its step markers; a benchmark runs the same ones without
the profiler to measure what profiling costs. A training step trains a copy of the model, so
the model the app shows keeps its weights.

Example:

>>> from insight.profiler.steps import make_predict_step, repeat_batches
>>> step = make_predict_step(loaded.model)  # doctest: +SKIP
>>> batches = repeat_batches(dataset, 32)  # doctest: +SKIP
>>> step(*next(batches))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from insight.errors import UsageError

__all__ = ["labels_per_output", "make_predict_step", "make_train_step", "repeat_batches"]


def repeat_batches(dataset: Any, batch_size: int) -> Iterator[tuple[Any, Any]]:
    """`(x, y)` batches of a dataset, starting over at its end, without end.

    Args:
        dataset: an `insight.data.Dataset`.
        batch_size: examples per batch, capped at the dataset's length.

    Returns:
        An endless iterator of `dataset.batches(...)` items.

    Example:

    >>> batches = repeat_batches(dataset, 32)  # doctest: +SKIP
    >>> x, y = next(batches)  # doctest: +SKIP
    """
    while True:
        yield from dataset.batches(min(batch_size, len(dataset)))


def make_predict_step(model: Any, xla: bool = False) -> Callable[[Any, Any], None]:
    """A function running one inference step of `model` and waiting for its result.

    Args:
        model: a Keras model.
        xla: compile the step with XLA (`jit_compile=True`). Defaults to `False`.

    Returns:
        `step(x, y)`; `y` is ignored, so inference and training steps take the same batches.

    Example:

    >>> step = make_predict_step(model)  # doctest: +SKIP
    >>> step(x_batch, None)  # doctest: +SKIP
    """
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), jit_compile=xla,
                     reduce_retracing=True)

    def step(x, _y):
        out = fn(x)
        tf.nest.map_structure(lambda t: t.numpy(), out)  # wait for the result

    return step


def make_train_step(model: Any, xla: bool = False) -> Callable[[Any, Any], None]:
    """A function running one training step on a copy of `model`, compiled on first use.

    The first call reads the model's outputs to pair each with its labels
    (`labels_per_output`) and its loss (the model's recorded loss when it has one output,
    else one guessed from the labels), then compiles the copy with Adam.

    Args:
        model: a Keras model; a subclassed model that cannot be cloned is trained itself.
        xla: compile the step with XLA (`jit_compile=True`). Defaults to `False`.

    Returns:
        `step(x, y)`, running `train_on_batch` once.

    Raises:
        UsageError: (from the first step) the labels do not cover every output.

    Example:

    >>> step = make_train_step(model)  # doctest: +SKIP
    >>> step(x_batch, y_batch)  # doctest: +SKIP
    """
    import keras

    from insight.probe.backprop import resolve_loss

    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    except Exception:  # noqa: BLE001  subclassed models may not clone: train the original
        copy = model
    recorded = getattr(model, "loss", None)
    state: dict[str, Any] = {}

    def step(x, y):
        if not state:
            out = copy(x, training=False)
            outs = list(out.values()) if isinstance(out, dict) else \
                list(out) if isinstance(out, list | tuple) else [out]
            names = list(getattr(copy, "output_names", None) or [f"output_{i}"
                                                                  for i in range(len(outs))])
            state["ys"] = labels_per_output(y, names)
            losses = [resolve_loss(None, yy, o, recorded if len(outs) == 1 else None)[0]
                      for yy, o in zip(state["ys"](y), outs, strict=True)]
            copy.compile(optimizer="adam", loss=losses if len(outs) > 1 else losses[0],
                         jit_compile=xla)
        ys = state["ys"](y)
        copy.train_on_batch(x, ys if len(ys) > 1 else ys[0])

    return step


def labels_per_output(y: Any, names: list[str]) -> Callable[[Any], list[Any]]:
    """A function from a batch's labels to one label array per model output, in order.

    Dict keys are matched by output name (or `y_<name>`), else by position when there are as
    many keys as outputs; a single array serves a single output.

    Args:
        y: one batch's labels: an array, or a dict of arrays.
        names: the model's output names, in order.

    Returns:
        `pick(batch_labels) -> [array, ...]`, one array per output.

    Raises:
        UsageError: the labels do not cover every output.

    Example:

    >>> import numpy as np
    >>> batch = {"y_digit": np.arange(3), "y_is_even": np.ones(3)}
    >>> [a.tolist() for a in labels_per_output(batch, ["digit", "is_even"])(batch)]
    [[0, 1, 2], [1.0, 1.0, 1.0]]
    """
    if not isinstance(y, dict):
        if len(names) > 1:
            raise UsageError(f"Training steps need labels for each of the model's {len(names)} "
                             "outputs, and the data has one label array.",
                             "Save labels keyed by output name in the .npz, or profile "
                             "inference.", f"outputs={names!r}")
        return lambda batch: [batch]
    keys = []
    for i, name in enumerate(names):
        key = name if name in y else f"y_{name}" if f"y_{name}" in y else \
            list(y)[i] if len(y) == len(names) else None
        if key is None:
            raise UsageError(f"No labels for the output {name!r}: training steps need labels "
                             "for every output.", "Key the labels by output name (or "
                             "y_<name>) in the .npz, or profile inference.",
                             f"labels={list(y)!r}, outputs={names!r}")
        keys.append(key)
    return lambda batch: [batch[k] for k in keys]
