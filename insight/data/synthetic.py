"""Synthetic inputs built from a model's input spec, for when no data is given.

Example:

>>> import keras
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
>>> synthetic_dataset(model, n=4).x.shape
(4, 3)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from insight.data.dataset import Dataset
from insight.errors import DataError, UsageError

__all__ = ["InputSpec", "input_specs", "synthetic_dataset", "is_int_dtype", "is_float_dtype",
           "numpy_dtype"]

DEFAULT_VOCAB = 100  # token ids for an integer input when the model has no Embedding layer
FREE_DIM = 8  # size used for a None dimension (other than the batch) in synthetic inputs



@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int | None, ...]  # batch axis first
    dtype: str


def input_specs(model: Any, input_shape: Sequence[int | None] | None = None) \
        -> list[InputSpec] | None:
    """The model's inputs: from `model.inputs`, `input_shape`, or the build config."""
    dtype = str(getattr(model, "input_dtype", None) or "float32")
    if input_shape is not None:
        return [InputSpec("input", (None, *tuple(input_shape)), dtype)]
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        return [InputSpec(str(t.name), tuple(t.shape), str(t.dtype)) for t in inputs]
    config = model.get_build_config() if hasattr(model, "get_build_config") else None
    shape = (config or {}).get("input_shape")
    if isinstance(shape, list | tuple) and shape and all(
            d is None or isinstance(d, int) for d in shape):
        return [InputSpec("input", (None, *tuple(shape)[1:]), dtype)]
    return None


def _walk_layers(layer: Any) -> Iterator[Any]:
    for sub in getattr(layer, "layers", None) or []:
        yield sub
        yield from _walk_layers(sub)


def _vocab_size(model: Any) -> int:
    import keras

    for layer in _walk_layers(model):
        if isinstance(layer, keras.layers.Embedding):
            return int(layer.input_dim)
    return DEFAULT_VOCAB


def is_int_dtype(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def is_float_dtype(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


def numpy_dtype(dtype: str) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError:  # bfloat16 and other dtypes numpy lacks
        return np.dtype(np.float32)


def synthetic_dataset(model: Any, n: int = 64, seed: int = 0, *,
                      input_shape: Sequence[int | None] | None = None) -> Dataset:
    """Random inputs shaped like the model's, for when no real data is given.

    Float inputs are uniform in [0, 1); integer inputs (token ids) are uniform in
    [0, vocab), where vocab is the `input_dim` of the model's first `Embedding` layer
    (nested models included), else 100. `None` dimensions other than the batch become 8.

    Args:
        model: a `keras.Model`.
        n: number of examples. Defaults to `64`.
        seed: seed of the random generator; the same seed gives the same inputs.
            Defaults to `0`.
        input_shape: one example's shape, without the batch axis (like
            `keras.Input(shape=...)`), for a subclassed model that records none.
            Defaults to `None`.

    Returns:
        A `Dataset` with `source="synthetic"` and no labels.

    Raises:
        DataError: the model was never built and no `input_shape` was given.
        UsageError: `n` is not a positive integer.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> ds = synthetic_dataset(model, n=4)
    >>> ds.x.shape, ds.name
    ((4, 3), 'synthetic (4 examples)')
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise UsageError("The number of synthetic examples must be a positive integer.", "",
                         f"n={n!r}")
    specs = input_specs(model, input_shape)
    if specs is None:
        raise DataError(
            "The model was never built, so its input shape is unknown and insight cannot make "
            "synthetic inputs for it.",
            "Give real data (--data), pass input_shape=(...) (one example's shape), or call "
            "the model once on data before saving it.",
            f"model={getattr(model, 'name', type(model).__name__)!r}")
    rng = np.random.default_rng(seed)
    x: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = (int(n), *(FREE_DIM if d is None else int(d) for d in spec.shape[1:]))
        if is_int_dtype(spec.dtype):
            x[spec.name] = rng.integers(0, _vocab_size(model), shape).astype(spec.dtype)
        elif spec.dtype == "bool":
            x[spec.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            x[spec.name] = rng.random(shape, dtype=np.float32).astype(numpy_dtype(spec.dtype))
    return Dataset(x=x if len(x) > 1 else next(iter(x.values())), source="synthetic",
                   name=f"synthetic ({int(n)} examples)")


