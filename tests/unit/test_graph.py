"""The layer graph: chains, branches, nested clusters, subclassed models, the figure."""

from __future__ import annotations

from collections import Counter

import plotly.graph_objects as go
import pytest

from insight import layer_table, preflight
from insight.figures.model import graph_figure
from insight.model.graph import layer_graph


def _details(loaded):
    """`{layer_path: (output_shape, params)}` of a loaded model, as the Overview passes it."""
    table = layer_table(loaded)
    return dict(zip(table["layer"], zip(table["output_shape"], table["params"], strict=True),
                    strict=True))


def _file_graph(sample_path, name):
    return layer_graph(preflight(sample_path(name)).config)


def _check_consistent(graph):
    ids = [n.id for n in graph.nodes]
    assert len(ids) == len(set(ids)), "node ids are unique"
    for src, dst in graph.edges:
        assert src in ids and dst in ids, (src, dst)
    assert len(graph.edges) == len(set(graph.edges)), "no duplicate edges"
    for node in graph.nodes:
        assert node.role in ("", "input", "output")
        if node.cluster:
            assert node.cluster in graph.clusters
            assert node.id.startswith(node.cluster + "/")


@pytest.mark.parametrize("name", ["digits_cnn", "digits_cnn_h5", "text_embedding"])
def test_chain(sample_path, name):
    graph = _file_graph(sample_path, name)
    assert graph.known and graph.reason == ""
    _check_consistent(graph)
    assert len(graph.nodes) > 2
    assert len(graph.edges) == len(graph.nodes) - 1
    ids = [n.id for n in graph.nodes]
    assert graph.edges == list(zip(ids, ids[1:], strict=False)), "one straight chain in order"
    assert [n.role for n in graph.nodes if n.role] == ["input", "output"]
    assert graph.nodes[0].role == "input" and graph.nodes[-1].role == "output"
    assert graph.nodes[0].class_name == "InputLayer"
    assert graph.clusters == {}


def test_digits_cnn_graph_nodes(sample_path, load_sample):
    graph = _file_graph(sample_path, "digits_cnn")
    assert [n.id for n in graph.nodes][1:] == [
        "conv1", "pool1", "conv2", "flatten", "dense1", "dropout", "predictions"]
    assert graph.nodes[0].shape == "(None, 8, 8, 1)"
    assert all(n.params is None for n in graph.nodes), "no parameter counts before loading"
    # the .h5 copy of the same model draws the same graph
    h5 = _file_graph(sample_path, "digits_cnn_h5")
    assert [(n.id, n.class_name) for n in h5.nodes] == [(n.id, n.class_name)
                                                        for n in graph.nodes]
    assert h5.edges == graph.edges


def test_details_fill_shapes_and_params(sample_path, load_sample):
    loaded = load_sample("digits_cnn")
    graph = layer_graph(loaded.preflight.config, _details(loaded))
    by_id = {n.id: n for n in graph.nodes}
    assert (by_id["conv1"].class_name, by_id["conv1"].params) == ("Conv2D", 80)
    assert by_id["predictions"].shape == "(None, 10)"
    assert all(n.shape != "?" for n in graph.nodes)
    assert sum(n.params or 0 for n in graph.nodes) == 3658


@pytest.mark.parametrize("name", ["digits_cnn", "nested"])
def test_loaded_graph_has_every_parameter_count(load_sample, name):
    """Once the model is loaded, no box says "not loaded". A Sequential's InputLayer has no
    row in the layer table, but it has 0 parameters, not an unknown number."""
    from insight.panels import PanelContext, build_panel

    fig = build_panel("layer_graph", PanelContext(load_sample(name)))
    assert [row[0] for row in fig.data[0].customdata if row[3] == "not loaded"] == []


def test_multi_io(sample_path):
    graph = _file_graph(sample_path, "multi_io")
    assert graph.known
    _check_consistent(graph)
    roles = {n.id: n.role for n in graph.nodes}
    assert sorted(i for i, r in roles.items() if r == "input") == ["image", "stats"]
    assert sorted(i for i, r in roles.items() if r == "output") == ["digit", "is_even"]
    incoming = Counter(dst for _, dst in graph.edges)
    merges = [n for n in graph.nodes if n.class_name == "Concatenate"]
    assert len(merges) == 1
    merge = merges[0]
    assert incoming[merge.id] == 2
    assert sorted(src for src, dst in graph.edges if dst == merge.id) == [
        "image_flatten", "stats_dense"]
    outgoing = Counter(src for src, _ in graph.edges)
    assert outgoing["shared_dense"] == 2  # feeds both heads
    for node in graph.nodes:
        if node.role == "input":
            assert incoming[node.id] == 0
        if node.role == "output":
            assert outgoing[node.id] == 0


def test_nested_cluster(sample_path):
    graph = _file_graph(sample_path, "nested")
    assert graph.known
    _check_consistent(graph)
    assert "backbone" in graph.clusters
    assert graph.clusters["backbone"].startswith("backbone (Sequential")
    inner = [n for n in graph.nodes if n.cluster == "backbone"]
    assert len(inner) >= 4
    assert all(n.id.startswith("backbone/") for n in inner)
    assert {"backbone/conv1", "backbone/conv2"} <= {n.id for n in inner}
    assert "backbone" not in {n.id for n in graph.nodes}, "a cluster is not also a node"
    # the outer graph enters and leaves the cluster
    assert any(not s.startswith("backbone/") and d.startswith("backbone/")
               for s, d in graph.edges)
    assert any(s.startswith("backbone/") and not d.startswith("backbone/")
               for s, d in graph.edges)
    assert [n.id for n in graph.nodes if n.role == "input"] == ["image"]
    assert [n.id for n in graph.nodes if n.role == "output"] == ["predictions"]


def test_nested_multi_input_model_is_wired_by_position():
    """Each outer tensor goes to the inner input it is passed as, not to every inner input."""
    import keras

    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    inner = keras.Model([a, b], keras.layers.Subtract(name="sub")([a, b]), name="inner")
    x1, x2 = keras.Input((3,), name="x1"), keras.Input((3,), name="x2")
    outer = keras.Model([x1, x2], inner([x1, x2]), name="outer")
    graph = layer_graph({"class_name": "Functional", "config": outer.get_config()})
    _check_consistent(graph)
    assert sorted(graph.edges) == sorted([
        ("x1", "inner/a"), ("x2", "inner/b"), ("inner/a", "inner/sub"), ("inner/b", "inner/sub"),
    ])


def test_subclassed_graph_unknown(sample_path):
    graph = _file_graph(sample_path, "subclassed")
    assert graph.known is False
    assert "subclassed" in graph.reason
    assert "DigitsMLP" in graph.reason
    assert graph.nodes == [] and graph.edges == []


def test_graph_of_a_refused_file_from_its_config(model_files):
    """The graph is read from the config, so a Lambda model shows without being loaded."""
    graph = layer_graph(preflight(model_files.lambda_keras).config)
    assert [(n.id, n.class_name, n.role) for n in graph.nodes] == [
        ("x", "InputLayer", "input"), ("double", "Lambda", "output")]
    assert graph.edges == [("x", "double")]


def _arrows(fig):
    return [a for a in fig.layout.annotations if a.showarrow]


@pytest.mark.parametrize("name", ["digits_cnn", "multi_io", "nested", "text_embedding"])
def test_graph_figure(sample_path, name):
    graph = _file_graph(sample_path, name)
    fig = graph_figure(graph, title=f"Layer graph: {name}")
    assert isinstance(fig, go.Figure)
    scatter = [t for t in fig.data if t.type == "scatter"]
    assert len(scatter) == 1
    assert [row[0] for row in scatter[0].customdata] == [n.id for n in graph.nodes]
    assert len(fig.layout.shapes) == len(graph.nodes) + len(graph.clusters)
    assert len(_arrows(fig)) == len(graph.edges)
    labels = {a.text for a in fig.layout.annotations if not a.showarrow}
    for label in graph.clusters.values():
        assert label in labels
    assert fig.layout.title.text == f"Layer graph: {name}"
    fig.to_dict()  # serializable


def test_graph_figure_of_unknown_graph_says_why(sample_path):
    fig = graph_figure(_file_graph(sample_path, "subclassed"))
    assert len(fig.data) == 0
    text = " ".join(a.text for a in fig.layout.annotations)
    assert "subclassed" in text
