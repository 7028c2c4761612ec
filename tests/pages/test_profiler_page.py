"""The Profiler page under AppTest: the bundled sample's profile (no step markers), a captured
one (steps), corrupt and empty logdirs, and the Capture button (a real child process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from insight.model.samples import get_sample
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR

SAMPLE = get_sample("digits_cnn")
REF = ModelRef(str(SAMPLE.model))


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """Captures made by the page go to a fresh cache per test."""
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def captured_logdir(tmp_path_factory) -> Path:
    """Two marked training steps of digits_cnn, captured once for the module."""
    from insight.data import dataset_for
    from insight.model.loading import load_model
    from insight.profiler.capture import capture_profile

    loaded = load_model(SAMPLE.model)
    logdir = tmp_path_factory.mktemp("page_profile")
    capture_profile(loaded, dataset_for(loaded), logdir, steps=2, warmup=1, batch_size=16,
                    train=True)
    return logdir


def _page(logdir: str | None) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / "profiler.py"), default_timeout=240)
    at.session_state["insight_ref"] = REF
    at.session_state["insight_data"] = None
    at.session_state["insight_logdir"] = logdir
    return at.run()


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_sample_profile_without_step_markers():
    """The bundled sample comes from keras.callbacks.TensorBoard(profile_batch=...): no step
    markers xprof counts, so the steps are inferred and the page says so."""
    at = _page(str(SAMPLE.logdir))
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    infos = " ".join(i.value for i in at.info)
    assert "No steps in this profile" not in infos
    assert "No memory events" in infos
    assert (at.metric[0].label, at.metric[0].value) == ("Steps (inferred)", "3")
    titles = _titles(at)
    (steps,) = [t for t in titles if t.startswith("Step time")]
    assert "3 steps inferred from Keras' \"Profiled batch\" marks" in steps
    assert any(c.value.startswith("Steps inferred from Keras'") for c in at.caption)
    assert any(t.startswith("Timeline: train/") for t in titles)
    assert any(t.startswith("TensorFlow ops by self time") for t in titles)
    table = at.dataframe[0].value
    assert {"conv1", "conv2"} <= set(table["layer"])
    assert any("xprof server --logdir" in c.value for c in at.code)
    assert at.selectbox(key="prof_run").value.startswith("train/")


def test_captured_profile_with_steps(captured_logdir):
    at = _page(str(captured_logdir))
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert (at.metric[0].label, at.metric[0].value) == ("Steps (xprof)", "2")
    assert not any(c.value.startswith("**Steps inferred**") for c in at.caption)
    titles = _titles(at)
    assert any(t.startswith("Step time") and "2 steps" in t for t in titles)
    # captured in this process, where TensorFlow started without the BFC allocator
    assert any("No memory events" in i.value for i in at.info)
    show = at.selectbox(key=f"prof_show_{at.selectbox(key='prof_run').value.split(' ')[0]}")
    assert show.options[2:] == ["train 0", "train 1"]
    at = show.select("train 1").run()
    timeline = [t for t in _titles(at) if t.startswith("Timeline")][0]
    assert "step 1" in timeline
    at = at.segmented_control(key="prof_level").set_value("hlo").run()
    assert any("capture with **XLA** on" in c.value for c in at.caption)


def test_xla_profile_notes_come_from_the_panel(tmp_path):
    """An XLA-compiled train step is one `__inference` TensorFlow op: the `top_ops` panel's note
    (`top_ops_note`, in the table's attrs) says so, and at the HLO level that xprof's CPU
    statistics are summed from the timeline."""
    from insight.data import dataset_for
    from insight.model.loading import load_model
    from insight.profiler.capture import capture_profile

    loaded = load_model(SAMPLE.model)
    capture_profile(loaded, dataset_for(loaded), tmp_path, steps=2, warmup=1, batch_size=16,
                    train=True, xla=True)
    at = _page(str(tmp_path))
    assert not at.exception, at.exception
    assert at.dataframe[0].value["type"].iloc[0].startswith("__inference")
    assert any("one XLA-compiled function" in c.value for c in at.caption)
    at = at.segmented_control(key="prof_level").set_value("hlo").run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value)  # XLA ops, summed from the timeline
    assert any("summed from the timeline's XLA events" in c.value for c in at.caption)
    assert not any("one XLA-compiled function" in c.value for c in at.caption)


def test_corrupt_profile_is_explained(tmp_path, captured_logdir):
    folder = tmp_path / "plugins" / "profile" / "run1"
    folder.mkdir(parents=True)
    good = next(captured_logdir.glob("plugins/profile/*/*.xplane.pb"))
    (folder / "h.xplane.pb").write_bytes(good.read_bytes()[:400])
    at = _page(str(tmp_path))
    assert not at.exception, at.exception
    (err,) = at.error
    assert "Cannot read this profile" in err.value and "corrupt or truncated" in err.value


def test_empty_logdir_says_how_to_get_a_profile(tmp_path):
    (tmp_path / "plugins" / "profile" / "run1").mkdir(parents=True)
    at = _page(str(tmp_path))
    assert not at.exception, at.exception
    assert any("No profile yet" in i.value and "plugins/profile" in i.value for i in at.info)
    assert at.button  # the capture form is still there


@pytest.mark.slow
def test_capture_button_writes_a_new_profile(tmp_path):
    at = _page(str(tmp_path))
    """The button runs `insight profile` (the CLI) in a child process with the BFC allocator,
    so the profile has marked training steps and memory events."""
    at.number_input(key="prof_steps").set_value(2)
    at.toggle(key="prof_train").set_value(True)
    at = at.button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    runs = list(tmp_path.glob("plugins/profile/*/*.xplane.pb"))
    assert len(runs) == 1  # written into the (writable) sidebar logdir
    assert at.selectbox(key="prof_run").value.endswith("(logdir)")
    (done,) = at.success
    assert "steps: 2, mean" in done.value and "xprof server --logdir" in done.value
    assert at.metric[0].value == "2"
    titles = _titles(at)
    assert any(t.startswith("Step time") and "2 steps" in t for t in titles)
    assert any(t.startswith("Memory over time") for t in titles)  # the child used BFC


def test_top_ops_table_shows_self_time_without_scrolling():
    """Beside the treemap the table has about 450 px: which op, its layer, its self time and
    share come first, in fixed widths that fit there."""
    at = _page(str(SAMPLE.logdir))
    assert not at.exception, at.exception
    table = at.dataframe[0]
    order = list(table.proto.column_order)
    assert order[:4] == ["layer", "type", "self_time_us", "self_time_percent"]
    assert set(order) == set(table.value.columns)  # the rest still there, to the right
    widths = json.loads(table.proto.columns)
    assert sum(widths[c]["width"] for c in order[:4]) <= 450
    at = at.segmented_control(key="prof_level").set_value("hlo").run()
    assert not at.exception, at.exception


def test_treemap_title_lines_fit_a_narrow_column():
    at = _page(str(SAMPLE.logdir))
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if json.loads(c.proto.spec)["layout"]["title"]["text"].startswith("TensorFlow"))
    lines = spec["layout"]["title"]["text"].split("<br>")
    assert lines[0] == "TensorFlow ops by self time"
    assert len(lines) == 3 and all(len(line) <= 60 for line in lines)
    assert spec["layout"]["margin"]["t"] >= 20 * len(lines)
