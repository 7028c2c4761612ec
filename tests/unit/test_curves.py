"""Curves: every source as one tidy frame, train/val pairing, smoothing (TensorBoard's EMA
formula), downsampling, best epoch and overfitting, the curve panels, live reading and the
ActivationLogger callback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import insight
from insight.curves.logdir import (
    COLUMNS,
    Logdir,
    best_step,
    downsample,
    metric_direction,
    overfitting,
    read_scalars,
    smooth,
    split_of,
    train_val_pairs,
)
from insight.errors import DataError, UsageError
from insight.panels import PanelContext, build_panel

from . import _events as ev
from ._errors import assert_error

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "sample_models" / "digits_cnn"


def _tensorboard_ema(values, weight):
    """TensorBoard's classicSmoothing, transcribed line by line from its TypeScript."""
    last, num_accum = 0.0, 0
    if all(v == values[0] for v in values):
        return list(values)
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        num_accum += 1
        debias = 1 - weight ** num_accum if weight != 1 else 1
        out.append(last / debias)
    return out


# -- sources ----------------------------------------------------------------------------------

def test_every_source_gives_the_same_schema():
    frames = {p: read_scalars(DIGITS / p) for p in ("logs", "history.csv", "history.json")}
    for df in frames.values():
        assert list(df.columns) == COLUMNS
    csv, js, logs = frames["history.csv"], frames["history.json"], frames["logs"]
    assert set(csv.tag) == set(js.tag) == {"accuracy", "loss", "val_accuracy", "val_loss"}
    np.testing.assert_allclose(csv[csv.tag == "val_loss"].value, js[js.tag == "val_loss"].value)
    # the TensorBoard callback saw the same training as the CSVLogger
    tb = logs[(logs.run == "validation") & (logs.tag == "epoch_loss")]
    np.testing.assert_allclose(tb.value, csv[csv.tag == "val_loss"].value, rtol=1e-6)
    assert tb.step.tolist() == list(range(10))
    assert insight.read_scalars is read_scalars


def test_csv_and_json_keep_nan_and_inf(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,loss,val_loss\n0,1.0,nan\n1,inf,0.5\n2,0.25,\n")
    df = read_scalars(tmp_path / "log.csv")
    assert df[df.tag == "loss"].value.tolist() == [1.0, math.inf, 0.25]
    assert np.isnan(df[df.tag == "val_loss"].value.to_numpy()[[0, 2]]).all()
    (tmp_path / "h.json").write_text(json.dumps({"history": {"loss": [3, None, 1]},
                                                 "epoch": [5, 6, 7]}))
    df = read_scalars(tmp_path / "h.json")
    assert df.step.tolist() == [5, 6, 7] and np.isnan(df.value[1])


def test_bad_sources_raise_clear_errors(tmp_path):
    with pytest.raises(DataError) as e:
        read_scalars(tmp_path / "missing")
    assert_error(e, DataError, "No such log file or folder")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(DataError) as e:
        read_scalars(tmp_path / "m.txt")
    assert_error(e, DataError, "not a training log", "events.out.tfevents")
    (tmp_path / "h.json").write_text('{"loss": "nope"}')
    with pytest.raises(DataError) as e:
        read_scalars(tmp_path / "h.json")
    assert_error(e, DataError, "not a Keras history")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert read_scalars(empty).empty and list(read_scalars(empty).columns) == COLUMNS


def test_train_val_pairs_in_all_three_namings():
    keys = [("history", "loss"), ("history", "val_loss"), ("exp/train", "epoch_loss"),
            ("exp/validation", "epoch_loss"), (".", "train/epoch_acc"),
            (".", "validation/epoch_acc"), ("exp/train", "lr")]
    pairs = train_val_pairs(keys).set_index(["group", "metric"])
    assert sorted(pairs.index) == [(".", "epoch_acc"), ("exp", "epoch_loss"),
                                   ("history", "loss")]
    assert pairs.loc[("exp", "epoch_loss")].tolist() == ["exp/train", "epoch_loss",
                                                          "exp/validation", "epoch_loss"]
    assert split_of("run_0", "lr") == ("run_0", "", "lr")


def test_live_logdir_reads_new_files_and_appended_bytes(tmp_path):
    ev.write(tmp_path / "a" / "events.out.tfevents.1", [ev.scalar("m", s, s) for s in range(5)])
    logs = Logdir(tmp_path)
    assert logs.refresh() == 5
    with open(tmp_path / "a" / "events.out.tfevents.1", "ab") as f:
        f.write(ev.record(ev.scalar("m", 5, 5.0)))
    ev.write(tmp_path / "b" / "events.out.tfevents.2", [ev.scalar("m", 0, 1.0)])
    assert logs.refresh() == 2  # the appended point and the new file's, nothing read twice
    assert logs.problems() == []  # no tail left unread
    assert logs.files() == 2
    df = logs.scalars()
    assert df.groupby("run", observed=True).size().to_dict() == {"a": 6, "b": 1}


# -- smoothing, downsampling, verdicts ---------------------------------------------------------

@pytest.mark.parametrize("weight", [0.0, 0.6, 0.9, 0.99])
def test_ema_matches_tensorboard(weight):
    rng = np.random.default_rng(0)
    values = rng.normal(size=200).tolist()
    values[10], values[50], values[51] = math.nan, math.inf, -math.inf
    got = smooth(np.array(values), "ema", weight=weight)
    want = _tensorboard_ema(values, weight)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_ema_known_values_and_constant_series():
    assert smooth(np.array([1.0, 0.0, 0.0]), "ema", weight=0.5).tolist() == \
        pytest.approx([1.0, 1 / 3, 1 / 7])
    assert smooth(np.full(5, 3.0), "ema", weight=0.9).tolist() == [3.0] * 5


def test_moving_average_and_gaussian():
    y = np.array([0.0, 0, 3, 0, 0])
    assert smooth(y, "moving_average", window=3).tolist() == [0, 1, 1, 1, 0]
    y = np.array([1.0, 2, np.nan, 4, 5])
    ma = smooth(y, "moving_average", window=3)
    assert np.isnan(ma[2]) and ma[1] == 1.5 and ma[3] == 4.5  # NaN skipped, kept in place
    g = smooth(np.arange(50.0), "gaussian", window=8)
    np.testing.assert_allclose(g[10:40], np.arange(10.0, 40.0))  # linear data is unchanged
    with pytest.raises(UsageError) as e:
        smooth(y, "spline")
    assert_error(e, UsageError, "Unknown smoothing method", "gaussian")


def test_downsample_keeps_extremes_and_nonfinite():
    rng = np.random.default_rng(0)
    y = rng.normal(size=100_000)
    y[123], y[77_777] = 50.0, -50.0
    y[5000] = np.nan
    keep = downsample(np.arange(len(y)), y, 1000)
    assert len(keep) <= 1001
    assert {123, 77_777, 5000} <= set(keep.tolist())


def test_best_step_and_overfitting():
    steps = np.arange(30)
    train = np.exp(-steps / 5)
    val = np.exp(-steps / 5) + 0.02 * np.maximum(steps - 12, 0) ** 1.2
    onset = overfitting(steps, train, steps, val)
    assert onset is not None and 10 <= onset["step"] <= 16 and onset["rise"] > 0.05
    assert overfitting(steps, train, steps, np.exp(-steps / 7)) is None  # still improving
    assert best_step(steps, val, "min")[0] == int(np.argmin(val))
    assert best_step(steps, -val, "max")[0] == int(np.argmin(val))
    assert metric_direction("val_sparse_categorical_accuracy") == "max"


# -- panels -----------------------------------------------------------------------------------

def test_curve_panels_on_the_sample_logdir():
    ctx = PanelContext(logdir=DIGITS / "logs")
    fig = build_panel("training_curves", ctx, metric="epoch_loss", smoothing="gaussian")
    spec = fig.to_dict()
    names = [t["name"] for t in spec["data"]]
    assert names.count("train") == 2 and names.count("validation") == 2  # raw + smoothed
    assert "best val: epoch 9 (raw 0.2053)" in names  # the raw value, starred on the line drawn
    assert "showing 20 of 20 points" in spec["layout"]["title"]["text"]
    assert spec["layout"]["meta"]["insight_panel"] == "training_curves"
    assert spec["layout"]["template"]["layout"]["font"]["family"].startswith("Liberation")
    table = build_panel("train_val_verdicts", ctx)
    assert table.set_index("metric").loc["epoch_loss", "best_val_step"] == 9
    hist = build_panel("histogram_index", ctx)
    assert len(hist) == 8 and set(hist.steps) == {10}
    for mode in ("heatmap", "ridge"):
        f = build_panel("histogram_history", ctx, run="train", mode=mode,
                        tag="digits_cnn/dense1/kernel/histogram")
        assert f.data and "dense1" in f.layout.title.text
    with pytest.raises(UsageError) as e:
        build_panel("curve_index", ctx, tags="(")
    assert_error(e, UsageError, "not a valid regular expression")
    with pytest.raises(UsageError) as e:
        build_panel("curve_index", PanelContext())
    assert_error(e, UsageError, "No logdir given")


def test_curves_panel_marks_nonfinite_and_overfitting(tmp_path):
    steps = range(40)
    train = [math.exp(-s / 6) for s in steps]
    val = [math.exp(-s / 6) + 0.01 * max(s - 15, 0) ** 1.3 for s in steps]
    val[20] = math.nan
    ev.write(tmp_path / "train" / "events.out.tfevents.1",
             [ev.scalar("epoch_loss", s, v) for s, v in zip(steps, train, strict=True)])
    ev.write(tmp_path / "validation" / "events.out.tfevents.1",
             [ev.scalar("epoch_loss", s, v) for s, v in zip(steps, val, strict=True)])
    ctx = PanelContext(logdir=tmp_path)
    spec = build_panel("training_curves", ctx, metric="epoch_loss", x="relative").to_dict()
    marker = [t for t in spec["data"] if t["name"] == "NaN/Inf"]
    assert len(marker) == 1 and marker[0]["text"] == ["NaN"]
    assert any("overfitting from epoch" in (s.get("text") or "")
               for s in spec["layout"].get("annotations", []))
    assert spec["layout"]["xaxis"]["title"]["text"].startswith("relative time")
    verdict = build_panel("train_val_verdicts", ctx).iloc[0]
    assert 12 <= verdict.overfitting_from <= 20
    status = build_panel("logdir_status", ctx)
    assert status["nonfinite"] == 1 and status["points"] == 80


# -- the callback -----------------------------------------------------------------------------

@pytest.mark.slow
def test_activation_logger_writes_summaries_that_read_back(tmp_path):
    import keras

    from insight.callbacks import LOGGED_STATS, ActivationLogger

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu",
                                                                     name="hidden"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(2, name="out")])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logger = ActivationLogger(tmp_path / "probe", x, y, examples=32)
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[logger])
    df = read_scalars(tmp_path)
    assert set(df.run) == {"probe/hidden", "probe/out"}  # shape-only Dropout skipped
    assert set(df.tag) == set(LOGGED_STATS)
    assert df.groupby(["run", "tag"], observed=True).step.apply(list).map(
        lambda s: s == [0, 1, 2]).all()
    dead = df[df.tag == "dead_fraction"].value
    assert dead.between(0, 1).all() and np.isfinite(df.value).all()
    last = df[(df.run == "probe/hidden") & (df.step == 2)].set_index("tag").value
    assert last["weight_grad_norm"] > 0 and last["mean_abs"] > 0
    with pytest.raises(UsageError) as e:
        ActivationLogger(tmp_path, x, freq=0)
    assert_error(e, UsageError, "freq must be")
    assert isinstance(df, pd.DataFrame)


def test_activation_logger_numbers_equal_activation_stats_on_the_same_batch(tmp_path):
    """What the logger writes for the last epoch is what `activation_stats` says about the
    same examples at the same weights (a flipped dead fraction was only range-checked)."""
    import keras

    from insight.callbacks import ActivationLogger

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, activation="relu", name="hidden",
                           bias_initializer=keras.initializers.Constant(-0.8)),
        keras.layers.Dense(2, name="out")])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, batch_size=32, verbose=0,
              callbacks=[ActivationLogger(tmp_path / "probe", x, y, examples=32)])
    df = read_scalars(tmp_path)
    last = df[(df.run == "probe/hidden") & (df.step == 1)].set_index("tag").value
    table = insight.activation_stats(model, x[:32]).table.set_index("layer")
    dead = table.loc["hidden", "dead_fraction"]
    assert 0 < dead != 0.5  # some units dead, not half: an inverted fraction would show
    assert last["dead_fraction"] == pytest.approx(dead, abs=1e-6)
    assert last["zero_fraction"] == pytest.approx(table.loc["hidden", "zero_fraction"],
                                                  abs=1e-6)


def _logger_model(seed):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16, name="hidden"),
        keras.layers.Activation("relu", name="act"), keras.layers.Dense(2, name="out")])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_activation_logger_mean_and_std_are_numpy_s(tmp_path):
    """mean_abs and std of each layer's output, as numpy computes them from the layers run one
    by one; a layer without weights logs no weight_grad_norm (the gradient norms are pinned
    against Keras' in test_gradients_keras, zero and dead fractions above)."""
    from insight.callbacks import LOGGED_STATS, ActivationLogger

    model = _logger_model(2)
    x = np.random.default_rng(2).normal(size=(40, 6)).astype("float32")
    logger = ActivationLogger(tmp_path, x, (x[:, 0] > 0).astype("int64"), examples=32)
    logger.set_model(model)
    values = logger.log(7)
    assert logger.paths == ["hidden", "act", "out"]
    out = x[:32]
    for row, layer in zip(values, model.layers, strict=True):
        out = np.asarray(layer(out))
        assert row[LOGGED_STATS.index("mean_abs")] == pytest.approx(np.abs(out).mean(), rel=1e-5)
        assert row[LOGGED_STATS.index("std")] == pytest.approx(out.std(), rel=1e-5)
    df = read_scalars(tmp_path)
    assert set(df[df.run == "act"].tag) == set(LOGGED_STATS) - {"weight_grad_norm"}
    assert df[(df.run == "out") & (df.tag == "std")].value.item() == pytest.approx(
        values[2][LOGGED_STATS.index("std")])


def test_activation_logger_traced_in_the_background_logs_what_the_foreground_does(tmp_path):
    """A `background=True` logger traces while the first epoch trains (its function is ready
    at the first log) and logs, epoch after epoch, exactly what the default (tracing on its
    first log) logs."""
    from insight.callbacks import ActivationLogger

    class Seen(ActivationLogger):
        def log(self, step):
            self.ready = [*getattr(self, "ready", []), self._fn is not None]
            return super().log(step)

    model = _logger_model(3)
    x = np.random.default_rng(3).normal(size=(192, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    back, fore = Seen(tmp_path / "b", x, y, background=True), Seen(tmp_path / "f", x, y)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[back, fore])
    assert back.ready == [True] * 3 and fore.ready == [False, True, True]
    b, f = read_scalars(tmp_path / "b"), read_scalars(tmp_path / "f")
    assert len(b) == len(f) == 3 * 17 and b.value.tolist() == f.value.tolist()
