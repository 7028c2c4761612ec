"""The Checkpoints page under AppTest: the digits_cnn sample's checkpoints/ beside its model,
a checkpoint folder given as the compare path, and the empty state."""

from __future__ import annotations

import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest

from insight.model.samples import get_sample
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR, PAGES

SAMPLE = get_sample("digits_cnn")


def _page(model, compare=None) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / "checkpoints.py"), default_timeout=240)
    at.session_state["insight_ref"] = ModelRef(str(model), True, None, "m")
    at.session_state["insight_data"] = None
    at.session_state["insight_compare"] = None if compare is None else str(compare)
    return at.run()


def _charts(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    return {s["layout"]["meta"]["insight_panel"]: s for s in specs}


def _values(v) -> np.ndarray:
    """A chart's array as the spec carries it: a list, or plotly's typed-array dict."""
    if isinstance(v, dict) and "bdata" in v:
        arr = np.frombuffer(base64.b64decode(v["bdata"]), np.dtype(v["dtype"]))
        shape = v.get("shape")
        return arr.reshape([int(n) for n in str(shape).split(",")]) if shape else arr
    return np.asarray(v, float)


def test_in_the_navigation():
    assert "checkpoints.py" in [f for f, _, _ in PAGES]


def test_sample_timeline_heatmap_cka_projection_and_controls():
    at = _page(SAMPLE.model)
    assert not at.exception and not at.error, [e.value for e in at.error]
    # A folder the server found by itself is named, not its path on the server.
    assert at.caption[0].value == "`checkpoints/` beside the model"
    charts = _charts(at)
    heat = charts["checkpoint_weight_changes"]["data"][0]
    assert heat["type"] == "heatmap"
    assert heat["y"] == ["conv1", "conv2", "dense1", "predictions"]
    assert heat["x"] == [str(e) for e in range(1, 11)]
    cka = charts["checkpoint_cka"]["data"]
    assert [t["name"] for t in cka] == ["conv1", "conv2", "dense1", "predictions"]
    assert all(abs(_values(t["y"])[-1] - 1) < 1e-6 for t in cka)  # the final epoch against itself
    proj = charts["checkpoint_projection"]
    assert proj["layout"]["title"]["text"].startswith("dense1 across epochs")
    assert len(proj["frames"]) == 11 and len(proj["layout"]["sliders"][0]["steps"]) == 11
    assert sorted(t["name"] for t in proj["data"]) == [str(d) for d in range(10)]
    assert any("embed=true&panel=" in c.value for c in at.code)  # each chart's Share link
    assert at.selectbox(key=f"ckpt_layer|{SAMPLE.model.parent / 'checkpoints'}").options == [
        "conv1", "conv2", "dense1", "predictions"]

    # the cosine view and another layer, in the same session (activations are cached)
    at.segmented_control(key="ckpt_value").set_value("cosine")
    at.selectbox(key=f"ckpt_layer|{SAMPLE.model.parent / 'checkpoints'}").set_value("conv2")
    at.run()
    assert not at.exception
    charts = _charts(at)
    z = _values(charts["checkpoint_weight_changes"]["data"][0]["z"])
    assert ((z > 0.8) & (z <= 1.0 + 1e-9)).all()  # cosines between consecutive epochs
    assert charts["checkpoint_projection"]["layout"]["title"]["text"].startswith("conv2")


def test_a_folder_given_as_the_compare_path(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="only")])
    for epoch in (1, 2, 3):
        model.get_layer("only").set_weights([np.full((3, 2), epoch, "float32"),
                                             np.zeros(2, "float32")])
        model.save(tmp_path / f"epoch_{epoch}.keras")
    at = _page(SAMPLE.model, compare=tmp_path)
    heat = _charts(at)["checkpoint_weight_changes"]["data"][0]
    assert heat["y"] == ["only"] and heat["x"] == ["2", "3"]
    assert any(str(tmp_path) in c.value for c in at.caption)


def test_no_checkpoints_says_where_to_put_them():
    at = _page(get_sample("multi_io").model)
    assert not at.exception and not at.get("plotly_chart")
    assert "No checkpoints for this model" in at.info[0].value
