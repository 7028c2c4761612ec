"""Steps of profiles without xprof step markers: a fresh `keras.callbacks.TensorBoard(
profile_batch=2)` profile (the most common source: Keras 3 marks its batches "Profiled batch"
without the root flag xprof needs, so xprof counts no step), the same profile without those
marks (steps from the calls of Keras' train function), and the split of a step's time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insight.panels import PanelContext, build_panel
from insight.profiler.breakdown import inferred_from, profile_steps, timeline_breakdown
from insight.profiler.capture import find_profiles, tool_data
from insight.profiler.tables import (
    BREAKDOWN,
    Trace,
    function_steps,
    overview_summary,
    step_breakdown,
    trace_events,
)

CATEGORIES = list(BREAKDOWN.values())


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def keras_profile(tmp_path_factory):
    """A tiny CNN fitted for 8 batches with TensorBoard(profile_batch=2): one profiled batch."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(name="flatten"),
                              keras.layers.Dense(3, name="dense")], name="tiny")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, 64)
    logdir = tmp_path_factory.mktemp("keras_fit_logs")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(str(logdir), profile_batch=2)])
    (run,) = find_profiles(logdir)
    return logdir, run


def test_xprof_counts_no_step_in_a_keras_profile(keras_profile):
    """The premise: without root step markers xprof's overview has no steps at all."""
    _, run = keras_profile
    overview = tool_data(run, "overview_page")
    assert step_breakdown(overview).empty
    assert overview_summary(overview)["no_step_markers"]


def test_keras_profile_steps_are_inferred_and_split(keras_profile):
    _, run = keras_profile
    trace = trace_events(tool_data(run, "trace_viewer"), {"conv", "flatten", "dense"})
    # Keras' own mark, numbered by the batch's index in its epoch (the second: 1)
    assert trace.steps[["step", "name"]].values.tolist() == [[1, "Profiled batch"]]
    assert trace.step_source == "marked"
    steps = profile_steps(tool_data(run, "overview_page"), trace)
    assert steps.attrs == {"source": "inferred",
                           "inferred_from": "Keras' \"Profiled batch\" marks"}
    assert steps["step"].tolist() == ["Profiled batch 1"]
    (row,) = steps.to_dict("records")
    assert row["step_time_ms"] > 0
    assert row["Host compute"] > 0  # the conv, matmul and optimizer kernels ran in it
    assert row["Input"] > 0  # the batch came through IteratorGetNext
    assert sum(row[c] for c in CATEGORIES) == pytest.approx(row["step_time_ms"])
    assert row["Device compute"] == row["Compilation"] == 0.0  # CPU, no XLA


def test_without_keras_marks_the_train_function_calls_are_the_steps(keras_profile):
    _, run = keras_profile
    raw = tool_data(run, "trace_viewer")
    unmarked = {"traceEvents": [e for e in raw["traceEvents"]
                                if e.get("name") != "Profiled batch"]}
    trace = trace_events(unmarked)
    assert trace.step_source == "calls"
    (name,) = set(trace.steps["name"])
    assert name in ("multi_step_on_iterator", "one_step_on_iterator", "one_step_on_data")
    assert len(trace.steps) == 1 and trace.steps["step"].tolist() == [0]
    steps = profile_steps(tool_data(run, "overview_page"), trace)
    assert steps.attrs["source"] == "inferred"
    assert steps.attrs["inferred_from"] == f"the calls of {name}"
    assert (steps["Host compute"] > 0).all()


def test_panels_say_the_steps_were_inferred(keras_profile):
    logdir, run = keras_profile
    ctx = PanelContext(logdir=Path(logdir))
    card = build_panel("profile_card", ctx, run=run.label)
    assert card["steps"] == 1 and card["steps_source"] == "inferred"
    assert card["step_ms_mean"] > 0 and card["no_step_markers"]  # xprof's view, kept
    assert card["steps_note"].startswith("Steps inferred from Keras' \"Profiled batch\"")
    assert card["no_steps_reason"] == ""
    fig = build_panel("step_breakdown", ctx, run=run.label)
    assert fig.layout.meta["steps_source"] == "inferred"
    assert "1 step inferred from Keras' \"Profiled batch\" marks" in fig.layout.title.text
    assert {t.name for t in fig.data} >= {"Host compute", "All others"}
    assert all(list(t.x) == ["Profiled batch 1"] for t in fig.data)
    assert card["step_markers"] == [(1, "Profiled batch")]  # what the timeline offers
    timeline = build_panel("trace_timeline", ctx, run=run.label, step=1)
    assert "step 1" in timeline.layout.title.text


def test_cli_summary_prints_inferred_steps_and_the_ops_it_promises(run_python, keras_profile):
    logdir, _ = keras_profile
    proc = run_python("-m", "insight.cli", "profile", "--logdir", str(logdir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "steps: 1 inferred from Keras' \"Profiled batch\" marks" in out
    assert "mean step: " in out and "Host compute" in out
    lines = out.splitlines()
    header = next(i for i, ln in enumerate(lines) if "TensorFlow ops by self time:" in ln)
    assert lines[header].startswith("top 5 of ")
    assert all("%" in ln for ln in lines[header + 1:header + 6])  # the five ops
    assert "below" not in out


# -- the split of a step, on hand-made timelines -----------------------------------------------

def _trace(rows, steps, source="marked") -> Trace:
    ev = pd.DataFrame(rows, columns=["thread", "ts", "dur", "name", "op"])
    ev["lane"] = 0
    return Trace(ev, [], [], pd.DataFrame(steps, columns=["step", "name", "start", "end"]),
                 (0.0, float((ev["ts"] + ev["dur"]).max())), step_source=source)


def test_each_moment_counts_once_in_the_first_category_covering_it():
    trace = _trace([
        ("python", 0.0, 1000.0, "Profiled batch", ""),
        ("tf_data_iterator_get_next", 100.0, 200.0, "IteratorGetNextOp::DoCompute", ""),
        ("tf_Compute", 250.0, 350.0, "Conv2D", "m/conv/Conv2D"),     # 50 us under Input
        ("tf_Compute #2", 500.0, 100.0, "MatMul", "m/dense/MatMul"),  # inside the next one
        ("tf_Compute", 450.0, 300.0, "AddV2", "m/dense/Add"),
        ("tf_data_private_threadpool", 0.0, 1000.0, "GatherV2", "GatherV2"),  # tf.data: not
        ("tf_Compute", 1500.0, 100.0, "Conv2D", "m/conv/Conv2D"),   # outside the step
    ], [(3, "Profiled batch", 0.0, 1000.0)])
    (row,) = timeline_breakdown(trace).to_dict("records")
    assert row["step"] == "Profiled batch 3"
    assert row["Input"] == pytest.approx(0.2)
    assert row["Host compute"] == pytest.approx(0.45)  # 250..750, less Input's 250..300
    assert row["All others"] == pytest.approx(0.35)
    assert row["step_time_ms"] == pytest.approx(1.0)


def test_kernels_on_a_device_count_as_device_compute():
    trace = _trace([("tf_Compute", 0.0, 400.0, "Conv2D", "m/conv/Conv2D"),
                    ("/device:GPU:0 Stream #1", 100.0, 200.0, "volta_gemm", "m/conv/Conv2D")],
                   [(0, "train", 0.0, 500.0)])
    trace.events["kernel"] = trace.events["thread"].str.startswith("/device:")
    (row,) = timeline_breakdown(trace).to_dict("records")
    assert (row["Device compute"], row["Host compute"], row["All others"]) == \
        pytest.approx((0.2, 0.2, 0.1))


def test_a_profile_with_nothing_to_infer_has_no_steps():
    trace = _trace([("python", 0.0, 10.0, "convert_to_tensor", "")],
                   [], source="")
    steps = profile_steps([], trace)
    assert steps.empty and steps.attrs == {"source": "", "inferred_from": ""}
    assert list(steps.columns) == ["step", *CATEGORIES, "step_time_ms"]
    assert inferred_from(trace) == ""


def test_function_steps_take_the_outermost_most_called_function():
    ev = pd.DataFrame({
        "thread": ["python"] * 5 + ["tf_Compute"],
        "lane": [0, 1, 0, 1, 0, 0],
        "ts": [0.0, 10.0, 100.0, 110.0, 300.0, 0.0],
        "dur": [50.0, 20.0, 50.0, 20.0, 5.0, 400.0],
        "name": ["multi_step_on_iterator",
                 "EagerLocalExecute: __inference_multi_step_on_iterator_870",
                 "multi_step_on_iterator",
                 "EagerLocalExecute: __inference_multi_step_on_iterator_870",
                 "__inference_helper_12", "__inference_one_step_on_data_9"]})
    steps = function_steps(ev)
    assert steps["name"].tolist() == ["multi_step_on_iterator"] * 2
    assert steps[["step", "start", "end"]].values.tolist() == [[0, 0.0, 50.0],
                                                               [1, 100.0, 150.0]]
    # any tf.function, but only when called more than once
    other = pd.DataFrame({"thread": ["python"] * 2, "lane": [0, 0], "ts": [0.0, 100.0],
                          "dur": [10.0, 10.0],
                          "name": ["EagerLocalExecute: __inference_f_3"] * 2})
    assert function_steps(other)["name"].tolist() == ["f", "f"]
    assert function_steps(other.head(1)).empty
