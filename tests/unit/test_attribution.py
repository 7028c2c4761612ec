"""Attributions: shapes of every method, integrated-gradients completeness, Grad-CAM on a
task whose evidence is known, token inputs attributed at the embedding, and bad arguments."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import insight
from insight.data import dataset_for
from insight.errors import UsageError
from insight.probe.attribution import METHODS, Attribution, last_conv_layer

GRADIENT_METHODS = ("saliency", "smoothgrad", "integrated_gradients")


def _assert_error(excinfo, *fragments):
    err = excinfo.value
    assert type(err) is UsageError, f"{type(err).__name__}: {err}"
    for fragment in fragments:
        assert fragment in str(err), f"{fragment!r} not in {str(err)!r}"
    assert "Received:" in str(err)


def _inputs(loaded, n: int = 4):
    return dataset_for(loaded).take(slice(0, n)).x


@pytest.fixture(scope="module")
def smooth_mlp():
    """Input(6) -> Dense(16, tanh) -> Dense(3): smooth, so path integrals are accurate."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(16, activation="tanh", name="h")(inp)
    return keras.Model(inp, keras.layers.Dense(3, name="logits")(h), name="smooth")


@pytest.fixture(scope="module")
def square_task():
    """16x16 images; class 1 has a bright 4x4 square in the top-left quadrant.

    A tiny conv net (two convs, global average pooling) learns it in a few epochs, so the
    evidence for class 1 is the square, and Grad-CAM should put its mass there.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    def make(n):
        x = rng.normal(0.0, 0.1, (n, 16, 16, 1)).astype("float32")
        y = np.arange(n) % 2
        for i in np.flatnonzero(y == 1):
            r, c = rng.integers(0, 5, 2)  # the square stays inside rows/cols 0..7
            x[i, r:r + 4, c:c + 4, 0] += 1.0
        return x, y

    x, y = make(384)
    model = keras.Sequential([
        keras.Input((16, 16, 1), name="img"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ], name="squares")
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=32, verbose=0, shuffle=False)
    x_test, y_test = make(64)
    return model, x_test, y_test


# -- shapes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_image_maps_drop_the_channel_axis(load_sample, method):
    loaded = load_sample("digits_cnn")
    x = _inputs(loaded)
    att = insight.attributions(loaded, x, method=method, samples=4, steps=8)
    assert isinstance(att, Attribution) and att.method == method
    assert att.maps.shape == (4, 8, 8)
    assert np.isfinite(att.maps).all()
    predicted = np.asarray(loaded.model(x, training=False)).argmax(1)
    np.testing.assert_array_equal(att.targets, predicted)
    assert "predicted class" in att.note
    if method != "integrated_gradients":
        assert (att.maps >= 0).all()


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_vector_inputs_keep_their_shape(smooth_mlp, method):
    x = np.random.default_rng(1).normal(size=(5, 6)).astype("float32")
    att = insight.attributions(smooth_mlp, x, method=method, target=2, samples=4, steps=8)
    assert att.maps.shape == (5, 6)
    assert att.targets.tolist() == [2] * 5
    assert "given class" in att.note


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_several_inputs_give_one_map_per_input(load_sample, method):
    loaded = load_sample("multi_io")
    att = insight.attributions(loaded, _inputs(loaded, 3), method=method, samples=2, steps=4)
    assert set(att.maps) == {"image", "stats"}
    assert att.maps["image"].shape == (3, 8, 8) and att.maps["stats"].shape == (3, 3)


def test_saliency_is_the_absolute_input_gradient(smooth_mlp):
    x = np.random.default_rng(2).normal(size=(4, 6)).astype("float32")
    targets = np.array([0, 1, 2, 1])
    att = insight.attributions(smooth_mlp, x, "saliency", target=targets)
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = smooth_mlp(xt, training=False)
        score = tf.reduce_sum(tf.gather(out, targets, axis=1, batch_dims=1))
    np.testing.assert_allclose(att.maps, np.abs(tape.gradient(score, xt)), rtol=1e-5)


def test_integrated_gradients_completeness(smooth_mlp):
    x = np.random.default_rng(3).normal(size=(6, 6)).astype("float32")
    target = 1
    att = insight.attributions(smooth_mlp, x, "integrated_gradients", target=target, steps=32)
    score = np.asarray(smooth_mlp(x, training=False))[:, target]
    baseline = np.asarray(smooth_mlp(np.zeros_like(x), training=False))[:, target]
    delta = score - baseline
    total = att.maps.sum(axis=1)
    assert np.all(np.abs(total - delta) <= 0.1 * np.abs(delta) + 1e-4), (total, delta)


def test_smoothgrad_is_seeded(smooth_mlp):
    x = np.random.default_rng(4).normal(size=(3, 6)).astype("float32")
    a = insight.attributions(smooth_mlp, x, "smoothgrad", samples=4, seed=7).maps
    b = insight.attributions(smooth_mlp, x, "smoothgrad", samples=4, seed=7).maps
    np.testing.assert_array_equal(a, b)


# -- Grad-CAM ---------------------------------------------------------------------------------

def test_grad_cam_peaks_on_the_informative_region(square_task):
    model, x, y = square_task
    predicted = np.asarray(model(x, training=False)).argmax(1)
    assert (predicted == y).mean() >= 0.9, "the tiny net did not learn the task"
    ones = x[y == 1]
    att = insight.attributions(model, ones, "grad_cam", target=1)
    assert att.layer == "conv2" and att.maps.shape == (len(ones), 16, 16)
    assert att.maps.min() >= 0 and att.maps.max() <= 1
    quadrants = {"top_left": att.maps[:, :8, :8], "top_right": att.maps[:, :8, 8:],
                 "bottom_left": att.maps[:, 8:, :8], "bottom_right": att.maps[:, 8:, 8:]}
    mass = {k: float(v.sum()) for k, v in quadrants.items()}
    assert all(mass["top_left"] > v for k, v in mass.items() if k != "top_left"), mass
    per_example = att.maps[:, :8, :8].sum((1, 2)) / np.maximum(att.maps.sum((1, 2)), 1e-9)
    assert np.median(per_example) > 0.5, per_example


def test_grad_cam_on_samples_uses_the_last_conv_layer(load_sample):
    loaded = load_sample("digits_cnn")
    att = insight.attributions(loaded, _inputs(loaded), "grad_cam")
    assert att.layer == "conv2" == last_conv_layer(loaded)
    assert att.maps.shape == (4, 8, 8)
    nested = load_sample("nested")
    att = insight.attributions(nested, _inputs(nested), "grad_cam")
    assert att.layer == "backbone/conv2" and att.maps.shape == (4, 8, 8)


def test_grad_cam_on_a_dense_only_model(smooth_mlp):
    assert last_conv_layer(smooth_mlp) is None
    with pytest.raises(UsageError) as excinfo:
        insight.attributions(smooth_mlp, np.zeros((2, 6), "float32"), "grad_cam")
    _assert_error(excinfo, "convolutional layer")


def test_grad_cam_on_a_layer_without_a_4d_output(load_sample):
    loaded = load_sample("digits_cnn")
    with pytest.raises(UsageError) as excinfo:
        insight.attributions(loaded, _inputs(loaded, 2), "grad_cam", layer="dense1")
    _assert_error(excinfo, "4-D", "'dense1'")


def test_grad_cam_on_an_unknown_layer(load_sample):
    loaded = load_sample("digits_cnn")
    with pytest.raises(UsageError) as excinfo:
        insight.attributions(loaded, _inputs(loaded, 2), "grad_cam", layer="nope")
    _assert_error(excinfo, "'nope'", "conv1", "conv2", "predictions")


# -- token inputs -----------------------------------------------------------------------------

@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_token_inputs_are_attributed_at_the_embedding(load_sample, method):
    loaded = load_sample("text_embedding")
    x = _inputs(loaded, 3)
    att = insight.attributions(loaded, x, method=method)
    assert att.layer == "embedding"
    assert "Embedding" in att.note and "token" in att.note
    assert att.maps.shape == x.shape == (3, 24)
    assert np.isfinite(att.maps).all()


# -- bad arguments ----------------------------------------------------------------------------

def test_unknown_method_lists_the_methods(smooth_mlp):
    with pytest.raises(UsageError) as excinfo:
        insight.attributions(smooth_mlp, np.zeros((2, 6), "float32"), method="lime")
    _assert_error(excinfo, "'lime'", *METHODS)
