"""The activation table's flags and types: the flags are the doctor's findings (dead layers
flagged where the dead units arise, with how many; saturation in hidden layers only, a
confident output being expected), and number columns hold numbers (NaN, never None or text)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insight import load_model
from insight.doctor import Finding
from insight.panels import PanelContext, build_panel
from insight.panels.activations import DEAD_LIMIT, finding_flag


@pytest.fixture(scope="module")
def saturating(tmp_path_factory):
    """x -> Dense(8, tanh, huge weights: saturated) -> Dense(3, softmax, huge: confident),
    and a second output, a saturated sigmoid."""
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden",
                                kernel_initializer=keras.initializers.Constant(50.0))(x)
    probs = keras.layers.Dense(3, activation="softmax", name="probs",
                               kernel_initializer=keras.initializers.RandomNormal(0, 40))(hidden)
    gate = keras.layers.Dense(1, activation="sigmoid", name="gate",
                              kernel_initializer=keras.initializers.Constant(30.0))(hidden)
    path = tmp_path_factory.mktemp("flags") / "saturating.keras"
    keras.Model(x, [probs, gate], name="saturating").save(path)
    rng = np.random.default_rng(0)
    np.savez(path.parent / "data.npz", x=rng.normal(size=(64, 4)).astype("float32"))
    return load_model(path)


def test_dead_conv_layer_is_flagged_with_its_count(load_sample):
    table = build_panel("activation_table", PanelContext(load_sample("digits_cnn")))
    flags = dict(zip(table["layer"], table["flag"], strict=True))
    conv2 = table.set_index("layer").loc["conv2"]
    assert DEAD_LIMIT <= conv2["dead_fraction"] < 0.5  # 7 of 16: under the old 50% limit
    assert flags["conv2"] == "dead 7/16 units"
    # Flatten and Dropout repeat their input's zeros: flagged once, where they arise.
    assert flags["flatten"] == flags["dropout"] == ""
    # A confident softmax output is saturated by design: not a problem.
    assert table.set_index("layer").loc["predictions", "saturated_fraction"] > 0.5
    assert flags["predictions"] == ""


def test_nested_model_row_does_not_repeat_its_inner_flag(load_sample):
    table = build_panel("activation_table", PanelContext(load_sample("nested")))
    flags = dict(zip(table["layer"], table["flag"], strict=True))
    assert flags["backbone/conv2"].startswith("dead ")
    assert flags["backbone"] == "" and flags["backbone/gap"] == ""


def test_hidden_saturation_flagged_output_saturation_not(saturating):
    table = build_panel("activation_table", PanelContext(saturating)).set_index("layer")
    hidden = table.loc["hidden", "saturated_fraction"]
    assert hidden > 0.5 and table.loc["hidden", "flag"] == f"saturated {hidden:.0%}"
    for output in ("probs", "gate"):  # both heads, softmax and sigmoid
        assert table.loc[output, "saturated_fraction"] > 0.5, output
        assert table.loc[output, "flag"] == "", output


def test_ridge_marks_only_flagged_layers(load_sample):
    fig = build_panel("activation_ridge", PanelContext(load_sample("digits_cnn")))
    red = {t.name for t in fig.data if t.line.color != fig.data[0].line.color}
    assert red == {"conv2"}


def test_table_number_columns_are_numbers(load_sample):
    table = build_panel("activation_table", PanelContext(load_sample("digits_cnn")))
    for column in ("dead_fraction", "saturated_fraction", "zero_fraction", "mean", "std"):
        assert table[column].dtype == np.float64, column
    assert table["units"].dtype == np.int64
    assert pd.api.types.is_string_dtype(table["flag"])
    # Layers without a saturating activation have NaN (shown empty), not None or text.
    sat = table.set_index("layer")["saturated_fraction"]
    assert np.isnan(sat["conv1"]) and not sat.map(lambda v: v is None).any()


def test_flags_are_the_doctors_findings(load_sample, monkeypatch):
    """The page has no limits of its own: raise the doctor's and the flag goes."""
    import insight.doctor.checks_probe as checks_probe

    monkeypatch.setattr(checks_probe, "DEAD_INFO", 0.5)  # conv2 has 44% dead
    table = build_panel("activation_table", PanelContext(load_sample("digits_cnn")))
    assert dict(zip(table["layer"], table["flag"], strict=True))["conv2"] == ""


def test_finding_flag_words():
    def finding(check, **evidence):
        return Finding(check, "dead_units", "info", "dense", evidence, "", "", "activations",
                       "activation_table")

    assert finding_flag(finding("dead_units", dead_units=4, units=16)) == "dead 4/16 units"
    assert finding_flag(finding("saturated_units", saturated_fraction=0.8)) == "saturated 80%"
    assert finding_flag(finding("activation_scale", ratio=120.0, from_layer="conv1")) == \
        "scale ×120 since conv1"
    assert finding_flag(finding("activation_nan")) == "NaN/Inf"
    assert finding_flag(finding("constant_predictions")) == ""
