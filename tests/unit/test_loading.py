"""The safe loader: every sample loads, every bad input fails with the right error."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from insight import layer_table, load_model, model_card
from insight.errors import (
    CustomObjectError,
    InsightError,
    ModelLoadError,
    UnsafeModelError,
    UnsupportedModelError,
    UsageError,
)
from insight.model.loading import SAVEDMODEL_LIMITS, load_custom_objects
from insight.model.summary import LAYER_COLUMNS

from ._errors import assert_error

CARD_FORMATS = {"keras": ".keras (Keras v3)", "h5": "legacy HDF5 (.h5)"}



# -- the samples ---------------------------------------------------------------------------


def test_sample_loads(sample_name, sample_models, sample_path, load_sample):
    _, fmt, kind = sample_models[sample_name]
    loaded = load_sample(sample_name)
    assert loaded.format == fmt
    assert loaded.safe_mode is True
    assert loaded.path == sample_path(sample_name).resolve()
    assert repr(loaded).startswith(f"LoadedModel(name={loaded.name!r}, format={fmt!r}")

    table = layer_table(loaded)
    assert list(table.columns) == LAYER_COLUMNS
    assert len(table) > 0
    assert table["layer"].is_unique
    assert (table["params"] >= 0).all()
    assert set(table["depth"]) >= {0}

    card = model_card(loaded)
    json.dumps(card)  # JSON-ready
    assert card["name"] == loaded.name
    assert card["format"] == CARD_FORMATS[fmt]
    assert card["kind"] == kind
    assert card["file"] == str(sample_path(sample_name).resolve())
    assert card["file_size"] == sample_path(sample_name).stat().st_size
    assert card["keras_version"].startswith("3.")
    assert card["layer_count"] == len(table) > 0
    assert card["total_params"] > 0
    assert card["trainable_params"] + card["non_trainable_params"] == card["total_params"]
    # nested models' rows repeat their inner layers' weights; the top level adds up
    assert table.loc[table["depth"] == 0, "params"].sum() == card["total_params"]
    assert card["inputs"], "every sample has at least one input"
    assert card["safe_mode"] is True
    assert card["limits"] == {}
    assert card["findings"]
    if kind == "subclassed":
        assert "subclassed" in card["graph_note"]
    else:
        assert card["graph_note"] == ""


def test_h5_sample_matches_keras_sample(load_sample):
    keras_table = layer_table(load_sample("digits_cnn"))
    h5_table = layer_table(load_sample("digits_cnn_h5"))
    cols = ["layer", "class", "output_shape", "params"]
    assert keras_table[cols].to_dict("records") == h5_table[cols].to_dict("records")


def test_sample_cards_have_expected_shapes(load_sample):
    multi = model_card(load_sample("multi_io"))
    assert [i["name"] for i in multi["inputs"]] == ["image", "stats"]
    assert [o["name"] for o in multi["outputs"]] == ["digit", "is_even"]
    nested = layer_table(load_sample("nested"))
    inner = nested[nested["depth"] == 1]
    assert len(inner) > 0 and inner["layer"].str.startswith("backbone/").all()
    sub = model_card(load_sample("subclassed"))
    assert sub["model_class"] == "DigitsMLP"
    assert "subclassed" in sub["graph_note"]
    assert "insight_samples>DigitsMLP" in " ".join(sub["findings"])


def test_subclassed_needs_its_custom_objects(sample_path, subclassed_custom_objects,
                                            monkeypatch):
    import keras

    # Other tests may already have run the sample's file, which registers the class for the
    # whole process: take it out of the registry for this test only.
    monkeypatch.delitem(keras.saving.get_custom_objects(), "insight_samples>DigitsMLP",
                        raising=False)
    with pytest.raises(CustomObjectError) as excinfo:
        load_model(sample_path("subclassed"))
    err = assert_error(excinfo, CustomObjectError, "insight_samples>DigitsMLP",
                        "--custom-objects")
    assert any("DigitsMLP" in n for n in err.names)

    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no __pycache__ in the samples
    loaded = load_model(sample_path("subclassed"), custom_objects=subclassed_custom_objects)
    assert type(loaded.model).__name__ == "DigitsMLP"
    assert loaded.custom_objects_file == subclassed_custom_objects.resolve()
    assert model_card(loaded)["kind"] == "subclassed"


# -- good generated files ------------------------------------------------------------------


def test_tiny_models_load_in_every_format(model_files):
    x = np.arange(6, dtype="float32").reshape(2, 3)
    expected = np.asarray(model_files.tiny_model(x))
    for path, fmt in ((model_files.tiny_keras, "keras"), (model_files.tiny_h5, "h5")):
        loaded = load_model(path)
        assert loaded.format == fmt
        assert model_card(loaded)["total_params"] == 3 * 2 + 2
        np.testing.assert_allclose(np.asarray(loaded.model(x)), expected, rtol=1e-6)


def test_directory_with_one_model_loads(model_files):
    loaded = load_model(model_files.dir_one_model)
    assert loaded.format == "keras"
    assert loaded.preflight.model_file.name == "only.keras"
    assert loaded.path == model_files.dir_one_model.resolve()


def test_savedmodel_refused_in_safe_mode(model_files):
    with pytest.raises(UnsafeModelError) as excinfo:
        load_model(model_files.savedmodel)
    assert_error(excinfo, UnsafeModelError, "SavedModel", "--unsafe")


def test_savedmodel_loads_unsafe_for_inference(model_files):
    loaded = load_model(model_files.savedmodel, safe_mode=False)
    assert loaded.format == "savedmodel"
    assert loaded.safe_mode is False
    assert loaded.limits == SAVEDMODEL_LIMITS
    card = model_card(loaded)
    assert card["kind"] == "savedmodel"
    assert card["format"] == "TF SavedModel"
    assert card["limits"] and all(card["limits"].values())
    assert card["file_size"] > 0
    x = np.ones((2, 3), dtype="float32")
    np.testing.assert_allclose(np.asarray(loaded.model(x)),
                               np.asarray(model_files.tiny_model(x)), rtol=1e-5)


@pytest.mark.parametrize("attr", ["lambda_keras", "lambda_h5"])
def test_lambda_model_refused_in_safe_mode(model_files, attr):
    with pytest.raises(UnsafeModelError) as excinfo:
        load_model(getattr(model_files, attr))
    err = assert_error(excinfo, UnsafeModelError, "Lambda", "double", "--unsafe")
    assert err.names == ["double"]


@pytest.mark.parametrize("attr", ["lambda_keras", "lambda_h5"])
def test_lambda_model_loads_unsafe(model_files, attr):
    loaded = load_model(getattr(model_files, attr), safe_mode=False)
    assert loaded.safe_mode is False
    assert "Lambda" in set(layer_table(loaded)["class"])
    x = np.array([[1.0, 2.0, 3.0]], dtype="float32")
    np.testing.assert_allclose(np.asarray(loaded.model(x)), 2 * x)


def test_foreign_function_refused_in_safe_mode(model_files):
    with pytest.raises(UnsafeModelError) as excinfo:
        load_model(model_files.print_keras)
    err = assert_error(excinfo, UnsafeModelError, "builtins.print", "d1", "--unsafe")
    assert err.names == ["builtins.print"]


def test_python_lambda_outside_lambda_layer_refused_in_safe_mode(model_files):
    """A `__lambda__` object (marshalled bytecode) as a Dense activation is code in the file
    just like a Lambda layer: safe mode must refuse it as unsafe, not as a damaged file."""
    with pytest.raises(UnsafeModelError) as excinfo:
        load_model(model_files.lambda_fn_keras)
    assert_error(excinfo, UnsafeModelError, "d1", "--unsafe")


def test_python_lambda_outside_lambda_layer_loads_unsafe(model_files):
    loaded = load_model(model_files.lambda_fn_keras, safe_mode=False)
    d1 = loaded.model.get_layer("d1")  # raises ValueError when missing
    kernel, bias = (np.asarray(w) for w in d1.get_weights())
    x = np.array([[1.0, -2.0, 0.5]], np.float32)
    # The file's own activation (v * 2) runs: the output is twice the affine part.
    np.testing.assert_allclose(np.asarray(loaded.model(x)), 2 * (x @ kernel + bias), rtol=1e-5)


# -- bad inputs ------------------------------------------------------------------------------

BAD_INPUTS = [
    ("truncated_keras", ModelLoadError, ["truncated"]),
    ("random_keras", ModelLoadError, ["not a .keras file", "zip"]),
    ("random_h5", ModelLoadError, ["not an HDF5 file"]),
    ("empty_keras", ModelLoadError, ["empty", "0 bytes"]),
    ("empty_h5", ModelLoadError, ["empty", "0 bytes"]),
    ("dir_without_model", ModelLoadError, ["holds no model", "notes.txt"]),
    ("dir_two_models", UsageError, ["holds 2 models", "a.keras", "b.h5"]),
    ("unzipped_keras_dir", ModelLoadError, ["holds no model", "unzipped .keras"]),
    ("weights_h5", UnsupportedModelError, ["weights-only"]),
    ("weights_only_h5", UnsupportedModelError, ["weights only", "model_config"]),
    ("bad_json_keras", ModelLoadError, ["config.json is not valid JSON"]),
    ("no_config_keras", ModelLoadError, ["no config.json", "readme.txt"]),
    ("missing", ModelLoadError, ["does not exist"]),
    ("text_file", UnsupportedModelError, ["Unsupported model format", ".keras"]),
]


@pytest.mark.parametrize(("attr", "error_type", "fragments"), BAD_INPUTS,
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input(model_files, attr, error_type, fragments):
    path = getattr(model_files, attr)
    with pytest.raises(InsightError) as excinfo:
        load_model(path)
    assert_error(excinfo, error_type, *fragments, path.name)


@pytest.mark.parametrize("url", ["hf://user/model", "https://example.com/model.keras"])
def test_remote_paths_refused(url):  # s3:// and gs:// are fetched: test_remote_models.py
    with pytest.raises(UnsupportedModelError) as excinfo:
        load_model(url)
    assert_error(excinfo, UnsupportedModelError, "s3:// or gs:// URLs only", url)


def test_missing_custom_class(fresh_custom):
    import keras

    assert fresh_custom.module not in sys.modules
    registered = keras.saving.get_custom_objects()
    assert not any(k.startswith(fresh_custom.package + ">") for k in registered)

    with pytest.raises(CustomObjectError) as excinfo:
        load_model(fresh_custom.registered)
    err = assert_error(excinfo, CustomObjectError, f"{fresh_custom.package}>FreshScale",
                        "(in scale)", "--custom-objects")
    assert err.names == [f"{fresh_custom.package}>FreshScale (in scale)"]

    with pytest.raises(CustomObjectError) as excinfo:
        load_model(fresh_custom.unregistered)
    assert_error(excinfo, CustomObjectError, f"{fresh_custom.module}.FreshShift")

    # With the file that defines them, both load (the file is run, registering FreshScale).
    for path, cls in ((fresh_custom.registered, "FreshScale"),
                      (fresh_custom.unregistered, "FreshShift")):
        loaded = load_model(path, custom_objects=fresh_custom.module_file)
        assert cls in {type(layer).__name__ for layer in loaded.model.layers}
    x = np.array([[1.0, 2.0, 3.0]], dtype="float32")
    np.testing.assert_allclose(np.asarray(loaded.model(x)), x + 1)


def test_custom_objects_file_that_raises(model_files):
    with pytest.raises(CustomObjectError) as excinfo:
        load_model(model_files.tiny_keras, custom_objects=model_files.raising_custom_objects)
    assert_error(excinfo, CustomObjectError, "RuntimeError", "boom from the custom file",
                  "raising_layers.py")
    assert not any("raising_layers" in name for name in sys.modules)


@pytest.mark.parametrize("name", ["nope.py", "layers.txt"])
def test_custom_objects_file_missing_or_not_python(model_files, name):
    with pytest.raises(CustomObjectError) as excinfo:
        load_model(model_files.tiny_keras, custom_objects=model_files.root / name)
    assert_error(excinfo, CustomObjectError, ".py file", name)


def test_load_custom_objects_accepts_mapping_and_none():
    assert load_custom_objects(None) == {}
    marker = object()
    assert load_custom_objects({"Thing": marker}) == {"Thing": marker}


def test_empty_path_is_a_usage_error():
    with pytest.raises(UsageError) as excinfo:
        load_model("  ")
    assert_error(excinfo, UsageError, "No model path")
