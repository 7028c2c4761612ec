"""Figures of the Activations and Gradients pages at real-model sizes, checked from
`fig.to_dict()`: heights that stay bounded, rows on their own scales, axis labels that do not
pile up, numbers written as 1e-12 (never SI's "1p"), kernels and biases apart, subplot titles
that fit their columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insight import load_model
from insight.figures.activations import (
    RIDGE_HEIGHT,
    RIDGE_ROW_PX,
    feature_maps_figure,
    ridge_figure,
    values_figure,
)
from insight.figures.gradients import (
    MAX_LAYER_TICKS,
    AttributionPart,
    attribution_figure,
    gradient_norms_figure,
    histograms_figure,
)
from insight.panels import PanelContext, build_panel
from insight.panels.activations import RIDGE_ROWS

SCALES = [1.0, 1e-3, 1e-7, 1e-12]  # a model whose activations shrink with depth


def _hists(n: int):
    rng = np.random.default_rng(0)
    out = {}
    for i in range(n):
        scale = SCALES[i % len(SCALES)]
        values = rng.normal(size=500) * scale
        out[f"layer_{i}"] = np.histogram(values, bins=32,
                                         range=(values.min() * 1.1, values.max() * 1.1))
    return out


def test_ridge_rows_each_on_their_own_scale():
    fig = ridge_figure(_hists(8))
    for trace in fig.data:  # every row spans the width, whatever its units
        assert trace.x.min() == pytest.approx(0.0) and trace.x.max() == pytest.approx(1.0)
        values = trace.customdata[:, 0]  # the hover shows the real values
        assert values.max() > values.min()
    ranges = [a.text for a in fig.layout.annotations]  # each row's range, at its right
    assert len(ranges) == 8 and "e-12" in ranges[3] and "e-7" in ranges[2]
    assert "p" not in ranges[3] and not fig.layout.xaxis.showticklabels


def test_ridge_height_is_bounded_then_rows_stay_readable():
    few = ridge_figure(_hists(7)).layout.height
    capped = ridge_figure(_hists(RIDGE_ROWS)).layout.height
    assert few <= RIDGE_HEIGHT + 150 and capped <= RIDGE_HEIGHT + 150
    assert capped >= RIDGE_ROWS * RIDGE_ROW_PX[0]
    every = ridge_figure(_hists(155)).layout.height  # every layer: for a scrolling frame
    assert every == RIDGE_ROW_PX[0] * 155 + 150


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    """15 blocks of 4 named layers (block_{i}_dense, _bn, _relu, _out): 61 layers."""
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, name="stem")(x)
    for i in range(1, 16):
        d = keras.layers.Dense(8, name=f"block_{i}_dense")(h)
        d = keras.layers.BatchNormalization(name=f"block_{i}_bn")(d)
        d = keras.layers.ReLU(name=f"block_{i}_relu")(d)
        h = keras.layers.Add(name=f"block_{i}_out")([h, d])
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(h)
    path = tmp_path_factory.mktemp("deep") / "deep.keras"
    keras.Model(x, out, name="deep").save(path)
    return load_model(path)


def test_ridge_of_a_big_model_shows_one_row_per_block(deep):
    ctx = PanelContext(deep)
    fig = build_panel("activation_ridge", ctx)
    names = [t.name for t in fig.data]
    assert names == ["stem", *[f"block_{i}_out" for i in range(1, 16)], "predictions"]
    labels = list(fig.layout.yaxis.ticktext)
    assert labels[1].startswith("block_1_* → out") and labels[0] == "stem"
    assert fig.layout.height <= RIDGE_HEIGHT + 150
    assert "one row per block (17 rows for 62 layers)" in fig.layout.title.text
    every = build_panel("activation_ridge", ctx, by="layer")
    assert len(every.data) == 62 > RIDGE_ROWS
    blocks = build_panel("activation_ridge", ctx, by="block")
    assert [t.name for t in blocks.data] == names


def test_ridge_of_a_small_model_has_every_layer(load_sample):
    fig = build_panel("activation_ridge", PanelContext(load_sample("digits_cnn")), by="block")
    assert [t.name for t in fig.data][:3] == ["conv1", "pool1", "conv2"]  # no blocks there


def test_gradient_norm_labels_are_thinned():
    layers = [f"block_{i // 9}_layer_{i % 9}" for i in range(155)]
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"layer": layers, "weight_norm": rng.uniform(1, 10, 155),
                          "weight_grad_norm": 10.0 ** rng.uniform(-21, -1, 155),
                          "activation_grad_norm": 10.0 ** rng.uniform(-21, -1, 155)})
    fig = gradient_norms_figure(table).to_dict()
    x = fig["layout"]["xaxis"]
    assert len(x["tickvals"]) <= MAX_LAYER_TICKS + 1
    assert x["tickvals"][0] == layers[0] and x["tickvals"][-1] == layers[-1]
    assert x["tickangle"] == -90 and "every 5th named" in x["title"]["text"]
    assert x["categoryarray"] == layers  # every layer still plotted
    y = fig["layout"]["yaxis"]
    assert y["exponentformat"] == "e"
    assert y["dtick"] >= 2  # 23 decades: a label every other decade at least
    few = table.head(5).assign(weight_grad_norm=1e-3, activation_grad_norm=1e-4)
    small = gradient_norms_figure(few).to_dict()["layout"]
    assert small["xaxis"]["tickvals"] == layers[:5] and small["yaxis"]["dtick"] == 1


def test_no_si_prefixes_on_small_numbers():
    tiny = np.random.default_rng(0).normal(size=(4, 4, 3)) * 1e-12
    for fig in (feature_maps_figure(tiny, title="t"),
                values_figure(np.array([1e-12, 3e-12]), ["a", "b"], title="t"),
                histograms_figure([("w", {"k": tiny.ravel()})], title="t")):
        d = fig.to_dict()
        for key, axis in d["layout"].items():
            if key.startswith(("xaxis", "yaxis")):
                assert axis.get("exponentformat") == "e", key
        for trace in d["data"]:
            if trace["type"] == "heatmap":
                assert trace["colorbar"]["exponentformat"] == "e"


def test_kernel_and_bias_each_get_their_own_histogram():
    rng = np.random.default_rng(0)
    weights = {"dense/kernel": rng.normal(0, 0.1, 4096), "dense/bias": np.zeros(32)}
    grads = {"dense/kernel": rng.normal(0, 1e-3, 4096), "dense/bias": rng.normal(0, 1, 32)}
    fig = histograms_figure([("weights", weights), ("gradients", grads)], title="t")
    d = fig.to_dict()
    assert len({t.xaxis for t in fig.data}) == 4  # kernel, bias x weights, gradients
    kernel = fig.data[0]
    assert kernel.y.max() < 0.2  # not flattened under a bias spike of 100%
    x = kernel.x  # steps from the smallest value to the largest
    assert x.min() == pytest.approx(weights["dense/kernel"].min())
    assert x.max() == pytest.approx(weights["dense/kernel"].max())
    lo, hi = d["layout"]["xaxis"]["range"]
    assert lo < x.min() and hi > x.max()  # the outer bins are not cut by the frame
    notes = [a["text"] for a in d["layout"]["annotations"]]
    assert "all 32 values are 0" in notes and "4,096 values" in notes
    assert [d["layout"][k]["title"]["text"] for k in ("yaxis", "yaxis3")] == ["kernel", "bias"]


def test_attribution_titles_fit_their_columns():
    rng = np.random.default_rng(0)
    parts = [AttributionPart("image", "image", rng.random((8, 8)), image=rng.random((8, 8))),
             AttributionPart("stats", "features", rng.random(3) * 1e-4,
                             labels=["stats[0]", "stats[1]", "stats[2]"])]
    fig = attribution_figure(parts, title="Saliency").to_dict()
    layout = fig["layout"]
    titles = [a for a in layout["annotations"] if a.get("yref") == "paper"]
    widths = [layout[f"xaxis{i if i > 1 else ''}"]["domain"] for i in range(1, 5)]
    for a, (lo, hi) in zip(titles, widths, strict=True):
        longest = max(len(line) for line in a["text"].split("<br>"))
        assert longest * 8.5 <= (hi - lo) * 900 + 40, a["text"]  # ~8.5 px a character
    assert layout["xaxis4"]["exponentformat"] == "e"
