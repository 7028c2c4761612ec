"""The doctor's checks of what a model does on its data: activations, predictions, gradients,
and the active checks. Most read synthetic evidence on a tiny real model (each check's
trigger, and quiet on a healthy case); a few run the real measurements end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from insight.data import Dataset
from insight.doctor import diagnose

from ._doctor import curves, data, evidence, found, grads_table, mlp, run, stats_table

MEASURED = ["dead_units", "saturated_units", "activation_scale", "activation_nan",
            "initial_loss", "constant_predictions", "prediction_loss", "vanishing_gradient",
            "exploding_gradient", "gradient_nan"]


def _healthy_stats():
    return stats_table([{"layer": "hidden1", "std": 0.8, "dead_fraction": 0.1, "dead_units": 1},
                        {"layer": "hidden2", "std": 1.1},
                        {"layer": "out", "class": "Dense", "units": 3, "saturation": "softmax",
                         "saturated_fraction": 0.97, "std": 0.3}])


def _healthy_grads():
    return grads_table([("hidden1", 56, 0.05), ("hidden2", 72, 0.06), ("out", 27, 0.04)])


def _predictions(ds: Dataset, confidence: float = 0.8) -> np.ndarray:
    """Mostly right predictions with `confidence` on the labelled class."""
    p = np.full((len(ds), 3), (1 - confidence) / 2)
    p[np.arange(len(ds)), ds.y] = confidence
    p[:10] = p[:10, ::-1]
    return p


def test_a_healthy_model_passes_every_measured_check():
    ds = data()
    ev = evidence(mlp(hidden=(8, 8)), ds, curves(loss=[1.1, 0.7, 0.5], accuracy=[0.5, 0.7, 0.8]),
                  stats=_healthy_stats(), grads=_healthy_grads(), predictions=[_predictions(ds)])
    report = run(ev, *MEASURED)
    assert report.at_least("info") == [] and report.skipped == []


# ---------------------------------------------------------------- activations
def test_dead_relu_layers_by_share():
    stats = stats_table([{"layer": "hidden1", "dead_fraction": 1.0, "dead_units": 8},
                         {"layer": "hidden2", "dead_fraction": 0.5, "dead_units": 4},
                         {"layer": "hidden3", "dead_fraction": 0.25, "dead_units": 2}])
    report = run(evidence(mlp(hidden=(8, 8, 8)), data(), stats=stats), "dead_units")
    assert found(report) == [("dead_units", "dead_units", "error", "hidden1"),
                             ("dead_units", "dead_units", "warning", "hidden2"),
                             ("dead_units", "dead_units", "info", "hidden3")]
    assert report.plots["dead_units|"]["highlight"] == ["hidden1", "hidden2"]


def test_dead_units_only_in_relu_layers():
    stats = stats_table([{"layer": "hidden1", "dead_fraction": 0.9, "dead_units": 7}])
    assert not run(evidence(mlp(activation="tanh"), data(), stats=stats), "dead_units").findings


def test_saturated_hidden_layers_but_not_the_output():
    stats = stats_table([{"layer": "hidden1", "saturation": "tanh", "saturated_fraction": 0.9},
                         {"layer": "out", "saturation": "softmax", "saturated_fraction": 0.99}])
    report = run(evidence(mlp(activation="tanh"), data(), stats=stats), "saturated_units")
    assert found(report) == [("saturated_units", "saturated_units", "warning", "hidden1")]


def test_activation_scale_growing_and_shrinking():
    grow = stats_table([{"layer": "hidden1", "std": 0.5}, {"layer": "hidden2", "std": 8.0},
                        {"layer": "hidden3", "std": 600.0}])
    report = run(evidence(mlp(hidden=(8, 8, 8)), data(), stats=grow), "activation_scale")
    assert found(report) == [("activation_scale", "activation_scale", "warning", "hidden3")]
    assert report.findings[0].evidence["ratio"] == pytest.approx(1200)
    shrink = stats_table([{"layer": "hidden1", "std": 2.0}, {"layer": "hidden2", "std": 0.1},
                          {"layer": "hidden3", "std": 0.004}])
    report = run(evidence(mlp(hidden=(8, 8, 8)), data(), stats=shrink), "activation_scale")
    assert found(report) == [("activation_scale", "activation_scale", "warning", "hidden3")]
    assert "shrinks" in report.findings[0].explanation


def test_nan_activations_from_the_first_layer_they_appear_in():
    stats = stats_table([{"layer": "hidden1"}, {"layer": "hidden2", "mean": math.nan},
                         {"layer": "out", "max": math.inf}])
    report = run(evidence(mlp(hidden=(8, 8)), data(), stats=stats), "activation_nan")
    assert found(report) == [("activation_nan", "nan_inf", "error", "hidden2")]
    assert report.findings[0].evidence["layers_affected"] == 2


def test_nan_weights_measured_end_to_end():
    """NaN weights: the first NaN layer is found, and the statistics of the layers before it
    still count (on CPU every statistic is reduced in one read that NaN does not stop)."""
    model = mlp(hidden=(8, 8))
    kernel = model.get_layer("out").kernel.numpy()
    kernel[:] = np.nan
    model.get_layer("out").kernel.assign(kernel)
    report = run(evidence(model, data()), "activation_nan", "dead_units", "gradient_nan")
    assert found(report) == [("activation_nan", "nan_inf", "error", "out"),
                             ("gradient_nan", "nan_inf", "error", "hidden1")]
    assert report.skipped == []
    table = evidence(model, data()).stats.table.set_index("layer")
    assert np.isnan(table.loc["out", "mean"]) and np.isfinite(table.loc["hidden1", "mean"])


def test_dead_relus_measured_end_to_end():
    """A ReLU net whose biases start at -5: the statistics find its dead units, the weights
    name the cause, and no gradient reaches the layers behind them."""
    report = diagnose(mlp(hidden=(8, 8), bias=-5.0), data())
    got = set(found(report))
    assert ("dead_units", "dead_units", "error", "hidden1") in got
    assert ("negative_bias", "dead_units", "warning", "hidden1") in got
    assert ("vanishing_gradient", "vanishing_gradient", "warning", "hidden2") in got
    assert report.worst() == "error"


# ---------------------------------------------------------------- predictions
def test_confidently_wrong_at_the_files_weights():
    ds = data()
    wrong = np.full((len(ds), 3), 0.005)
    wrong[np.arange(len(ds)), (ds.y + 1) % 3] = 0.99
    report = run(evidence(mlp(), ds, predictions=[wrong]), "initial_loss")
    assert found(report) == [("initial_loss", "bad_init", "warning", "out")]
    assert report.findings[0].evidence["ln_classes"] == pytest.approx(math.log(3))
    uniform = np.full((len(ds), 3), 1 / 3)  # untrained: right at ln(C), fine
    assert not run(evidence(mlp(), ds, predictions=[uniform]), "initial_loss").findings


def test_always_the_same_class():
    ds = data()
    same = np.tile([0.9, 0.05, 0.05], (len(ds), 1))
    report = run(evidence(mlp(), ds, predictions=[same]), "constant_predictions")
    assert found(report) == [("constant_predictions", "not_learning", "warning", "out")]
    assert report.findings[0].evidence["predicted_class"] == 0


def test_outputs_far_from_the_loss_training_reported():
    """A one-unit softmax trained with binary cross-entropy: Keras' loss used the logits and
    fell, the outputs are all 1.0."""
    ds = data()
    binary = Dataset(x=ds.x, y=(ds.y > 0).astype("float32").reshape(-1, 1))
    model = mlp(units=1, loss="binary_crossentropy")
    ev = evidence(model, binary, curves(loss=[0.69, 0.4, 0.3]),
                  predictions=[np.ones((len(ds), 1))])
    report = run(ev, "prediction_loss")
    assert found(report) == [("prediction_loss", "loss_activation_mismatch", "error", "out")]
    assert report.findings[0].evidence["training_loss"] == pytest.approx(0.3)


# ---------------------------------------------------------------- gradients
def test_vanishing_gradients_first_to_last_and_where_they_fall():
    table = grads_table([("hidden1", 56, 1e-7), ("hidden2", 72, 1e-6), ("hidden3", 72, 1e-2),
                         ("out", 27, 0.05)])
    report = run(evidence(mlp(hidden=(8, 8, 8)), data(), grads=table), "vanishing_gradient")
    assert found(report) == [("vanishing_gradient", "vanishing_gradient", "warning", "hidden2")]
    assert report.findings[0].evidence["ratio"] < 1e-3
    assert report.plots["vanishing_gradient|"]["marked"] == ["hidden2"]


def test_vanishing_gradients_halving_layer_after_layer():
    table = grads_table([("hidden1", 100, 0.001), ("hidden2", 100, 0.004),
                         ("hidden3", 100, 0.02), ("out", 100, 0.1)])
    report = run(evidence(mlp(hidden=(8, 8, 8)), data(), grads=table), "vanishing_gradient")
    assert found(report) == [("vanishing_gradient", "vanishing_gradient", "warning", "hidden1")]
    assert "halving or more layer after layer from out down to hidden1" in \
        report.findings[0].explanation


def test_no_gradient_reaching_layers_is_said_once():
    table = grads_table([("hidden1", 56, 0.0), ("hidden2", 72, 0.0), ("out", 27, 0.05)])
    report = run(evidence(mlp(hidden=(8, 8)), data(), grads=table), "vanishing_gradient")
    assert found(report) == [("vanishing_gradient", "vanishing_gradient", "warning", "hidden2")]
    assert "No gradient reaches hidden2 (nor 1 layer before it)" in \
        report.findings[0].explanation


def test_saturated_outputs_are_differentiated_through_their_logits():
    """Huge logits saturate the softmax: clipped probabilities would give every weight exactly
    0, while training (through the logits, as `insight.gradients` does) gets huge gradients:
    exploding, not vanishing."""
    model = mlp(hidden=(16, 16), activation="linear")
    for name in ("hidden1", "hidden2", "out"):
        layer = model.get_layer(name)
        layer.kernel.assign(layer.kernel.numpy() * 400)
    report = run(evidence(model, data()), "vanishing_gradient", "exploding_gradient")
    assert [f[:3] for f in found(report)] == [("exploding_gradient", "exploding_gradient",
                                               "warning")]
    assert report.findings[0].evidence["target"] == "loss: sparse_categorical_crossentropy"


def test_exploding_gradients():
    table = grads_table([("hidden1", 56, 900.0), ("hidden2", 72, 0.5), ("out", 27, 0.05)])
    report = run(evidence(mlp(hidden=(8, 8)), data(), grads=table), "exploding_gradient")
    assert found(report) == [("exploding_gradient", "exploding_gradient", "warning", "hidden1")]


def test_nan_gradients_from_the_first_layer():
    table = grads_table([("hidden1", 56, 0.1), ("hidden2", 72, math.nan), ("out", 27, 0.05)])
    report = run(evidence(mlp(hidden=(8, 8)), data(), grads=table), "gradient_nan")
    assert found(report) == [("gradient_nan", "nan_inf", "error", "hidden2")]


# ---------------------------------------------------------------- active checks
def test_active_checks_run_only_when_asked():
    report = run(evidence(mlp(), data()), "overfit_one_batch", "lr_range_test")
    assert report.checked == []
    assert all("run only when asked" in s["reason"] for s in report.skipped)


def test_a_healthy_model_overfits_one_batch_and_the_model_is_untouched():
    model = mlp()
    before = [w.copy() for w in model.get_weights()]
    report = run(evidence(model, data()), "overfit_one_batch", train_probe=True)
    assert found(report) == [("overfit_one_batch", "not_learning", "info", None)]
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_a_dead_model_cannot_overfit_one_batch():
    report = run(evidence(mlp(bias=-5.0), data()), "overfit_one_batch", train_probe=True)
    assert found(report) == [("overfit_one_batch", "not_learning", "warning", None)]


def test_the_learning_rate_range_test_finds_a_file_rate_too_high():
    import keras

    ds = data()
    model = mlp(hidden=(16, 16), optimizer=keras.optimizers.SGD(learning_rate=8.0))
    report = run(evidence(model, Dataset(x=ds.x * 10, y=ds.y)), "lr_range_test",
                 train_probe=True)
    assert found(report) == [("lr_range_test", "learning_rate_high", "warning", None)]
    evidence_ = report.findings[0].evidence
    assert evidence_["steepest_lr"] < evidence_["diverges_at"] < 8.0
    plot = report.plots["lr_range_test|"]
    assert plot["kind"] == "lr_finder" and len(plot["lrs"]) == len(plot["losses"]) > 20
