"""Runs with hyperparameters: a real hp.KerasCallback logdir, hparams.json runs, the sample
sweep, and the runs panels (sorting, filtering, the parallel-coordinates figure)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from insight.curves.hparams import read_hparams, run_pattern
from insight.errors import DataError, UsageError
from insight.model.samples import get_sample
from insight.panels import PanelContext, build_panel
from insight.panels.runs import runs_folder
from insight.patterns import user_regex
from unit._events import file_version, scalar, write

SAMPLE = get_sample("digits_cnn")
SWEEP = SAMPLE.model.parent / "sweep"


@pytest.fixture(scope="module")
def keras_logdir(tmp_path_factory) -> Path:
    """Two runs of a tiny model, each written by TensorBoard + hp.KerasCallback, under one
    experiment config (as TensorBoard's hparams tutorial does)."""
    import keras
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    root = tmp_path_factory.mktemp("hp")
    units = hp.HParam("units", hp.Discrete([2, 8]))
    rate = hp.HParam("lr", hp.RealInterval(1e-3, 1.0))
    with tf.summary.create_file_writer(str(root)).as_default():
        hp.hparams_config(hparams=[units, rate], metrics=[
            hp.Metric("epoch_loss", group="validation", display_name="val loss"),
            hp.Metric("epoch_loss", group="train")])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    for run, (u, lr) in {"a": (2, 0.5), "b": (8, 0.01)}.items():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(u, "relu"),
                                  keras.layers.Dense(1, "sigmoid")])
        model.compile(keras.optimizers.SGD(lr), "binary_crossentropy")
        logdir = str(root / run)
        model.fit(x, y, validation_split=0.25, epochs=3, verbose=0, callbacks=[
            keras.callbacks.TensorBoard(logdir, write_graph=False, profile_batch=0),
            hp.KerasCallback(logdir, {units: u, rate: lr}, trial_id=run)])
    return root


def test_hparams_of_a_keras_callback_logdir(keras_logdir):
    runs = read_hparams(keras_logdir)
    t = runs.table.set_index("run")
    assert list(t.index) == ["a", "b"] and set(t.source) == {"hparams plugin"}
    assert runs.hparams == ["units", "lr"]
    assert t.loc["a", "units"] == 2 and t.loc["b", "units"] == 8  # ints, not 2.0
    assert t.loc["a", "lr"] == pytest.approx(0.5) and t.loc["b", "lr"] == pytest.approx(0.01)
    assert runs.metrics == ["validation/epoch_loss", "train/epoch_loss"]
    assert runs.directions["validation/epoch_loss"] == "min"
    assert runs.display == {"validation/epoch_loss": "val loss"}
    from insight.curves.logdir import read_scalars

    scalars = read_scalars(keras_logdir)
    val = scalars[(scalars.run == "b/validation") & (scalars.tag == "epoch_loss")]
    assert t.loc["b", "validation/epoch_loss (final)"] == pytest.approx(
        val.sort_values("step").value.iloc[-1])
    assert t.loc["b", "validation/epoch_loss (best)"] == pytest.approx(val.value.min())


def test_hparams_json_runs_and_a_model_config_ignored(tmp_path):
    for run, conf in {"r1": {"lr": 0.1, "opt": {"name": "adam", "beta": 0.9}},
                      "r2": {"lr": 0.01, "opt": {"name": "sgd"}, "tags": ["x"]}}.items():
        (tmp_path / run).mkdir()
        (tmp_path / run / "hparams.json").write_text(json.dumps(conf))
        (tmp_path / run / "validation").mkdir()
        write(tmp_path / run / "validation" / "events.out.tfevents.1.v2",
              [file_version()] + [scalar("epoch_accuracy", i, v)
                                  for i, v in enumerate((0.5, 0.8, 0.7))])
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(
        {"class_name": "Sequential", "config": {"layers": []}}))
    runs = read_hparams(tmp_path)
    t = runs.table.set_index("run")
    assert list(t.index) == ["r1", "r2"] and set(t.source) == {"hparams.json"}
    assert runs.hparams == ["lr", "opt.name", "opt.beta"]
    assert t.loc["r2", "opt.name"] == "sgd" and np.isnan(t.loc["r2", "opt.beta"])
    assert t.loc["r1", "validation/epoch_accuracy (best)"] == pytest.approx(0.8)
    assert t.loc["r1", "validation/epoch_accuracy (final)"] == pytest.approx(0.7)


def test_no_runs_and_no_folder(tmp_path):
    assert read_hparams(tmp_path).empty
    with pytest.raises(DataError, match="logdir folder") as err:
        read_hparams(tmp_path / "missing")
    assert "Received: logdir=" in str(err.value)


def test_sample_sweep_and_where_the_page_finds_it():
    runs = read_hparams(SWEEP)
    assert list(runs.table.run) == ["run-1", "run-2", "run-3", "run-4"]
    assert runs.hparams == ["learning_rate", "dense_units", "optimizer"]
    assert runs_folder(SAMPLE.logdir, SAMPLE.model) == SWEEP  # logs/ has no hparams
    assert runs_folder(SWEEP, None) == SWEEP
    assert runs_folder(SAMPLE.logdir, None) is None


def test_run_pattern_selects_one_session_and_its_subfolders():
    regex = user_regex(run_pattern("run-1"), "runs")
    assert [r for r in ("run-1", "run-1/train", "run-1/validation", "run-10/train", "run-2")
            if regex.search(r)] == ["run-1", "run-1/train", "run-1/validation"]


def test_runs_table_sorted_best_first_and_filtered():
    ctx = PanelContext(logdir=SWEEP)
    table = build_panel("runs_table", ctx)
    col = "validation/epoch_accuracy (best)"
    assert table[col].is_monotonic_decreasing and table[col].notna().all()
    by_loss = build_panel("runs_table", ctx, sort="validation/epoch_loss (best)")
    assert by_loss["validation/epoch_loss (best)"].is_monotonic_increasing
    adam = build_panel("runs_table", ctx, filter="optimizer=adam")
    assert sorted(adam.run) == ["run-1", "run-2", "run-3"]
    with pytest.raises(UsageError, match="No such metric column") as err:
        build_panel("runs_table", ctx, sort="accuracy")
    assert "validation/epoch_loss (best)" in str(err.value)


def test_parallel_coordinates_coloured_by_the_metric():
    fig = build_panel("runs_parallel", PanelContext(logdir=SWEEP),
                      color="validation/epoch_loss (final)")
    trace = fig.data[0]
    assert trace.type == "parcoords"
    labels = [d.label for d in trace.dimensions]
    assert labels == ["learning_rate (log)", "dense_units", "optimizer", "val loss (final)"]
    opt = trace.dimensions[2]
    assert list(opt.ticktext) == ["adam", "sgd"] and list(opt.values) == [0, 0, 0, 1]
    np.testing.assert_allclose(trace.dimensions[0].values, np.log10([1e-3, 3e-3, 1e-2, 3e-2]))
    assert list(trace.line.color) == list(trace.dimensions[-1].values)
    assert trace.line.reversescale is True  # a loss: low is good
    assert fig.layout.meta["insight_panel"] == "runs_parallel"


def test_panels_find_the_sweep_beside_the_model_as_the_page_does():
    """A deep link or an export of the sample (its logdir has no hparams) shows the runs the
    Runs page shows."""
    from insight.model.preflight import preflight

    ctx = PanelContext(preflight=preflight(SAMPLE.model), logdir=SAMPLE.logdir)
    assert sorted(build_panel("runs_table", ctx).run) == ["run-1", "run-2", "run-3", "run-4"]
    with pytest.raises(DataError, match="records hyperparameters"):
        build_panel("runs_parallel", PanelContext(logdir=SAMPLE.logdir))
