"""The layer graph of big models: the igraph layout and its routed edges, blocks collapsed and
expanded, search, zoom to fit, and one layer's details and weights."""

from __future__ import annotations

import pytest

from insight import preflight
from insight.errors import UsageError
from insight.figures.layout import sugiyama_layout
from insight.figures.model import graph_figure
from insight.model.blocks import COLLAPSE_ABOVE, collapse, find_layers, layer_blocks
from insight.model.details import layer_details
from insight.model.graph import GraphNode, LayerGraph
from insight.panels import PanelContext, build_panel

STAGES, BLOCKS = (1, 2, 3), (1, 2, 3)


def _resnet_layers():
    """`[(name, class, [inputs])]` of a small ResNet: a stem, 3 stages of 3 residual blocks
    (the first with a projection shortcut), a head. 70 layers, skip edges in every block."""
    out = [("image", "InputLayer", []), ("stem_conv", "Conv2D", ["image"])]
    x = "stem_conv"
    for s in STAGES:
        for b in BLOCKS:
            p = f"stage{s}_block{b}"
            shortcut = x
            if b == 1:
                out.append((f"{p}_0_conv", "Conv2D", [x]))
                shortcut = f"{p}_0_conv"
            out += [(f"{p}_1_conv", "Conv2D", [x]), (f"{p}_1_bn", "BatchNormalization",
                                                     [f"{p}_1_conv"]),
                    (f"{p}_1_relu", "Activation", [f"{p}_1_bn"]),
                    (f"{p}_2_conv", "Conv2D", [f"{p}_1_relu"]),
                    (f"{p}_2_bn", "BatchNormalization", [f"{p}_2_conv"]),
                    (f"{p}_add", "Add", [shortcut, f"{p}_2_bn"]),
                    (f"{p}_out", "Activation", [f"{p}_add"])]
            x = f"{p}_out"
    return out + [("gap", "GlobalAveragePooling2D", [x]), ("predictions", "Dense", ["gap"])]


def _resnet_graph() -> LayerGraph:
    layers = _resnet_layers()
    role = {"image": "input", "predictions": "output"}
    return LayerGraph([GraphNode(n, n, c, role=role.get(n, "")) for n, c, _ in layers],
                      [(i, n) for n, _, ins in layers for i in ins])


def _keras_layer(keras, name: str, cls: str):
    if cls == "Conv2D":
        first = name.endswith(("block1_0_conv", "block1_1_conv")) and "stage1" not in name
        return keras.layers.Conv2D(4, 1 if name.endswith("_0_conv") else 3,
                                   strides=2 if first else 1, padding="same", name=name)
    if cls in ("Activation",):
        return keras.layers.Activation("relu", name=name)
    if cls == "Dense":
        return keras.layers.Dense(3, name=name)
    return getattr(keras.layers, cls)(name=name)


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    """The same small ResNet as a Keras model, saved (stride 2 at each stage's first block)."""
    import keras

    made = {}
    for name, cls, ins in _resnet_layers():
        if cls == "InputLayer":
            made[name] = keras.Input((8, 8, 1), name=name)
            continue
        made[name] = _keras_layer(keras, name, cls)(
            [made[i] for i in ins] if cls == "Add" else made[ins[0]])
    model = keras.Model(made["image"], made["predictions"], name="toy_resnet")
    path = tmp_path_factory.mktemp("resnet") / "toy_resnet.keras"
    model.save(path)
    return path, model


# --- the layout --------------------------------------------------------------------------


def test_sugiyama_routes_long_edges_through_free_slots():
    nodes = ["a", "b", "c", "d"]
    lay = sugiyama_layout(nodes, [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")])
    assert [lay.pos[n][1] for n in nodes] == [0, 1, 2, 3]
    route = lay.routes[("a", "d")]
    assert [r for _, r in route] == [1, 2], "one dummy point per rank crossed"
    for x, r in route:
        others = [lay.pos[n][0] for n in nodes if lay.pos[n][1] == r]
        assert all(abs(x - o) >= 1 for o in others), "a dummy has its own slot"
    assert lay.routes.keys() == {("a", "d")}, "edges between adjacent ranks have no route"


def test_layout_centres_x_and_handles_empty_graphs():
    """Positions are `{node: (x, rank)}` with x centred on 0."""
    pos = sugiyama_layout(["a", "b", "c"], [("a", "b"), ("a", "c")]).pos
    assert pos["a"][1] == 0 and pos["b"][1] == pos["c"][1] == 1
    assert pos["b"][0] == -pos["c"][0] != 0
    assert sugiyama_layout([], []).pos == {}


def test_layout_survives_a_cycle():
    lay = sugiyama_layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert sorted(r for _, r in lay.pos.values()) == [0, 1, 2]


def _boxes(fig: dict) -> dict[str, tuple[float, float, float, float]]:
    """`{node id: (x0, y0, x1, y1)}`: the rectangle centred on each node's point."""
    nodes = next(t for t in fig["data"] if t.get("customdata"))
    rects = {((s["x0"] + s["x1"]) / 2, (s["y0"] + s["y1"]) / 2): (s["x0"], s["y0"], s["x1"],
                                                                  s["y1"])
             for s in fig["layout"]["shapes"] if not s["line"].get("dash")}
    return {row[0]: rects[(x, y)]
            for row, x, y in zip(nodes["customdata"], nodes["x"], nodes["y"], strict=True)}


def _segments(fig: dict) -> list[tuple[float, float, float, float]]:
    """Every straight piece of every edge: the polylines of long edges, then the arrows."""
    out = []
    for trace in fig["data"]:
        if trace.get("mode") == "lines":
            pts = list(zip(trace["x"], trace["y"], strict=True))
            out += [(*p, *q) for p, q in zip(pts, pts[1:], strict=False)
                    if None not in p and None not in q]
    out += [(a["ax"], a["ay"], a["x"], a["y"]) for a in fig["layout"]["annotations"]
            if a.get("showarrow")]
    return out


def _crosses(seg: tuple[float, float, float, float], box: tuple[float, float, float, float]
             ) -> bool:
    """Whether a segment enters the inside of a box (Liang-Barsky clipping)."""
    x0, y0, x1, y1 = seg
    bx0, by0, bx1, by1 = box[0] + 1, box[1] + 1, box[2] - 1, box[3] - 1  # the inside
    dx, dy = x1 - x0, y1 - y0
    lo, hi = 0.0, 1.0
    for p, q in ((-dx, x0 - bx0), (dx, bx1 - x0), (-dy, y0 - by0), (dy, by1 - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
        if lo > hi:
            return False
    return True


def _unet_graph() -> LayerGraph:
    """An encoder and a decoder joined by skips that span most of the graph."""
    chain = ["image", "e1", "p1", "e2", "p2", "e3", "p3", "mid", "u3", "c3", "d3", "u2", "c2",
             "d2", "u1", "c1", "d1", "out"]
    edges = list(zip(chain, chain[1:], strict=False)) + [("e3", "c3"), ("e2", "c2"),
                                                         ("e1", "c1")]
    return LayerGraph([GraphNode(n, n, "Conv2D") for n in chain], edges)


@pytest.mark.parametrize("make", [_resnet_graph, _unet_graph], ids=["resnet", "unet"])
def test_no_edge_crosses_a_box(make):
    graph = make()
    fig = graph_figure(graph).to_dict()
    boxes, segments = _boxes(fig), _segments(fig)
    assert any(t.get("mode") == "lines" for t in fig["data"]), "skip edges are routed"
    assert len([a for a in fig["layout"]["annotations"] if a.get("showarrow")]) == len(
        graph.edges), "one arrowhead per edge"
    crossing = [(s, n) for s in segments for n, b in boxes.items() if _crosses(s, b)]
    assert crossing == []


def test_straight_skips_would_cross_boxes():
    """The check above catches a U-Net's skips drawn straight, bottom to top."""
    graph = _unet_graph()
    boxes = _boxes(graph_figure(graph).to_dict())
    mid = {n: ((b[0] + b[2]) / 2, b[1], b[3]) for n, b in boxes.items()}  # x, bottom, top
    straight = {(a, b): (mid[a][0], mid[a][1], mid[b][0], mid[b][2]) for a, b in graph.edges}
    assert any(_crosses(s, box) for (a, b), s in straight.items() for n, box in boxes.items()
               if n not in (a, b))


# --- blocks ------------------------------------------------------------------------------


def test_blocks_are_a_tree_of_name_prefixes():
    graph = _resnet_graph()
    blocks = {b.id: b for b in layer_blocks(graph)}
    assert set(blocks) == {f"stage{s}" for s in STAGES} | {
        f"stage{s}_block{b}" for s in STAGES for b in BLOCKS}
    assert blocks["stage2"].parent == "" and blocks["stage2_block3"].parent == "stage2"
    assert blocks["stage2_block1"].layers[0] == "stage2_block1_0_conv"
    assert len(blocks["stage2_block1"].layers) == 8 and blocks["stage2_block1"].label == \
        "stage2_block1_*"
    ids = list(blocks)
    assert ids.index("stage3") < ids.index("stage1_block1"), "outer blocks first"


def test_keras_default_names_and_interleaved_prefixes_are_not_blocks():
    names = ["x", "dense", "dense_1", "dense_2", "dense_3", "a1_p", "b1_q", "a1_r", "a1_s",
             "a1_t"]
    graph = LayerGraph([GraphNode(n, n, "Dense") for n in names],
                       list(zip(names, names[1:], strict=False)))
    assert layer_blocks(graph) == []  # dense_*: Keras' names; a1_*: b1_q sits inside it


def test_collapse_opens_blocks_and_their_parents():
    graph = _resnet_graph()
    blocks = layer_blocks(graph)
    shut = collapse(graph, blocks)
    assert [n.id for n in shut.nodes] == ["image", "stem_conv", "stage1", "stage2", "stage3",
                                          "gap", "predictions"]
    assert shut.edges == [("image", "stem_conv"), ("stem_conv", "stage1"),
                          ("stage1", "stage2"), ("stage2", "stage3"), ("stage3", "gap"),
                          ("gap", "predictions")]
    stage = next(n for n in shut.nodes if n.id == "stage2")
    assert (stage.kind, stage.layers, stage.class_name) == ("block", 22, "Block")
    opened = collapse(graph, blocks, expand=["stage2_block1"])
    ids = [n.id for n in opened.nodes]
    assert "stage2" not in ids and "stage2_block1_add" in ids
    assert {"stage1", "stage2_block2", "stage2_block3", "stage3"} <= set(ids)
    assert ("stage2_block1_out", "stage2_block2") in opened.edges
    with pytest.raises(UsageError, match=r"No such block: 'nope'\. The blocks are: stage1, "):
        collapse(graph, blocks, expand=["nope"])


def test_blocks_that_feed_each_other_are_not_both_collapsed():
    """a1_* and b1_* are each convex, but a1 feeds b1 and b1 feeds a1: collapsing both would
    make a cycle, so one stays open."""
    edges = [("x", "a1_p"), ("a1_p", "b1_p"), ("a1_p", "a1_r"), ("b1_p", "b1_r"),
             ("x", "b1_q"), ("b1_q", "a1_q"), ("a1_q", "a1_s"), ("b1_q", "b1_s")]
    names = list(dict.fromkeys(n for e in edges for n in e))
    graph = LayerGraph([GraphNode(n, n, "Dense") for n in names], edges)
    blocks = layer_blocks(graph)
    assert [b.id for b in blocks] == ["a1", "b1"]
    shut = collapse(graph, blocks)
    assert [n.kind for n in shut.nodes].count("block") == 1
    pos = sugiyama_layout([n.id for n in shut.nodes], shut.edges).pos
    assert all(pos[a][1] < pos[b][1] for a, b in shut.edges), "acyclic: every edge goes down"


def test_nested_model_collapses_into_one_box(sample_path):
    from insight.model.graph import layer_graph

    graph = layer_graph(preflight(sample_path("nested")).config)
    blocks = layer_blocks(graph)
    assert [(b.id, b.kind) for b in blocks] == [("backbone", "model")]
    shut = collapse(graph, blocks)
    box = next(n for n in shut.nodes if n.id == "backbone")
    assert (box.kind, box.class_name, box.layers) == ("model", "Sequential", 5)
    assert shut.clusters == {} and ("image", "backbone") in shut.edges
    assert collapse(graph, blocks, ["backbone"]).clusters == graph.clusters


def test_find_layers_best_first():
    graph = _resnet_graph()
    assert find_layers(graph, "stage2_block1_add") == ["stage2_block1_add"]
    assert find_layers(graph, "GAP") == ["gap"]
    assert find_layers(graph, "block3_out")[:1] == ["stage1_block3_out"]
    assert find_layers(graph, "  ") == [] and find_layers(graph, "zzz") == []


# --- the figure: zoom to fit, search -------------------------------------------------------


def test_small_chain_draws_as_before(sample_path):
    """digits_cnn's graph is the Overview's e2e pixel baseline: one column, straight arrows,
    full-size boxes, its height unchanged."""
    fig = build_panel("layer_graph", PanelContext(preflight=preflight(
        sample_path("digits_cnn")))).to_dict()
    nodes = fig["data"]
    assert len(nodes) == 1 and nodes[0]["mode"] == "markers+text"
    assert set(nodes[0]["x"]) == {0.0} and nodes[0]["y"] == [-100.0 * i for i in range(8)]
    assert fig["layout"]["height"] == 836 and fig["layout"]["yaxis"]["range"] == [-738, 38]
    assert [a for a in fig["layout"]["annotations"] if not a.get("showarrow")] == []
    assert nodes[0]["textfont"]["size"] == 11


def test_tall_graph_fits_the_frame():
    graph = _resnet_graph()  # 70 layers, every block open: about 58 rows
    fig = graph_figure(graph).to_dict()
    bottom, top = fig["layout"]["yaxis"]["range"]
    ys = [y for y in _boxes(fig).values() for y in (y[1], y[3])]
    assert bottom <= min(ys) and top >= max(ys), "the whole graph is in view"
    assert fig["layout"]["height"] <= 1500
    nodes = fig["data"][-1]
    assert nodes["textfont"]["size"] < 11 and "<br>" not in nodes["text"][0], "names only"
    scrolled = graph_figure(graph, fit=False).to_dict()
    assert scrolled["layout"]["yaxis"]["range"][1] - scrolled["layout"]["yaxis"]["range"][0] \
        < top - bottom
    assert "drag to pan" in scrolled["layout"]["annotations"][-1]["text"]


def test_search_highlights_and_centres():
    graph = _resnet_graph()
    fig = graph_figure(graph, highlight=("stage3_block2_add",),
                       centre_on="stage3_block2_add").to_dict()
    box = _boxes(fig)["stage3_block2_add"]
    bottom, top = fig["layout"]["yaxis"]["range"]
    assert bottom < box[1] and box[3] < top and abs((bottom + top) / 2 - (box[1] + box[3]) / 2) \
        < 1, "centred"
    assert top - bottom <= 14 * 100 + 20 + 1, "at full size, not the whole graph"
    red = [s for s in fig["layout"]["shapes"] if s["line"]["color"] == "#d62728"]
    assert [(s["x0"], s["y0"]) for s in red] == [(box[0], box[1])]


# --- the panels -----------------------------------------------------------------------------


def _node_rows(fig) -> dict[str, list]:
    return {row[0]: row for t in fig.data if t.customdata is not None for row in t.customdata}


def test_layer_graph_panel_collapses_big_models(resnet_file):
    path, _ = resnet_file
    ctx = PanelContext(preflight=preflight(path))
    assert len(_resnet_layers()) > COLLAPSE_ABOVE
    rows = _node_rows(build_panel("layer_graph", ctx))
    assert list(rows) == ["image", "stem_conv", "stage1", "stage2", "stage3", "gap",
                          "predictions"]
    assert rows["stage1"][5] == "block"
    rows = _node_rows(build_panel("layer_graph", ctx, expand="stage2_block1"))
    assert "stage2_block1_1_conv" in rows and "stage2_block2" in rows and "stage2" not in rows
    assert len(_node_rows(build_panel("layer_graph", ctx, blocks="expanded"))) == 70
    fig = build_panel("layer_graph", ctx, search="stage3_block2_add")
    rows = _node_rows(fig)
    assert "stage3_block2_add" in rows and "stage1" in rows, "only the hit's block opens"
    assert any(s.line.color == "#d62728" for s in fig.layout.shapes)
    fig = build_panel("layer_graph", ctx, search="zzz")
    assert "no layer matches 'zzz'" in [a.text for a in fig.layout.annotations]
    with pytest.raises(UsageError, match="No such block"):
        build_panel("layer_graph", ctx, expand="stage9")


def test_small_models_stay_open_unless_asked(sample_path):
    ctx = PanelContext(preflight=preflight(sample_path("nested")))
    assert "backbone/conv1" in _node_rows(build_panel("layer_graph", ctx))
    rows = _node_rows(build_panel("layer_graph", ctx, blocks="collapsed"))
    assert rows["backbone"][5] == "model" and "backbone/conv1" not in rows


def test_layer_details_from_the_file(resnet_file):
    path, model = resnet_file
    config = preflight(path).config
    card = layer_details(config, "stage2_block1_0_conv")
    assert card["class"] == "Conv2D"
    assert (card["kernel_size"], card["strides"], card["padding"]) == ("(1, 1)", "(2, 2)",
                                                                      "same")
    assert (card["filters"], card["dtype"], card["activation"]) == (4, "float32", "linear")
    assert card["kernel_initializer"] == "GlorotUniform"
    assert card["inputs"] == "stage1_block3_out" and card["outputs"] == "stage2_block1_add"
    assert card["params"] == "not loaded" and "weights" not in card
    loaded = layer_details(config, "stage2_block1_1_bn", model=model)
    assert [(w["name"], w["shape"], w["dtype"], w["trainable"]) for w in loaded["weights"]] == [
        ("stage2_block1_1_bn/gamma", "(4,)", "float32", True),
        ("stage2_block1_1_bn/beta", "(4,)", "float32", True),
        ("stage2_block1_1_bn/moving_mean", "(4,)", "float32", False),
        ("stage2_block1_1_bn/moving_variance", "(4,)", "float32", False)]
    assert loaded["params"] == 16 and loaded["weights"][0]["mean"] == 1.0
    with pytest.raises(UsageError, match=r"No such layer: 'conv9'\. Existing layers are: image"):
        layer_details(config, "conv9")


def test_layer_details_and_weights_panels(load_sample):
    ctx = PanelContext(load_sample("digits_cnn"))
    card = build_panel("layer_details", ctx, layer="conv1")
    assert card["params"] == 80 and card["output_shape"] == "(None, 8, 8, 8)"
    assert [(w["name"], w["shape"]) for w in card["weights"]] == [
        ("conv1/kernel", "(3, 3, 1, 8)"), ("conv1/bias", "(8,)")]
    assert build_panel("layer_details", ctx)["layer"] == "conv1", "default: first layer"
    fig = build_panel("layer_weights_histogram", ctx, layer="conv1")
    assert [t.name for t in fig.data] == ["kernel (72 values)", "bias (8 values)"]
    fig = build_panel("layer_weights_histogram", ctx, layer="flatten")
    assert "has no weights" in fig.layout.annotations[0].text
    with pytest.raises(UsageError, match="No such layer: 'nope'"):
        build_panel("layer_weights_histogram", ctx, layer="nope")
    static = build_panel("layer_details", PanelContext(preflight=ctx.preflight), layer="conv1")
    assert static["kernel_size"] == "(3, 3)" and "weights" not in static


def test_graph_choices_for_the_page_widgets(resnet_file, sample_path):
    from insight.panels.model import graph_choices

    blocks, layers = graph_choices(PanelContext(preflight=preflight(resnet_file[0])))
    assert blocks[:3] == ["stage1", "stage2", "stage3"] and "stage2_block1" in blocks
    assert sorted(layers) == sorted(n for n, _, _ in _resnet_layers())
    blocks, layers = graph_choices(PanelContext(preflight=preflight(sample_path("nested"))))
    assert blocks == [] and "backbone/conv1" in layers, "small graphs open: nothing to expand"


def test_param_chart_sums_blocks_of_big_models(resnet_file):
    import insight

    loaded = insight.load_model(resnet_file[0])
    ctx = PanelContext(loaded)
    fig = build_panel("param_chart", ctx)  # 70 layers: above the threshold, one bar per stage
    bars = [y for t in fig.data for y in t.y]
    assert "stage2" in bars and "stage2_block1_1_conv" not in bars
    assert len(bars) < 10 and fig.layout.height < 600
    per_layer = build_panel("param_chart", ctx, by="layer")
    assert len([y for t in per_layer.data for y in t.y]) == 70  # every row of the layer table
    assert per_layer.layout.height <= 1200
    total = sum(x for t in fig.data for x in t.x)
    assert total == sum(x for t in per_layer.data for x in t.x) == loaded.model.count_params()
    small = build_panel("param_chart", PanelContext(insight.load_model(
        resnet_file[0])), by="block")
    assert [y for t in small.data for y in t.y] == bars
