"""Gradients of the loss with respect to every weight and every layer output, in one pass.

With labels, the target is the model's loss, every output's term weighted as compiled
(`insight.probe.losses.model_loss`): the compiled loss of an in-memory model, else the one
recorded in the file's compile config (`loss`, `loss_weights`) when it is a built-in Keras
loss, else one inferred from each output's labels (integer labels and several units: sparse
categorical cross-entropy; one unit and 0/1 labels: binary cross-entropy; otherwise mean
squared error). `Gradients.target` names each term, its weight and output, and why a loss
was inferred. Without labels, the target is the score of the predicted class (the largest
output of each row), summed over the outputs, and `Gradients.target` says so.

The loss is evaluated as Keras' training step evaluates it: on the outputs as the model
returns them, so a cross-entropy reads the logits Keras keeps behind a softmax or sigmoid
output (`insight.probe.lossfn.logits_of`). The gradients are then training's, saturated
outputs included (a confidently wrong prediction has a large gradient, where clipped
probabilities would give 0). Such an output's own gradient is its logits' (what training
backpropagates through that layer; the probabilities are not on its path).

Every layer output, the first layers' too, is a source of the tape: a layer before the first
weight (`Rescaling`, `ZeroPadding2D`...) only sees the model's input, which a tape does not
watch, so without this its output would look unconnected to the loss.

Example:

>>> g = gradients(loaded, x[:64], y[:64])  # doctest: +SKIP
>>> g.target, g.table[["layer", "weight_grad_norm"]].head(2)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    count_rows,
    first_output,
    input_spec,
    recording,
    signature_key,
)
from insight.probe.losses import (
    ModelLoss,
    OutputLoss,
    compiled_loss,
    model_loss,
    output_items,
    resolve_loss,
)
from insight.probe.lossfn import logits_of

__all__ = ["Gradients", "gradients", "resolve_loss", "GRAD_COLUMNS", "own_variables",
           "tape_gradients", "score_description", "output_structure"]

GRAD_COLUMNS = ["layer", "class", "params", "weight_norm", "weight_grad_norm",
                "activation_grad_norm"]


@dataclass
class Gradients:
    """Gradients of one target for one batch.

    Attributes:
        weights: `{variable_path: gradient}` for every trainable weight.
        activations: `{layer_path: gradient}` of the target w.r.t. each layer's output
            (w.r.t. the logits behind it, for a softmax or sigmoid output whose cross-entropy
            reads them).
        value: the target's value (the weighted loss, or the summed predicted-class scores).
        target: what was differentiated, in words, e.g. `"loss: 1.0 x
            sparse_categorical_crossentropy(digit) + 1.0 x binary_crossentropy(is_even)"`.
        table: one row per layer: `GRAD_COLUMNS` (norms: L2 of the weight gradient; mean
            per-example L2 of the activation gradient).
        losses: the loss's terms (`OutputLoss`: output, loss name, weight), one per output
            with a loss; empty without labels.
    """

    weights: Mapping[str, np.ndarray]
    activations: Mapping[str, np.ndarray]
    value: float
    target: str
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    losses: tuple[OutputLoss, ...] = ()


def own_variables(model: Any, paths: list[str], variables: list) -> dict[str, list[int]]:
    """Indices into `variables` of each layer's own trainable weights (none for models)."""
    index = {id(v): i for i, v in enumerate(variables)}
    layers = {p: layer for p, layer, _ in iter_layers(model)}
    return {p: [] if getattr(layers[p], "layers", None) else
            [index[id(v)] for v in layers[p].trainable_weights if id(v) in index]
            for p in paths}


def tape_gradients(model: Any, paths: list[str], variables: list,
                   terms: Sequence[OutputLoss] | None, x: Any, ys: Sequence[Any] | None = None
                   ) -> tuple[Any, list, list, list, list]:
    """Inside a traced function: one forward pass recording the outputs of `paths`, then the
    gradient of the target with respect to `variables` and those outputs, all dense.

    The target is the weighted sum of the `terms` (one per output with a loss, its labels in
    `ys`, in order), or without labels the predicted-class score of each output, summed.
    Each recorded output is watched by the tape as it is made, so layers before the first
    weight get their gradient too. The loss gets the outputs as returned (a cross-entropy
    reads the logits behind a softmax or sigmoid, as in training); a layer output reached
    only through those logits gets the logits' gradient.

    Returns:
        `(target, weights, weight_grads, activations, activation_grads)`.
    """
    import tensorflow as tf

    store: dict[str, Any] = {}
    with tf.GradientTape() as tape:
        def watch(out: Any) -> None:
            for t in tf.nest.flatten(out):
                if getattr(getattr(t, "dtype", None), "is_floating", False):
                    tape.watch(t)
                    if logits_of(t) is not None:
                        tape.watch(logits_of(t))

        with recording(model, set(paths), store, watch=watch):
            outputs = model(x, training=False)
        # The outputs as returned, as training hands them to the loss: a cross-entropy reads
        # the logits kept behind a softmax or sigmoid (see insight.probe.lossfn).
        outs = [o for _, o in output_items(outputs, model)]
        if ys is None:
            target = tf.add_n([
                tf.reduce_mean(tf.reduce_max(tf.reshape(tf.cast(o, tf.float32),
                                                        (tf.shape(o)[0], -1)), axis=-1))
                for o in outs])
        else:
            target = tf.add_n([t.weight * tf.cast(tf.reduce_mean(t.fn(y, outs[t.index])),
                                                  tf.float32)
                               for t, y in zip(terms or (), ys, strict=True)])
    acts = [first_output(store[p]) for p in paths]
    behind = [logits_of(a) for a in acts]
    weights = [getattr(v, "value", v) for v in variables]
    through = [z for z in behind if z is not None]
    grads = tape.gradient(target, weights + acts + through)
    w_grads = grads[:len(weights)]
    a_grads = grads[len(weights):len(weights) + len(acts)]
    z_grads = dict(zip(map(id, through), grads[len(weights) + len(acts):], strict=True))
    # A softmax or sigmoid output that a cross-entropy reads through its logits gets no
    # gradient itself: its layer's is the logits' (what training backpropagates through it).
    a_grads = [z_grads[id(z)] if g is None and z is not None else g
               for g, z in zip(a_grads, behind, strict=True)]
    w_grads = [_dense(g, w) for g, w in zip(w_grads, weights, strict=True)]
    a_grads = [_dense(g, a) for g, a in zip(a_grads, acts, strict=True)]
    return target, weights, w_grads, acts, a_grads


def _dense(grad: Any, like: Any) -> Any:
    """A gradient as a dense tensor: zeros where unconnected, an Embedding's IndexedSlices
    made dense."""
    import tensorflow as tf

    return tf.zeros_like(like) if grad is None else tf.convert_to_tensor(grad)


def score_description(outputs: Sequence[str]) -> str:
    """The target without labels, in words, for a model with these outputs."""
    if len(outputs) <= 1:
        return "score of the predicted class (no labels given)"
    return ("score of the predicted class of each output, summed over "
            f"{', '.join(outputs)} (no labels given)")


def _gradient_function(model: Any, paths: list[str], x_example: Any, ys_example: Any,
                       terms: tuple[OutputLoss, ...] | None):
    import tensorflow as tf

    key = ("grad", tuple(paths), signature_key(x_example),
           None if ys_example is None else signature_key(ys_example),
           None if terms is None else tuple((t.index, id(t.fn), t.weight) for t in terms))
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

    def run(x, ys=None):
        target, weights, w_grads, _, a_grads = tape_gradients(model, paths, variables,
                                                              terms, x, ys)
        # The norm table inside the graph: no host copies of every gradient to compute it.
        norms = tf.stack([
            tf.stack([norm([weights[i] for i in owned[p]]), norm([w_grads[i] for i in owned[p]]),
                      tf.reduce_mean(tf.norm(tf.reshape(tf.cast(g, tf.float32),
                                                        (tf.shape(g)[0], -1)), axis=1))])
            for p, g in zip(paths, a_grads, strict=True)])
        return target, w_grads, a_grads, norms

    signature = [input_spec(x_example)]
    if ys_example is not None:
        signature.append(input_spec(list(ys_example)))
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


def gradients(model: Any, x: Any, y: Any = None, *, loss: Any = None,
              layers: str | Iterable[str] | None = None) -> Gradients:
    """Gradients of the loss (or of the predicted class's score) for the batch `x`.

    Args:
        model: a `keras.Model` or a `LoadedModel`.
        x: inputs, one batch: an array, `{input_name: array}`, or a list of arrays in
            `model.inputs` order.
        y: labels: an array for a single output; for several outputs a dict keyed by output
            name (or `y_<name>`) or a list in output order. `None` differentiates the
            predicted class's score of each output. Defaults to `None`.
        loss: a Keras loss name or object for every output, or a dict (by output name) or
            list of them; `None` uses the compiled loss and its `loss_weights` (the model's,
            else the file's compile config), else infers one per output. Defaults to `None`.
        layers: layer paths for activation gradients; `None` for all. Defaults to `None`.

    Returns:
        `Gradients`, computed in one forward and one backward pass (activation gradients are
        converted to numpy when first read); its `target` names the loss of every output.

    Raises:
        UsageError: an unknown layer or loss, or labels that miss an output with a loss.
        DataError: labels whose row count differs from the inputs', or a list of inputs of
            the wrong length.

    Example:

    >>> g = gradients(loaded, data.x[:64], data.y)  # doctest: +SKIP
    >>> g.target  # doctest: +SKIP
    'loss: 1.0 x sparse_categorical_crossentropy(digit) + 1.0 x binary_crossentropy(is_even)'
    """
    keras_model = as_model(model)
    paths = resolve_layers(keras_model, layers)
    x = as_inputs(x, keras_model)
    plan, ys = None, None
    if y is not None:
        plan = _cached_plan(model, keras_model, loss, y, x)
        ys = plan.labels(y)
        rows = count_rows(x)
        for term, labels in zip(plan.terms, ys, strict=True):
            if len(labels) != rows:
                shown = "y" if len(plan.outputs) == 1 else f"y[{term.output!r}]"
                raise DataError("Labels and inputs have different numbers of rows.",
                                "Pass one label per input row.",
                                f"rows x={rows}, {shown}={len(labels)}")
        if not plan.terms:
            raise UsageError("The loss covers none of the model's outputs.",
                             f"Give a loss per output: {list(plan.outputs)!r}.",
                             f"loss={loss!r}")
    terms = None if plan is None else plan.terms
    fn, variables, owned = _gradient_function(keras_model, paths, x, ys, terms)
    value, w_grads, a_grads, norms = fn(x) if ys is None else fn(x, ys)
    weights = _LazyArrays({v.path: g for v, g in zip(variables, w_grads, strict=True)})
    acts = _LazyArrays(dict(zip(paths, a_grads, strict=True)))
    if plan is not None:
        target = plan.description
    else:
        target = score_description([n for n, _ in
                                    output_items(output_structure(keras_model, x), keras_model)])
    return Gradients(weights, acts, float(value), target,
                     _norm_table(keras_model, paths, variables, owned, norms.numpy()),
                     () if plan is None else plan.terms)


def _cached_plan(model: Any, keras_model: Any, loss: Any, y: Any, x: Any) -> ModelLoss:
    """`model_loss` for labels like `y`, once per loss, compiled loss and label kind."""
    key = ("loss", _spec_key(loss), _labels_key(y), repr(compiled_loss(model)),
           getattr(model, "preflight", None) is not None)
    cache = COMPILED.setdefault(keras_model, {})
    if key not in cache:
        cache[key] = model_loss(model, y, output_structure(keras_model, x), loss=loss)
    return cache[key]


def _spec_key(loss: Any) -> Any:
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, Mapping):
        return tuple((k, _spec_key(v)) for k, v in sorted(loss.items()))
    if isinstance(loss, list | tuple):
        return tuple(_spec_key(v) for v in loss)
    return id(loss)


def _labels_key(y: Any) -> tuple:
    """The labels' structure, dtypes, trailing shapes and first values: what picks a loss."""
    def one(a: Any) -> tuple:
        arr = np.asarray(a)
        return (str(arr.dtype), arr.shape[1:], tuple(np.unique(arr)[:3].tolist())
                if arr.size else ())

    if isinstance(y, Mapping):
        return ("dict", *((k, one(v)) for k, v in y.items()))
    if isinstance(y, list | tuple) and y and all(np.ndim(v) > 0 for v in y):
        return ("list", *(one(v) for v in y))
    return ("array", one(y))


def output_structure(model: Any, x: Any) -> Any:
    """What the model returns: its symbolic outputs when it has a graph, else a one-row pass's
    (once per input signature)."""
    try:
        return model.output
    except (AttributeError, ValueError):
        pass
    try:
        symbolic = model.outputs  # a built Sequential has these, not `output`
    except (AttributeError, ValueError):
        symbolic = None
    if isinstance(symbolic, list) and len(symbolic) == 1:
        return symbolic[0]
    key = ("outputs", signature_key(x))
    cache = COMPILED.setdefault(model, {})
    if key not in cache:
        head = {k: v[:1] for k, v in x.items()} if isinstance(x, Mapping) else x[:1]
        cache[key] = model(head, training=False)
    return cache[key]


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
