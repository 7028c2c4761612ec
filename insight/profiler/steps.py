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

from insight.probe.losses import labels_per_output

# `labels_per_output` lives in `insight.probe.losses`: one function decides which labels each
# output needs, for training steps and for gradients alike.
__all__ = ["labels_per_output", "make_predict_step", "make_train_step", "repeat_batches",
           "TRAIN_HINT"]

TRAIN_HINT = "or profile inference (without --train)"


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

    The first call reads the model's outputs and asks `insight.probe.losses.model_loss` for
    each output's labels and loss, as the Gradients page and `insight stats` do: the compiled
    loss and `loss_weights` (a `LoadedModel`'s file's compile config, or the model's own
    when it is compiled), else losses inferred from the labels. It then compiles the copy
    with Adam.

    Args:
        model: a Keras model, or a `LoadedModel` (whose file's compile config is then read);
            a subclassed model that cannot be cloned is trained itself.
        xla: compile the step with XLA (`jit_compile=True`). Defaults to `False`.

    Returns:
        `step(x, y)`, running `train_on_batch` once.

    Raises:
        UsageError: (from the first step) the labels do not cover every output with a loss.

    Example:

    >>> step = make_train_step(model)  # doctest: +SKIP
    >>> step(x_batch, y_batch)  # doctest: +SKIP
    """
    import keras

    from insight.model.layers import as_model
    from insight.probe.losses import model_loss

    source = as_model(model)
    try:
        copy = keras.models.clone_model(source)
        copy.set_weights(source.get_weights())
    except Exception:  # noqa: BLE001  subclassed models may not clone: train the original
        copy = source
    state: dict[str, Any] = {}

    def step(x, y):
        if not state:
            out = copy(x, training=False)
            plan = model_loss(model, y, out, otherwise=TRAIN_HINT)
            state["plan"] = plan
            state["dict"] = isinstance(out, dict)
            if state["dict"]:
                losses = {t.output: t.fn for t in plan.terms}
                weights = {t.output: t.weight for t in plan.terms}
            else:
                by_index = {t.index: t for t in plan.terms}
                losses = [by_index[i].fn if i in by_index else None
                          for i in range(len(plan.outputs))]
                weights = [by_index[i].weight if i in by_index else 0.0
                           for i in range(len(plan.outputs))]
            if len(plan.outputs) == 1:
                losses, weights = losses[0] if isinstance(losses, list) else losses, None
            copy.compile(optimizer="adam", loss=losses, loss_weights=weights, jit_compile=xla)
        plan, ys = state["plan"], state["plan"].labels(y)
        if state["dict"]:
            labels = {t.output: a for t, a in zip(plan.terms, ys, strict=True)}
        elif len(plan.outputs) == 1:
            labels = ys[0]
        else:
            by_index = {t.index: a for t, a in zip(plan.terms, ys, strict=True)}
            labels = [by_index.get(i) for i in range(len(plan.outputs))]
        copy.train_on_batch(x, labels)

    return step
