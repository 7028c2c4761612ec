"""The Embeddings page under AppTest: a layer's outputs and an Embedding's weights."""

from __future__ import annotations

import json

from plotly.utils import PlotlyJSONEncoder
from streamlit.testing.v1 import AppTest

from insight.model.samples import get_sample
from insight.ui.cache import ModelRef
from insight.ui.scatter_component import HELD_PREFIX
from insight.ui.scatter_component.wire import unpack
from insight.ui.shell import PAGE_DIR

PAGE = PAGE_DIR / "embeddings.py"


def _page(sample: str) -> AppTest:
    s = get_sample(sample)
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["insight_ref"] = ModelRef(str(s.model))
    at.session_state["insight_data"] = str(s.data) if s.data else None
    at.session_state["insight_logdir"] = None
    return at.run()


def _figures(at: AppTest) -> list[dict]:
    """The figures the page's scatters draw, decoded as the browser would. A chart sends only
    what its page does not hold yet, so the page is run again as if opened afresh."""
    for chart in at.get("bidi_component"):
        key = json.loads(chart.proto.bytes[4:4 + int.from_bytes(chart.proto.bytes[:4],
                                                                  "little")])["key"]
        at.session_state[HELD_PREFIX + key] = frozenset()
    at.run()
    return [unpack(chart.proto.bytes, {}) for chart in at.get("bidi_component")]


def _figure(at: AppTest) -> dict:
    return _figures(at)[0]


def test_layer_projection_every_point_coloured_by_label():
    at = _page("digits_cnn")
    assert not at.exception and not at.error
    fig = _figure(at)
    assert "all 1,797 points" in fig["layout"]["title"]["text"]
    assert {t["name"] for t in fig["data"]} == {str(i) for i in range(10)}
    assert sum(len(t["customdata"]) for t in fig["data"]) == 1797


def test_selected_point_lists_neighbours_and_search_fades_others():
    at = _page("digits_cnn")
    key = f"proj_point|{get_sample('digits_cnn').model}|layer|0"
    at.session_state[key] = 5
    at.text_input(key=f"proj_search|{get_sample('digits_cnn').model}").input("9").run()
    assert not at.exception and not at.error
    table = at.dataframe[-1].value
    assert len(table) == 10 and 5 not in table["index"].tolist()
    assert table["distance"].is_monotonic_increasing
    fig = _figure(at)
    assert fig["data"][-1]["name"] == "selected + neighbours"


def test_embedding_weights_with_vocabulary_in_3d():
    at = _page("text_embedding")
    at.selectbox(key=f"proj_source|{get_sample('text_embedding').model}").set_value(
        "embedding").run()
    at.selectbox(key=f"proj_dims|{get_sample('text_embedding').model}").set_value(3)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error
    fig = _figure(at)
    assert fig["data"][0]["type"] == "scatter3d"
    assert "502 tokens" in fig["layout"]["title"]["text"]


def test_compare_two_layers_side_by_side():
    at = _page("digits_cnn")
    model = get_sample("digits_cnn").model
    at.selectbox(key=f"proj_compare|{model}").set_value("conv2").run()
    assert not at.exception and not at.error
    titles = [fig["layout"]["title"]["text"] for fig in _figures(at)]
    assert len(titles) == 2
    assert "layer dropout" in titles[0] and "layer conv2" in titles[1]
    assert all("all 1,797 points" in t for t in titles)


def test_sampling_says_so_and_clicked_point_shows_beside_the_plot():
    at = _page("digits_cnn")
    model = get_sample("digits_cnn").model
    at.number_input(key=f"proj_sample|{model}").set_value(500)
    at.button[0].click().run()
    assert not at.exception and not at.error
    fig = _figure(at)
    assert "a random sample of 500 of 1,797 points (seed 0)" in fig["layout"]["title"]["text"]
    assert sum(len(t["customdata"]) for t in fig["data"]) == 500
    assert any("Sampling is on" in c.value for c in at.caption)
    at.session_state[f"proj_point|{model}|layer|0"] = 1352  # chosen on all points: not shown
    at.session_state[f"proj_point|{model}|layer|500"] = 7
    at.run()
    assert not at.exception and not at.error
    side = json.loads(at.get("plotly_chart")[0].proto.spec)  # the scatter is a component
    title = side["layout"]["title"]["text"]
    assert title.startswith("Point 7<br>row: ") and "label: " in title
    assert side["data"][0]["type"] == "heatmap"  # the input image


def test_vectors_file_typed_in_is_projected(tmp_path):
    """The file source's paths reach the panels through a context built with them
    (`vectors_files`), not one changed after the fact."""
    import numpy as np

    np.save(tmp_path / "vectors.npy", np.random.default_rng(0).normal(size=(40, 6)))
    (tmp_path / "meta.tsv").write_text("".join(f"w{i}\n" for i in range(40)))  # no header
    at = _page("digits_cnn")
    model = get_sample("digits_cnn").model
    at.selectbox(key=f"proj_source|{model}").set_value("file").run()
    assert not at.exception
    assert any("No vectors file given" in e.value for e in at.error)
    at.text_input(key="proj_vectors_path").input(str(tmp_path / "vectors.npy"))
    at.text_input(key="proj_metadata_path").input(str(tmp_path / "meta.tsv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    fig = _figure(at)
    assert "all 40 points" in fig["layout"]["title"]["text"]
    assert "w7" in json.dumps(fig["data"], cls=PlotlyJSONEncoder)


def test_controls_take_choices_defaults_and_help_from_the_schema():
    from insight.ui.widgets import param_of

    at = _page("digits_cnn")
    model = get_sample("digits_cnn").model
    method = at.selectbox(key=f"proj_method|{model}")
    assert method.options == ["PCA", "UMAP", "t-SNE"] and method.value == "pca"
    shown = {w.key.split("|")[0] for w in at.number_input}
    assert shown == {"proj_sample"}  # PCA has no settings: none of UMAP's or t-SNE's shown
    sample = at.number_input(key=f"proj_sample|{model}")
    assert (sample.value, sample.step) == (0, 1000)
    assert sample.help == param_of("projection", "sample").help
    sample.set_value(300)  # UMAP and t-SNE below on 300 points, not 1,797: seconds less
    next(b for b in at.button if b.label == "Project").click().run()
    assert at.number_input(key=f"proj_sample|{model}").value == 300
    method = at.selectbox(key=f"proj_method|{model}")
    method.set_value("umap").run()
    assert {w.key.split("|")[0] for w in at.number_input} == {"proj_nn", "proj_md",
                                                              "proj_sample"}
    nn = at.number_input(key=f"proj_nn|{model}")
    assert (nn.value, nn.min, nn.max) == (15, 2, 200)
    md = at.number_input(key=f"proj_md|{model}")
    assert (md.value, md.min, md.max, md.step) == (0.1, 0.0, 1.0, 0.05)
    at.selectbox(key=f"proj_method|{model}").set_value("tsne").run()
    assert {w.key.split("|")[0] for w in at.number_input} == {"proj_px", "proj_sample"}
    assert at.number_input(key=f"proj_px|{model}").value == 30.0
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key=f"proj_layer|{model}").value == "dropout"  # the last hidden one
    source = at.selectbox(key=f"proj_source|{model}")
    assert source.options == ["A layer's outputs", "A vectors file"]


def test_two_output_model_projects_the_layer_before_both_heads_with_pca_axes():
    at = _page("multi_io")
    model = get_sample("multi_io").model
    assert not at.exception and not at.error
    # digit and is_even are both outputs: the default is the layer that feeds them.
    assert at.selectbox(key=f"proj_layer|{model}").value == "shared_dense"
    fig = _figure(at)
    assert "layer shared_dense" in fig["layout"]["title"]["text"]
    x, y = fig["layout"]["xaxis"], fig["layout"]["yaxis"]
    assert x["title"]["text"].startswith("PC1 (") and x["title"]["text"].endswith(
        "% of variance)")
    assert y["title"]["text"].startswith("PC2 (")
    assert x["showticklabels"] and x["exponentformat"] == "e"


def test_unlabelled_data_offers_no_label_colour():
    at = _page("nested")  # synthetic inputs: no labels
    model = get_sample("nested").model
    assert not at.exception and not at.error, [e.value for e in at.error]
    colour = at.selectbox(key=f"proj_color|{model}|layer")
    assert "label" not in colour.options and "correct" not in colour.options
    assert colour.value == "predicted"
    assert at.get("bidi_component")
