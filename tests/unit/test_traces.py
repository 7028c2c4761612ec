"""Profiles: capture with step markers, discovery, xprof conversion, tables, timeline merging,
and the messages for bad profiles (library and CLI). One real capture is shared."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insight.errors import DataError, UsageError
from insight.panels import PanelContext, build_panel
from insight.profiler.capture import capture_profile, find_profiles, get_profile, tool_data
from insight.profiler.tables import (
    Trace,
    framework_ops,
    layer_names,
    layer_of,
    overview_summary,
    step_breakdown,
    trace_events,
)
from insight.profiler.timeline import step_window, timeline_bars

from ._errors import assert_error

SAMPLE_LOGS = Path(__file__).resolve().parents[2] / "sample_models" / "digits_cnn" / "logs"


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def captured(tmp_path_factory, load_sample):
    """Two marked inference steps of digits_cnn, profiled once for the module."""
    from insight.data import dataset_for

    loaded = load_sample("digits_cnn")
    logdir = tmp_path_factory.mktemp("profile_logdir")
    run = capture_profile(loaded, dataset_for(loaded), logdir, steps=2, warmup=1,
                          batch_size=16)
    return loaded, logdir, run


def _ctx(loaded, logdir) -> PanelContext:
    return PanelContext(loaded=loaded, logdir=Path(logdir))


def test_capture_writes_the_standard_layout_with_steps(captured):
    _, logdir, run = captured
    (host,) = run.hosts
    assert host.name.endswith(".xplane.pb") and host.stat().st_size > 0
    assert host.parent.parent == Path(logdir).resolve() / "plugins" / "profile"
    assert [r.folder for r in find_profiles(logdir)] == [run.folder]
    steps = step_breakdown(tool_data(run, "overview_page"))
    assert steps["step"].tolist() == ["predict 0", "predict 1"]
    assert (steps["step_time_ms"] > 0).all()
    assert not overview_summary(tool_data(run, "overview_page"))["no_step_markers"]


def test_conversion_leaves_the_logdir_untouched(captured):
    _, _, run = captured
    before = sorted(p.name for p in run.folder.iterdir())
    tool_data(run, "framework_op_stats")
    assert sorted(p.name for p in run.folder.iterdir()) == before


def test_timeline_holds_the_models_ops_by_layer(captured):
    loaded, logdir, run = captured
    trace = trace_events(tool_data(run, "trace_viewer"), layer_names(loaded=loaded))
    ev = trace.events
    # oneDNN builds (CPUs with AVX-512) name the kernels _MklNativeFusedConv2D, others
    # _FusedConv2D
    conv = ev[ev["name"].str.endswith("FusedConv2D")]
    assert set(conv["layer"]) == {"conv1", "conv2"}
    assert "dense1" in set(ev.loc[ev["name"].str.endswith("FusedMatMul"), "layer"])
    assert trace.steps["step"].tolist() == [0, 1]
    fig = build_panel("trace_timeline", _ctx(loaded, logdir), run=run.label, step=1)
    names = {row[0] for row in fig.data[0].customdata}
    layers = {row[2] for row in fig.data[0].customdata}
    assert all(any(n.endswith(op) for n in names) for op in ("FusedConv2D", "FusedMatMul"))
    assert {"conv1 (forward)", "conv2 (forward)"} <= layers
    lo, hi = fig.layout.meta["window_us"]
    assert (lo, hi) == step_window(trace, 1)


def test_top_ops_tables_and_treemap(captured):
    loaded, logdir, run = captured
    ctx = _ctx(loaded, logdir)
    ops = build_panel("top_ops", ctx, run=run.label, top=5)
    assert len(ops) == 5 and ops["self_time_us"].is_monotonic_decreasing
    assert ops.iloc[0]["layer"] in {"conv1", "conv2", "pool1", "dense1"}
    hlo = build_panel("top_ops", ctx, run=run.label, level="hlo")
    assert hlo.empty and hlo.attrs["source"] == "none"  # no XLA without --xla
    tree = build_panel("top_ops_treemap", ctx, run=run.label)
    assert "conv1" in tree.data[0].labels


def test_sample_profile_without_step_markers_gets_inferred_steps():
    """The bundled sample was profiled with keras.callbacks.TensorBoard(profile_batch=...):
    xprof counts no step, its three "Profiled batch" marks are the steps."""
    from insight.model.preflight import preflight

    pf = preflight(SAMPLE_LOGS.parent / "model.keras")
    ctx = PanelContext(preflight=pf, logdir=SAMPLE_LOGS)
    card = build_panel("profile_card", ctx)
    assert card["no_step_markers"]  # xprof's own view
    assert card["steps"] == 3 and card["steps_source"] == "inferred"
    assert card["no_steps_reason"] == "" and "Steps inferred" in card["steps_note"]
    assert card["xprof_command"].startswith("xprof server --logdir ")
    fig = build_panel("trace_timeline", ctx)
    assert fig.layout.meta["events"] == card["events"] > 1000
    assert "merged" in fig.layout.title.text  # the whole trace is wider than its pixels
    steps = build_panel("step_breakdown", ctx)
    assert "3 steps inferred from Keras' \"Profiled batch\" marks" in steps.layout.title.text
    assert {t.name for t in steps.data} >= {"Input", "Host compute", "All others"}
    assert list(steps.data[0].x) == ["Profiled batch 1", "Profiled batch 2", "Profiled batch 3"]
    total = sum(np.asarray(t.y, dtype=float) for t in steps.data)
    assert card["step_ms_mean"] == pytest.approx(total.mean())
    # ticks like "5e-05", never plotly's SI prefixes ("50µ" next to "time (ms)")
    for f in (steps, fig):
        assert f.layout.xaxis.exponentformat == f.layout.yaxis.exponentformat == "e"


def test_marked_steps_keep_xprofs_breakdown(captured):
    """A profile with real step markers (insight.capture_profile) is xprof's, unchanged."""
    from insight.profiler.breakdown import profile_steps

    loaded, logdir, run = captured
    overview = tool_data(run, "overview_page")
    trace = trace_events(tool_data(run, "trace_viewer"), layer_names(loaded=loaded))
    steps = profile_steps(overview, trace)
    pd.testing.assert_frame_equal(steps, step_breakdown(overview))
    assert steps.attrs["source"] == "xprof" and steps.attrs["inferred_from"] == ""
    assert trace.step_source == "marked"
    ctx = _ctx(loaded, logdir)
    card = build_panel("profile_card", ctx, run=run.label)
    summary = overview_summary(overview)
    assert card["steps_source"] == "xprof" and card["steps_note"] == ""
    assert (card["steps"], card["step_ms_mean"]) == (summary["steps"], summary["step_ms_mean"])
    fig = build_panel("step_breakdown", ctx, run=run.label)
    assert "(xprof overview)" in fig.layout.title.text and "inferred" not in \
        fig.layout.title.text
    assert fig.layout.meta["steps_source"] == "xprof"
    assert list(fig.data[0].x) == ["predict 0", "predict 1"]


def test_cli_summary_of_marked_steps(run_python, captured):
    _, logdir, _ = captured
    proc = run_python("-m", "insight.cli", "profile", "--logdir", str(logdir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "steps: 2, mean " in proc.stdout and "inferred" not in proc.stdout
    assert "TensorFlow ops by self time:" in proc.stdout


def test_merging_keeps_every_event_reachable():
    n = 50_000
    rng = np.random.default_rng(0)
    ts = np.sort(rng.uniform(0, 1e6, n))
    ev = pd.DataFrame({"thread": "t", "lane": 0, "row": 0, "ts": ts, "dur": 0.5,
                       "name": [f"op{i}" for i in range(n)], "op": "", "layer": "",
                       "phase": "", "hlo_module": ""})
    trace = Trace(ev, ["t"], [("t", 0)], pd.DataFrame(columns=["step", "name", "start", "end"]),
                  (0.0, 1e6 + 1))
    whole = timeline_bars(trace, width_px=1000)
    assert len(whole) <= 1000 and whole.attrs["merged_events"] == n == whole["count"].sum()
    i = 12_345
    near = timeline_bars(trace, ts[i] - 2, ts[i] + 2, width_px=1000)
    assert f"op{i}" in set(near.loc[near["count"] == 1, "name"])


def test_layer_of_scopes():
    layers = {"conv1", "dense", "inner"}
    assert layer_of("StatefulPartitionedCall/m_1/conv1_1/Relu", layers) == ("conv1", "forward")
    assert layer_of("gradient_tape/m/inner_1/dense_2/MatMul", layers) == ("dense", "backward")
    assert layer_of("StatefulPartitionedCall/adam/Sub_23", layers) == ("", "optimizer")
    assert layer_of("Iterator::Root::Prefetch", layers) == ("", "")


def test_corrupt_profile_message(tmp_path, captured):
    folder = tmp_path / "plugins" / "profile" / "r1"
    folder.mkdir(parents=True)
    data = captured[2].hosts[0].read_bytes()
    (folder / "h.xplane.pb").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as exc:
        tool_data(get_profile(tmp_path), "overview_page")
    assert_error(exc, DataError, "h.xplane.pb is not a profile xprof can read", "corrupt")


def test_empty_file_and_empty_folder_messages(tmp_path):
    folder = tmp_path / "plugins" / "profile" / "r1"
    folder.mkdir(parents=True)
    with pytest.raises(DataError) as exc:
        get_profile(tmp_path)
    assert_error(exc, DataError, "No profile under", "insight profile MODEL")
    (folder / "h.xplane.pb").write_bytes(b"")
    with pytest.raises(DataError) as exc:
        tool_data(get_profile(tmp_path), "trace_viewer")
    assert_error(exc, DataError, "is empty (0 bytes)")
    with pytest.raises(UsageError) as exc:
        get_profile(tmp_path, "nope")
    assert_error(exc, UsageError, "No profile run 'nope'", "r1")
    with pytest.raises(UsageError) as exc:
        find_profiles(tmp_path / "missing")
    assert_error(exc, UsageError, "The logdir does not exist")


def test_training_capture_needs_labels(captured):
    from insight.data import Dataset

    loaded, logdir, _ = captured
    with pytest.raises(UsageError) as exc:
        capture_profile(loaded, Dataset(x=np.zeros((4, 8, 8, 1), "float32")), logdir,
                        train=True)
    assert_error(exc, UsageError, "Training steps need labels")


def test_framework_ops_drop_idle():
    table = {"cols": [{"id": c} for c in ("type", "operation", "host_or_device",
                                          "occurrences", "total_self_time", "total_time")],
             "rows": [{"c": [{"v": v} for v in row]} for row in
                      (("IDLE", "IDLE", "Host", 0, 50.0, 50.0),
                       ("MatMul", "m/dense_1/MatMul", "Host", 2, 30.0, 30.0),
                       ("AddV2", "m/dense_1/BiasAdd", "Host", 2, 10.0, 10.0))]}
    ops = framework_ops([table], {"dense"})
    assert ops["type"].tolist() == ["MatMul", "AddV2"]
    assert ops["self_time_percent"].tolist() == [75.0, 25.0]
    assert set(ops["layer"]) == {"dense"}


def _one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


def test_cli_bad_profiles_one_line(run_python, tmp_path, captured):
    empty = tmp_path / "empty" / "plugins" / "profile" / "r"
    empty.mkdir(parents=True)
    proc = run_python("-m", "insight.cli", "profile", "--logdir", str(tmp_path / "empty"))
    assert "No profile under" in _one_error_line(proc)
    bad = tmp_path / "bad" / "plugins" / "profile" / "r"
    bad.mkdir(parents=True)
    shutil.copy(captured[2].hosts[0], bad / "h.xplane.pb")
    (bad / "h.xplane.pb").write_bytes((bad / "h.xplane.pb").read_bytes()[:500])
    proc = run_python("-m", "insight.cli", "profile", "--logdir", str(tmp_path / "bad"))
    assert "corrupt or truncated" in _one_error_line(proc)


def test_training_labels_per_output():
    from insight.profiler.steps import labels_per_output

    batch = {"y_digit": np.arange(3), "y_is_even": np.ones(3)}
    pick = labels_per_output(batch, ["digit", "is_even"])
    assert [a.tolist() for a in pick(batch)] == [[0, 1, 2], [1.0, 1.0, 1.0]]
    with pytest.raises(UsageError) as exc:
        labels_per_output(np.arange(3), ["digit", "is_even"])
    assert_error(exc, UsageError, "labels for each of the model's 2 outputs")
    with pytest.raises(UsageError) as exc:
        labels_per_output({"y_digit": np.arange(3)}, ["digit", "is_even"])
    assert_error(exc, UsageError, "No labels for the output 'is_even'")


def test_training_capture_uses_the_files_compiled_loss(tmp_path, monkeypatch):
    """`insight profile --train` trains with the loss the file was compiled with (here MAE),
    not one inferred from the labels (MSE for float targets)."""
    import keras

    import insight
    from insight.data import Dataset

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="out")])
    model.compile(loss="mae", optimizer="sgd")
    path = tmp_path / "regressor.keras"
    model.save(path)
    compiled = []
    original = keras.Model.compile

    def compile_(self, *args, **kwargs):
        compiled.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", compile_)
    rng = np.random.default_rng(0)
    data = Dataset(x=rng.random((16, 3), dtype=np.float32),
                   y=rng.random((16, 1), dtype=np.float32), name="toy")
    capture_profile(insight.load_model(path), data, tmp_path / "logs", steps=1, warmup=1,
                    batch_size=8, train=True)
    (loss,) = [compiled[0]["loss"][k] for k in compiled[0]["loss"]] \
        if isinstance(compiled[0]["loss"], dict) else [compiled[0]["loss"]]
    assert getattr(loss, "name", str(loss)) in ("mean_absolute_error", "mae")
