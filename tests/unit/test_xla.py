"""XLA compilation of real models: HLO parsing, what fusion did, the layer mapping, the train
step, timing, the panels, and a model XLA really cannot compile.

digits_cnn is compiled once per session (forward and train step); everything else reads those.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from insight.compiler.hlo import executed_computations, fusions, op_counts, parse_hlo
from insight.compiler.xla import XlaCompilation, compile_model, step_times
from insight.errors import CompileError, UsageError

from ._errors import assert_error
from ._models import uncompilable_model

HLO = """HloModule tiny, entry_computation_layout={(f32[2]{0})->(f32[2]{0}, f32[])}

%add_f (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %s = f32[] add(f32[] %a, f32[] %b), metadata={op_name="m/Sum"}
}

%fc (p0: f32[2]) -> f32[2] {
  %p0 = f32[2]{0} parameter(0)
  %c = f32[] constant(0)
  %bc = f32[2]{0} broadcast(%c), dimensions={}
  ROOT %m = f32[2]{0} maximum(%p0, %bc), metadata={op_type="Relu" op_name="m/d_1/Relu"}
}

ENTRY %main (x: f32[2], /*index=1*/) -> (f32[2], f32[]) {
  %x = f32[2]{0} parameter(0), metadata={op_name="XLA_Args"}
  %relu = f32[2]{0} fusion(%x), kind=kLoop, calls=%fc, metadata={op_type="Relu" op_name="m/d/R"}
  %zero = f32[] constant(0)
  %sum = f32[] reduce(f32[2]{0} %relu, f32[] %zero), dimensions={0}, to_apply=%add_f
  ROOT %out = (f32[2]{0}, f32[]) tuple(%relu, %sum)
}
"""


@pytest.fixture(scope="module")
def digits(load_sample):
    import insight

    loaded = load_sample("digits_cnn")
    ds = insight.dataset_for(loaded)
    return loaded, ds.x[:32], ds.y[:32]


@pytest.fixture(scope="module")
def forward(digits) -> XlaCompilation:
    loaded, x, _ = digits
    return compile_model(loaded, x)


@pytest.fixture(scope="module")
def train(digits) -> XlaCompilation:
    loaded, x, y = digits
    return compile_model(loaded, x, y, function="train")


# -- the parser ------------------------------------------------------------------------------

def test_parser_reads_instructions_fusions_and_roles():
    module = parse_hlo(HLO)
    assert module.name == "tiny" and module.entry.name == "main"
    relu = module.instruction("relu")
    assert (relu.opcode, relu.kind, relu.calls, relu.operands) == \
        ("fusion", "kLoop", ("fc",), ("x",))
    assert (relu.op_type, relu.op_name) == ("Relu", "m/d/R")
    out = module.instruction("out")
    assert out.root and out.shape == "(f32[2]{0}, f32[])" and out.operands == ("relu", "sum")
    assert module.instruction("s").operands == ("a", "b")  # typed operands, before optimisation
    assert module.instruction("x").operands == ()  # parameter(0) reads nothing
    # fusion bodies and reducers do not run on their own: not counted
    assert [c.name for c in executed_computations(module)] == ["main"]
    assert op_counts(module) == {"constant": 1, "fusion": 1, "parameter": 1, "reduce": 1,
                                 "tuple": 1}
    (fusion,) = fusions(module)
    assert [m.name for m in fusion.members] == ["c", "bc", "m"]
    assert fusion.member_counts == {"constant": 1, "broadcast": 1, "maximum": 1}


def test_parser_refuses_text_that_is_not_hlo():
    with pytest.raises(UsageError) as info:
        parse_hlo("hello\nworld")
    assert_error(info, UsageError, "no HLO computation", "HloModule")


# -- what XLA did ----------------------------------------------------------------------------

def test_op_counts_change_between_stages(forward):
    table = forward.op_count_table().set_index("opcode")
    assert table["before"].sum() > table["after"].sum()  # fusion merged instructions
    assert table.loc["fusion", "before"] == 0 and table.loc["fusion", "after"] >= 4
    assert table.loc["broadcast", "after"] < table.loc["broadcast", "before"]
    assert (table["change"] == table["after"] - table["before"]).all()
    # the same counts straight from the texts TensorFlow returned
    before = op_counts(parse_hlo(forward.text["hlo"]))
    assert table["before"].to_dict() == {op: before.get(op, 0) for op in table.index}
    from insight.figures.compiler import op_counts_figure

    fig = op_counts_figure(forward.op_count_table(), title="ops")
    assert fig.layout.xaxis.exponentformat == "e"  # "2000", never plotly's "2k"


def test_every_dense_and_conv_layer_maps_to_hlo(forward, train):
    for comp in (forward, train):
        layers = comp.layer_table().set_index("layer")
        weighted = layers[layers["class"].isin(["Dense", "Conv2D"])]
        assert list(weighted.index) == ["conv1", "conv2", "dense1", "predictions"]
        assert (weighted["hlo_before"] > 0).all() and (weighted["hlo_after"] > 0).all()
        for layer in weighted.index:
            for stage in ("hlo", "optimized_hlo"):
                rows = comp.instruction_table(stage, layer=layer)
                assert len(rows), (comp.function, stage, layer)
                assert rows["layer"].str.contains(layer).all()
    ops = set(forward.instruction_table("hlo", layer="conv1")["op_type"])
    assert {"Conv2D", "BiasAdd", "Relu"} <= ops
    assert set(forward.instruction_table("hlo", layer="dense1")["opcode"]) >= {"dot"}


def test_op_names_map_to_the_innermost_layer(forward, train):
    scope = forward.scopes["conv1"][0]
    assert forward.layer_of(f"{scope}/convolution") == "conv1"
    assert forward.layer_of(f"gradient_tape/{scope}/ReluGrad") == "conv1"
    assert forward.layer_of("XLA_Args") == ""
    backward = train.instruction_table("hlo", layer="conv2")
    assert {"forward", "backward"} <= set(backward["pass"])
    assert "Conv2DBackpropFilter" in set(backward["op_type"])


def test_fusions_list_members_and_layers(forward):
    table = forward.fusion_table()
    assert len(table) == forward.op_count_table().set_index("opcode").loc["fusion", "after"]
    assert (table["ops"] > 0).all() and table["members"].str.len().gt(0).all()
    dense1 = table[table["layers"] == "dense1"]
    assert len(dense1) == 1 and "maximum" in dense1["members"].iloc[0]  # bias + ReLU fused
    # a shared constant does not drag conv1 into dense1's fusion
    assert not table["layers"].str.contains("conv1, dense1").any()


def test_hlo_text_filtered_by_layer_and_search(forward):
    text = forward.hlo_text("optimized_hlo", layer="dense1")
    scope = forward.scopes["dense1"][0]
    body = [ln for ln in text.splitlines() if ln.startswith("  ")]
    assert body and all(scope in ln for ln in body)
    assert forward.hlo_text("hlo") == forward.text["hlo"]
    found = forward.hlo_text("hlo", search="CONVOLUTION")
    assert [ln for ln in found.splitlines() if ln.startswith("  ")] and \
        all("convolution" in ln for ln in found.splitlines() if ln.startswith("  "))


def test_train_step_leaves_the_model_unchanged(digits, train):
    loaded, x, _ = digits
    assert train.loss == "sparse_categorical_crossentropy"
    before = [w.copy() for w in loaded.model.get_weights()]
    times = step_times(train, budget_s=0.05, min_runs=2, max_runs=4)
    assert all(np.array_equal(a, b) for a, b in zip(before, loaded.model.get_weights(),
                                                     strict=True))
    assert list(times["mode"]) == ["eager", "graph", "xla"]
    assert (times["median_ms"] > 0).all() and (times["runs"] >= 2).all()
    assert times.loc[0, "speedup"] == pytest.approx(1.0)
    # the first XLA call compiles: slower than its steady state
    xla = times.set_index("mode").loc["xla"]
    assert xla["first_call_s"] * 1e3 > xla["median_ms"]


def test_speedup_and_slowdown_point_the_right_way():
    """Known step times (sleeps) through `step_times`, the chart and the verdict: eager
    ~5 ms, tf.function ~0 (the sleep runs only while tracing), "XLA" ~20 ms. An inverted
    ratio (this / eager instead of eager / this) or direction fails here."""
    import time

    import keras
    import tensorflow as tf

    from insight.doctor import Evidence, get_check, run_checks
    from insight.figures.compiler import step_time_figure

    def step(x):
        time.sleep(0.005)
        return x * 2.0

    def slow_xla(x):
        time.sleep(0.02)
        return x * 2.0

    comp = XlaCompilation("sleepy", "forward", 1, {}, {}, {}, {},
                          runnable=(step, slow_xla, (tf.constant([1.0]),)))
    times = step_times(comp, budget_s=0.05, min_runs=2, max_runs=4).set_index("mode")
    eager, graph, xla = (times.loc[m, "median_ms"] for m in ("eager", "graph", "xla"))
    assert graph < eager < xla and xla > 2 * eager
    for mode in ("eager", "graph", "xla"):
        assert times.loc[mode, "speedup"] == pytest.approx(eager / times.loc[mode, "median_ms"])
    assert times.loc["graph", "speedup"] > 1 > times.loc["xla", "speedup"]

    fig = step_time_figure(times.reset_index(), title="t")
    text = dict(zip(fig.data[0].y, fig.data[0].text, strict=True))
    assert "faster than eager" in text["tf.function (no XLA)"]
    assert text["XLA (jit_compile)"].endswith(f"· {xla / eager:.2g}× slower than eager")

    def doctor(frame):
        ev = Evidence(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]),
                      xla=lambda: frame)
        return run_checks(ev, checks=[get_check("xla_slower")]).findings

    (slower,) = doctor(times.reset_index())
    assert slower.explanation.startswith(f"XLA is {xla / graph:.1f}× slower than tf.function")
    swapped = times.reset_index().replace({"mode": {"graph": "xla", "xla": "graph"}})
    assert doctor(swapped) == []  # XLA faster: silent


def test_step_time_labels_read_as_durations():
    import pandas as pd

    from insight.figures.compiler import duration, step_time_figure

    assert [duration(v) for v in (0.481, 9.87, 356.0, 1790.0)] == \
        ["0.481 ms", "9.87 ms", "356 ms", "1.79 s"]
    table = pd.DataFrame({"mode": ["eager", "graph", "xla"], "median_ms": [780.0, 560.0, 1790.0],
                          "min_ms": [700.0, 500.0, 1700.0], "runs": [4, 4, 4],
                          "first_call_s": [2.1, 3.3, 41.0]})
    table["speedup"] = table.loc[0, "median_ms"] / table["median_ms"]
    fig = step_time_figure(table, title="Step time")
    assert list(fig.data[0].text) == ["780 ms", "560 ms · 1.4× faster than eager",
                                      "1.79 s · 2.3× slower than eager"]
    assert not any("e+" in t for t in fig.data[0].text)
    # the right margin holds the longest label (~7 px a character)
    assert fig.layout.margin.r >= 7 * max(len(t) for t in fig.data[0].text)
    assert fig.layout.xaxis.exponentformat == "e"  # no SI prefixes ("2k") on the axis


# -- errors ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def uncompilable(tmp_path_factory):
    """A model with a string op inside a layer: TensorFlow runs it, XLA cannot compile it."""
    from insight.model.loading import load_model

    path, layers = uncompilable_model(tmp_path_factory.mktemp("xla_bad"), "insight_xla_tests")
    return load_model(path, custom_objects=layers)


def test_a_model_xla_cannot_compile_names_the_op_and_layer(uncompilable):
    x = np.ones((2, 4), np.float32)
    assert np.asarray(uncompilable.model(x)).shape == (2, 2)  # TensorFlow itself runs it
    with pytest.raises(CompileError) as info:
        compile_model(uncompilable, x)
    err = assert_error(info, CompileError, "XLA cannot compile the forward pass of 'string_op'",
                       "AsString has no XLA kernel", "layer 'count_digits'", "tf.py_function")
    assert err.ops == ["AsString"]


def test_bad_arguments(forward, digits):
    loaded, x, _ = digits
    with pytest.raises(UsageError) as info:
        compile_model(loaded, x, function="train")
    assert_error(info, UsageError, "needs labels")
    with pytest.raises(UsageError) as info:
        compile_model(loaded, x, function="backward")
    assert_error(info, UsageError, "Unknown function 'backward'", "forward, train")
    with pytest.raises(UsageError) as info:
        forward.instruction_table("hlo", layer="nope")
    assert_error(info, UsageError, "No such layer: 'nope'", "conv1")
    with pytest.raises(UsageError) as info:
        forward.module("llvm")
    assert_error(info, UsageError, "Unknown HLO stage 'llvm'")
    with pytest.raises(UsageError) as info:
        forward.computation("optimized_hlo", "nope")
    assert_error(info, UsageError, "No computation 'nope'", "fused_computation")


# -- panels ----------------------------------------------------------------------------------

def test_panels_share_one_compilation(digits):
    from insight.panels import PanelContext, build_panel

    store: dict = {}
    calls = []

    def memo(key, compute):
        if key not in store:
            calls.append(key)
            store[key] = compute()
        return store[key]

    ctx = PanelContext(digits[0], memo=memo)
    summary = build_panel("xla_summary", ctx)
    counts = build_panel("xla_op_counts", ctx).to_dict()
    graph = build_panel("xla_graph", ctx).to_dict()
    build_panel("xla_instructions", ctx, layer="conv1", stage="hlo")
    hlo = build_panel("xla_hlo", ctx, layer="conv2")
    assert [k.split("|")[-1] for k in calls] == ["dataset", "xla:forward:32"]
    assert summary["layers"][0] == "conv1" and summary["after"] < summary["before"]
    assert [t["name"] for t in counts["data"]] == ["after optimisation", "before optimisation"]
    assert re.search(r"Instructions by opcode: \d+ → \d+<br>", counts["layout"]["title"]["text"])
    nodes = [n for t in graph["data"] if t["mode"] != "lines" for n in t["x"]]
    shown = [i for i in parse_hlo(store[calls[1]].text["optimized_hlo"]).entry.instructions
             if i.opcode not in ("parameter", "constant", "bitcast", "get-tuple-element",
                                 "tuple") or i.root]
    assert len(nodes) == len(shown)
    assert {t["name"] for t in graph["data"] if t["mode"] != "lines"} >= {"fusion",
                                                                          "convolution / dot"}
    assert hlo["lines"] > 0 and not hlo["truncated"] and "conv2" in hlo["text"]
    detail = build_panel("xla_graph", ctx, detail=True).to_dict()
    assert sum(len(t["x"]) for t in detail["data"] if t["mode"] != "lines") == \
        len(store[calls[1]].modules["optimized_hlo"].entry.instructions)


# -- CLI -------------------------------------------------------------------------------------

def test_cli_writes_one_layers_hlo(tmp_path, capsys, sample_path):
    from insight.cli.main import main

    out = tmp_path / "digits.hlo"
    assert main(["xla", str(sample_path("digits_cnn")), "--stage", "hlo", "--layer", "dense1",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("wrote ") and "HLO before optimisation" in said and "dense1" in said
    body = [ln for ln in out.read_text().splitlines() if ln.startswith("  ")]
    assert body and all("dense1" in ln for ln in body)
    assert any(" dot(" in ln for ln in body)


def test_cli_explains_a_model_xla_cannot_compile(uncompilable, capsys):
    from insight.cli.main import main

    rc = main(["xla", str(uncompilable.path), "--custom-objects",
               str(uncompilable.custom_objects_file)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("error: XLA cannot compile the forward pass of 'string_op'")
    assert "AsString" in err[0] and "Received: unsupported ops: AsString" in err[0]


def test_graph_outlines_the_picked_layer(digits):
    from insight.panels import PanelContext, build_panel

    store: dict = {}
    ctx = PanelContext(digits[0], memo=lambda k, f: store[k] if k in store else
                       store.setdefault(k, f()))
    fig = build_panel("xla_graph", ctx, layer="dense1").to_dict()
    nodes = [t for t in fig["data"] if t["mode"] != "lines"]
    outlined = [txt for t in nodes for txt, w in zip(t["text"], t["marker"]["line"]["width"],
                                                      strict=True) if w == 3]
    assert outlined and all("dense1" in txt for txt in outlined)
    assert "dense1's instructions outlined" in fig["layout"]["title"]["text"]


def test_nested_models_and_embeddings(load_sample):
    import insight

    nested = load_sample("nested")
    comp = compile_model(nested, insight.dataset_for(nested).x[:8])
    table = comp.layer_table().set_index("layer")
    inner = [p for p in table.index if p.startswith("backbone/")]
    assert inner and (table.loc[inner, "hlo_before"] > 0).any()
    # the nested model owns its layers' instructions
    assert table.loc["backbone", "hlo_before"] == \
        len(comp.instruction_table("hlo", layer="backbone"))
    rows = comp.instruction_table("hlo", layer="backbone")
    assert len(rows) and rows["layer"].str.startswith("backbone/").all()
    text = load_sample("text_embedding")  # Embedding gradients arrive as IndexedSlices
    ds = insight.dataset_for(text).take(slice(0, 8))
    train = compile_model(text, ds.x, ds.y, function="train")
    assert "gather" in train.op_count_table()["opcode"].tolist()


def test_train_step_of_two_outputs_uses_every_outputs_loss(load_sample):
    """Both heads' losses, weighted as compiled, are in the compiled train step: each head's
    own layers get an SGD update in the HLO, not only the first head's."""
    from insight.data import dataset_for

    loaded = load_sample("multi_io")
    ds = dataset_for(loaded).take(slice(0, 16))
    comp = compile_model(loaded, ds.x, ds.y, function="train")
    assert "digit" in comp.loss and "is_even" in comp.loss
    assert "sparse_categorical_crossentropy" in comp.loss and "binary_crossentropy" in comp.loss
    table = comp.instruction_table("hlo")
    for head in ("digit", "is_even"):
        assert (table["layer"] == head).any(), f"no instruction of the {head} head"
    with pytest.raises(UsageError) as excinfo:  # one label array for two outputs
        compile_model(loaded, ds.x, ds.y["digit"], function="train")
    assert_error(excinfo, UsageError, "2 outputs")


def test_hlo_graph_edges_follow_the_layouts_dummy_points(digits):
    """Edges spanning several ranks run through the layout's dummy points (free slots between
    nodes), never straight across the ranks between their ends, and no edge passes over an
    instruction."""
    from insight.compiler.xla import compile_model as compile_
    from insight.data import dataset_for
    from insight.figures.compiler import HIDDEN_OPCODES, hlo_graph_figure, visible_graph
    from insight.figures.layout import sugiyama_layout

    loaded = digits[0]
    comp = compile_(loaded, dataset_for(loaded).x[:4])
    entry = comp.module("hlo").entry
    shown, edges = visible_graph(entry, HIDDEN_OPCODES)
    layout = sugiyama_layout([i.name for i in shown], edges)
    assert layout.routes, "no edge spans ranks in this graph: the test needs one"
    fig = hlo_graph_figure(entry, title="t", layers=lambda i: []).to_dict()
    lines = next(t for t in fig["data"] if t["mode"] == "lines")
    pts = set(zip(lines["x"], lines["y"], strict=True))
    for route in layout.routes.values():
        assert all((x, r) in pts for x, r in route)
    nodes = [(x, y) for t in fig["data"] if t["mode"] != "lines"
             for x, y in zip(t["x"], t["y"], strict=True)]
    seq = list(zip(lines["x"], lines["y"], strict=True))
    for (x0, y0), (x1, y1) in zip(seq, seq[1:], strict=False):
        if None in (x0, y0, x1, y1):
            continue
        for nx, ny in nodes:
            if min(y0, y1) < ny < max(y0, y1):
                assert abs(x0 + (x1 - x0) * (ny - y0) / (y1 - y0) - nx) > 0.2
