"""Activations and gradients of every layer of any Keras model, in one pass.

The capture wraps each layer's `call` while the model's forward pass is *traced* into a
`tf.function`: the traced graph returns every layer's output beside the model's, so one
compiled forward pass yields all activations, for Sequential, Functional, nested (inner layers
as `backbone/conv2`), subclassed and multi-input/output models alike, without rebuilding the
model. The wrappers are removed right after tracing; running the compiled function touches no
layer. Statistics are reduced inside the graph, per unit, batch by batch, so memory stays
bounded whatever the dataset size. Gradients of the loss (or of the predicted class's score)
with respect to every weight and every layer output come from one backward pass.

Example:

>>> import insight
>>> loaded = insight.load_model("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> acts = insight.activations(loaded, x[:4])  # doctest: +SKIP
>>> acts["conv1"].shape  # doctest: +SKIP
(4, 8, 8, 8)
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from insight.errors import DataError, UsageError
from insight.model.layers import as_model, iter_layers, resolve_layers

__all__ = ["capture_function", "activations", "as_inputs", "count_rows", "slice_rows",
           "input_batches", "input_spec", "signature_key", "recording",
           "TRACE_LOCK", "COMPILED", "first_output", "wrapping_calls"]

TRACE_LOCK = threading.RLock()  # layer calls are patched while tracing: one trace at a time
COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()



@contextlib.contextmanager
def wrapping_calls(model: Any, paths: set[str] | None,
                   wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]]
                   ) -> Iterator[None]:
    """While active, each chosen layer's `call` is `wrap(path, original_call)` (every layer when
    `paths` is `None`); the originals come back on exit, also after an error."""
    patched = []
    for path, layer, _ in iter_layers(model):
        if paths is not None and path not in paths:
            continue
        original = layer.call
        layer.call = wrap(path, original)
        patched.append((layer, original))
    try:
        yield
    finally:
        for layer, original in patched:
            if "call" in vars(layer):
                del layer.call
            else:  # pragma: no cover - a layer that replaced call itself
                layer.call = original


def recording(model: Any, paths: set[str], store: dict[str, Any],
              watch: Callable[[Any], None] | None = None):
    """While active, the chosen layers record their first output in `store`.

    Args:
        model: the model whose layers record.
        paths: the layer paths that record.
        store: `{path: output}`, filled as the layers run.
        watch: called with every output of the chosen layers as it is made (a gradient
            tape's `watch`: see `insight.probe.backprop.tape_gradients`). Defaults to `None`.
    """
    def wrap(path: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            if watch is not None:
                watch(out)
            store.setdefault(path, out)
            return out
        return call

    return wrapping_calls(model, paths, wrap)


def input_spec(x: Any):
    """The `tf.TensorSpec` (any batch size) of an array, or a dict or list of them."""
    import tensorflow as tf

    if isinstance(x, Mapping):
        return {k: input_spec(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [input_spec(v) for v in x]
    arr = np.asarray(x)
    return tf.TensorSpec((None, *arr.shape[1:]), tf.as_dtype(arr.dtype))


def signature_key(x: Any) -> tuple:
    """A hashable key of `input_spec(x)`."""
    if isinstance(x, Mapping):
        return tuple((k, *signature_key(v)) for k, v in sorted(x.items()))
    if isinstance(x, list | tuple):
        return ("list", *(signature_key(v) for v in x))
    arr = np.asarray(x)
    return (arr.shape[1:], str(arr.dtype))


def capture_function(model: Any, layers: list[str], x_example: Any, *, with_outputs=True):
    """A compiled function `f(x) -> (outputs, {path: activation})` for `layers`.

    Compiled once per model, layer set and input signature (any batch size).
    """
    import tensorflow as tf

    model = as_model(model)
    key = ("capture", tuple(layers), signature_key(x_example), with_outputs)
    cache = COMPILED.setdefault(model, {})
    if key in cache:
        return cache[key]
    wanted = set(layers)

    def forward(x):
        store: dict[str, Any] = {}
        with recording(model, wanted, store):
            outputs = model(x, training=False)
        missing = [p for p in layers if p not in store]
        if missing:
            raise UsageError(
                f"These layers were not called by the model's forward pass: {missing}.",
                "They may be unused attributes of a subclassed model.", f"layers={missing!r}")
        return (outputs if with_outputs else ()), {p: store[p] for p in layers}

    fn = tf.function(forward, input_signature=[input_spec(x_example)], reduce_retracing=True)
    with TRACE_LOCK:
        fn.get_concrete_function()  # trace now, while holding the lock
    cache[key] = fn
    return fn


def as_inputs(x: Any, model: Any = None) -> Any:
    """The inputs as the probes pass them to a model: one array, or `{input_name: array}`.

    Args:
        x: an array, `{input_name: array}`, or a list (or tuple) of arrays in
            `model.inputs` order, as Keras takes them.
        model: the model `x` is for: it names the arrays of a list. Defaults to `None`.

    Raises:
        DataError: a list whose length differs from the model's number of inputs, or a list
            for a model whose inputs are unknown.

    Example:

    >>> as_inputs([image, stats], loaded.model).keys()  # doctest: +SKIP
    dict_keys(['image', 'stats'])
    """
    if isinstance(x, Mapping):
        return {k: np.asarray(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        names = _input_names(as_model(model)) if model is not None else None
        if not names:
            raise DataError("Pass several inputs as a dict keyed by input name.",
                            "e.g. {'image': ..., 'stats': ...}; a list needs a model whose "
                            "inputs are known.", f"x=<{type(x).__name__} of {len(x)}>")
        if len(x) != len(names):
            raise DataError(f"The model has {len(names)} input{'s' * (len(names) > 1)} "
                            f"({', '.join(map(repr, names))}), and the list holds {len(x)} "
                            f"array{'s' * (len(x) != 1)}.",
                            "Pass one array per input, in `model.inputs` order, or a dict "
                            "keyed by input name.",
                            f"x=<{type(x).__name__} of {len(x)} array{'s' * (len(x) != 1)}>")
        if len(names) == 1:
            return np.asarray(x[0])
        return {name: np.asarray(v) for name, v in zip(names, x, strict=True)}
    return np.asarray(x)


def _input_names(model: Any) -> list[str] | None:
    """The names of `model.inputs` (the keys Keras matches a dict of inputs by), in order."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return [str(t.name) for t in inputs] if inputs else None


def count_rows(x: Any) -> int:
    first = next(iter(x.values())) if isinstance(x, Mapping) else x
    return int(np.shape(first)[0])


def slice_rows(x: Any, start: int, stop: int) -> Any:
    if isinstance(x, Mapping):
        return {k: v[start:stop] for k, v in x.items()}
    return x[start:stop]


def input_batches(data: Any, batch_size: int, model: Any) -> Iterator[Any]:
    """`data` (an array, a mapping or list of arrays, or an `insight.data.Dataset`) in
    batches of `batch_size` rows, each in the form `model` is called with.

    >>> [b.shape for b in input_batches(np.zeros((5, 3)), 2, model)]  # doctest: +SKIP
    [(2, 3), (2, 3), (1, 3)]
    """
    if hasattr(data, "batches"):
        for xb, _ in data.batches(batch_size):
            yield as_inputs(xb, model)
        return
    x = as_inputs(data, model)
    n = count_rows(x)
    for start in range(0, n, batch_size):
        yield slice_rows(x, start, min(n, start + batch_size))


def activations(model: Any, x: Any, layers: str | Iterable[str] | None = None, *,
                batch_size: int = 256) -> dict[str, np.ndarray]:
    """The full outputs of the chosen layers for the inputs `x`, in one forward pass per batch.

    Args:
        model: a `keras.Model` or a `LoadedModel`.
        x: the inputs: an array, or for several inputs `{input_name: array}` or a list of
            arrays in `model.inputs` order.
        layers: layer paths (see `layer_paths`); `None` for every layer. Defaults to `None`.
        batch_size: rows per forward pass. Defaults to `256`.

    Returns:
        `{layer_path: array}` with one row per input row, in the model's layer order.

    Raises:
        UsageError: an unknown layer (the valid ones are listed).
        DataError: a list of inputs whose length differs from the model's inputs.

    Example:

    >>> acts = activations(loaded, x[:2], layers=["conv1"])  # doctest: +SKIP
    >>> acts["conv1"].shape  # doctest: +SKIP
    (2, 8, 8, 8)
    """
    paths = resolve_layers(model, layers)
    x = as_inputs(x, model)
    fn = capture_function(model, paths, x, with_outputs=False)
    parts: dict[str, list[np.ndarray]] = {p: [] for p in paths}
    n = count_rows(x)
    for start in range(0, n, batch_size):
        _, acts = fn(slice_rows(x, start, min(n, start + batch_size)))
        for p in paths:
            parts[p].append(_to_numpy(acts[p]))
    return {p: np.concatenate(v) if len(v) > 1 else v[0] for p, v in parts.items()}


def first_output(value: Any) -> Any:
    """The first tensor of a layer's or model's output (a list, tuple or dict of them)."""
    if isinstance(value, Mapping):
        return next(iter(value.values()))
    if isinstance(value, list | tuple):
        return value[0]
    return value


def _to_numpy(value: Any) -> np.ndarray:
    return np.asarray(first_output(value))


