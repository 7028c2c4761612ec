"""The panel registry: names, lookup errors, parameter validation, built results."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from insight import layer_table, model_card, preflight
from insight.errors import UsageError
from insight.panels import (
    Panel,
    PanelContext,
    Param,
    build_panel,
    get_panel,
    panel_names,
    register,
    validate_params,
)

OVERVIEW = {"model_card", "layer_table", "layer_graph", "param_chart"}


def test_panel_names():
    names = panel_names()
    assert OVERVIEW <= set(names)
    assert names == sorted(names)
    kinds = {name: get_panel(name).kind for name in OVERVIEW}
    assert kinds == {"model_card": "card", "layer_table": "table", "layer_graph": "figure",
                     "param_chart": "figure"}
    for name in names:
        panel = get_panel(name)
        assert panel.name == name and panel.title and panel.description


def test_unknown_panel_lists_valid_names():
    with pytest.raises(UsageError) as excinfo:
        get_panel("nope")
    text = str(excinfo.value)
    assert "'nope'" in text
    for name in panel_names():
        assert name in text
    assert "Received: panel='nope'" in text
    with pytest.raises(UsageError):
        build_panel("nope", PanelContext())


def test_unknown_param():
    panel = get_panel("layer_table")
    with pytest.raises(UsageError) as excinfo:
        validate_params(panel, {"colour": "red"})
    text = str(excinfo.value)
    assert "'colour'" in text and "'layer_table'" in text
    assert "Received: colour='red'" in text
    assert validate_params(panel, {}) == {}


def test_unknown_param_through_build_panel(load_sample):
    with pytest.raises(UsageError, match="no parameter 'bins'"):
        build_panel("param_chart", PanelContext(load_sample("digits_cnn")), bins="3")


@pytest.mark.parametrize("name", sorted(OVERVIEW))
def test_panel_without_any_model(name):
    with pytest.raises(UsageError) as excinfo:
        build_panel(name, PanelContext())
    assert "needs" in str(excinfo.value) and f"'{name}'" in str(excinfo.value)
    assert "Received:" in str(excinfo.value)


def test_panels_needing_a_loaded_model(model_files):
    """With only the file's preflight, the graph builds; the others need the loaded model."""
    ctx = PanelContext(preflight=preflight(model_files.lambda_keras))
    for name in ("model_card", "layer_table", "param_chart"):
        assert get_panel(name).needs_model
        with pytest.raises(UsageError, match="model"):
            build_panel(name, ctx)
    assert not get_panel("layer_graph").needs_model
    fig = build_panel("layer_graph", ctx)
    assert [row[0] for row in fig.data[0].customdata] == ["x", "double"]


def test_context_takes_preflight_from_loaded(load_sample):
    loaded = load_sample("digits_cnn")
    assert PanelContext(loaded).preflight is loaded.preflight


def test_param_parsing_and_defaults():
    panel = Panel("unit_demo", "Demo", "card", lambda ctx, **kw: kw, params=(
        Param("top", "int", 5), Param("scale", "float", 1.0), Param("log", "bool", False),
        Param("order", "str", "size", choices=("size", "name")),
    ))
    assert validate_params(panel, {}) == {"top": 5, "scale": 1.0, "log": False, "order": "size"}
    assert validate_params(panel, {"top": "7", "scale": "0.5", "log": "yes", "order": "name"}) \
        == {"top": 7, "scale": 0.5, "log": True, "order": "name"}
    assert validate_params(panel, {"log": "off"})["log"] is False
    for raw in ({"top": "seven"}, {"scale": "x"}, {"log": "maybe"}, {"order": "colour"}):
        with pytest.raises(UsageError) as excinfo:
            validate_params(panel, raw)
        assert "Received:" in str(excinfo.value)


def test_register_refuses_bad_kind_and_duplicate_names():
    with pytest.raises(ValueError, match="kind"):
        register(Panel("unit_bad_kind", "Bad", "movie", lambda ctx: None))
    with pytest.raises(ValueError, match="already registered"):
        register(Panel("model_card", "Card", "card", lambda ctx: None))
    assert "unit_bad_kind" not in panel_names()
    assert get_panel("model_card").kind == "card"


def test_param_chart_figure(load_sample):
    loaded = load_sample("digits_cnn")
    fig = build_panel("param_chart", PanelContext(loaded))
    assert isinstance(fig, go.Figure)
    data = fig.to_dict()["data"]
    bars = [trace for trace in data if trace["type"] == "bar"]
    assert bars and len(bars) == len(data)
    table = layer_table(loaded)
    shown = [name for trace in bars for name in trace["y"]]
    assert sorted(shown) == sorted(table["layer"])
    assert {"conv1", "pool1", "conv2", "flatten", "dense1", "dropout", "predictions"} \
        == set(shown)
    # to_dict() packs numeric arrays as base64; read the numbers from the traces themselves
    counts = [int(v) for trace in fig.data for v in trace.x]
    assert sum(counts) == model_card(loaded)["total_params"]
    assert "digits_cnn" in fig.layout.title.text


def test_param_chart_nested_shows_inner_layers(load_sample):
    fig = build_panel("param_chart", PanelContext(load_sample("nested")))
    shown = {name for trace in fig.to_dict()["data"] for name in trace["y"]}
    assert "backbone/conv1" in shown
    assert "backbone" not in shown, "the nested model's own row is replaced by its layers"


def test_table_card_and_graph_panels(load_sample):
    loaded = load_sample("multi_io")
    ctx = PanelContext(loaded)
    table = build_panel("layer_table", ctx)
    assert isinstance(table, pd.DataFrame)
    pd.testing.assert_frame_equal(table, layer_table(loaded))
    assert build_panel("model_card", ctx) == model_card(loaded)
    graph = build_panel("layer_graph", ctx)
    assert isinstance(graph, go.Figure)
    rows = {row[0]: row for row in graph.data[0].customdata}
    assert rows["merge"][1] == "Concatenate"
    assert rows["shared_dense"][3] == "4,384"  # parameters, once loaded
    assert "multi_io" in graph.layout.title.text


def test_graph_panel_of_subclassed_explains(load_sample):
    fig = build_panel("layer_graph", PanelContext(load_sample("subclassed")))
    assert isinstance(fig, go.Figure) and len(fig.data) == 0
    assert "subclassed" in " ".join(a.text for a in fig.layout.annotations)


def test_user_patterns_run_in_linear_time_and_bad_ones_are_refused():
    """RE2 runs the patterns a backtracking guard let through (`((a+))+$`, `(.|.)*X`,
    `(\\d|\\d)+[a-z]`) in linear time; `re` needs 2**n steps for them."""
    import time

    from insight.errors import UsageError
    from insight.patterns import user_regex

    assert user_regex("loss|val_.*", "tag").search("val_loss")
    assert user_regex("(ab)+c?", "tag").search("ababc")
    assert user_regex("^val", "tag").match("val_loss") and not user_regex("^val", "t").match("x")
    assert user_regex("epoch_(loss|acc)", "tag").fullmatch("epoch_acc")
    assert user_regex("LOSS", "tag", ignore_case=True).search("val_loss")
    for evil, text in [("((a+))+$", "a" * 100_000 + "!"), ("(.|.)*X", "x" * 100_000),
                       ("(\\d|\\d)+[a-z]", "1" * 100_000 + "!"), ("(a+)+$", "a" * 100_000 + "b")]:
        start = time.perf_counter()
        assert user_regex(evil, "tag").search(text) is None
        assert time.perf_counter() - start < 0.5, evil
    for bad in ["x" * 201, "(unclosed", "(a)\\1", "(?=a)b"]:
        with pytest.raises(UsageError, match="Received: "):
            user_regex(bad, "tag")


def test_search_mask_regex_runs_on_re2():
    from insight.figures.projector import search_mask

    meta = pd.DataFrame({"label": ["cat", "dog", "a" * 5000 + "!"], "n": [1, 3, 22]})
    assert search_mask(meta, "D.G|^2", regex=True).tolist() == [False, True, True]
    assert search_mask(meta, "(a+)+$", regex=True).tolist() == [False, False, False]
    assert search_mask(meta, "a", regex=False).tolist() == [True, False, True]


def test_widget_fields_of_a_param_are_optional_and_the_range_is_enforced():
    """`min_value`/`max_value` bound what a widget offers and what a deep link may ask
    (`weight=0.995` from a link is refused like any value outside the declared range);
    `step` and `presets` describe widgets only."""
    old_style = Param("top", "int", 5, None, "How many.")
    assert (old_style.min_value, old_style.max_value, old_style.step, old_style.presets) == \
        (None, None, None, None)
    weight = next(p for p in get_panel("training_curves").params if p.name == "weight")
    assert (weight.default, weight.min_value, weight.max_value, weight.step) == \
        (0.6, 0.0, 0.99, 0.01)
    assert weight.parse("0.99", "training_curves") == 0.99
    for bad in ("0.995", "-0.1", "nan", "inf"):
        with pytest.raises(UsageError, match="Give a value from 0.0 to 0.99. Received: weight="):
            weight.parse(bad, "training_curves")
    points = next(p for p in get_panel("training_curves").params if p.name == "points")
    assert points.default in points.presets and points.parse("3000", "training_curves") == 3000


@pytest.mark.parametrize(("panel", "name", "raw", "message"), [
    ("projection", "min_dist", "nan", "must be a finite number. Give a value from 0.0 to 1.0"),
    ("projection", "min_dist", "-inf", "must be a finite number"),
    ("projection", "perplexity", "-1", "out of range. Give a value from 2.0 to 100.0"),
    ("projection", "perplexity", "1e999", "must be a finite number"),
    ("projection", "n_neighbors", "1", "out of range"),
    ("projection", "sample", "-5", "out of range. Give a value of at least 0"),
    ("projection", "seed", str(2**40), "out of range. Give a value from 0 to 4294967295"),
    ("projection", "point", str(2**40), "out of range. Give a value from -2147483647"),
    ("projection", "dims", "nan", "must be of type int"),
    ("training_curves", "window", "999999999999", "out of range"),
])
def test_bad_numbers_from_a_link_are_usage_errors(panel, name, raw, message):
    with pytest.raises(UsageError, match=message) as info:
        validate_params(get_panel(panel), {name: raw})
    assert str(info.value).endswith(f"Received: {name}={raw!r}")


def test_metric_order_losses_then_accuracies_then_the_rest():
    from insight.panels.curves import metric_order

    index = pd.DataFrame({"metric": ["lr", "epoch_accuracy", "val_loss", "auc", "epoch_loss",
                                     "mae", "epoch_loss", "batch_size"]})
    assert metric_order(index) == ["epoch_loss", "mae", "val_loss", "auc", "epoch_accuracy",
                                   "batch_size", "lr"]
    assert metric_order(index.iloc[:0]) == []


def test_top_ops_note():
    from insight.panels.profiler import top_ops_note

    empty = pd.DataFrame(columns=["type", "op"])
    assert "capture with **XLA** on" in top_ops_note(empty, "hlo")
    assert top_ops_note(empty, "framework") == "No TensorFlow ops in this profile."
    compiled = pd.DataFrame({"type": ["__inference_one_step_on_data_1611"], "op": ["x"]})
    assert "one XLA-compiled function" in top_ops_note(compiled, "framework")
    eager = pd.DataFrame({"type": ["Conv2D", "__inference_f_1"], "op": ["a", "b"]})
    assert top_ops_note(eager, "framework") == ""
    hlo = pd.DataFrame({"op": ["fusion.1"], "category": ["fusion"]})
    assert top_ops_note(hlo, "hlo") == ""
    hlo.attrs["source"] = "timeline"
    assert "summed from the timeline" in top_ops_note(hlo, "hlo")


def test_probe_table_helpers():
    from insight.panels.activations import layer_units
    from insight.panels.gradients import weighted_layers

    acts = pd.DataFrame({"layer": ["conv1", "pool1", "dense1"], "units": [8, 8, 32]})
    assert layer_units(acts, "dense1") == 32 and isinstance(layer_units(acts, "conv1"), int)
    grads = pd.DataFrame({"layer": ["conv1", "pool1", "dense1"], "params": [80, 0, 4128]})
    assert weighted_layers(grads) == ["conv1", "dense1"]
