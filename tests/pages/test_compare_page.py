"""The Compare page under AppTest: the digits_cnn sample against a retrained variant (every
tab's panels drawn, numbers that say the two differ), against itself (all the same, agreement
100%), and its empty and checkpoint-folder states."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from insight.model.samples import get_sample
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR, PAGES

APP = Path(__file__).resolve().parents[2] / "app.py"
SAMPLE = get_sample("digits_cnn")
REF = ModelRef(str(SAMPLE.model), True, None, "Sample: digits_cnn")


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    """digits_cnn with its weights moved (a different run of the same architecture)."""
    import keras

    model = keras.saving.load_model(SAMPLE.model, compile=False)
    rng = np.random.default_rng(0)
    model.set_weights([w * 0.8 + rng.normal(0, 0.05, w.shape) for w in model.get_weights()])
    path = tmp_path_factory.mktemp("compare") / "variant.keras"
    model.save(path)
    return path


def _page(compare, data: Path = SAMPLE.data) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / "compare.py"), default_timeout=240)
    at.session_state["insight_ref"] = REF
    at.session_state["insight_data"] = str(data)
    at.session_state["insight_compare"] = None if compare is None else str(compare)
    return at.run()


def _array(value) -> np.ndarray:
    """A trace's array, from a JSON list or plotly's base64 typed array."""
    if isinstance(value, dict):
        shape = [int(s) for s in str(value.get("shape") or "-1").split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), value["dtype"]).reshape(shape)
    return np.asarray(value, dtype=float)


def _charts(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    return {s["layout"]["meta"]["insight_panel"]: s for s in specs}


def test_page_is_in_the_navigation():
    assert "compare.py" in [f for f, _, _ in PAGES]


def test_a_variant_every_tab(variant):
    at = _page(variant)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    charts = _charts(at)
    assert {"compare_graph", "compare_weights", "compare_cka", "compare_confusion",
            "compare_disagreements"} <= set(charts)
    cka = charts["compare_cka"]["data"][0]
    z = _array(cka["z"])
    assert cka["type"] == "heatmap" and z.shape == (7, 7)  # 7 layers of A x 7 of B
    diag = np.diag(z)
    assert 0.3 < diag.min() < 0.999  # similar, not the same
    rel = _array(charts["compare_weights"]["data"][0]["y"])
    assert len(rel) == 4 and min(rel) > 0.1  # every layer with weights moved
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    diff = next(v for k, v in tables.items() if "changed_keys" in k)
    assert set(diff.status) == {"same"}  # same architecture, other weights
    acc = next(v for k, v in tables.items() if "accuracy_a" in k)
    total = acc.set_index("class").loc["all"]
    assert total.accuracy_a > 0.9 and total.accuracy_a != total.accuracy_b
    summary = next(v for k, v in tables.items() if k == ("", "value")).set_index("")
    assert 0.5 < float(summary.loc["agreement", "value"].rstrip("%")) / 100 < 1.0


def test_the_model_against_itself(tmp_path):
    """On inputs without labels: everything but the per-class accuracy, which says why."""
    with np.load(SAMPLE.data) as npz:
        np.savez(tmp_path / "unlabelled.npz", x=npz["x"])
    at = _page(SAMPLE.model, tmp_path / "unlabelled.npz")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("needs labels" in i.value for i in at.info)
    charts = _charts(at)
    z = _array(charts["compare_cka"]["data"][0]["z"])
    assert np.allclose(np.diag(z), 1.0, atol=1e-4)
    rel = _array(charts["compare_weights"]["data"][0]["y"])
    assert len(rel) == 4 and rel.max() <= 1e-11  # clipped zeros: nothing moved
    summary = next(d.value for d in at.dataframe if list(d.value.columns) == ["", "value"])
    assert summary.set_index("").loc["agreement", "value"] == "100.0%"


def test_no_second_model_says_how_to_give_one():
    at = _page(None)
    assert not at.exception
    assert any("Compare with" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_a_checkpoint_folder_points_to_the_timeline(tmp_path, variant):
    for epoch in (1, 2):
        (tmp_path / f"epoch_{epoch:02d}.keras").write_bytes(variant.read_bytes())
    at = _page(tmp_path)
    assert not at.exception
    assert any("folder of checkpoints" in i.value for i in at.info)


def test_a_bad_second_model_shows_its_load_error(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip")
    at = _page(bad)
    assert not at.exception
    assert at.error and "Received" in at.error[0].value


def test_the_sidebar_offers_compare_with(monkeypatch, variant):
    """`--compare` (here its environment variable) is the sidebar's first choice; "Nothing"
    clears it; a typed path is used; a locked server offers no typed path."""
    monkeypatch.setenv("INSIGHT_COMPARE", str(variant))
    at = AppTest.from_file(str(APP),
                           default_timeout=120).run()
    assert not at.exception
    box = at.sidebar.selectbox(key="insight_compare_choice")
    assert box.value.endswith("variant.keras (command line)")
    assert at.session_state["insight_compare"] == str(variant)
    assert "Sample: digits_cnn, variant wide" in box.options  # the sample's own variants
    box.set_value("Nothing").run()
    assert at.session_state["insight_compare"] is None
    at.sidebar.selectbox(key="insight_compare_choice").set_value("Another file…").run()
    at.sidebar.text_input(key="insight_compare_path").input(str(variant)).run()
    assert at.session_state["insight_compare"] == str(variant.resolve())
    monkeypatch.setenv("INSIGHT_LOCKED", "1")
    locked = AppTest.from_file(str(APP),
                               default_timeout=120).run()
    assert "Another file…" not in locked.sidebar.selectbox(key="insight_compare_choice").options
