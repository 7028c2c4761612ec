"""The XLA compiler page under AppTest: digits_cnn end to end (forward pass and train step,
layer picker, search, graph), a model XLA cannot compile, a model without labels."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from insight.model.samples import list_samples
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR

SAMPLES = {s.name: s for s in list_samples()}
DIGITS = SAMPLES["digits_cnn"]

def _page(ref: ModelRef) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / "compiler.py"), default_timeout=180)
    at.session_state["insight_ref"] = ref
    at.session_state["insight_data"] = None
    at.session_state["insight_logdir"] = None
    return at.run()


def _figures(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    return {s["layout"]["title"]["text"].split("<br>")[0]: s for s in specs}


def _clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def _code(at: AppTest) -> str:
    """The HLO code block (other code blocks hold share links)."""
    blocks = [c.proto.code_text for c in at.get("code") if c.proto.language == "llvm"]
    assert len(blocks) == 1, len(blocks)
    return blocks[0]


@pytest.fixture(scope="module")
def digits_page() -> AppTest:
    """The page on digits_cnn, run once for the module (compiling takes seconds)."""
    return _page(ModelRef(str(DIGITS.model)))


def test_page_shows_hlo_fusions_layers_timing_and_graph(digits_page):
    at = digits_page
    _clean(at)
    assert at.title[0].value == "XLA compiler"
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["HLO instructions before"]) > int(metrics["After optimisation"])
    assert int(metrics["Fusions"]) >= 4
    assert "Step time of the forward pass on one batch of 32" not in _figures(at)
    at.button(key="xla_time_button|forward").click().run()
    _clean(at)
    figs = _figures(at)
    counts = next(s for t, s in figs.items() if t.startswith("Instructions by opcode"))
    assert "fusion" in counts["data"][0]["y"]
    timing = figs["Step time of the forward pass on one batch of 32"]
    assert list(timing["data"][0]["y"]) == ["eager", "tf.function (no XLA)",
                                            "XLA (jit_compile)"]
    assert any(t.startswith("The entry computation") for t in figs)
    tables = [d.value for d in at.dataframe]
    fusions = next(t for t in tables if "members" in t.columns)
    assert set(fusions["layers"]) >= {"conv1", "dense1", "predictions"}
    per_layer = next(t for t in tables if "hlo_before" in t.columns)
    assert per_layer["layer"].tolist()[:2] == ["conv1", "pool1"]
    assert _code(at).startswith("HloModule ")


def test_layer_picker_and_stage_show_that_layers_hlo(digits_page):
    at = digits_page
    at.selectbox(key=f"xla_layer|{DIGITS.model}").set_value("conv1").run()
    _clean(at)
    rows = next(d.value for d in at.dataframe if "opcode" in d.value.columns)
    assert len(rows) and rows["layer"].str.contains("conv1").all()
    assert set(rows["opcode"]) == {"convolution", "fusion"}
    assert "conv1" in _code(at) and "dense1" not in _code(at)
    at.radio(key="xla_stage").set_value("hlo").run()
    rows = next(d.value for d in at.dataframe if "opcode" in d.value.columns)
    assert "fusion" not in set(rows["opcode"]) and "convolution" in set(rows["opcode"])
    at.text_input(key="xla_search").set_value("nothing-matches-this").run()
    _clean(at)
    assert any("No instruction matches" in i.value for i in at.info)


def test_graph_of_a_fused_computation(digits_page):
    at = digits_page
    at.selectbox(key=f"xla_layer|{DIGITS.model}").set_value("").run()
    at.text_input(key="xla_search").set_value("").run()
    box = at.selectbox(key=f"xla_computation|{DIGITS.model}|forward|optimized_hlo")
    assert "(entry)" in box.format_func(box.options[0])
    fused = next(o for o in box.options if o.startswith("fused_computation"))
    box.set_value(fused).run()
    _clean(at)
    graph = next(s for t, s in _figures(at).items() if t.startswith(f"The computation {fused}"))
    assert {t["name"] for t in graph["data"] if t["mode"] != "lines"} <= {
        "fusion", "convolution / dot", "reduce / window", "parameter / constant", "other"}


def test_xla_slower_than_graph_is_explained(monkeypatch):
    """The page shows the `xla_step_time` panel's verdict: the doctor's `xla_slower`."""
    import pandas as pd

    import insight.panels.compiler as compiler_panels

    slow = pd.DataFrame({"mode": ["eager", "graph", "xla"], "median_ms": [9.0, 2.0, 5.0],
                         "min_ms": [8.0, 1.5, 4.5], "runs": [4, 4, 4],
                         "first_call_s": [0.1, 0.2, 0.9], "speedup": [1.0, 4.5, 1.8]})
    monkeypatch.setattr(compiler_panels, "step_times", lambda comp: slow)
    at = _page(ModelRef(str(DIGITS.model)))
    assert not [i for i in at.info if "slower than tf.function" in i.value]
    at.button(key="xla_time_button|forward").click().run()
    _clean(at)
    (verdict,) = [i.value for i in at.info if "slower than tf.function" in i.value]
    assert verdict.startswith("**XLA is 2.5× slower than tf.function here.**")
    assert "DepthwiseConv2D" not in verdict  # digits_cnn has plain convolutions


def test_function_and_stage_widgets_follow_the_schema():
    from insight.ui.widgets import param_of

    at = _page(ModelRef(str(DIGITS.model)))
    control = at.segmented_control(key=f"xla_function|{DIGITS.model}")
    assert control.value == "forward" and control.help == param_of("xla_hlo", "function").help
    for key in ("xla_stage", "xla_graph_stage"):
        assert at.radio(key=key).value == "optimized_hlo"
        assert at.radio(key=key).options == ["before optimisation", "after optimisation"]


def test_train_step_is_offered_with_labels(digits_page):
    control = digits_page.segmented_control(key=f"xla_function|{DIGITS.model}")
    assert control.options == ["forward pass", "train step"]


def test_a_model_xla_cannot_compile_is_explained(tmp_path):
    from unit._models import uncompilable_model  # tests/ is on pytest's pythonpath

    path, layers = uncompilable_model(tmp_path, "insight_xla_page_tests")
    at = _page(ModelRef(str(path), True, str(layers)))
    assert not at.exception
    (error,) = at.error
    assert "No HLO for this model" in error.value
    assert "XLA cannot compile the forward pass of 'string_op'" in error.value
    assert "AsString has no XLA kernel" in error.value and "count_digits" in error.value
    assert not at.get("plotly_chart")
    assert not [c for c in at.get("code") if c.proto.language == "llvm"]


def test_no_labels_means_no_train_step():
    at = _page(ModelRef(str(SAMPLES["nested"].model)))
    _clean(at)
    assert at.segmented_control(key=f"xla_function|{SAMPLES['nested'].model}").options == \
        ["forward pass"]
    assert any("no labels, so no train step" in c.value for c in at.caption)


def test_page_is_in_the_app_navigation():
    from insight.ui.shell import PAGES

    assert ("compiler.py", "XLA compiler") in [(f, t) for f, t, _ in PAGES]
    assert (PAGE_DIR / "compiler.py").is_file()


def test_hlo_tables_fit_the_page_without_scrolling_sideways(digits_page):
    """The fusions (beside the op counts, ~370 px at a 1280 px window) and the instructions
    (~800 px) show fixed-width columns that fit; the others start hidden, one click away."""
    at = digits_page
    at.selectbox(key=f"xla_layer|{DIGITS.model}").set_value("").run()
    at.text_input(key="xla_search").set_value("").run()
    _clean(at)
    for first, room, hidden in (("fusion", 370, {"kind", "shape", "computation"}),
                                ("instruction", 800, {"op_name", "computation"})):
        table = next(d for d in at.dataframe if d.value.columns[0] == first)
        config = json.loads(table.proto.columns)
        assert {c for c, v in config.items() if v.get("hidden")} - {"_index"} == hidden
        shown = [c for c in table.value.columns if c not in hidden]
        assert sum(config[c]["width"] for c in shown) <= room, first
        assert set(table.value.columns) >= hidden  # still in the data (and its exports)
    assert any("Show/hide columns" in c.value for c in at.caption)
