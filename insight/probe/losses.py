"""Which loss a model is differentiated by, output by output, and which labels each output needs.

One place decides this for the Gradients page, `insight stats`, `ActivationLogger` and the
profiler's training steps (`insight profile --train`), so they agree:

- the outputs are what the model returns, named by their dict keys, else by
  `model.output_names` (`output_items`);
- the labels of each output (`labels_per_output`) are matched by output name or `y_<name>`,
  else by position; a list of arrays is in output order; one array serves one output;
- the loss of each output and its weight (`model_loss`) come from an explicit `loss`, else
  from the compiled loss (the model's own when it is compiled, else the file's compile
  config: `loss` and `loss_weights`), else one is inferred from the labels and the output
  (`resolve_loss`); the description says which: `"loss: 1.0 x
  sparse_categorical_crossentropy(digit) + 0.5 x mse(value)"`.

How one output's loss is found and evaluated (as Keras' training step does, from the logits
behind a softmax or sigmoid output) is `insight.probe.lossfn`'s.

Example:

>>> plan = model_loss(loaded, dataset.y, loaded.model.output)  # doctest: +SKIP
>>> plan.description  # doctest: +SKIP
'loss: 1.0 x sparse_categorical_crossentropy(digit) + 1.0 x binary_crossentropy(is_even)'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from insight.errors import UsageError
from insight.model.layers import as_model
from insight.probe.lossfn import resolve_loss

__all__ = ["OutputLoss", "ModelLoss", "model_loss", "labels_per_output", "output_items",
           "compiled_loss", "resolve_loss", "describe_losses", "NO_LABELS"]

NO_LABELS = "or give no labels (gradients of the predicted class's score)"
_SKIP = object()  # an output the compiled loss leaves out: no loss, no labels


@dataclass(frozen=True)
class OutputLoss:
    """One term of a model's loss: `weight x name(output)`.

    Attributes:
        output: the output's name (`output_items`).
        name: the loss's name, e.g. `"sparse_categorical_crossentropy"`.
        weight: its weight in the total (`loss_weights`).
        index: the output's position among the model's outputs.
        note: why this loss when it is not the compiled or given one ("inferred from the
            labels: ..."), else `""`.
        fn: the Keras loss, `fn(y_true, y_pred)` -> the mean loss.
    """

    output: str
    name: str
    weight: float = 1.0
    index: int = 0
    note: str = ""
    fn: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ModelLoss:
    """A model's loss: one weighted term per output that has a loss.

    Attributes:
        terms: the terms, in output order.
        outputs: the names of all the model's outputs, in order.
        pick: `pick(labels) -> [array, ...]`, the labels of each term from a batch's labels
            (see `labels_per_output`).
    """

    terms: tuple[OutputLoss, ...]
    outputs: tuple[str, ...]
    pick: Callable[[Any], list[Any]] = field(repr=False, compare=False)

    def labels(self, y: Any) -> list[np.ndarray]:
        """The label array of each term, from labels shaped like the ones this was made for."""
        return [np.asarray(a) for a in self.pick(y)]

    @property
    def description(self) -> str:
        """What is differentiated, in words (see `describe_losses`)."""
        return describe_losses(self.terms, len(self.outputs))


def output_items(outputs: Any, model: Any = None) -> list[tuple[str, Any]]:
    """`[(name, tensor), ...]`: what a model returned, in order, with each output's name.

    A dict's keys name its outputs; a list's or a single tensor's come from
    `model.output_names` (else `output_<i>`, or `output` for one).

    Args:
        outputs: what the model returned (or its symbolic `model.output`).
        model: the model, for `output_names`. Defaults to `None`.

    Example:

    >>> [name for name, _ in output_items({"digit": 1, "is_even": 2})]
    ['digit', 'is_even']
    """
    if isinstance(outputs, Mapping):
        return [(str(k), v) for k, v in outputs.items()]
    seq = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
    names = [str(n) for n in (getattr(model, "output_names", None) or [])] if model is not None \
        else []
    if len(names) != len(seq):
        names = ["output"] if len(seq) == 1 else [f"output_{i}" for i in range(len(seq))]
    return list(zip(names, seq, strict=True))


def compiled_loss(model: Any) -> tuple[Any, Any, str] | None:
    """The compiled loss of `model`: `(loss, loss_weights, where)`, or `None`.

    The model's own when it is compiled (its loss objects, as given to `compile`), else the
    compile config recorded in its file (`LoadedModel.preflight`: insight loads models
    without compiling them).

    Args:
        model: a `keras.Model` or a `LoadedModel`.
    """
    keras_model = as_model(model)
    if getattr(keras_model, "compiled", False) and getattr(keras_model, "loss", None) is not None:
        try:
            weights = (keras_model.get_compile_config() or {}).get("loss_weights")
        except Exception:  # noqa: BLE001  a compile config that does not serialize
            weights = None
        return keras_model.loss, weights, "the model's compiled loss"
    pf = getattr(model, "preflight", None)
    config = (getattr(pf, "config", None) or {}).get("compile_config") or {}
    if config.get("loss") is not None:
        return config["loss"], config.get("loss_weights"), "the file's compile config"
    return None


def labels_per_output(y: Any, names: Sequence[str], *, otherwise: str = NO_LABELS
                      ) -> Callable[[Any], list[Any]]:
    """A function from a batch's labels to one label array per output, in order.

    Dict keys are matched by output name (or `y_<name>`), else by position when there are as
    many keys as outputs; a list or tuple holds one array per output, in order; a single
    array serves a single output.

    Args:
        y: one batch's labels: an array, a dict of arrays, or a list of arrays.
        names: the names of the outputs that need labels, in order.
        otherwise: what else the user can do, ending the fix in the error. Defaults to
            `NO_LABELS`.

    Returns:
        `pick(batch_labels) -> [array, ...]`, one array per name.

    Raises:
        UsageError: the labels do not cover every output.

    Example:

    >>> import numpy as np
    >>> batch = {"y_digit": np.arange(3), "y_is_even": np.ones(3)}
    >>> [a.tolist() for a in labels_per_output(batch, ["digit", "is_even"])(batch)]
    [[0, 1, 2], [1.0, 1.0, 1.0]]
    """
    names = list(names)
    if not names:
        return lambda batch: []
    if isinstance(y, list | tuple) and len(names) > 1:
        if len(y) != len(names):
            raise UsageError(f"The labels are a list of {len(y)} arrays, and the loss needs "
                             f"one per output: {names!r}.",
                             f"Pass one array per output, in output order, {otherwise}.",
                             f"labels=<{type(y).__name__} of {len(y)}>, outputs={names!r}")
        return lambda batch: list(batch)
    if not isinstance(y, Mapping):
        if len(names) > 1:
            raise UsageError(f"The loss needs labels for each of the model's {len(names)} "
                             "outputs, and the data has one label array.",
                             "Key the labels by output name (`y_<name>` in an .npz), "
                             f"{otherwise}.", f"outputs={names!r}")
        return lambda batch: [batch[0] if isinstance(batch, list | tuple) and len(batch) == 1
                              else batch]
    keys = []
    for i, name in enumerate(names):
        key = name if name in y else f"y_{name}" if f"y_{name}" in y else \
            list(y)[i] if len(y) == len(names) else None
        if key is None:
            raise UsageError(f"No labels for the output {name!r}: the loss needs labels for "
                             "every output that has one.", "Key the labels by output name "
                             f"(or y_<name>, as in an .npz), {otherwise}.",
                             f"labels={list(y)!r}, outputs={names!r}")
        keys.append(key)
    return lambda batch: [batch[k] for k in keys]


def model_loss(model: Any, y: Any, outputs: Any, *, loss: Any = None,
               otherwise: str = NO_LABELS) -> ModelLoss:
    """The loss of `model` for labels like `y`: one weighted term per output.

    Args:
        model: a `keras.Model` or a `LoadedModel` (its file's compile config is read).
        y: labels: an array (one output), `{output name or y_<name>: array}`, or a list in
            output order. Only their structure, dtypes and values guide the choice.
        outputs: what the model returns (a one-row call's result or `model.output`).
        loss: a loss (name, object, function) for every output, a dict of them by output
            name, or a list in output order; `None` for the compiled loss, else losses
            inferred from the labels. A given loss weighs 1.0 per output. Defaults to `None`.
        otherwise: the alternative named in the missing-labels error. Defaults to
            `NO_LABELS`.

    Returns:
        A `ModelLoss`.

    Raises:
        UsageError: labels that do not cover every output with a loss, an unknown loss name
            given in `loss`, or a list of losses of the wrong length.

    Example:

    >>> plan = model_loss(loaded, {"digit": y_digit, "is_even": y_even},  # doctest: +SKIP
    ...                   loaded.model.output)
    >>> [(t.output, t.name, t.weight) for t in plan.terms]  # doctest: +SKIP
    [('digit', 'sparse_categorical_crossentropy', 1.0), ('is_even', 'binary_crossentropy', 1.0)]
    """
    keras_model = as_model(model)
    items = output_items(outputs, keras_model)
    names = [n for n, _ in items]
    found = compiled_loss(model) if loss is None else (loss, None, "the given loss")
    if found is not None:
        spec, weights, why = found[0], found[1], ""
    else:
        spec, weights = None, None
        why = ("the file has no compile config" if getattr(model, "preflight", None) is not None
               else "the model is not compiled")
    per_output = _per_output(spec, names, given=loss is not None)
    if found is not None and all(s is None for s in per_output):
        why = f"{found[2]} does not match the outputs {names!r}"
    per_weight = _weights(weights, names)
    wanted = [i for i, s in enumerate(per_output) if s is not _SKIP]
    pick = labels_per_output(y, [names[i] for i in wanted], otherwise=otherwise)
    terms = []
    for i, labels in zip(wanted, pick(y), strict=True):
        fn, name, note = _one_loss(per_output[i], np.asarray(labels), items[i][1],
                                   given=loss is not None, why=why)
        terms.append(OutputLoss(names[i], name, per_weight[i], i, note, fn))
    return ModelLoss(tuple(terms), tuple(names), pick)


def describe_losses(terms: Sequence[OutputLoss], outputs: int = 1) -> str:
    """`"loss: 1.0 x name(output) + ..."`, or `"loss: name"` for one output weighing 1.0; why a
    loss was inferred follows in parentheses.

    Example:

    >>> describe_losses([OutputLoss("class", "sparse_categorical_crossentropy"),
    ...                  OutputLoss("value", "mse", 0.5, 1)], outputs=2)
    'loss: 1.0 x sparse_categorical_crossentropy(class) + 0.5 x mse(value)'
    """
    if len(terms) == 1 and outputs == 1 and terms[0].weight == 1.0:
        text = f"loss: {terms[0].name}"
    else:
        text = "loss: " + " + ".join(f"{_weight_text(t.weight)} x {t.name}({t.output})"
                                     for t in terms)
    notes = list(dict.fromkeys(t.note for t in terms if t.note))
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _weight_text(weight: float) -> str:
    text = f"{weight:.4g}"
    return text if any(c in text for c in ".en") else text + ".0"


def _serialized(value: Any) -> bool:
    """A serialized Keras object (`{"class_name": ..., "config": ...}`), not a dict by output."""
    return isinstance(value, Mapping) and "class_name" in value and "config" in value


def _per_output(spec: Any, names: list[str], *, given: bool) -> list[Any]:
    """Each output's loss spec: `None` to infer one, `_SKIP` for no loss."""
    n = len(names)
    if spec is None:
        return [None] * n
    if isinstance(spec, Mapping) and not _serialized(spec):
        unknown = [k for k in spec if k not in names]
        if given and unknown:
            raise UsageError(f"The losses name outputs the model does not have: {unknown!r}.",
                             f"Key them by output name: {names!r}.",
                             f"loss keys={list(spec)!r}")
        if not given and not any(k in spec for k in names):
            return [None] * n  # keyed by other names: infer, and say so
        return [spec[k] if spec.get(k) is not None else _SKIP for k in names]
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) != n:
            if given:
                raise UsageError(f"{len(spec)} losses for {n} outputs.",
                                 f"Give one loss per output, in order: {names!r}.",
                                 f"loss=<list of {len(spec)}>")
            return [None] * n  # a config that does not fit the model: infer, and say so
        return [s if s is not None else _SKIP for s in spec]
    return [spec] * n


def _weights(weights: Any, names: list[str]) -> list[float]:
    if isinstance(weights, Mapping):
        return [float(weights.get(n, 1.0)) for n in names]
    if isinstance(weights, Sequence) and not isinstance(weights, str):
        return [float(w) for w in weights] if len(weights) == len(names) else [1.0] * len(names)
    if isinstance(weights, int | float) and not isinstance(weights, bool):
        return [float(weights)] * len(names)
    return [1.0] * len(names)


def _one_loss(spec: Any, y: np.ndarray, output: Any, *, given: bool, why: str
              ) -> tuple[Any, str, str]:
    """`(loss, name, note)` for one output from its spec (see `_per_output`)."""
    import keras

    if spec is None:
        fn, name = resolve_loss(None, y, output)
        return fn, name, f"inferred from the labels: {why}"
    if given:
        fn, name = resolve_loss(spec, y, output)
        return fn, name, ""
    try:  # recorded: a name, a serialized built-in loss, or the compiled model's own object
        if _serialized(spec):
            # Only Keras' own: deserializing another module's object would import it.
            if not str(spec.get("module") or "").startswith("keras"):
                raise ValueError("not a Keras loss")
            obj = keras.losses.get(dict(spec))
            return obj, str(getattr(obj, "name", None) or spec["class_name"]), ""
        fn, name = resolve_loss(spec, y, output)
        return fn, name, ""
    except (UsageError, ValueError, TypeError):
        fn, name = resolve_loss(None, y, output)
        return fn, name, (f"inferred from the labels: the compiled loss {_shown(spec)!r} is "
                          "not a built-in Keras loss")


def _shown(spec: Any) -> str:
    """A compiled loss's name as its author wrote it."""
    if not isinstance(spec, Mapping):
        return str(getattr(spec, "__name__", None) or getattr(spec, "name", None) or spec)
    config = spec.get("config")
    return config if spec.get("class_name") == "function" and isinstance(config, str) else \
        str(spec.get("class_name"))
