"""One output's Keras loss, evaluated as Keras' training step evaluates it.

- `resolve_loss` finds the loss: a name in `keras.losses` (`"crossentropy"` picked by the
  shapes, as `compile` picks it), a loss object, or a function wrapped the way `compile` wraps
  one (`keras.losses.LossFunctionWrapper`: labels and predictions brought to the same rank);
  with none, one is inferred from the labels and the output.
- `logits_of` names the tensor Keras' cross-entropies read instead of a softmax or sigmoid
  output: the logits Keras keeps behind it (`_keras_logits`, or the activation op's input).
  The loss is therefore computed from the outputs exactly as the model returns them, never
  from a copy: a copy hides the logits and leaves probabilities clipped to `[eps, 1 - eps]`,
  whose gradient is 0 once they saturate, where training's gradient is large.

Example:

>>> import numpy as np
>>> resolve_loss(None, np.array([0, 1]), np.zeros((2, 1)))[1]
'binary_crossentropy'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from insight.errors import InsightError, UsageError

__all__ = ["resolve_loss", "logits_of"]


def resolve_loss(loss: Any, y: Any, outputs: Any, recorded: Any = None) -> tuple[Any, str]:
    """A Keras loss for one output: `(loss, name)`.

    A name is looked up in `keras.losses` (`"crossentropy"` picks binary, sparse or
    categorical cross-entropy by the shapes, as `compile` does); a loss function is wrapped
    like `compile` wraps it (labels and predictions brought to the same rank).
    With neither `loss` nor `recorded`, one is inferred: integer labels and several units:
    sparse categorical cross-entropy; one unit and 0/1 labels: binary cross-entropy;
    otherwise mean squared error.

    Args:
        loss: a loss name, object or function, or `None` to use `recorded` or infer one.
        y: the labels (an array).
        outputs: the output for the batch (a tensor: only its shape is read).
        recorded: a loss name stored in a compile config. Defaults to `None`.

    Raises:
        UsageError: an unknown loss name.

    Example:

    >>> import numpy as np
    >>> resolve_loss(None, np.array([0, 2]), np.zeros((2, 3)))[1]
    'sparse_categorical_crossentropy'
    """
    import keras

    name = loss if loss is not None else recorded if isinstance(recorded, str) else None
    if name is None:
        name = _inferred_name(y, outputs)
    elif name in ("crossentropy", "ce"):  # compile's alias, picked by shapes as compile does
        name = _crossentropy_name(y, outputs)
    if isinstance(name, keras.losses.Loss):
        return name, str(getattr(name, "name", None) or type(name).__name__)
    if callable(name):
        fn_name = getattr(name, "__name__", type(name).__name__)
        return _function_loss(name, fn_name), fn_name
    if not isinstance(name, str):
        raise UsageError("A loss is a Keras loss name, a loss object or a function.",
                         "Use a Keras loss name such as 'sparse_categorical_crossentropy'.",
                         f"loss={name!r}")
    try:
        found = keras.losses.get(name)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"Unknown loss {name!r}.",
                         "Use a Keras loss name such as 'sparse_categorical_crossentropy'.",
                         f"loss={name!r}") from exc
    return (found if isinstance(found, keras.losses.Loss) else _function_loss(found, name)), name


def logits_of(tensor: Any) -> Any:
    """The logits behind a softmax or sigmoid output, as Keras' cross-entropies find them
    (`keras/src/backend/tensorflow/nn.py`, `_get_logits`), else `None`.

    Keras' `softmax` and `sigmoid` keep their input on the output (`_keras_logits`); in a
    traced graph the activation op's input serves as well. A cross-entropy given such an
    output computes the loss from these logits, so training's gradient reaches the layer
    through them, not through the probabilities.

    Args:
        tensor: a layer's output.

    Example:

    >>> import keras
    >>> z = keras.ops.convert_to_tensor([[2.0, -1.0]])
    >>> logits_of(keras.activations.softmax(z)) is z, logits_of(z)
    (True, None)
    """
    logits = getattr(tensor, "_keras_logits", None)
    if logits is not None:
        return logits
    try:  # an eager tensor has no op
        op = tensor.op
        return op.inputs[0] if op.type in ("Softmax", "Sigmoid") and len(op.inputs) == 1 \
            else None
    except (AttributeError, ValueError):
        return None


def _crossentropy_name(y: Any, outputs: Any) -> str:
    shape = tuple(getattr(outputs, "shape", None) or np.shape(outputs))
    labels = np.shape(y)
    if shape and shape[-1] == 1:
        return "binary_crossentropy"
    if len(labels) < len(shape) or (labels and labels[-1] == 1):
        return "sparse_categorical_crossentropy"
    return "categorical_crossentropy"


def _inferred_name(y: Any, outputs: Any) -> str:
    shape = getattr(outputs, "shape", None) or np.shape(outputs)
    units = shape[-1] if len(shape) > 1 else 1
    labels = np.asarray(y)
    if np.issubdtype(labels.dtype, np.integer) and units and units > 1:
        return "sparse_categorical_crossentropy"
    if units == 1 and set(np.unique(labels).tolist()) <= {0, 1}:
        return "binary_crossentropy"
    return "mean_squared_error"


def _function_loss(fn: Callable[..., Any], name: str) -> Any:
    """A loss function as the Keras `Loss` that `compile` makes of it.

    `keras.losses.LossFunctionWrapper` is what `compile` uses (it brings labels and
    predictions to the same rank, e.g. squeezing a one-unit output when the labels are
    `(rows, steps)`, and takes the mean); Keras does not export it, so it is reached through a
    public subclass rather than re-implemented: a copy of its rank rules that drifted would
    change which tensor a cross-entropy reads (the logits or clipped probabilities).
    """
    import keras

    wrapper = next((c for c in keras.losses.MeanSquaredError.__mro__
                    if c.__name__ == "LossFunctionWrapper"), None)
    if wrapper is None:  # pragma: no cover - a Keras refactor
        raise InsightError("Keras' LossFunctionWrapper, which compile wraps loss functions "
                           "in, was not found.", "Install the Keras version insight supports "
                           "(keras>=3.15.1).", f"keras={keras.__version__}")
    return wrapper(fn, name=name)
