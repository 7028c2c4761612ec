"""The app frame and the Overview page under AppTest, on every sample and on bad files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from insight.model.samples import list_samples
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
OVERVIEW = PAGE_DIR / "overview.py"

SAMPLES = [s.name for s in list_samples()]


def _run() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    return at.run()


def _plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _figure(at: AppTest, title: str) -> dict:
    """The chart whose title starts with `title`."""
    specs = [s for s in _plotly_specs(at)
             if s["layout"].get("title", {}).get("text", "").startswith(title)]
    assert len(specs) == 1, [s["layout"].get("title") for s in _plotly_specs(at)]
    return specs[0]


def _graph_labels(at: AppTest) -> tuple[list[str], list[str]]:
    """Node ids and frame (nested model) labels of the layer graph."""
    fig = _figure(at, "Layer graph")
    nodes = [row[0] for trace in fig["data"] for row in trace.get("customdata", [])]
    frames = [a["text"] for a in fig["layout"].get("annotations", []) if a.get("text")]
    return nodes, frames


def test_default_is_digits_cnn():
    at = _run()
    assert not at.exception
    assert at.selectbox(key="insight_model_choice").value == "Sample: digits_cnn"
    assert at.title[0].value == "digits_cnn"
    assert [m.value for m in at.metric][:1] == ["3,658"]
    nodes, _ = _graph_labels(at)
    assert nodes == ["image", "conv1", "pool1", "conv2", "flatten", "dense1", "dropout",
                     "predictions"]
    assert _figure(at, "Parameters per layer")["data"][0]["type"] == "bar"


@pytest.mark.parametrize("name", SAMPLES)
def test_overview_on_every_sample(name):
    at = _run()
    at.selectbox(key="insight_model_choice").set_value(f"Sample: {name}").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[-1].value
    assert len(table) >= 3 and {"layer", "class", "params"} <= set(table.columns)
    assert _figure(at, "Parameters per layer")["data"][0]["type"] == "bar"
    nodes, frames = _graph_labels(at)
    if name == "subclassed":
        assert not nodes
        assert any("subclassed model" in f for f in frames)
    else:
        parents = {p.rpartition("/")[0] for p in table["layer"] if "/" in p}
        for layer in table["layer"]:
            if layer in parents:
                assert any(f.startswith(f"{layer} (") for f in frames), frames
            else:
                assert layer in nodes


def test_command_line_model_from_env(monkeypatch, lambda_keras):
    monkeypatch.setenv("INSIGHT_MODEL", str(lambda_keras))
    at = _run()
    assert not at.exception
    assert at.selectbox(key="insight_model_choice").value.endswith("(command line)")
    assert "Refused in safe mode" in at.error[0].value
    assert "Received: path=" in at.error[0].value
    # Refused, yet its architecture is shown, read from the file without running it.
    nodes, _ = _graph_labels(at)
    assert nodes == ["x", "double", "out"]
    # The app keeps working: pick a sample from the same sidebar.
    at.selectbox(key="insight_model_choice").set_value("Sample: digits_cnn").run()
    assert not at.error and at.title[0].value == "digits_cnn"


def test_unsafe_env_loads_lambda_model(monkeypatch, lambda_keras):
    monkeypatch.setenv("INSIGHT_MODEL", str(lambda_keras))
    monkeypatch.setenv("INSIGHT_UNSAFE", "1")
    at = _run()
    assert not at.exception and not at.error
    assert any("Safe mode is off" in w.value for w in at.sidebar.warning)


def test_typed_path_errors_are_shown(tmp_path):
    bad = tmp_path / "broken.keras"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("config.json", "{not json")
    at = _run()
    at.selectbox(key="insight_model_choice").set_value("Another file…").run()
    assert any("No model selected" in i.value for i in at.info)
    at.text_input(key="insight_model_path").input(str(bad)).run()
    assert not at.exception
    assert "config.json is not valid JSON" in at.error[0].value
    at.text_input(key="insight_model_path").input(str(tmp_path / "nope.keras")).run()
    assert "does not exist" in at.error[0].value


def test_missing_data_path_warns_in_sidebar(tmp_path):
    at = _run()
    at.text_input(key="insight_data_path").input(str(tmp_path / "missing.npz")).run()
    assert not at.exception
    assert any("path not found" in w.value for w in at.sidebar.warning)
    assert at.title[0].value == "digits_cnn"


def test_locked_server_hides_free_paths(monkeypatch):
    monkeypatch.setenv("INSIGHT_LOCKED", "1")
    at = _run()
    assert "Another file…" not in at.selectbox(key="insight_model_choice").options


def test_overview_page_alone_with_seeded_state():
    sample = next(s for s in list_samples() if s.name == "nested")
    at = AppTest.from_file(str(OVERVIEW), default_timeout=90)
    at.session_state["insight_ref"] = ModelRef(str(sample.model))
    at.run()
    assert not at.exception
    assert at.title[0].value == "nested"
    nodes, frames = _graph_labels(at)
    assert "backbone (Sequential)" in frames and "backbone/conv1" in nodes


def test_overview_page_without_model_shows_empty_state():
    at = AppTest.from_file(str(OVERVIEW), default_timeout=90).run()
    assert not at.exception
    assert "No model selected" in at.info[0].value


def test_logs_beside_a_command_line_model_are_its_logdir(monkeypatch, tmp_path):
    """A model given by path finds the `logs/` beside it, as a sample picked by name does;
    a model with none has no logdir."""
    monkeypatch.setenv("INSIGHT_MODEL", str(ROOT / "sample_models" / "digits_cnn" / "model.keras"))
    at = _run()
    assert not at.exception
    assert at.session_state["insight_logdir"] == str(ROOT / "sample_models" / "digits_cnn" / "logs")
    assert any("`logs` beside the model" in c.value for c in at.sidebar.caption)
    alone = tmp_path / "model.keras"
    alone.write_bytes((ROOT / "sample_models" / "digits_cnn" / "model.keras").read_bytes())
    monkeypatch.setenv("INSIGHT_MODEL", str(alone))
    assert _run().session_state["insight_logdir"] is None
