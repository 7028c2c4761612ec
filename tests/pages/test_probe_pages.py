"""The Activations and Gradients pages under AppTest: on every sample, their widgets, and the
states where there is nothing to probe (a SavedModel, data that does not fit)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from insight.model.layers import layer_paths
from insight.model.samples import list_samples
from insight.panels import PanelContext, build_panel, panel_names
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR

ROOT = Path(__file__).resolve().parents[2]
PAGES = PAGE_DIR  # where the app loads its pages from (the installed package in CI)
SAMPLES = {s.name: s for s in list_samples()}
WITH_DATA = {n for n, s in SAMPLES.items() if s.data is not None}


def _page(page: str, ref: ModelRef | None, data: str | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=120)
    at.session_state["insight_ref"] = ref
    at.session_state["insight_data"] = data
    at.session_state["insight_logdir"] = None
    return at.run()


def _sample_ref(name: str) -> ModelRef:
    s = SAMPLES[name]
    return ModelRef(str(s.model), True, str(s.custom_objects) if s.custom_objects else None)


def _figures(at: AppTest) -> dict[str, dict]:
    """`{title: spec}` of the page's charts (title up to its first line break)."""
    raw = [el.proto.spec for el in at.get("plotly_chart")]
    # Streamlit rewrites the colours #000001..#000040 (its theme placeholders) in any figure.
    assert not any(re.search(r"#0000[0-4]\d\b", r) for r in raw)
    specs = [json.loads(r) for r in raw]
    return {s["layout"]["title"]["text"].split("<br>")[0]: s for s in specs}


def _one(figs: dict[str, dict], prefix: str) -> dict:
    found = [s for t, s in figs.items() if t.startswith(prefix)]
    assert len(found) == 1, (prefix, list(figs))
    return found[0]


def _clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def _data_note(at: AppTest, name: str) -> None:
    warnings = " ".join(w.value for w in at.warning)
    if name in WITH_DATA:
        assert "Synthetic inputs" not in warnings
        assert any(c.value.startswith("Data: data.npz") for c in at.caption)
    else:
        assert "Synthetic inputs: no data given" in warnings


@pytest.mark.parametrize("name", list(SAMPLES))
def test_activations_page_on_every_sample(name, load_sample):
    at = _page("activations", _sample_ref(name))
    _clean(at)
    _data_note(at, name)
    layers = layer_paths(load_sample(name).model)
    table = at.dataframe[0].value
    assert table["layer"].tolist() == layers  # one row per layer, in depth order
    assert {"flag", "histogram", "dead_fraction", "saturated_fraction"} <= set(table.columns)
    proto = at.dataframe[0].proto  # a layer without a value: an empty cell, not "None"
    assert proto.HasField("placeholder") and proto.placeholder == ""
    assert any(c.value.startswith("Statistics over ") for c in at.caption)
    figs = _figures(at)
    ridge = _one(figs, "Activation histograms by depth")
    assert [t["name"] for t in ridge["data"]] == layers
    assert {t["fill"] for t in ridge["data"]} == {"toself"}
    assert _one(figs, "Example 0")
    assert _one(figs, f"{layers[0]}: ")["data"][0]["type"] == "heatmap"
    top = _one(figs, f"Examples that activate {layers[0]} unit 0 most")
    assert top["data"][0]["type"] == ("bar" if name == "text_embedding" else "heatmap")


@pytest.mark.parametrize("name", list(SAMPLES))
def test_gradients_page_on_every_sample(name):
    at = _page("gradients", _sample_ref(name))
    _clean(at)
    _data_note(at, name)
    figs = _figures(at)
    norms = _one(figs, "Gradient norms by depth")
    assert norms["layout"]["yaxis"]["type"] == "log"
    target = norms["layout"]["title"]["text"]
    assert ("loss: " in target) == (name in WITH_DATA)
    assert "predicted class" in target or name in WITH_DATA
    hist = _one(figs, "Weights and gradients of ")
    assert {a["text"] for a in hist["layout"]["annotations"]} >= {"weights", "gradients"}
    att = _one(figs, "Saliency · example 0")
    types = {t["type"] for t in att["data"]}
    assert types == ({"bar"} if name == "text_embedding" else
                     {"heatmap", "bar"} if name == "multi_io" else {"heatmap"})
    if name == "text_embedding":  # tokens named from vocab.tsv
        assert "tokens from vocab.tsv" in att["layout"]["title"]["text"]
        assert att["data"][0]["x"][1] == "1·base"
    numbers = at.dataframe[0].value  # the norms table, one row per layer
    assert numbers["layer"].tolist() == norms["layout"]["xaxis"]["categoryarray"]


def test_activations_widgets_pick_layer_example_and_unit():
    at = _page("activations", _sample_ref("digits_cnn"))
    at.selectbox(key=f"act_layer|{SAMPLES['digits_cnn'].model}").set_value("dense1").run()
    at.number_input(key=f"act_example|{SAMPLES['digits_cnn'].model}").set_value(70).run()
    at.number_input(key=f"act_unit|{SAMPLES['digits_cnn'].model}|dense1").set_value(5).run()
    _clean(at)
    figs = _figures(at)
    heat = _one(figs, "dense1: units × examples 64–127")
    assert heat["layout"]["shapes"][0]["y0"] == 70 - 64 - 0.5  # the example is outlined
    assert _one(figs, "Example 70: label ")
    assert _one(figs, "Examples that activate dense1 unit 5 most")
    flags = dict(zip(at.dataframe[0].value["layer"], at.dataframe[0].value["flag"], strict=True))
    # A confident softmax output is not a problem; conv2's 7 dead channels of 16 are.
    assert flags["predictions"] == "" and flags["conv1"] == ""
    assert flags["conv2"] == "dead 7/16 units"


def test_gradients_widgets_pick_layer_and_method():
    model = SAMPLES["digits_cnn"].model
    at = _page("gradients", _sample_ref("digits_cnn"))
    assert at.selectbox(key="grad_method").options[-1] == "Grad-CAM"
    at.selectbox(key=f"grad_layer|{model}").set_value("dense1").run()
    at.selectbox(key="grad_method").set_value("grad_cam").run()
    at.number_input(key=f"grad_example|{model}").set_value(3).run()
    _clean(at)
    figs = _figures(at)
    assert _one(figs, "Weights and gradients of dense1")
    cam = _one(figs, "Grad-CAM · example 3")
    assert "Grad-CAM at 'conv2'" in cam["layout"]["title"]["text"]


def test_grad_cam_is_not_offered_without_a_conv_layer():
    at = _page("gradients", _sample_ref("text_embedding"))
    assert "Grad-CAM" not in at.selectbox(key="grad_method").options


def test_pages_are_in_the_app_navigation():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    for page, title in (("activations", "Activations"), ("gradients", "Gradients"),
                        ("embeddings", "Embeddings")):
        at.switch_page(str(PAGE_DIR / f"{page}.py")).run()
        _clean(at)
        assert at.title[0].value == title


def test_savedmodel_explains_what_it_lacks(model_files):
    ref = ModelRef(str(model_files.savedmodel), safe_mode=False)
    for page in ("activations", "gradients"):
        at = _page(page, ref)
        _clean(at)
        assert f"No {page} for this model" in at.info[0].value
        assert "SavedModel" in at.info[0].value
        assert not at.get("plotly_chart")


def test_data_that_does_not_fit_is_an_error_not_a_crash(tmp_path):
    bad = tmp_path / "wrong.npy"
    np.save(bad, np.zeros((4, 5), np.float32))
    at = _page("activations", _sample_ref("digits_cnn"), data=str(bad))
    assert not at.exception
    assert "expects shape" in at.error[0].value
    assert not at.get("plotly_chart")


def test_nan_inputs_are_reported(tmp_path):
    x = np.random.default_rng(0).random((20, 8, 8, 1)).astype(np.float32)
    x[3, 2, 2, 0] = np.nan
    data = tmp_path / "nan.npz"
    np.savez(data, x=x)
    at = _page("gradients", _sample_ref("digits_cnn"), data=str(data))
    assert not at.exception
    assert any("NaN/Inf in the inputs" in w.value and "1 in 'image'" in w.value
               for w in at.warning)


def test_no_model_shows_the_empty_state():
    for page in ("activations", "gradients"):
        at = _page(page, None)
        assert not at.exception
        assert "No model selected" in at.info[0].value


def test_probe_panels_are_registered_and_validate_params(load_sample):
    names = set(panel_names())
    assert {"activation_table", "activation_ridge", "example_input", "layer_activations",
            "top_examples", "gradient_table", "gradient_norms", "weight_histograms",
            "attribution"} <= names
    ctx = PanelContext(load_sample("digits_cnn"))
    with pytest.raises(Exception, match="must be one of saliency"):
        build_panel("attribution", ctx, method="lime")
    with pytest.raises(Exception, match="No such layer: 'nope'"):
        build_panel("layer_activations", ctx, layer="nope")
    with pytest.raises(Exception, match="from 0 to 1796"):
        build_panel("example_input", ctx, example=5000)


def test_big_model_ridge_by_block_then_every_layer_in_a_frame(tmp_path):
    """Above RIDGE_ROWS layers the ridge plot shows one row per block; "every layer" puts all
    of them in a scrolling frame instead of a page thousands of pixels long."""
    import keras

    from insight.panels.activations import RIDGE_FRAME

    keras.utils.set_random_seed(0)
    x = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, name="stem")(x)
    for i in range(1, 16):
        d = keras.layers.Dense(8, name=f"block_{i}_dense")(h)
        d = keras.layers.BatchNormalization(name=f"block_{i}_bn")(d)
        d = keras.layers.ReLU(name=f"block_{i}_relu")(d)
        h = keras.layers.Add(name=f"block_{i}_out")([h, d])
    path = tmp_path / "deep.keras"
    keras.Model(x, keras.layers.Dense(3, name="predictions")(h), name="deep").save(path)
    at = _page("activations", ModelRef(str(path)))
    _clean(at)
    ridge = _one(_figures(at), "Activation histograms by depth")
    assert len(ridge["data"]) == 17 and ridge["layout"]["height"] <= RIDGE_FRAME
    at.radio(key=f"act_ridge_by|{path}").set_value("layer").run()
    _clean(at)
    ridge = _one(_figures(at), "Activation histograms by depth")
    assert len(ridge["data"]) == 62 and ridge["layout"]["height"] > RIDGE_FRAME
    heights = [b.proto.height_config.pixel_height for b in at.main.children.values()
               if hasattr(b.proto, "height_config")]
    assert RIDGE_FRAME in heights  # the ridge scrolls inside a fixed frame
