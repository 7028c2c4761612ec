"""The doctor's API and its static checks: loss vs output, labels, learning rate, data and
initial weights. Each check is triggered by a tiny seeded model or data made for it, and
stays quiet on a healthy one; the healthy digits_cnn sample gets no warning at all."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insight.data import Dataset
from insight.doctor import CATEGORIES, Finding, Report, check_names, diagnose, get_check
from insight.errors import UsageError

from ._doctor import data, evidence, found, mlp, run

STATIC = ["one_unit_softmax", "softmax_binary_crossentropy", "crossentropy_on_non_probabilities",
          "regression_loss_on_probabilities", "from_logits_contradiction", "label_encoding",
          "label_range", "learning_rate_setting", "class_imbalance", "input_scale",
          "constant_features", "input_nan", "weight_scale", "negative_bias"]


# ---------------------------------------------------------------- the API
def test_categories_are_the_issues_list():
    assert CATEGORIES == (
        "loss_activation_mismatch", "label_problem", "class_imbalance", "unnormalized_input",
        "bad_init", "dead_units", "saturated_units", "vanishing_gradient",
        "exploding_gradient", "activation_scale", "nan_inf", "learning_rate_high",
        "learning_rate_low", "not_learning", "overfitting", "underfitting", "compute")


def test_every_check_is_registered_with_known_categories():
    names = check_names()
    assert len(names) == len(set(names)) >= 30
    for name in names:
        assert set(get_check(name).categories) <= set(CATEGORIES)
    with pytest.raises(UsageError, match="No such check: 'nope'. Existing checks are: "):
        get_check("nope")


def test_a_finding_rejects_unknown_values_and_serialises_plainly():
    f = Finding("x", "nan_inf", "error", None, {"n": np.int64(3), "v": np.float32(np.nan),
                                                   "ok": True}, "e", "s", "training", "p")
    assert f.evidence == {"n": 3, "v": pytest.approx(float("nan"), nan_ok=True), "ok": 1}
    assert json.loads(json.dumps(f.to_dict()))["evidence"]["v"] == "nan"
    for bad in ({"category": "nope"}, {"severity": "fatal"}, {"page": "nowhere"}):
        kw = {"check": "x", "category": "nan_inf", "severity": "error", "layer": None,
              "evidence": {}, "explanation": "", "suggestion": "", "page": "doctor",
              "panel": "", **bad}
        with pytest.raises(ValueError, match="Received"):
            Finding(**kw)


def test_a_report_sorts_worst_first_and_has_the_contracted_dict():
    def f(severity, check):
        return Finding(check, "nan_inf", severity, None, {}, "", "", "doctor", "")

    report = Report([f("info", "a"), f("error", "b"), f("warning", "c")], ["a", "b", "c"],
                    [{"check": "d", "reason": "no logdir"}])
    assert [x.severity for x in report.findings] == ["error", "warning", "info"]
    assert report.worst() == "error"
    assert set(report.to_dict()) == {"findings", "checked", "skipped"}
    assert report.to_dict()["skipped"] == [{"check": "d", "reason": "no logdir"}]
    assert [x.check for x in report.at_least("warning")] == ["b", "c"]
    assert Report().worst() is None


@pytest.fixture(scope="module")
def digits_report(load_sample, samples_dir):
    loaded = load_sample("digits_cnn")
    return diagnose(loaded, None, samples_dir / "digits_cnn" / "logs")


def test_the_healthy_digits_cnn_gets_no_warning(digits_report):
    assert digits_report.at_least("warning") == [], digits_report.findings
    assert len(digits_report.checked) >= 30
    assert {s["check"] for s in digits_report.skipped} == {"overfit_one_batch", "lr_range_test",
                                                           "xla_slower"}  # asked for only
    assert not any("failed" in s["reason"] for s in digits_report.skipped)
    # Its profile (TensorBoard(profile_batch=...)) has no step markers: worth a note, no more.
    (note,) = [f for f in digits_report.findings if f.category == "compute"]
    assert (note.check, note.severity, note.evidence["steps"]) == ("profile_steps", "info", 3)


def test_without_data_or_logs_the_checks_that_need_them_say_why(load_sample):
    import keras

    plain = keras.models.clone_model(load_sample("digits_cnn").model)  # no file: no data
    report = diagnose(plain)
    reasons = {s["check"]: s["reason"] for s in report.skipped}
    assert reasons["dead_units"] == "no data given"
    assert reasons["loss_nan"] == "no logdir"
    assert "one_unit_softmax" in report.checked  # static checks still run


# ---------------------------------------------------------------- loss vs output
def test_a_healthy_setup_passes_every_static_check():
    ev = evidence(mlp(), data())
    report = run(ev, *STATIC)
    assert report.at_least("info") == [] and report.skipped == []


def test_one_unit_softmax():
    report = run(evidence(mlp(units=1, loss="binary_crossentropy")), "one_unit_softmax")
    assert found(report) == [("one_unit_softmax", "loss_activation_mismatch", "error", "out")]
    assert "always exactly 1.0" in report.findings[0].explanation


def test_softmax_under_binary_crossentropy():
    report = run(evidence(mlp(loss="binary_crossentropy")), "softmax_binary_crossentropy")
    assert found(report) == [("softmax_binary_crossentropy", "loss_activation_mismatch",
                              "error", "out")]
    assert not run(evidence(mlp(units=2, loss="binary_crossentropy")),
                   "softmax_binary_crossentropy").findings  # two classes: tolerated


@pytest.mark.parametrize(("output", "units", "loss", "severity"), [
    ("linear", 3, "sparse_categorical_crossentropy", "error"),
    ("linear", 1, "binary_crossentropy", "error"),
    ("sigmoid", 3, "categorical_crossentropy", "warning"),
    ("sigmoid", 1, "categorical_crossentropy", "error"),
])
def test_crossentropy_on_an_output_that_is_not_its_distribution(output, units, loss, severity):
    report = run(evidence(mlp(output=output, units=units, loss=loss)),
                 "crossentropy_on_non_probabilities")
    assert found(report) == [("crossentropy_on_non_probabilities", "loss_activation_mismatch",
                              severity, "out")]


def test_linear_output_with_from_logits_is_fine():
    import keras

    model = mlp(output="linear", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    assert not run(evidence(model), "crossentropy_on_non_probabilities",
                   "from_logits_contradiction").findings


def test_regression_loss_on_probabilities():
    report = run(evidence(mlp(loss="mse")), "regression_loss_on_probabilities")
    assert found(report) == [("regression_loss_on_probabilities", "loss_activation_mismatch",
                              "warning", "out")]
    ds = data()
    regression = Dataset(x=ds.x, y=np.random.default_rng(0).random((len(ds), 1)))
    assert not run(evidence(mlp(units=1, output="sigmoid", loss="mse"), regression),
                   "regression_loss_on_probabilities").findings  # targets in (0, 1): fine


def test_from_logits_on_a_softmax_read_from_the_files_compile_config(tmp_path):
    import keras

    import insight

    model = mlp(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(tmp_path / "m.keras")
    loaded = insight.load_model(tmp_path / "m.keras")
    report = run(evidence(loaded), "from_logits_contradiction")
    assert found(report) == [("from_logits_contradiction", "loss_activation_mismatch",
                              "warning", "out")]
    assert report.findings[0].evidence["loss"] == "SparseCategoricalCrossentropy" \
        "(from_logits=True)"


def test_a_file_saved_without_compile_skips_the_loss_checks(tmp_path):
    import insight

    mlp(compile=False).save(tmp_path / "m.keras")
    report = run(evidence(insight.load_model(tmp_path / "m.keras")),
                 "softmax_binary_crossentropy", "one_unit_softmax")
    assert report.checked == ["one_unit_softmax"]
    assert "no compiled loss" in report.skipped[0]["reason"]


# ---------------------------------------------------------------- labels
def test_one_hot_labels_under_sparse_crossentropy_and_the_reverse():
    ds = data()
    one_hot = Dataset(x=ds.x, y=np.eye(3, dtype="float32")[ds.y])
    report = run(evidence(mlp(), one_hot), "label_encoding")
    assert found(report) == [("label_encoding", "label_problem", "error", "out")]
    report = run(evidence(mlp(loss="categorical_crossentropy"), ds), "label_encoding")
    assert found(report) == [("label_encoding", "label_problem", "error", "out")]
    assert not run(evidence(mlp(loss="categorical_crossentropy"), one_hot),
                   "label_encoding").findings


def test_labels_outside_the_outputs_range():
    ds = data()
    report = run(evidence(mlp(), Dataset(x=ds.x, y=ds.y + 3)), "label_range")
    assert found(report) == [("label_range", "label_problem", "error", "out")]
    assert report.findings[0].evidence["label_max"] == 5
    pixels = Dataset(x=ds.x, y=(ds.y * 100.0).reshape(-1, 1))
    report = run(evidence(mlp(units=1, output="sigmoid", loss="binary_crossentropy"), pixels),
                 "label_range")
    assert found(report) == [("label_range", "label_problem", "error", "out")]
    nan = ds.y.astype("float64")
    nan[3] = np.nan
    report = run(evidence(mlp(), Dataset(x=ds.x, y=nan)), "label_range")
    assert found(report) == [("label_range", "nan_inf", "error", "out")]


def test_the_label_checks_need_labels():
    ds = data()
    report = run(evidence(mlp(), Dataset(x=ds.x)), "label_range", "class_imbalance")
    assert [s["reason"] for s in report.skipped] == ["the data has no labels"] * 2


# ---------------------------------------------------------------- learning rate
@pytest.mark.parametrize(("optimizer", "rate", "category"), [
    ("Adam", 0.5, "learning_rate_high"), ("SGD", 5.0, "learning_rate_high"),
    ("Adam", 1e-8, "learning_rate_low"), ("SGD", 1e-6, "learning_rate_low")])
def test_a_learning_rate_far_outside_what_trains(optimizer, rate, category):
    import keras

    model = mlp(optimizer=getattr(keras.optimizers, optimizer)(learning_rate=rate))
    report = run(evidence(model), "learning_rate_setting")
    assert found(report) == [("learning_rate_setting", category, "warning", None)]
    assert report.findings[0].evidence["learning_rate"] == pytest.approx(rate)


def test_sgd_momentum_multiplies_its_steps():
    import keras

    model = mlp(optimizer=keras.optimizers.SGD(learning_rate=0.5, momentum=0.9))
    report = run(evidence(model), "learning_rate_setting")
    assert found(report) == [("learning_rate_setting", "learning_rate_high", "warning", None)]
    assert report.findings[0].evidence["effective_rate"] == pytest.approx(5.0)
    quiet = mlp(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9))
    assert not run(evidence(quiet), "learning_rate_setting").findings


def test_the_learning_rate_of_a_schedule_in_the_file(tmp_path):
    import keras

    import insight

    schedule = keras.optimizers.schedules.ExponentialDecay(0.3, 100, 0.9)
    mlp(optimizer=keras.optimizers.Adam(schedule)).save(tmp_path / "m.keras")
    report = run(evidence(insight.load_model(tmp_path / "m.keras")), "learning_rate_setting")
    assert report.findings[0].evidence["learning_rate"] == pytest.approx(0.3)


# ---------------------------------------------------------------- data
def test_class_imbalance():
    ds = data()
    y = np.zeros(len(ds), "int64")
    y[:5] = 1
    y[5:30] = 2
    report = run(evidence(mlp(), Dataset(x=ds.x, y=y, class_names=["a", "b", "c"])),
                 "class_imbalance")
    assert found(report) == [("class_imbalance", "class_imbalance", "warning", None)]
    assert report.findings[0].evidence["largest_class"] == "a"
    assert report.findings[0].evidence["smallest_count"] == 5
    assert report.plots["class_imbalance|"]["values"] == [90, 5, 25]


def test_raw_pixels_and_unscaled_columns():
    ds = data()
    pixels = np.round(np.clip(ds.x * 60 + 100, 0, 255)).astype("float32")
    report = run(evidence(mlp(), Dataset(x=pixels, y=ds.y)), "input_scale")
    assert found(report) == [("input_scale", "unnormalized_input", "warning", None)]
    assert "raw 0-255 pixels" in report.findings[0].explanation
    wide = ds.x.copy()
    wide[:, 2] *= 5000
    wide[:, 2] /= 20  # one column with std ~250, the overall std stays moderate
    report = run(evidence(mlp(), Dataset(x=wide, y=ds.y)), "input_scale")
    assert found(report)[0][:3] == ("input_scale", "unnormalized_input", "warning")


def test_inputs_scaled_inside_the_model_are_fine():
    import keras

    ds = data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Dense(3, activation="softmax")])
    assert not run(evidence(model, Dataset(x=ds.x * 255, y=ds.y)), "input_scale").findings


def test_constant_columns_and_constant_inputs():
    ds = data()
    x = ds.x.copy()
    x[:, :4] = 1.0
    report = run(evidence(mlp(), Dataset(x=x, y=ds.y)), "constant_features")
    assert found(report) == [("constant_features", "unnormalized_input", "warning", None)]
    assert report.findings[0].evidence["constant_columns"] == 4
    report = run(evidence(mlp(), Dataset(x=np.zeros_like(ds.x), y=ds.y)), "constant_features")
    assert found(report) == [("constant_features", "unnormalized_input", "error", None)]


def test_nan_in_the_inputs():
    from insight.data import conform_to_model

    ds = data()
    x = ds.x.copy()
    x[2, 1] = np.nan
    model = mlp()
    report = run(evidence(model, conform_to_model(model, Dataset(x=x, y=ds.y))), "input_nan")
    assert found(report) == [("input_nan", "nan_inf", "error", None)]
    assert report.findings[0].evidence["nonfinite_values"] == 1


def test_synthetic_inputs_are_no_data(load_sample):
    loaded = load_sample("digits_cnn")
    from insight.data import synthetic_dataset

    report = run(evidence(loaded, synthetic_dataset(loaded.model, n=8)), "input_scale")
    assert report.skipped[0]["reason"].startswith("synthetic inputs")


# ---------------------------------------------------------------- initial weights
def test_zero_huge_tiny_and_nan_kernels():
    model = mlp(hidden=(8, 8, 8, 8))
    layers = {layer.name: layer for layer in model.layers}
    layers["hidden1"].kernel.assign(np.zeros((6, 8), "float32"))
    layers["hidden2"].kernel.assign(layers["hidden2"].kernel.numpy() * 100)
    layers["hidden3"].kernel.assign(layers["hidden3"].kernel.numpy() * 1e-4)
    bad = layers["hidden4"].kernel.numpy()
    bad[0, 0] = np.nan
    layers["hidden4"].kernel.assign(bad)
    report = run(evidence(model), "weight_scale")
    assert sorted(found(report)) == [
        ("weight_scale", "bad_init", "warning", "hidden1"),
        ("weight_scale", "bad_init", "warning", "hidden2"),
        ("weight_scale", "bad_init", "warning", "hidden3"),
        ("weight_scale", "nan_inf", "error", "hidden4")]
    model.get_layer("out").kernel.assign(np.full((8, 3), np.nan, "float32"))
    nan = [f for f in run(evidence(model), "weight_scale").findings if f.category == "nan_inf"]
    assert [(f.layer, f.evidence["layers_affected"]) for f in nan] == [("hidden4", 2)]


def test_an_output_layer_may_start_at_zero():
    model = mlp()
    model.get_layer("out").kernel.assign(np.zeros((8, 3), "float32"))
    assert not run(evidence(model), "weight_scale").findings


def test_large_negative_biases_before_relus():
    report = run(evidence(mlp(hidden=(8, 8), bias=-2.0)), "negative_bias")
    assert found(report) == [("negative_bias", "dead_units", "warning", "hidden1"),
                             ("negative_bias", "dead_units", "warning", "hidden2")]
    assert not run(evidence(mlp(hidden=(8,), bias=-2.0, activation="tanh")),
                   "negative_bias").findings  # only ReLUs die
