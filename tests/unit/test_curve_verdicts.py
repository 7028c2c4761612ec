"""The train/validation verdict: overfitting (from which epoch), a large gap, no sign, or not
enough epochs to tell; on the raw curve for short runs, for losses and accuracies alike.

The run of issue 12: training loss 0.23 and validation loss 1.41, validation loss rising for
the last 2 epochs, validation accuracy falling from 0.72 to 0.44. It was called "no sign of
overfitting" (the check smoothed the curve and needed 4 validation points)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insight.curves.analysis import SHORT_RUN, overfitting, train_val_verdict
from insight.errors import UsageError
from insight.panels import PanelContext, build_panel

from ._errors import assert_error

ISSUE_RUN = {"loss": [0.61, 0.34, 0.23], "val_loss": [0.95, 1.12, 1.41],
             "accuracy": [0.80, 0.89, 0.93], "val_accuracy": [0.72, 0.60, 0.44]}


def _csv(path, history: dict) -> None:
    cols = list(history)
    rows = zip(*history.values(), strict=True)
    path.write_text("epoch," + ",".join(cols) + "\n" + "".join(
        f"{i}," + ",".join(map(str, r)) + "\n" for i, r in enumerate(rows)))


@pytest.fixture(params=["json", "csv"])
def issue_log(request, tmp_path):
    """The issue's run as a Keras history JSON and as a CSVLogger CSV."""
    if request.param == "json":
        path = tmp_path / "history.json"
        path.write_text(json.dumps(ISSUE_RUN))
    else:
        path = tmp_path / "log.csv"
        _csv(path, ISSUE_RUN)
    return path


def test_the_issue_run_is_overfitting_from_epoch_0(issue_log):
    table = build_panel("train_val_verdicts", PanelContext(logdir=issue_log)).set_index("metric")
    loss, acc = table.loc["loss"], table.loc["accuracy"]
    assert loss.overfitting_from == 0 and acc.overfitting_from == 0
    assert loss.verdict == "overfitting from epoch 0; large gap (val 6.1× train)"
    assert acc.verdict == "overfitting from epoch 0; large gap (val 0.49 below train)"
    assert (loss.unit, loss.last_train, loss.last_val) == ("epoch", 0.23, 1.41)
    # The page's boxes are the doctor's findings on the same verdict.
    found = build_panel("doctor_page_findings", PanelContext(logdir=issue_log),
                        page="training").set_index("check")
    assert found.loc["overfitting", "explanation"].startswith("Overfitting from epoch 0:")


def test_the_issue_run_is_shaded_on_both_charts(issue_log):
    ctx = PanelContext(logdir=issue_log)
    for metric, change in (("loss", "+48%"), ("accuracy", "−39%")):
        notes = build_panel("training_curves", ctx, metric=metric).to_dict()["layout"][
            "annotations"]
        assert [n["text"] for n in notes] == [f"overfitting from epoch 0 (val {change})"]


def test_short_runs_read_the_raw_curve():
    s = np.arange(3)
    onset = overfitting(s, [0.61, 0.34, 0.23], s, [0.95, 1.12, 1.41])
    assert onset == {"step": 0, "val_at_onset": 0.95, "val_at_end": 1.41,
                     "rise": pytest.approx(0.46 / 0.95), "how": "raw"}
    acc = overfitting(s, [0.8, 0.89, 0.93], s, [0.72, 0.60, 0.44], direction="max")
    assert acc["step"] == 0 and acc["rise"] == pytest.approx(0.28 / 0.72)
    # a loss that falls is no overfitting in "max" terms, and the other way round
    assert overfitting(s, [0.61, 0.34, 0.23], s, [0.95, 1.12, 1.41], direction="max") is None
    # the best epoch in the middle: two more epochs after it are enough
    s = np.arange(5)
    onset = overfitting(s, [1.2, 0.7, 0.45, 0.31, 0.23], s, [1.05, 0.92, 0.88, 1.12, 1.41])
    assert onset["step"] == 2 and onset["how"] == "raw"


def test_short_runs_no_false_alarms():
    s = np.arange(6)
    train = [1.0, 0.8, 0.6, 0.5, 0.45, 0.4]
    assert overfitting(s, train, s, [1.0, 0.8, 0.7, 0.65, 0.66, 0.67]) is None  # +3%: noise
    assert overfitting(s, train, s, [1.0, 0.8, 0.7, 0.65, 0.6, 0.9]) is None  # one epoch after
    # validation worse, but training is not improving either: not overfitting
    assert overfitting(s, [0.5] * 6, s, [1.0, 0.8, 0.7, 0.65, 0.8, 0.9]) is None
    assert overfitting(s[:2], train[:2], s[:2], [0.9, 1.4]) is None  # two points: no trend


def test_long_runs_catch_a_rise_in_the_last_two_epochs():
    """The smoothed curve lags: a rise in the last 2 of 12 epochs (0.525 -> 0.55 -> 0.60) is
    read raw."""
    s = np.arange(12)
    train = np.exp(-s / 4)
    val = 0.5 + 0.5 * np.exp(-s / 3)
    val[-2:] = [0.55, 0.60]
    onset = overfitting(s, train, s, val)
    assert onset["how"] == "tail" and onset["step"] == 9
    assert overfitting(s, train, s, 0.5 + 0.5 * np.exp(-s / 3)) is None
    # noisy but flat validation: rises of noise size are not a trend
    rng = np.random.default_rng(0)
    noisy = 1.0 + 0.05 * rng.normal(size=200)
    noisy[-3:] = [0.98, 1.02, 1.07]
    assert overfitting(np.arange(200), np.linspace(1, 0.1, 200), np.arange(200), noisy) is None
    assert SHORT_RUN == 8


@pytest.mark.parametrize(("train", "val", "direction", "kind", "text"), [
    ([0.61, 0.34, 0.23], [0.95, 1.12, 1.41], "min", "overfitting",
     "overfitting from epoch 0; large gap (val 6.1× train)"),
    ([0.5, 0.3, 0.2], [1.0, 0.9, 0.8], "min", "gap", "large gap (val 4× train)"),
    ([0.9, 0.95, 0.99], [0.7, 0.8, 0.85], "max", "gap",
     "large gap (val 0.14 below train)"),
    ([0.5, 0.3, 0.2], [0.5, 0.3, 0.25], "min", "none", "no sign of overfitting"),
    ([0.5, 0.6, 0.7], [0.5, 0.6, 0.68], "max", "none", "no sign of overfitting"),
    ([0.5, 0.3], [0.5, 0.35], "min", "too_short",
     "not enough epochs to tell (2 validation points)"),
    ([0.5], [0.5], "min", "too_short", "not enough epochs to tell (1 validation point)"),
    ([0.5, 0.3], [0.5, 0.9], "min", "gap", "large gap (val 3× train)"),
    ([1e-3, 1e-3, 1e-3], [1e-3, 1e-3, 1e-3], "", "", ""),
])
def test_every_verdict(train, val, direction, kind, text):
    s = np.arange(len(val))
    v = train_val_verdict(s, train, s, val, direction, unit="epoch")
    assert (v.kind, v.text) == (kind, text)
    assert v.points == len(val)
    if kind == "gap" and len(val) == 2:
        assert "too few to see a trend" in v.detail  # two points say nothing of the trend


def test_verdict_details_and_nonfinite_points():
    s = np.arange(4)
    v = train_val_verdict(s, [0.61, 0.34, 0.23, np.nan], s, [0.95, 1.12, 1.41, np.inf], "min",
                          unit="epoch")
    assert v.kind == "overfitting" and v.onset == 0 and v.val_last == 1.41
    assert v.detail == ("Overfitting from epoch 0: validation rose 0.95 → 1.41 while training "
                        "fell 0.61 → 0.23; large gap: validation 6.1× training (1.41 vs 0.23).")
    with pytest.raises(UsageError) as e:
        overfitting(s, s, s, s, direction="up")
    assert_error(e, UsageError, "direction must be 'min'", "direction='up'")


def test_tensorboard_steps_are_called_steps(tmp_path):
    """Only epoch-level logs say "epoch": a batch-level tag keeps "step"."""
    from . import _events as ev

    for split, vals in (("train", [0.61, 0.34, 0.23]), ("validation", [0.95, 1.12, 1.41])):
        ev.write(tmp_path / split / "events.out.tfevents.1",
                 [ev.scalar("batch_loss", 100 * i, v) for i, v in enumerate(vals)]
                 + [ev.scalar("epoch_loss", i, v) for i, v in enumerate(vals)])
    table = build_panel("train_val_verdicts", PanelContext(logdir=tmp_path)).set_index("metric")
    assert table.loc["batch_loss", "verdict"].startswith("overfitting from step 0;")
    assert table.loc["epoch_loss", "verdict"].startswith("overfitting from epoch 0;")
    spec = build_panel("training_curves", PanelContext(logdir=tmp_path),
                       metric="batch_loss").to_dict()
    assert spec["layout"]["xaxis"]["title"]["text"] == "step"
