"""Input attributions for chosen examples: saliency, SmoothGrad, integrated gradients, Grad-CAM.

All methods explain the score of one class per example (by default the predicted class) of
the model's first output. Maps have the input's shape without its channel axis for images
(`(N, H, W)`), the input's shape otherwise. Integer token inputs cannot be differentiated:
for them every method attributes at the output of the model's `Embedding` layer (gradient x
embedding, summed over the embedding axis, one value per token), and the result says so.

Example:

>>> att = attributions(loaded, x[:4], method="grad_cam")  # doctest: +SKIP
>>> att.maps.shape, att.layer  # doctest: +SKIP
((4, 8, 8), 'conv2')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from insight.errors import UsageError
from insight.model.layers import as_model, iter_layers, resolve_layers
from insight.probe.capture import as_inputs, first_output, recording

__all__ = ["Attribution", "attributions", "METHODS", "last_conv_layer"]

METHODS = ("saliency", "smoothgrad", "integrated_gradients", "grad_cam")


@dataclass
class Attribution:
    """Attribution maps for a batch of examples.

    Attributes:
        maps: one map per example (see the module docstring for shapes); for several inputs,
            `{input_name: maps}`.
        method: the method used.
        targets: the class explained for each example.
        layer: the layer attributed at (Grad-CAM's conv layer, or the Embedding layer).
        note: what the user should know about how it was computed.
    """

    maps: np.ndarray | dict[str, np.ndarray]
    method: str
    targets: np.ndarray
    layer: str = ""
    note: str = ""


def last_conv_layer(model: Any) -> str | None:
    """Path of the last layer whose output is 4-D (batch, height, width, channels)."""
    found = None
    for path, layer, _ in iter_layers(as_model(model)):
        if getattr(layer, "layers", None) or type(layer).__name__ == "InputLayer":
            continue
        try:
            rank = len(layer.output.shape)
        except (AttributeError, ValueError):
            continue
        if rank == 4 and "Conv" in type(layer).__name__:
            found = path
    return found


def _embedding_layer(model: Any) -> str | None:
    return next((p for p, layer, _ in iter_layers(model)
                 if type(layer).__name__ == "Embedding"), None)




def _score(outputs: Any, targets):
    import tensorflow as tf

    out = tf.cast(first_output(outputs), tf.float32)
    out = tf.reshape(out, (tf.shape(out)[0], -1))
    return tf.reduce_sum(tf.gather(out, targets, axis=1, batch_dims=1))


def attributions(model: Any, x: Any, method: str = "saliency", *, target: Any = None,
                 layer: str | None = None, samples: int = 16, noise: float = 0.15,
                 steps: int = 32, seed: int = 0) -> Attribution:
    """Attribution maps of the explained class for each example of `x`.

    Args:
        model: a `keras.Model` or a `LoadedModel`.
        x: a few examples (an array or `{input_name: array}`).
        method: `"saliency"` (|gradient|), `"smoothgrad"` (mean |gradient| over noisy
            copies), `"integrated_gradients"` (from a zero baseline) or `"grad_cam"`
            (convolutional models). Defaults to `"saliency"`.
        target: the class to explain, one int or one per example; `None` for the predicted
            class. Defaults to `None`.
        layer: Grad-CAM's layer; `None` finds the last convolutional layer. Defaults to `None`.
        samples: SmoothGrad's noisy copies. Defaults to `16`.
        noise: SmoothGrad's noise, as a fraction of the input's value range. Defaults to `0.15`.
        steps: integrated gradients' path steps. Defaults to `32`.
        seed: SmoothGrad's noise seed. Defaults to `0`.

    Raises:
        UsageError: an unknown method or layer, or Grad-CAM on a model without a conv layer.
    """
    import tensorflow as tf

    if method not in METHODS:
        raise UsageError(f"Unknown attribution method {method!r}. Methods are: "
                         f"{', '.join(METHODS)}.", "", f"method={method!r}")
    keras_model = as_model(model)
    x = as_inputs(x)
    outputs = keras_model(x, training=False)
    n = len(first_output(x) if isinstance(x, Mapping) else x)
    if target is None:
        targets = np.argmax(np.reshape(np.asarray(first_output(outputs)), (n, -1)), axis=1)
    else:
        targets = np.broadcast_to(np.asarray(target, dtype=np.int64), (n,)).copy()
    t = tf.constant(targets, tf.int64)
    inputs = x if isinstance(x, Mapping) else {"input": x}
    if method == "grad_cam":
        return _grad_cam(keras_model, x, t, targets, layer)
    if any(np.issubdtype(np.asarray(v).dtype, np.integer) for v in inputs.values()):
        return _at_embedding(keras_model, x, t, targets, method)
    rng = np.random.default_rng(seed)

    def grads_at(xv):
        xt = {k: tf.convert_to_tensor(v, tf.float32) for k, v in xv.items()}
        with tf.GradientTape() as tape:
            tape.watch(list(xt.values()))
            out = keras_model(xt if isinstance(x, Mapping) else xt["input"], training=False)
            score = _score(out, t)
        return {k: g.numpy() for k, g in zip(xt, tape.gradient(score, list(xt.values())),
                                             strict=True)}

    base = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    if method == "saliency":
        maps = {k: np.abs(g) for k, g in grads_at(base).items()}
    elif method == "smoothgrad":
        total = {k: np.zeros_like(v) for k, v in base.items()}
        for _ in range(samples):
            noisy = {k: v + rng.normal(0, noise * (float(v.max() - v.min()) or 1.0), v.shape
                                       ).astype(np.float32) for k, v in base.items()}
            for k, g in grads_at(noisy).items():
                total[k] += np.abs(g)
        maps = {k: v / samples for k, v in total.items()}
    else:  # integrated gradients from a zero baseline
        total = {k: np.zeros_like(v) for k, v in base.items()}
        for alpha in (np.arange(steps) + 0.5) / steps:
            for k, g in grads_at({k: v * alpha for k, v in base.items()}).items():
                total[k] += g
        maps = {k: base[k] * total[k] / steps for k, v in total.items()}
    maps = {k: _collapse_channels(v, signed=method == "integrated_gradients")
            for k, v in maps.items()}
    note = {"saliency": "|d score / d input|",
            "smoothgrad": f"mean |gradient| over {samples} noisy copies (noise {noise:.0%})",
            "integrated_gradients": f"{steps}-step integrated gradients from a zero input"}[method]
    return Attribution(maps if isinstance(x, Mapping) else maps["input"], method, targets,
                       note=note + ", for the " + ("given" if target is not None else
                                                   "predicted") + " class")


def _collapse_channels(m: np.ndarray, signed: bool) -> np.ndarray:
    if m.ndim == 4:  # images: one value per pixel
        return m.sum(-1) if signed else m.max(-1)
    return m


def _layer_gradient(model: Any, x: Any, t, path: str):
    """`(output, d score / d output)` of the layer at `path`, in one pass."""
    import tensorflow as tf

    store: dict[str, Any] = {}
    with tf.GradientTape() as tape:
        with recording(model, {path}, store):
            out = model(x, training=False)
        score = _score(out, t)
    act = first_output(store[path])
    return act, tape.gradient(score, act)


def _grad_cam(model: Any, x: Any, t, targets: np.ndarray, layer: str | None) -> Attribution:
    import tensorflow as tf

    path = layer or last_conv_layer(model)
    if path is None:
        raise UsageError("Grad-CAM needs a convolutional layer, and this model has none.",
                         "Use method='saliency' or 'integrated_gradients'.",
                         "method='grad_cam'")
    resolve_layers(model, [path])
    act, grads = _layer_gradient(model, x, t, path)
    if len(act.shape) != 4:
        raise UsageError(f"Grad-CAM needs a layer with a 4-D output (batch, h, w, channels); "
                         f"{path!r} outputs {tuple(act.shape)}.", "Pick a conv layer.",
                         f"layer={path!r}")
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * act, axis=-1))[..., None]
    first = first_output(x) if isinstance(x, Mapping) else x
    size = np.shape(first)[1:3] if np.ndim(first) == 4 else cam.shape[1:3]
    cam = tf.image.resize(cam, size, method="bilinear")[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    cam = np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0.0)
    return Attribution(cam, "grad_cam", targets, layer=path,
                       note=f"Grad-CAM at {path!r}, scaled to [0, 1] per example")


def _at_embedding(model: Any, x: Any, t, targets: np.ndarray, method: str) -> Attribution:
    import tensorflow as tf

    path = _embedding_layer(model)
    if path is None:
        raise UsageError("The model takes integer inputs but has no Embedding layer to "
                         "attribute at.", "Pass float inputs.", "dtype=int")
    emb, grads = _layer_gradient(model, x, t, path)
    maps = tf.reduce_sum(grads * emb, axis=-1).numpy()
    return Attribution(maps, method, targets, layer=path,
                       note=f"integer token inputs: attributed at the Embedding output {path!r} "
                            "(gradient x embedding, summed over the embedding axis); "
                            f"{method} is computed the same way there")
