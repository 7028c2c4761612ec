"""Linear CKA: the properties the literature states (Kornblith et al. 2019), the minibatch
unbiased-HSIC estimator (Nguyen et al. 2021) against the full-batch value, and the streamed
every-layer-pair matrix of real Keras models."""

from __future__ import annotations

import numpy as np
import pytest

from insight.compare.cka import MinibatchCKA, cka, cka_matrix, gram, linear_cka, unbiased_hsic
from insight.errors import DataError, UsageError


def _data(n=600, d=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.tanh(x @ rng.normal(size=(d, 25))) + 0.3 * rng.normal(size=(n, 25))
    return x, y, rng


@pytest.mark.parametrize("n", [20, 300])  # features fewer / more than rows: both branches
def test_cka_of_a_representation_with_itself_is_one(n):
    x, _, _ = _data(n=n, d=50)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    x, y, rng = _data()
    base = linear_cka(x, y)
    q, _ = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))
    assert linear_cka(x @ q, y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, 7.5 * y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(0.01 * x @ q, y + 3.0) == pytest.approx(base, abs=1e-10)  # and shifts
    # ... and not to an arbitrary invertible map: the test would catch a normalisation bug
    stretched = x * np.linspace(0.1, 10, x.shape[1])
    assert abs(linear_cka(stretched, y) - base) > 0.01


def test_unrelated_representations_are_near_zero_and_trailing_dims_flatten():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2000, 3, 2)), rng.normal(size=(2000, 6))
    assert linear_cka(a, b) < 0.01
    assert linear_cka(a, a.reshape(2000, 6)) == pytest.approx(1.0)


def test_minibatch_estimator_agrees_with_the_full_batch():
    x, y, _ = _data(n=2400)
    layers = [x, y, x ** 2]
    acc = MinibatchCKA(3, 3)
    for s in range(0, 2400, 200):
        acc.update([a[s:s + 200] for a in layers], [a[s:s + 200] for a in layers])
    full = np.array([[linear_cka(a, b) for b in layers] for a in layers])
    assert np.allclose(acc.matrix(), full, atol=0.02)
    assert np.allclose(np.diag(acc.matrix()), 1.0)
    assert acc.batches == 12 and acc.rows == 2400


def test_small_minibatches_stay_unbiased():
    """With batches of 16 the plain (biased) per-batch HSIC drifts far from the full-batch CKA;
    the unbiased estimator does not."""
    x, y, _ = _data(n=4800, d=30)
    full = linear_cka(x, y)
    acc = MinibatchCKA(1, 1)
    biased_xy = biased_xx = biased_yy = 0.0
    for s in range(0, 4800, 16):
        xb, yb = x[s:s + 16], y[s:s + 16]
        acc.update([xb], [yb])
        k, l_ = gram(xb), gram(yb)
        biased_xy += np.sum(k * l_)
        biased_xx += np.sum(k * k)
        biased_yy += np.sum(l_ * l_)
    biased = biased_xy / np.sqrt(biased_xx * biased_yy)
    assert abs(acc.matrix()[0, 0] - full) < 0.03
    assert abs(biased - full) > 2 * abs(acc.matrix()[0, 0] - full)


def test_unbiased_hsic_ignores_feature_means():
    x, y, _ = _data(n=50)
    centred = unbiased_hsic(gram(x), gram(y))
    raw = unbiased_hsic(x @ x.T, (y + 5) @ (y + 5).T)
    assert raw == pytest.approx(centred, rel=1e-9)


def test_bad_minibatches_are_refused_and_tiny_ones_skipped():
    acc = MinibatchCKA(2, 1)
    x = np.ones((8, 3))
    with pytest.raises(DataError, match="every layer"):
        acc.update([x], [x])
    with pytest.raises(DataError, match="same inputs"):
        acc.update([x, x], [x[:5]])
    acc.update([x[:3], x[:3]], [x[:3]])  # 3 rows: the unbiased estimator needs 4
    assert acc.batches == 0 and np.isnan(acc.matrix()).all()
    with pytest.raises(DataError, match="same number of rows"):
        linear_cka(x, x[:4])


def test_cka_of_mappings_is_a_frame():
    x, y, _ = _data(n=100)
    frame = cka({"a": x, "b": y}, {"c": y})
    assert frame.shape == (2, 1) and frame.loc["b", "c"] == pytest.approx(1.0)
    with pytest.raises(UsageError):
        cka({"a": x}, y)


@pytest.fixture(scope="module")
def tiny_cnn():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    h = keras.layers.Flatten(name="flat")(h)
    h = keras.layers.Dense(6, activation="tanh", name="dense")(h)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    return keras.Model(inp, out)


def test_cka_matrix_streams_batches_and_matches_full_batch_cka(tiny_cnn):
    from insight.probe.capture import activations

    x = np.random.default_rng(0).normal(size=(300, 8, 8, 1)).astype("float32")
    m = cka_matrix(tiny_cnn, tiny_cnn, x, batch_size=64)
    assert list(m.index) == list(m.columns) == ["conv", "flat", "dense", "out"]
    assert np.allclose(np.diag(m.to_numpy()), 1.0, atol=1e-5)
    acts = activations(tiny_cnn, x)
    full = cka(acts, acts).to_numpy()
    assert np.allclose(m.to_numpy(), full, atol=0.05)
    assert m.loc["conv", "flat"] == pytest.approx(1.0, abs=1e-5)  # a reshape changes nothing
    with pytest.raises(UsageError, match="at least 4"):
        cka_matrix(tiny_cnn, tiny_cnn, x, batch_size=2)
    with pytest.raises(DataError, match="at least 4 inputs"):
        cka_matrix(tiny_cnn, tiny_cnn, x[:3])
