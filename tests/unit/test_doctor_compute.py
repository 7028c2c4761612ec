"""The doctor's compute checks: a profile's steps (unmarked, or waiting for input) and XLA
slower than tf.function, and the Profiler and Compiler pages reading them from the doctor."""

from __future__ import annotations

import pandas as pd
import pytest

from insight.doctor import Evidence, get_check, run_checks
from insight.doctor.checks_compute import INPUT_SHARE, XLA_SLOWER


def _run(check: str, ev: Evidence):
    return run_checks(ev, checks=[get_check(check)])


def _times(graph: float, xla: float) -> pd.DataFrame:
    return pd.DataFrame({"mode": ["eager", "graph", "xla"], "median_ms": [9.0, graph, xla]})


@pytest.mark.parametrize(("graph", "xla", "found"), [
    (2.0, 5.0, True), (2.0, 2.0 * XLA_SLOWER * 0.99, False), (2.0, 1.0, False)])
def test_xla_slower_only_beyond_noise(load_sample, graph, xla, found):
    report = _run("xla_slower", Evidence(load_sample("digits_cnn"),
                                         xla=lambda: _times(graph, xla)))
    assert [f.check for f in report.findings] == (["xla_slower"] if found else [])
    if found:
        f = report.findings[0]
        assert f.evidence["ratio"] == pytest.approx(2.5) and f.page == "compiler"
        assert "2.5× slower" in f.explanation


def test_xla_not_timed_unless_asked(load_sample):
    report = _run("xla_slower", Evidence(load_sample("digits_cnn")))
    assert report.checked == [] and "--xla" in report.skipped[0]["reason"]


def _steps(input_ms: list[float], step_ms: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame({"step": [f"s{i}" for i in range(len(step_ms))], "Input": input_ms,
                          "step_time_ms": step_ms})
    frame.attrs.update(source="xprof", inferred_from="")
    return frame


class _Run:
    label = "train/run"


@pytest.mark.parametrize(("share", "found"), [(INPUT_SHARE + 0.1, True), (INPUT_SHARE, False)])
def test_input_bound_above_half_the_step(share, found):
    ev = Evidence(None)
    # The first step's one-off costs are left out: a slow first input does not count.
    ev.__dict__["profile"] = (_Run(), _steps([90.0, 10 * share, 10 * share],
                                             [100.0, 10.0, 10.0]))
    report = _run("input_bound", ev)
    assert [f.severity for f in report.findings] == (["warning"] if found else [])


def test_profile_steps_inferred_and_missing():
    ev = Evidence(None)
    frame = _steps([1.0], [4.0])
    frame.attrs.update(source="inferred", inferred_from="the calls of train_function")
    ev.__dict__["profile"] = (_Run(), frame)
    (f,) = _run("profile_steps", ev).findings
    assert f.explanation.startswith("Steps inferred from the calls of train_function")
    empty, none = Evidence(None), _steps([], [])
    none.attrs.update(source="", inferred_from="")  # as `profile_steps` says "no steps"
    empty.__dict__["profile"] = (_Run(), none)
    (g,) = _run("profile_steps", empty).findings
    assert g.evidence["steps"] == 0 and g.explanation.startswith("No steps in this profile")


def test_big_profiles_are_read_only_when_asked(samples_dir, monkeypatch):
    import insight.doctor.evidence as evidence

    monkeypatch.setattr(evidence, "PROFILE_BYTES", 10)
    logs = samples_dir / "digits_cnn" / "logs"
    skipped = _run("profile_steps", Evidence(None, None, logs)).skipped
    assert "slow to convert" in skipped[0]["reason"] and "--profile" in skipped[0]["reason"]
    assert _run("profile_steps", Evidence(None, None, logs, profile=True)).checked == \
        ["profile_steps"]


def test_compiler_step_time_verdict_is_the_doctors(load_sample, monkeypatch):
    """The Compiler page's slower-XLA sentence is the doctor's finding."""
    import insight.doctor.checks_compute as checks_compute
    from insight.panels import PanelContext, build_panel

    monkeypatch.setattr(checks_compute, "XLA_SLOWER", 0.0)  # any timing is "slower"
    fig = build_panel("xla_step_time", PanelContext(load_sample("digits_cnn")))
    assert fig.layout.meta["verdict"].startswith("**XLA is ")
    monkeypatch.setattr(checks_compute, "XLA_SLOWER", 1e9)  # never
    fig = build_panel("xla_step_time", PanelContext(load_sample("digits_cnn")))
    assert fig.layout.meta["verdict"] == ""


def test_xla_slower_names_depthwise_convolutions():
    import keras

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.DepthwiseConv2D(3),
                              keras.layers.SeparableConv2D(4, 3)])
    (f,) = _run("xla_slower", Evidence(model, xla=lambda: _times(2.0, 7.0))).findings
    assert "3.5×" in f.explanation and f.evidence["slow_layers"] == \
        "DepthwiseConv2D, SeparableConv2D"
    assert "DepthwiseConv2D and SeparableConv2D layers, and on CPU XLA's depthwise" in \
        f.explanation
    assert "insight profile MODEL --xla" in f.suggestion
