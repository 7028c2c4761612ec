"""The doctor's checks of training curves, on synthetic histories: each is triggered by the
curve shape it names, and a healthy run (the digits_cnn sample's own logs too) triggers none."""

from __future__ import annotations

import math

import pytest

from ._doctor import curves, data, evidence, found, mlp, run

CURVES = ["loss_nan", "loss_diverging", "loss_oscillating", "loss_not_decreasing",
          "loss_creeping", "accuracy_at_chance", "overfitting", "generalization_gap",
          "underfitting"]
HEALTHY = dict(loss=[1.05, 0.62, 0.41, 0.30, 0.24, 0.20, 0.18, 0.16, 0.15, 0.14],
               val_loss=[0.90, 0.55, 0.40, 0.32, 0.28, 0.26, 0.25, 0.24, 0.24, 0.235],
               accuracy=[0.55, 0.78, 0.86, 0.90, 0.92, 0.93, 0.94, 0.95, 0.95, 0.96],
               val_accuracy=[0.60, 0.80, 0.86, 0.89, 0.90, 0.91, 0.91, 0.92, 0.92, 0.92])


def _run(*names, **series):
    return run(evidence(mlp(), data(), curves(**series)), *names)


def test_a_healthy_run_passes_every_curve_check():
    report = _run(*CURVES, **HEALTHY)
    assert report.findings == [] and report.skipped == []


def test_the_samples_own_logs_are_healthy(load_sample, samples_dir):
    from insight.doctor import Evidence

    for log in ("logs", "history.csv", "history.json"):
        ev = Evidence(load_sample("digits_cnn"), None, samples_dir / "digits_cnn" / log)
        report = run(ev, *CURVES)
        assert report.findings == [] and report.skipped == [], log


def test_no_logdir_skips_the_curve_checks():
    report = run(evidence(mlp(), data()), *CURVES)
    assert report.checked == [] and {s["reason"] for s in report.skipped} == {"no logdir"}


def test_nan_in_the_loss_with_its_step():
    report = _run("loss_nan", loss=[1.0, 0.8, 2.5, math.nan, math.nan],
                  val_loss=[1.0, 0.9, 3.0, math.nan, math.nan])
    assert found(report) == [("loss_nan", "nan_inf", "error", None)]  # validation: said once
    assert report.findings[0].evidence["step"] == 3
    assert report.plots["loss_nan|"]["mark"] == 3


def test_a_loss_that_climbs_and_turns_nan_is_diverging():
    report = _run("loss_diverging", loss=[1.2, 0.5, 0.46, 0.9, 1.85, math.nan])
    assert found(report) == [("loss_diverging", "learning_rate_high", "error", None)]
    assert report.findings[0].evidence["best_step"] == 2
    report = _run("loss_diverging", loss=[2.3, 1.0, 0.8, 3.5, 9.0])
    assert found(report) == [("loss_diverging", "learning_rate_high", "error", None)]
    # a first epoch far above ln(3), what guessing scores, then stuck: it exploded
    report = _run("loss_diverging", loss=[2.5e27, 1.34, 1.38, 1.38])
    assert found(report) == [("loss_diverging", "learning_rate_high", "error", None)]
    assert "exploded" in report.findings[0].explanation
    report = _run("loss_diverging", loss=[46.0, 7.8, 2.9, 2.4])  # 42x ln(3): a warning
    assert found(report) == [("loss_diverging", "learning_rate_high", "warning", None)]


def test_nan_from_the_first_epoch_on_clean_data_is_a_blow_up():
    report = _run("loss_diverging", loss=[math.nan] * 4)
    assert found(report) == [("loss_diverging", "learning_rate_high", "error", None)]
    assert "inputs and labels hold no NaN" in report.findings[0].explanation
    # without the data, NaN in the inputs cannot be ruled out: nothing said
    assert not run(evidence(mlp(), None, curves(loss=[math.nan] * 4)), "loss_diverging").findings


def test_spikes_and_zigzags_mean_a_rate_too_high():
    report = _run("loss_oscillating", loss=[1.0, 0.6, 0.5, 1.1, 0.45, 0.4, 0.9, 0.38])
    assert found(report) == [("loss_oscillating", "learning_rate_high", "warning", None)]
    assert report.findings[0].evidence["first_spike"] == 3
    report = _run("loss_oscillating", loss=[1.0, 0.8, 0.9, 0.7, 0.8, 0.65, 0.75, 0.6])
    assert found(report) == [("loss_oscillating", "learning_rate_high", "warning", None)]


def test_a_flat_loss_is_not_learning():
    report = _run("loss_not_decreasing", loss=[1.10, 1.099, 1.098, 1.1, 1.097, 1.098])
    assert found(report) == [("loss_not_decreasing", "not_learning", "warning", None)]
    # a flat loss that is already low (fine-tuning a trained model) is fine
    assert not _run("loss_not_decreasing", loss=[0.05, 0.049, 0.05, 0.049]).findings


def test_a_loss_that_creeps_means_a_rate_too_low():
    creep = [1.10 - 0.02 * i for i in range(10)]
    report = _run("loss_creeping", loss=creep)
    assert found(report) == [("loss_creeping", "learning_rate_low", "warning", None)]
    assert report.findings[0].evidence["drop"] == pytest.approx(0.18 / 1.10)


def test_accuracy_at_chance_while_the_loss_falls_is_a_mismatch():
    report = _run("accuracy_at_chance", loss=[0.7, 0.3, 0.2, 0.1],
                  accuracy=[0.34, 0.33, 0.35, 0.34])
    assert found(report) == [("accuracy_at_chance", "loss_activation_mismatch", "error", None)]
    report = _run("accuracy_at_chance", loss=[1.1, 1.1, 1.1, 1.1],
                  accuracy=[0.34, 0.33, 0.35, 0.34])
    assert found(report) == [("accuracy_at_chance", "not_learning", "warning", None)]


def test_overfitting_from_its_epoch():
    report = _run("overfitting", loss=[0.9, 0.5, 0.3, 0.2, 0.12, 0.08],
                  val_loss=[0.95, 0.6, 0.5, 0.6, 0.75, 0.9])
    assert found(report) == [("overfitting", "overfitting", "warning", None)]
    assert report.findings[0].evidence["onset"] == 2
    assert "epoch 2" in report.findings[0].suggestion


def test_a_large_gap_between_training_and_validation():
    report = _run("generalization_gap", loss=[0.8, 0.3, 0.1, 0.05, 0.04],
                  val_loss=[1.0, 0.9, 0.85, 0.86, 0.85],
                  accuracy=[0.7, 0.9, 0.97, 0.99, 0.99], val_accuracy=[0.6, 0.7, 0.72, 0.72, 0.72])
    assert found(report) == [("generalization_gap", "overfitting", "warning", None)]
    # tiny losses whose ratio is large, with accuracies close: no gap
    assert not _run("generalization_gap", loss=[0.3, 0.1, 0.05, 0.03],
                    val_loss=[0.3, 0.15, 0.14, 0.14], accuracy=[0.9, 0.97, 0.99, 0.99],
                    val_accuracy=[0.9, 0.95, 0.96, 0.96]).findings


def test_a_loss_that_levels_off_high_is_underfitting():
    report = _run("underfitting", loss=[1.1, 0.95, 0.9, 0.88, 0.875, 0.874, 0.874])
    assert found(report) == [("underfitting", "underfitting", "warning", None)]
