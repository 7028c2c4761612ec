"""The logger's statistics: numpy's (small layers) equal TensorFlow's (large ones), layer by
layer, whichever way each layer goes."""

from __future__ import annotations

import numpy as np
import pytest

from insight.probe import logged
from insight.probe.logged import LOGGED_STATS


def _layers():
    """Outputs that tell every statistic apart: a dead unit, a NaN unit, negatives (an
    `abs` dropped shows), rank 1, 2 and 4, float16, a layer without weights."""
    rng = np.random.default_rng(0)
    relu = np.maximum(rng.normal(size=(8, 3, 3, 4)), 0).astype("float32")
    relu[..., 1] = 0  # a dead unit
    relu[:4, 0, 0, 2] = 0  # zeros that do not kill a unit
    signed = rng.normal(-1.0, 2.0, size=(8, 5)).astype("float32")
    with_nan = signed.copy()
    with_nan[:, 3] = np.nan
    return [
        (relu, rng.normal(size=relu.shape).astype("float32"),
         [rng.normal(size=(3, 3, 1, 4)).astype("float32"), np.ones(4, "float32")]),
        (signed, rng.normal(size=signed.shape).astype("float32"),
         [rng.normal(size=(4, 5)).astype("float32")]),
        (with_nan, rng.normal(size=signed.shape).astype("float32"), []),
        (rng.normal(size=8).astype("float32"), rng.normal(size=8).astype("float32"), []),
        (signed.astype("float16"), signed.astype("float16"), []),
    ]


def _graph(layers):
    import tensorflow as tf

    acts, grads, ws = zip(*layers, strict=True)
    return np.asarray(logged._graph_statistics(
        [tf.constant(a) for a in acts], [tf.constant(g) for g in grads],
        [[tf.constant(w) for w in w_list] for w_list in ws]))


def test_numpy_statistics_equal_tensorflow_s():
    layers = _layers()
    host = np.array([logged._host_row(*layer) for layer in layers], np.float32)
    graph = _graph(layers)
    np.testing.assert_allclose(host, graph, rtol=2e-5, equal_nan=True)
    relu, signed, with_nan = host[0], host[1], host[2]
    stat = LOGGED_STATS.index
    assert relu[stat("dead_fraction")] == 0.25  # one unit of four
    assert 0.25 < relu[stat("zero_fraction")] < 1
    assert signed[stat("mean_abs")] > abs(_layers()[1][0].mean())  # |x|, not x
    assert np.isnan(with_nan[stat("mean_abs")]) and with_nan[stat("dead_fraction")] == 0
    assert np.isnan(host[2:, stat("weight_grad_norm")]).all()  # no weights: NaN, not 0
    assert relu[stat("weight_grad_norm")] == pytest.approx(np.sqrt(
        sum(np.square(w).sum() for w in layers[0][2])), rel=1e-6)
    assert signed[stat("output_grad_norm")] == pytest.approx(
        np.linalg.norm(layers[1][1], axis=1).mean(), rel=1e-6)


def test_finish_puts_each_layer_back_in_its_place():
    """Graph rows and host rows interleave in layer order, whatever the mask."""
    layers = _layers()
    graph = _graph(layers)
    for mask in [(True,) * 5, (False,) * 5, (True, False, False, True, False),
                 (False, True, True, False, True)]:
        stats = graph[[not host for host in mask]]
        raw = [layer for layer, host in zip(layers, mask, strict=True) if host]
        np.testing.assert_allclose(logged.finish(mask, stats, raw), graph, rtol=2e-5,
                                   equal_nan=True)


def test_a_layer_goes_to_numpy_only_while_small():
    import tensorflow as tf

    def spec(*shape):
        return tf.TensorSpec(shape, tf.float32)

    per_row = logged.HOST_MAX // (2 * 64) - 1  # output and gradient of 64 rows: 128 short
    assert logged.on_host(spec(None, per_row), [spec(100)], rows=64)
    assert not logged.on_host(spec(None, per_row), [spec(200)], rows=64)  # weights count
    assert logged.on_host(spec(None, per_row + 1), [], rows=64)  # HOST_MAX itself: numpy
    assert not logged.on_host(spec(None, per_row + 2), [], rows=64)
    assert not logged.on_host(spec(None, per_row), [], rows=65)  # rows count
    assert not logged.on_host(spec(None, None, 8), [], rows=2)  # unknown size: graph


def test_the_logger_logs_the_same_whichever_way_its_layers_go(tmp_path, monkeypatch):
    """A real model logged three ways (every layer by numpy, none, some) logs the same
    numbers."""
    import keras

    from insight.callbacks import ActivationLogger

    keras.utils.set_random_seed(4)
    model = keras.Sequential([
        keras.Input((6, 6, 1)), keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
        keras.layers.Flatten(), keras.layers.Dense(16, activation="tanh", name="hidden"),
        keras.layers.Dense(3, name="out")])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(32, 6, 6, 1)).astype("float32"), rng.integers(0, 3, 32)
    masks, values = [], []
    for limit in (logged.HOST_MAX, 0, 2 * 32 * 4 * 4 * 8 - 1):  # the conv's output: graph
        monkeypatch.setattr(logged, "HOST_MAX", limit)
        logger = ActivationLogger(tmp_path / str(limit), x, y)
        logger.set_model(model)
        values.append(logger.log(0))
        masks.append(logger._on_host)
    assert masks == [(True,) * 3, (False,) * 3, (False, True, True)]
    for v in values[1:]:
        np.testing.assert_allclose(v, values[0], rtol=1e-5)
