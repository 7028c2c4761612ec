"""The Training panels with default parameters, as exports and deep links build them: one
metric per chart (the first in the page's order), the first histogram series, EMA 0.6
smoothing; unknown values are usage errors that list the valid ones. And how the curves are
drawn: markers on short series, whole-number step ticks, `1e-12` on log axes, the
best-validation star on the line the user sees."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from insight.errors import DataError, UsageError
from insight.export.deeplink import parse_query, share_query
from insight.panels import PanelContext, build_panel
from insight.panels.registry import get_panel, validate_params

from ._errors import assert_error

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "sample_models" / "digits_cnn" / "logs"


def _tensorboard_ema(values, weight):
    """TensorBoard's classicSmoothing (see test_curves.py), for finite values."""
    last, out = 0.0, []
    for n, v in enumerate(values, 1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** n))
    return out


def test_default_smoothing_is_tensorboards_ema_0_6():
    """Exports and deep links leave the smoothing out when it is the default: changing the
    default silently changes every exported chart and shared link."""
    defaults = validate_params(get_panel("training_curves"), {})
    assert defaults == {"metric": "", "runs": "", "tags": "", "x": "step", "y_scale": "linear",
                        "smoothing": "ema", "weight": 0.6, "window": 9, "points": 2000}
    link = parse_query({"panel": "training_curves", "metric": "epoch_loss"})
    assert link.params == {**defaults, "metric": "epoch_loss"}
    assert share_query("training_curves", link.params) == {"panel": "training_curves",
                                                           "metric": "epoch_loss"}
    fig = build_panel("training_curves", PanelContext(logdir=LOGS), **link.params)
    assert "smoothing: EMA (TensorBoard) 0.6" in fig.layout.title.text
    raw, smoothed = [t for t in fig.data if t.name == "validation"]
    np.testing.assert_allclose(smoothed.y, _tensorboard_ema(list(raw.y), 0.6), rtol=1e-12)
    assert not np.allclose(smoothed.y, raw.y)


def test_no_metric_draws_the_first_metric_only():
    """Not every series on one chart ("train train train"): the first of metric_order."""
    spec = build_panel("training_curves", PanelContext(logdir=LOGS)).to_dict()
    assert spec["layout"]["title"]["text"].startswith("epoch_loss<br>")
    names = [t["name"] for t in spec["data"] if not t["name"].startswith("best")]
    assert names == ["train", "train", "validation", "validation"]
    spec = build_panel("training_curves", PanelContext(logdir=LOGS), tags="acc").to_dict()
    assert spec["layout"]["title"]["text"].startswith("epoch_accuracy<br>")  # among the filtered


def test_unknown_metric_and_empty_filters_are_usage_errors(tmp_path):
    ctx = PanelContext(logdir=LOGS)
    with pytest.raises(UsageError) as e:
        build_panel("training_curves", ctx, metric="val_los")
    assert_error(e, UsageError, "No metric 'val_los'", "epoch_loss, evaluation_loss_vs_iter",
                 "epoch_learning_rate", "metric='val_los'")
    with pytest.raises(UsageError) as e:
        build_panel("training_curves", ctx, metric="epoch_loss", runs="^nope$")
    assert_error(e, UsageError, "No series of metric 'epoch_loss' match these filters",
                 "train, validation", "runs='^nope$'")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        build_panel("training_curves", PanelContext(logdir=tmp_path / "empty"))
    assert_error(e, DataError, "no scalar series yet")


def test_histogram_history_defaults_to_the_first_series():
    ctx = PanelContext(logdir=LOGS)
    first = build_panel("histogram_index", ctx).iloc[0]
    fig = build_panel("histogram_history", ctx)
    assert fig.layout.title.text == f"{first.tag} ({first.run}) over training"
    assert fig.data[0].type == "heatmap" and len(fig.data[0].x) == first.steps
    tag = "digits_cnn/dense1/bias/histogram"
    assert build_panel("histogram_history", ctx, tag=tag).layout.title.text.startswith(tag)
    with pytest.raises(UsageError) as e:
        build_panel("histogram_history", ctx, run="validation")
    assert_error(e, UsageError, "No histograms for run 'validation'",
                 "train: digits_cnn/conv1/kernel/histogram", "run='validation'")


def test_histogram_history_without_histograms(tmp_path):
    (tmp_path / "h.json").write_text(json.dumps({"loss": [1.0, 0.5]}))
    with pytest.raises(DataError) as e:
        build_panel("histogram_history", PanelContext(logdir=tmp_path / "h.json"))
    assert_error(e, DataError, "no histograms", "histogram_freq")


def test_export_cli_refuses_an_unknown_metric(tmp_path, capsys):
    """Exit 2 and the valid values, no PNG of a message (`insight export`)."""
    from insight.cli.main import main

    out = tmp_path / "x.html"
    code = main(["export", "digits_cnn", "--panel", "training_curves", "--param",
                 "metric=nope", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "No metric 'nope'" in err and "epoch_loss" in err
    assert main(["export", "digits_cnn", "--panel", "histogram_history", "--out",
                 str(out)]) == 0
    assert "conv1\\u002fkernel\\u002fhistogram (train) over training" in out.read_text()


# -- how curves are drawn ---------------------------------------------------------------------

def _history(tmp_path, history: dict) -> PanelContext:
    (tmp_path / "h.json").write_text(json.dumps(history))
    return PanelContext(logdir=tmp_path / "h.json")


def test_a_one_point_series_is_visible_and_steps_are_whole(tmp_path):
    ctx = _history(tmp_path, {"loss": [0.7], "val_loss": [0.9]})
    spec = build_panel("training_curves", ctx).to_dict()
    lines = [t for t in spec["data"] if t["name"] in ("train", "validation")]
    assert lines and all("markers" in t["mode"] for t in lines)
    x = spec["layout"]["xaxis"]
    assert (x["tickmode"], x["dtick"], x["range"]) == ("linear", 1, [-0.5, 0.5])
    assert x["title"]["text"] == "epoch"
    ctx = _history(tmp_path, {"loss": [0.7, 0.5, 0.4], "val_loss": [0.9, 0.8, 0.85]})
    x = build_panel("training_curves", ctx).to_dict()["layout"]["xaxis"]
    assert (x["tickmode"], x["tick0"], x["dtick"], x["range"]) == ("linear", 0, 1, [-0.5, 2.5])


def test_long_series_are_lines_and_keep_plotlys_ticks(tmp_path):
    values = [math.exp(-i / 20) for i in range(60)]
    ctx = _history(tmp_path, {"loss": values, "val_loss": values})
    spec = build_panel("training_curves", ctx).to_dict()
    assert {t["mode"] for t in spec["data"] if t["name"] == "train"} == {"lines"}
    assert "dtick" not in spec["layout"]["xaxis"]
    x = build_panel("training_curves", PanelContext(logdir=LOGS)).to_dict()["layout"]["xaxis"]
    assert x["dtick"] == 1  # ten epochs: one tick each
    x = build_panel("training_curves", PanelContext(logdir=LOGS), x="relative").to_dict()[
        "layout"]["xaxis"]
    assert "dtick" not in x and x["title"]["text"].startswith("relative time")  # seconds


def test_log_axes_write_powers_of_ten_without_si_prefixes(tmp_path):
    ctx = _history(tmp_path, {"loss": [1e-3, 1e-8, 1e-12], "val_loss": [1e-3, 1e-7, 1e-11]})
    y = build_panel("training_curves", ctx, y_scale="log").to_dict()["layout"]["yaxis"]
    assert (y["type"], y["exponentformat"]) == ("log", "e")
    fig = build_panel("histogram_history", PanelContext(logdir=LOGS))
    assert fig.layout.yaxis.exponentformat == "e"


def test_the_best_validation_star_sits_on_the_line_drawn(tmp_path):
    val = [0.9, 0.5, 0.6, 0.55, 0.58]
    ctx = _history(tmp_path, {"loss": [1.0, 0.6, 0.5, 0.4, 0.3], "val_loss": val})
    fig = build_panel("training_curves", ctx)
    (star,) = [t for t in fig.data if t.name.startswith("best val")]
    smoothed = [t for t in fig.data if t.name == "validation"][1].y
    assert star.name == "best val: epoch 1 (raw 0.5)"  # the raw value, said to be raw
    assert star.y == (pytest.approx(smoothed[1]),) and star.y[0] != 0.5
    fig = build_panel("training_curves", ctx, smoothing="none")
    (star,) = [t for t in fig.data if t.name.startswith("best val")]
    assert star.name == "best val: epoch 1 (0.5)" and star.y == (0.5,)
