"""insight.compare on real Keras models: the architecture diff (by name, by class alignment,
two widths of a keras.applications model), weight change, predictions, `compare()` of a
model with itself and with a retrained copy."""

from __future__ import annotations

import numpy as np
import pytest

import insight
from insight.compare import architecture_diff, weight_change, weight_changes
from insight.compare.predictions import (
    agreement,
    confusion_between,
    disagreements,
    per_class_accuracy,
    probabilities,
)
from insight.errors import UsageError


def _cnn(filters=4, extra=False, seed=0, name_prefix=""):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(filters, 3, activation="relu", name=f"{name_prefix}conv")(inp)
    if extra:
        h = keras.layers.BatchNormalization(name=f"{name_prefix}bn")(h)
    h = keras.layers.Flatten(name=f"{name_prefix}flat")(h)
    h = keras.layers.Dense(6, activation="relu", name=f"{name_prefix}dense")(h)
    out = keras.layers.Dense(3, activation="softmax", name=f"{name_prefix}out")(h)
    return keras.Model(inp, out)


def test_a_model_against_itself_is_all_same():
    m = _cnn()
    diff = architecture_diff(m, m)
    assert set(diff.status) == {"same"} and len(diff) == 4
    assert (diff.layer_a == diff.layer_b).all() and (diff.changed_keys == "").all()
    w = weight_changes(m, m)
    assert list(w.layer) == ["conv", "dense", "out"]
    assert (w.relative_change == 0).all() and np.allclose(w.cosine, 1.0)


def test_added_and_changed_layers():
    a, b = _cnn(), _cnn(filters=8, extra=True)
    diff = architecture_diff(a, b).set_index("layer_b")
    assert diff.loc["bn", "status"] == "added" and diff.loc["bn", "layer_a"] == ""
    conv = diff.loc["conv"]
    assert conv.status == "changed" and conv.changed_keys == "filters"
    assert (conv.shape_a, conv.shape_b) == ("(None, 6, 6, 4)", "(None, 6, 6, 8)")
    assert (conv.params_a, conv.params_b) == (40, 80)
    assert diff.loc["dense", "status"] == "changed"  # more inputs: more parameters
    assert diff.loc["out", "status"] == "same"
    removed = architecture_diff(b, a)
    assert removed.loc[removed.status == "removed", "layer_a"].tolist() == ["bn"]


def test_other_names_are_aligned_by_class():
    diff = architecture_diff(_cnn(), _cnn(extra=True, name_prefix="v2_"))
    pairs = dict(zip(diff.layer_a, diff.layer_b, strict=True))
    assert pairs["conv"] == "v2_conv" and pairs["dense"] == "v2_dense"
    assert pairs[""] == "v2_bn"
    assert diff.set_index("layer_a").loc["out", "status"] == "same"


def test_two_widths_of_a_keras_application_match_layer_by_layer():
    import keras

    a = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None)
    b = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.5, weights=None)
    diff = architecture_diff(a, b)
    assert set(diff.status) <= {"same", "changed"}  # every layer matched
    renamed = diff[diff.layer_a != diff.layer_b]  # an auto-named layer: matched by class
    assert renamed["class"].tolist() == ["GlobalAveragePooling2D"]
    convs = diff[(diff["class"] == "Conv2D") & (diff.status == "changed")]
    assert len(convs) > 10 and (convs.changed_keys == "filters").sum() > 10  # others: inputs
    w = weight_changes(a, b)
    assert len(w) > 50 and w.relative_change.isna().sum() > 40  # other shapes: no ratio


def test_weight_change_numbers():
    rel, cos = weight_change([np.array([3.0, 4.0])], [np.array([3.0, 4.0]) * 2])
    assert (rel, cos) == (pytest.approx(1.0), pytest.approx(1.0))
    rel, cos = weight_change([np.array([1.0, 0.0]), np.zeros(1)], [np.array([0.0, 1.0]),
                                                                    np.zeros(1)])
    assert rel == pytest.approx(np.sqrt(2)) and cos == pytest.approx(0.0)
    assert weight_change([np.zeros(2)], [np.ones(2)])[0] == float("inf")
    with pytest.raises(UsageError, match="same shapes"):
        weight_change([np.zeros((2, 2))], [np.zeros((2, 3))])


def test_prediction_tables():
    pa = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    pb = np.array([[0.8, 0.2, 0.0], [0.7, 0.2, 0.1], [0.2, 0.2, 0.6], [0.45, 0.5, 0.05]])
    y = np.array([0, 1, 2, 1])
    assert agreement(pa, pb) == 0.5
    assert confusion_between(pa, pb).to_numpy().tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]
    dis = disagreements(pa, pb, y)
    assert dis["index"].tolist() == [1, 3]  # the confident disagreement first
    assert dis.label.tolist() == [1, 1]
    acc = per_class_accuracy(pa, pb, y).set_index("class")
    assert acc.loc["1", "accuracy_a"] == 0.5 and acc.loc["1", "accuracy_b"] == 0.5
    assert acc.loc["all", "accuracy_a"] == 0.75
    assert probabilities(np.array([[-2.0], [3.0]])).argmax(1).tolist() == [0, 1]


@pytest.fixture(scope="module")
def trained():
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean((1, 2, 3)) > 0).astype("int64") + (x[:, 4:].mean((1, 2, 3)) > 0)
    a = _cnn(seed=0)
    b = keras.models.clone_model(a)
    b.set_weights(a.get_weights())
    b.compile("adam", "sparse_categorical_crossentropy")
    b.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return a, b, x, y


def test_compare_a_model_with_itself(trained):
    a, _, x, y = trained
    cmp = insight.compare(a, a, x, y)
    assert cmp.agreement == 1.0 and cmp.disagreements().empty
    assert np.allclose(np.diag(cmp.cka().to_numpy()), 1.0, atol=1e-5)
    units = cmp.activation_changes()
    assert (units.appeared == 0).all() and (units.disappeared == 0).all()
    assert cmp.summary()["changed"] == 0


def test_compare_before_and_after_training(trained):
    a, b, x, y = trained
    cmp = insight.compare(a, b, x, y, batch_size=64)
    assert set(cmp.architecture_diff().status) == {"same"}
    w = cmp.weight_changes().set_index("layer")
    assert (w.relative_change > 0).all() and (w.cosine < 1).all()
    assert cmp.agreement < 1.0
    assert len(cmp.disagreements(top=5)) == min(5, int(round((1 - cmp.agreement) * len(x))))
    acc = cmp.per_class_accuracy().set_index("class")
    assert acc.loc["all", "accuracy_b"] > acc.loc["all", "accuracy_a"]
    assert cmp.confusion().to_numpy().sum() == len(x)
    with pytest.raises(UsageError, match="needs inputs"):
        insight.compare(a, b).cka()


def test_insight_compare_is_the_function_and_the_package():
    import insight.compare.weights  # noqa: F401  binds the package to insight.compare

    assert callable(insight.compare) and hasattr(insight.compare, "cka_matrix")
    assert insight.cka(np.eye(5), np.eye(5)) == pytest.approx(1.0)


def test_a_deep_pair_opens_its_graph_on_the_first_change_at_full_size(tmp_path):
    """Shrunk to fit, 20 rows of boxes become red lines: the graph opens on the first
    outlined layer at full size instead."""
    import keras

    from insight.model.loading import load_model
    from insight.panels import PanelContext, build_panel

    def deep(width: int, name: str):
        layers = [keras.Input((4,))] + [keras.layers.Dense(width, name=f"d{i}")
                                        for i in range(20)]
        path = tmp_path / f"{name}.keras"
        keras.Sequential(layers, name=name).save(path)
        return path

    a, b = deep(4, "narrow"), deep(8, "wide")
    fig = build_panel("compare_graph", PanelContext(load_model(a), compare_path=b))
    nodes = next(t for t in fig.data if t.customdata is not None)
    assert nodes.marker.size == 44  # full size, not shrunk to 14 of 21 rows
    frame = fig.layout.yaxis.range[1] - fig.layout.yaxis.range[0]
    span = max(nodes.y) - min(nodes.y)
    assert frame < span  # the view holds part of the graph: it opens on the change
