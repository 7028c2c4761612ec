"""insight's gradients are Keras' training gradients, saturated outputs included.

Keras keeps the logits behind a softmax or sigmoid output (`_keras_logits`) and its
cross-entropies read them, so a confidently wrong prediction (huge logits) has a large
training gradient, where the clipped probabilities it outputs would give exactly 0. Each test
builds a tiny seeded model whose logits are in the hundreds, and compares insight's per-layer
gradient norms with a plain `tf.GradientTape` over the loss Keras trains on:
`model.compute_loss` of the compiled model, and `keras.losses.get(name)` for the file's
compile config (insight loads models without compiling them).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import insight
from insight.probe.backprop import gradients as compute_gradients

ROWS = 12
RTOL = 1e-4


def _mlp(units: int, activation: str | None, scale: float) -> keras.Model:
    """x(4) -> hidden: Dense(8, tanh) -> out: Dense(units, activation), its kernel scaled by
    `scale` so that the logits reach the hundreds (saturated outputs)."""
    keras.utils.set_random_seed(11)
    inp = keras.Input((4,), name="x")
    h = keras.layers.Dense(8, activation="tanh", name="hidden")(inp)
    out = keras.layers.Dense(units, activation=activation, name="out")(h)
    model = keras.Model(inp, out, name=f"mlp_{activation}")
    kernel = model.get_layer("out").kernel
    kernel.assign(kernel * scale)
    return model


def _x() -> np.ndarray:
    return np.random.default_rng(11).normal(size=(ROWS, 4)).astype("float32")


def _wrong_labels(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The predicted class, but the next class for every other row: confidently wrong there."""
    predicted = np.argmax(np.asarray(model(x, training=False)), axis=-1)
    return np.where(np.arange(len(x)) % 2 == 0, predicted, (predicted + 1) % 3).astype("int64")


def _keras_gradients(model: keras.Model, loss_of) -> tuple[float, dict, dict]:
    """(loss, {layer: weight gradient norm}, {layer: mean per-row activation gradient norm})
    by a tape over `loss_of(model)`: the hidden layer's output, and the logits of the output
    layer (what training backpropagates through it)."""
    hidden, out = model.get_layer("hidden"), model.get_layer("out")
    with tf.GradientTape(persistent=True) as tape:
        loss = loss_of(model)
        h = hidden(_x())
        logits = tf.matmul(h, out.kernel) + out.bias  # the output layer's pre-activation
        tape.watch([h, logits])
        pred = out.activation(logits)  # keeps `_keras_logits`, as the layer does
        again = loss_of(model, pred)
    grads = tape.gradient(loss, model.trainable_variables)
    weight_norms = {}
    for layer in (hidden, out):
        own = [g for v, g in zip(model.trainable_variables, grads, strict=True)
               if any(v is w for w in layer.trainable_weights)]
        weight_norms[layer.name] = float(np.sqrt(sum(np.sum(np.square(np.asarray(g, "float64")))
                                                      for g in own)))
    np.testing.assert_allclose(float(again), float(loss), rtol=1e-5)  # same loss, two ways
    act_norms = {name: float(np.mean(np.linalg.norm(np.asarray(tape.gradient(again, t)), axis=1)))
                 for name, t in (("hidden", h), ("out", logits))}
    return float(loss), weight_norms, act_norms


def _assert_same(g, expected: tuple[float, dict, dict]) -> None:
    value, weight_norms, act_norms = expected
    table = g.table.set_index("layer")
    for layer, norm in weight_norms.items():
        assert norm > 0, layer
        assert table.loc[layer, "weight_grad_norm"] == pytest.approx(norm, rel=RTOL), layer
    assert g.value == pytest.approx(value, rel=RTOL)
    for layer, norm in act_norms.items():
        assert table.loc[layer, "activation_grad_norm"] == pytest.approx(norm, rel=RTOL), layer


def _compiled_loss(x, y):
    def loss_of(model, pred=None):
        pred = model(x, training=False) if pred is None else pred
        return model.compute_loss(x=x, y=y, y_pred=pred, training=False)
    return loss_of


def _named_loss(name: str, x, y, **kwargs):
    fn = keras.losses.get(name)

    def loss_of(model, pred=None):
        pred = model(x, training=False) if pred is None else pred
        return tf.reduce_mean(fn(y, pred, **kwargs))
    return loss_of


def _saved(model: keras.Model, tmp_path, loss) -> insight.LoadedModel:
    model.compile(loss=loss)
    model.save(tmp_path / "model.keras")
    return insight.load_model(tmp_path / "model.keras")


def test_softmax_sparse_crossentropy_confidently_wrong(tmp_path):
    model = _mlp(3, "softmax", 400.0)
    x = _x()
    y = _wrong_labels(model, x)
    loaded = _saved(model, tmp_path, "sparse_categorical_crossentropy")
    expected = _keras_gradients(loaded.model, _named_loss("sparse_categorical_crossentropy",
                                                          x, y))
    assert expected[0] > 10  # the wrong rows cost hundreds of nats: saturated
    g = compute_gradients(loaded, x, y)
    assert g.target == "loss: sparse_categorical_crossentropy"
    _assert_same(g, expected)
    # the compiled model in memory: the loss Keras' train step computes
    model.compile(loss="sparse_categorical_crossentropy")
    _assert_same(compute_gradients(model, x, y), _keras_gradients(model, _compiled_loss(x, y)))


def test_sigmoid_binary_crossentropy_saturated(tmp_path):
    model = _mlp(1, "sigmoid", 400.0)
    x = _x()
    predicted = (np.asarray(model(x, training=False))[:, 0] > 0.5).astype("float32")
    y = np.where(np.arange(ROWS) % 3 == 0, 1 - predicted, predicted).astype("float32")
    loaded = _saved(model, tmp_path, "binary_crossentropy")
    expected = _keras_gradients(loaded.model, _named_loss("binary_crossentropy", x, y[:, None]))
    assert expected[0] > 10
    g = compute_gradients(loaded, x, y)
    assert g.target == "loss: binary_crossentropy"
    _assert_same(g, expected)
    model.compile(loss="binary_crossentropy")
    _assert_same(compute_gradients(model, x, y),
                 _keras_gradients(model, _compiled_loss(x, y[:, None])))


def test_linear_output_from_logits(tmp_path):
    model = _mlp(3, None, 400.0)
    x = _x()
    y = _wrong_labels(model, x)
    loaded = _saved(model, tmp_path, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    g = compute_gradients(loaded, x, y)
    _assert_same(g, _keras_gradients(loaded.model, _named_loss(
        "sparse_categorical_crossentropy", x, y, from_logits=True)))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    _assert_same(compute_gradients(model, x, y), _keras_gradients(model, _compiled_loss(x, y)))


def test_mse_regression(tmp_path):
    model = _mlp(1, None, 3.0)
    x = _x()
    y = np.random.default_rng(12).normal(size=(ROWS, 1)).astype("float32")
    loaded = _saved(model, tmp_path, "mse")
    g = compute_gradients(loaded, x, y)
    assert g.target == "loss: mse"
    _assert_same(g, _keras_gradients(loaded.model, _named_loss("mse", x, y)))
    model.compile(loss="mse")
    _assert_same(compute_gradients(model, x, y), _keras_gradients(model, _compiled_loss(x, y)))


def test_activation_logger_logs_the_training_gradients(tmp_path):
    """`ActivationLogger` differentiates the same way (`tape_gradients`): saturated, not 0."""
    from insight.callbacks import LOGGED_STATS, ActivationLogger

    model = _mlp(3, "softmax", 400.0)
    x = _x()
    y = _wrong_labels(model, x)
    model.compile(loss="sparse_categorical_crossentropy")
    _, weight_norms, act_norms = _keras_gradients(model, _compiled_loss(x, y))
    logger = ActivationLogger(tmp_path, x, y, examples=ROWS)
    logger.set_model(model)
    values = logger.log(0)
    logged = {p: values[i] for i, p in enumerate(logger.paths)}
    for layer in ("hidden", "out"):
        assert logged[layer][LOGGED_STATS.index("weight_grad_norm")] == pytest.approx(
            weight_norms[layer], rel=RTOL), layer
        assert logged[layer][LOGGED_STATS.index("output_grad_norm")] == pytest.approx(
            act_norms[layer], rel=RTOL), layer
