"""The Overview's graph controls on a model big enough to open collapsed, and the layer pick."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import insight.ui.overview as overview

APP = Path(__file__).resolve().parents[2] / "app.py"
BLOCKS, PER_BLOCK = 4, 16  # 66 layers: above the 60 where the graph opens collapsed


@pytest.fixture(scope="module")
def blocky(tmp_path_factory) -> Path:
    import keras

    x = inp = keras.Input((4,), name="x")
    for b in range(1, BLOCKS + 1):
        for i in range(PER_BLOCK):
            x = keras.layers.Dense(4, name=f"block{b}_dense{i}")(x)
    out = keras.layers.Dense(2, name="predictions")(x)
    path = tmp_path_factory.mktemp("blocky") / "blocky.keras"
    keras.Model(inp, out, name="blocky").save(path)
    return path


def _graph_nodes(at: AppTest) -> list[str]:
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        if spec["layout"].get("meta", {}).get("insight_panel") == "layer_graph":
            return [row[0] for t in spec["data"] for row in (t.get("customdata") or [])
                    if isinstance(row, list) and row]
    raise AssertionError("no layer graph drawn")


def test_big_graph_opens_collapsed_and_blocks_open_on_request(monkeypatch, blocky):
    monkeypatch.setenv("INSIGHT_MODEL", str(blocky))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception and not at.error
    picker = at.multiselect(key="overview_expand")
    assert {"block1", "block2", "block3", "block4"} <= set(picker.options)
    nodes = _graph_nodes(at)
    assert "block2" in nodes and "block2_dense3" not in nodes
    picker.set_value(["block2"]).run()
    nodes = _graph_nodes(at)
    assert "block2_dense3" in nodes and "block3" in nodes


def test_picked_layer_shows_its_config_and_weights(monkeypatch, blocky):
    monkeypatch.setenv("INSIGHT_MODEL", str(blocky))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert any("Pick a layer" in c.value for c in at.caption)
    at.selectbox(key="overview_layer").set_value("block3_dense5").run()
    assert not at.exception and not at.error
    details = at.dataframe[-2].value  # the config table, then the weights table
    config = dict(zip(details.iloc[:, 0], details["value"], strict=True))
    assert config["class"] == "Dense" and config["units"] == "4"
    weights = at.dataframe[-1].value
    assert list(weights["shape"]) == ["(4, 4)", "(4,)"]
    assert "block3_dense5" in _graph_nodes(at)  # its block opened to outline it


def test_graph_clicks_pick_a_layer_or_open_a_block(monkeypatch):
    state = {"layer_graph-loaded": {"selection": {"points": [
        {"customdata": ["block1_dense0", "", "", "", "", "layer"]}]}}}
    monkeypatch.setattr(overview, "st", types.SimpleNamespace(session_state=state))
    overview.on_graph_click()
    assert state["overview_layer"] == "block1_dense0"
    state["layer_graph-loaded"]["selection"]["points"][0]["customdata"] = [
        "block3", "", "", "", "", "block"]
    overview.on_graph_click()
    overview.on_graph_click()  # a second click on an open block keeps it open once
    assert state["overview_expand"] == ["block3"]
