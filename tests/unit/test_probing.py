"""Capture, statistics and gradients, checked against direct Keras, TensorFlow and numpy.

Every sample model is captured; values are compared with sub-models built by hand, gradients
with a plain `tf.GradientTape`, statistics with numpy over the same activations. The models
built here are tiny and module-scoped, so the file runs in well under a minute on two cores.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import insight
from insight.data import Dataset, conform_to_model, dataset_for
from insight.errors import DataError, UsageError
from insight.model.layers import layer_paths
from insight.probe.backprop import GRAD_COLUMNS
from insight.probe.backprop import gradients as compute_gradients
from insight.probe.capture import capture_function
from insight.probe.stats import STAT_COLUMNS

from ._errors import assert_error

ROWS = 5



def _inputs(loaded, n: int = ROWS):
    """The first `n` examples of the sample's data (bundled, else synthetic), fitted."""
    return dataset_for(loaded).take(slice(0, n)).x


def _no_layer_patched(model) -> bool:
    from insight.model.layers import iter_layers

    return all("call" not in vars(layer) for _, layer, _ in iter_layers(model))


@pytest.fixture(scope="module")
def mlp():
    """Input(6) -> Dense(8, tanh) -> Dense(5, relu) -> Dense(3, softmax)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((6,), name="x")
    h1 = keras.layers.Dense(8, activation="tanh", name="h1")(inp)
    h2 = keras.layers.Dense(5, activation="relu", name="h2")(h1)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h2)
    return keras.Model(inp, out, name="mlp")


@pytest.fixture(scope="module")
def mlp_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 6)).astype("float32"), rng.integers(0, 3, 12).astype("int64")


@pytest.fixture(scope="module")
def stats_model():
    """A small conv model whose layers cover relu, tanh, sigmoid and softmax outputs."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((6, 6, 2), name="img")
    c = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inp)
    p = keras.layers.GlobalAveragePooling2D(name="gap")(c)
    t = keras.layers.Dense(4, activation="tanh", name="tanh")(p)
    s = keras.layers.Dense(3, activation="sigmoid", name="sig")(t)
    out = keras.layers.Dense(3, activation="softmax", name="soft")(s)
    return keras.Model(inp, out, name="stats_model")


@pytest.fixture(scope="module")
def stats_data():
    # 50 rows with batch_size 16: three full batches and a partial one of 2.
    return np.random.default_rng(1).normal(size=(50, 6, 6, 2)).astype("float32") * 2.0


# -- the public surface --------------------------------------------------------------------

def test_probing_functions_are_reachable_from_import_insight(run_python):
    code = ("import insight\n"
            "names = ('activations', 'activation_stats', 'gradients', 'attributions')\n"
            "assert all(n in insight.__all__ and n in dir(insight) for n in names)\n"
            "fns = [getattr(insight, n) for n in names]\n"
            "assert all(callable(f) for f in fns), fns\n"
            "import sys, insight.probe.attribution, insight.probe.backprop, "
            "insight.probe.capture, insight.probe.stats\n"
            "m = [sys.modules[f'insight.probe.{n}'] for n in ('capture', 'stats', 'backprop',\n"
            "                                                 'attribution')]\n"
            "assert fns == [m[0].activations, m[1].activation_stats, m[2].gradients,\n"
            "               m[3].attributions]\n")
    proc = run_python("-c", code, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_insight_gradients_stays_the_function_after_importing_the_submodule(run_python):
    """A submodule named like a public function shadows it once imported: Python binds the
    package attribute to the module. No module of `insight` is named like a public function."""
    code = ("import insight\n"
            "from insight.probe.backprop import Gradients\n"
            "assert callable(insight.gradients), type(insight.gradients)\n")
    proc = run_python("-c", code, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# -- capture on every sample ----------------------------------------------------------------

def test_capture_every_layer_of_every_sample(sample_name, load_sample):
    loaded = load_sample(sample_name)
    x = _inputs(loaded)
    acts = insight.activations(loaded, x)
    assert list(acts) == layer_paths(loaded.model)
    for path, value in acts.items():
        assert isinstance(value, np.ndarray), path
        assert value.shape[0] == ROWS, (path, value.shape)
        assert np.all(np.isfinite(value)), path
    assert _no_layer_patched(loaded.model)


def test_capture_last_layer_is_the_model_output(sample_name, load_sample):
    loaded = load_sample(sample_name)
    x = _inputs(loaded)
    acts = insight.activations(loaded, x)
    outputs = loaded.model(x, training=False)
    if sample_name == "multi_io":
        expected = outputs["digit"] if isinstance(outputs, dict) else outputs[0]
        np.testing.assert_allclose(acts["digit"], np.asarray(expected), rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(acts["predictions"], np.asarray(outputs), rtol=1e-5,
                                   atol=1e-6)


def test_nested_paths_and_values(load_sample):
    loaded = load_sample("nested")
    paths = layer_paths(loaded.model)
    assert paths == ["backbone", "backbone/conv1", "backbone/pool1", "backbone/conv2",
                     "backbone/gap", "head_dense", "predictions"]
    x = _inputs(loaded)
    acts = insight.activations(loaded, x, layers=["backbone/conv1", "backbone/gap", "backbone"])
    assert list(acts) == ["backbone/conv1", "backbone/gap", "backbone"]
    backbone = loaded.model.get_layer("backbone")
    for inner in ("conv1", "gap"):
        sub = keras.Model(backbone.inputs[0], backbone.get_layer(inner).output)
        np.testing.assert_allclose(acts[f"backbone/{inner}"], np.asarray(sub(x)), rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_allclose(acts["backbone"], acts["backbone/gap"])


@pytest.mark.parametrize("name, layers", [
    ("digits_cnn", ["conv1", "pool1", "dense1", "predictions"]),
    ("digits_cnn_h5", ["conv2", "flatten", "dense1"]),
    ("multi_io", ["image_conv", "stats_dense", "merge", "shared_dense", "is_even"]),
    ("text_embedding", ["embedding", "average", "hidden"]),
])
def test_activation_values_equal_a_direct_sub_model(load_sample, name, layers):
    loaded = load_sample(name)
    model = loaded.model
    x = _inputs(loaded, 7)
    acts = insight.activations(loaded, x, layers=layers, batch_size=3)  # 3 + 3 + 1 rows
    assert list(acts) == layers
    for layer in layers:
        sub = _sub_model(model, layer)
        expected = np.asarray(sub(x, training=False))
        assert acts[layer].shape == expected.shape, layer
        np.testing.assert_allclose(acts[layer], expected, rtol=1e-5, atol=1e-6,
                                   err_msg=layer)


def test_subclassed_values_equal_calling_its_layers(load_sample):
    loaded = load_sample("subclassed")
    m = loaded.model
    x = _inputs(loaded)
    acts = insight.activations(loaded, x)
    dense1 = m.dense1(m.flatten(x))
    np.testing.assert_allclose(acts["dense1"], np.asarray(dense1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["dropout"], acts["dense1"])  # inference: identity
    np.testing.assert_allclose(acts["dense2"], np.asarray(m.dense2(dense1)), rtol=1e-5,
                               atol=1e-6)


def test_capture_splits_batches_consistently(load_sample):
    loaded = load_sample("digits_cnn")
    x = _inputs(loaded, 9)
    whole = insight.activations(loaded, x)
    parts = insight.activations(loaded, x, batch_size=4)
    for path in whole:
        np.testing.assert_allclose(parts[path], whole[path], rtol=1e-5, atol=1e-6)


def test_rnn_layers_capture():
    keras.utils.set_random_seed(2)
    inp = keras.Input((5, 3), name="seq")
    h = keras.layers.LSTM(4, return_sequences=True, name="lstm")(inp)
    h = keras.layers.GRU(3, name="gru")(h)
    out = keras.layers.Dense(2, activation="softmax", name="out")(h)
    model = keras.Model(inp, out, name="rnn")
    x = np.random.default_rng(2).normal(size=(7, 5, 3)).astype("float32")
    acts = insight.activations(model, x, batch_size=4)
    assert list(acts) == ["lstm", "gru", "out"]
    assert acts["lstm"].shape == (7, 5, 4) and acts["gru"].shape == (7, 3)
    for name in ("lstm", "gru", "out"):
        sub = _sub_model(model, name)
        np.testing.assert_allclose(acts[name], np.asarray(sub(x)), rtol=1e-4, atol=1e-6)
    stats = insight.activation_stats(model, x, batch_size=4)
    assert stats.table.layer.tolist() == ["lstm", "gru", "out"]
    g = compute_gradients(model, x, np.arange(7) % 2)
    assert g.activations["lstm"].shape == (7, 5, 4)
    assert all(np.isfinite(v).all() for v in g.weights.values())


def test_wrappers_are_removed_even_when_the_forward_pass_fails(mlp):
    with pytest.raises(Exception):  # noqa: B017 - whatever Keras raises for a wrong shape
        insight.activations(mlp, np.zeros((2, 4), "float32"))
    assert _no_layer_patched(mlp)
    acts = insight.activations(mlp, np.zeros((2, 6), "float32"))  # still usable
    assert list(acts) == ["h1", "h2", "out"]


def test_capture_function_returns_the_model_outputs():
    """`activations()` compiles with `with_outputs=False`; a later `capture_function(model,
    layers, x)` (default `with_outputs=True`) must not get that cached function back (its
    outputs would be `()`): the cache key holds `with_outputs`.
    """
    keras.utils.set_random_seed(3)
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(2, name="d")(inp), name="cache_key")
    x = np.ones((3, 4), "float32")
    insight.activations(model, x)
    outputs, acts = capture_function(model, layer_paths(model), x)(x)
    np.testing.assert_allclose(np.asarray(outputs), np.asarray(model(x)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(acts["d"]), np.asarray(model(x)), rtol=1e-6)


# -- statistics -------------------------------------------------------------------------------

def _sub_model(model, layer_name):
    """`keras.Model(inputs, layer.output)`, one input unwrapped (no structure warning)."""
    inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]
    return keras.Model(inputs, model.get_layer(layer_name).output)


def _direct_activations(model, x, names):
    return {n: np.asarray(_sub_model(model, n)(x)).astype(np.float64) for n in names}


@pytest.mark.parametrize("host", [True, False], ids=["one-read-on-host", "tensorflow-kernels"])
def test_stats_equal_numpy_over_several_batches(stats_model, stats_data, host, monkeypatch):
    """Both reductions (the CPU's one read, `insight.probe.fused`, and TensorFlow's kernels,
    which a GPU runs) give numpy's statistics."""
    import insight.probe.stats as stats_module

    monkeypatch.setattr(stats_module, "on_host", lambda: host)
    names = ["conv", "gap", "tanh", "sig", "soft"]
    stats = insight.activation_stats(stats_model, stats_data, batch_size=16)
    direct = _direct_activations(stats_model, stats_data, names)
    assert stats.n_examples == 50
    assert list(stats.table.columns) == STAT_COLUMNS
    assert stats.table.layer.tolist() == names
    for name in names:
        a = direct[name].reshape(-1, direct[name].shape[-1])
        row = stats.table.set_index("layer").loc[name]
        units = stats.units[name]
        assert row["units"] == a.shape[1] == len(units)
        np.testing.assert_allclose(units["mean"], a.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(units["std"], a.std(0), rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(units["min"], a.min(0), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(units["max"], a.max(0), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(units["zero_fraction"], (a == 0).mean(0), atol=1e-12)
        np.testing.assert_array_equal(units["dead"], (a == 0).all(0))
        assert row["mean"] == pytest.approx(a.mean(), rel=1e-5, abs=1e-6)
        assert row["std"] == pytest.approx(a.std(), rel=1e-3, abs=1e-5)
        assert row["min"] == pytest.approx(a.min(), rel=1e-6, abs=1e-6)
        assert row["max"] == pytest.approx(a.max(), rel=1e-6, abs=1e-6)
        assert row["zero_fraction"] == pytest.approx((a == 0).mean(), abs=1e-12)
        assert row["dead_units"] == int((a == 0).all(0).sum())
    by_layer = stats.table.set_index("layer")
    assert by_layer.loc["conv", "zero_fraction"] > 0  # relu zeros are counted
    sig, tanh, soft = direct["sig"], direct["tanh"], direct["soft"]
    assert by_layer.loc["sig", "saturation"] == "sigmoid"
    assert by_layer.loc["sig", "saturated_fraction"] == pytest.approx(
        ((sig < 0.01) | (sig > 0.99)).mean(), abs=1e-9)
    assert by_layer.loc["tanh", "saturated_fraction"] == pytest.approx(
        (np.abs(tanh) > 0.99).mean(), abs=1e-9)
    assert by_layer.loc["soft", "saturated_fraction"] == pytest.approx(
        (soft.max(-1) > 0.99).mean(), abs=1e-9)
    assert by_layer.loc["conv", "saturation"] == "" and np.isnan(
        by_layer.loc["conv", "saturated_fraction"])


def test_stats_from_a_dataset_equal_stats_from_the_array(stats_model, stats_data):
    from_array = insight.activation_stats(stats_model, stats_data, batch_size=16)
    from_dataset = insight.activation_stats(stats_model, Dataset(x=stats_data), batch_size=16)
    assert from_dataset.n_examples == 50
    numeric = ["mean", "std", "min", "max", "zero_fraction", "dead_units"]
    np.testing.assert_allclose(from_dataset.table[numeric].to_numpy(float),
                               from_array.table[numeric].to_numpy(float), rtol=1e-6)


def test_histograms_count_every_value(stats_model, stats_data):
    stats = insight.activation_stats(stats_model, stats_data, batch_size=16, bins=20)
    direct = _direct_activations(stats_model, stats_data, list(stats.histograms))
    for name, (counts, edges) in stats.histograms.items():
        values = direct[name]
        assert counts.shape == (20,) and edges.shape == (21,)
        assert int(counts.sum()) == values.size, name
        assert np.all(np.diff(edges) > 0)
        # Same bins as numpy up to values sitting on a bin edge (float rounding).
        expected, _ = np.histogram(np.clip(values, edges[0], edges[-1]), edges)
        assert np.abs(counts - expected).sum() <= max(2, values.size // 500), name


def test_dead_units_found_exactly():
    keras.utils.set_random_seed(4)
    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(8, activation="relu", name="relu")(inp))
    dead = np.array([0, 3, 5])
    kernel = np.full((4, 8), 0.5, "float32")
    bias = np.full(8, 0.1, "float32")
    kernel[:, dead] = -1.0
    bias[dead] = -0.5
    model.get_layer("relu").set_weights([kernel, bias])
    x = np.random.default_rng(4).uniform(0, 1, (37, 4)).astype("float32")  # inputs >= 0
    stats = insight.activation_stats(model, x, batch_size=10)
    row = stats.table.iloc[0]
    assert row["dead_units"] == 3 and row["dead_fraction"] == pytest.approx(3 / 8)
    assert np.flatnonzero(stats.units["relu"]["dead"].to_numpy()).tolist() == dead.tolist()
    assert stats.units["relu"]["zero_fraction"].to_numpy()[dead].tolist() == [1.0] * 3
    assert row["zero_fraction"] == pytest.approx(3 / 8)


def test_saturation_of_a_sigmoid_layer_built_to_saturate():
    keras.utils.set_random_seed(5)
    inp = keras.Input((3,), name="x")
    model = keras.Model(inp, keras.layers.Dense(4, activation="sigmoid", name="sig")(inp))
    kernel = np.zeros((3, 4), "float32")
    kernel[:, 0] = 50.0  # always > 0.99
    kernel[:, 1] = -50.0  # always < 0.01
    bias = np.array([10.0, -10.0, 0.0, 0.0], "float32")  # units 2 and 3 stay at 0.5
    model.get_layer("sig").set_weights([kernel, bias])
    x = np.random.default_rng(5).uniform(0, 1, (30, 3)).astype("float32")
    row = insight.activation_stats(model, x, batch_size=8).table.iloc[0]
    assert row["saturation"] == "sigmoid"
    assert row["saturated_fraction"] == pytest.approx(0.5)


def test_softmax_saturation_over_a_sequence_is_a_fraction():
    """BUG: softmax saturation divides saturated *rows* by examples, not by rows.

    For a softmax over (batch, steps, classes) every (example, step) row is counted, so a
    fully saturated layer reports `saturated_fraction == steps` (4.0 here) instead of 1.0.
    """
    inp = keras.Input((4, 6), name="x")
    layer = keras.layers.Dense(5, activation="softmax", name="soft")
    model = keras.Model(inp, layer(inp))
    layer.set_weights([np.zeros((6, 5), "float32"), np.array([20, 0, 0, 0, 0], "float32")])
    x = np.random.default_rng(6).normal(size=(10, 4, 6)).astype("float32")
    row = insight.activation_stats(model, x, batch_size=4).table.iloc[0]
    assert row["saturation"] == "softmax"
    assert row["saturated_fraction"] == pytest.approx(1.0)


def test_stats_on_every_sample(sample_name, load_sample):
    loaded = load_sample(sample_name)
    stats = insight.activation_stats(loaded, dataset_for(loaded).take(slice(0, 20)),
                                     batch_size=8)
    assert stats.table.layer.tolist() == layer_paths(loaded.model)
    assert stats.n_examples == 20
    assert np.isfinite(stats.table["mean"]).all()


def test_stats_of_an_empty_dataset_is_a_usage_error(mlp):
    with pytest.raises(UsageError) as excinfo:
        insight.activation_stats(mlp, np.zeros((0, 6), "float32"))
    assert_error(excinfo, UsageError, "empty")


# -- gradients ------------------------------------------------------------------------------

def test_weight_gradients_equal_a_plain_tape(mlp, mlp_data):
    x, y = mlp_data
    g = compute_gradients(mlp, x, y)
    with tf.GradientTape() as tape:
        pred = mlp(x, training=False)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, pred))
    expected = tape.gradient(loss, mlp.trainable_variables)
    assert g.target == ("loss: sparse_categorical_crossentropy "
                        "(inferred from the labels: the model is not compiled)")
    assert [(t.output, t.name, t.weight) for t in g.losses] == [
        ("out", "sparse_categorical_crossentropy", 1.0)]
    assert g.value == pytest.approx(float(loss), rel=1e-5)
    assert list(g.weights) == [v.path for v in mlp.trainable_variables]
    for v, e in zip(mlp.trainable_variables, expected, strict=True):
        np.testing.assert_allclose(g.weights[v.path], np.asarray(e), rtol=1e-4, atol=1e-6,
                                   err_msg=v.path)
    assert list(g.table.columns) == GRAD_COLUMNS
    assert g.table.layer.tolist() == ["h1", "h2", "out"]
    h1 = g.table.set_index("layer").loc["h1"]
    kernel, bias = (np.asarray(e) for e in expected[:2])
    assert h1["weight_grad_norm"] == pytest.approx(
        np.sqrt((kernel**2).sum() + (bias**2).sum()), rel=1e-4)
    assert h1["params"] == 6 * 8 + 8


@pytest.mark.parametrize("layer", ["h1", "h2"])
def test_activation_gradient_equals_a_split_model_tape(mlp, mlp_data, layer):
    x, y = mlp_data
    g = compute_gradients(mlp, x, y)
    front = _sub_model(mlp, layer)
    rest = ["h2", "out"] if layer == "h1" else ["out"]
    h = tf.convert_to_tensor(front(x))
    with tf.GradientTape() as tape:
        tape.watch(h)
        z = h
        for name in rest:
            z = mlp.get_layer(name)(z)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, z))
    expected = np.asarray(tape.gradient(loss, h))
    assert g.activations[layer].shape == expected.shape
    np.testing.assert_allclose(g.activations[layer], expected, rtol=1e-4, atol=1e-7)


def test_output_gradient_is_the_one_through_the_logits_behind_the_softmax(mlp, mlp_data):
    x, y = mlp_data
    g = compute_gradients(mlp, x, y, layers="out")
    p = np.asarray(mlp(x, training=False), np.float64)
    # Keras' cross-entropy reads the logits behind the softmax, as training does: the layer's
    # gradient is the logits', d/dz = (p - onehot(y)) / N (the probabilities get none).
    rows = np.arange(len(y))
    expected = p.copy()
    expected[rows, y] -= 1.0
    expected /= len(y)
    np.testing.assert_allclose(g.activations["out"], expected, rtol=1e-4, atol=1e-7)


def test_gradient_of_the_predicted_class_score_without_labels(mlp, mlp_data):
    x, _ = mlp_data
    g = compute_gradients(mlp, x)
    assert "predicted class" in g.target
    p = np.asarray(mlp(x, training=False))
    assert g.value == pytest.approx(float(p.max(1).mean()), rel=1e-5)
    with tf.GradientTape() as tape:
        score = tf.reduce_mean(tf.reduce_max(mlp(x, training=False), axis=1))
    expected = tape.gradient(score, mlp.trainable_variables)
    for v, e in zip(mlp.trainable_variables, expected, strict=True):
        np.testing.assert_allclose(g.weights[v.path], np.asarray(e), rtol=1e-4, atol=1e-6)


def test_gradients_on_every_sample(sample_name, load_sample):
    loaded = load_sample(sample_name)
    ds = dataset_for(loaded).take(slice(0, 6))
    y = ds.y if ds.y is not None else None
    g = compute_gradients(loaded, ds.x, y)
    assert list(g.activations) == layer_paths(loaded.model)
    assert set(g.weights) == {v.path for v in loaded.model.trainable_variables}
    for path, value in g.activations.items():
        assert value.shape[0] == 6, path
        assert np.isfinite(value).all(), path
    assert np.isfinite(g.value)
    if sample_name == "text_embedding":  # Embedding's sparse gradient comes back dense
        emb = next(v for v in loaded.model.trainable_variables if "embedding" in v.path)
        assert g.weights[emb.path].shape == tuple(emb.shape)


# -- bad inputs -------------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["activations", "activation_stats", "gradients"])
def test_unknown_layer_lists_the_valid_ones(load_sample, call):
    loaded = load_sample("nested")
    x = _inputs(loaded, 2)
    fn = {"activations": insight.activations, "activation_stats": insight.activation_stats,
          "gradients": compute_gradients}[call]
    with pytest.raises(UsageError) as excinfo:
        fn(loaded, x, layers=["head_dense", "nope"])
    assert_error(excinfo, UsageError, "'nope'", *layer_paths(loaded.model))


def test_wrong_input_shape_names_both_shapes(load_sample):
    """A shape insight cannot fit (images of another size with one channel are resized)."""
    loaded = load_sample("digits_cnn")
    with pytest.raises(DataError) as excinfo:
        conform_to_model(loaded.model, Dataset(x=np.zeros((3, 7, 7, 2), "float32")))
    assert_error(excinfo, DataError, "(None, 8, 8, 1)", "(3, 7, 7, 2)")


def test_wrong_dtype_is_a_data_error(load_sample):
    text = load_sample("text_embedding")
    with pytest.raises(DataError) as excinfo:
        conform_to_model(text.model, Dataset(x=np.random.default_rng(0).random((3, 24))))
    assert_error(excinfo, DataError, "token ids", "float64")
    digits = load_sample("digits_cnn")
    with pytest.raises(DataError) as excinfo:
        conform_to_model(digits.model, Dataset(x=np.full((2, 8, 8, 1), "a")))
    assert_error(excinfo, DataError, "numbers", "<U1")


def test_nan_inputs_are_counted(load_sample):
    loaded = load_sample("digits_cnn")
    x = np.zeros((4, 8, 8, 1), "float32")
    x[0, 0, 0, 0] = np.nan
    x[1, 2, 3, 0] = np.inf
    x[3, 7, 7, 0] = np.nan
    ds = conform_to_model(loaded.model, Dataset(x=x, name="bad"))
    assert ds.nonfinite == {"image": 3}
    assert "3 NaN/Inf values" in ds.describe()
    acts = insight.activations(loaded, ds.x)  # no crash; the clean rows stay clean
    # Whether NaN survives ReLU and max pooling depends on the CPU kernels (oneDNN maps it to
    # a number on some machines), so only the clean example is checked.
    assert acts["predictions"].shape == (4, 10) and np.isfinite(acts["predictions"][2]).all()


def test_labels_with_a_different_row_count(mlp, mlp_data):
    x, y = mlp_data
    with pytest.raises(DataError) as excinfo:
        compute_gradients(mlp, x, y[:5])
    assert_error(excinfo, DataError, "different numbers of rows", "x=12", "y=5")


def test_several_inputs_as_a_list_need_one_array_per_input(load_sample):
    loaded = load_sample("multi_io")
    x = _inputs(loaded, 2)
    acts = insight.activations(loaded, [x["image"], x["stats"]])  # model.inputs order
    np.testing.assert_array_equal(acts["merge"], insight.activations(loaded, x)["merge"])
    with pytest.raises(DataError) as excinfo:
        insight.activations(loaded, [x["image"], x["stats"], x["stats"]])
    assert_error(excinfo, DataError, "2 inputs", "3 arrays", "dict")


def test_compiled_loss_of_a_sample_file_is_named(load_sample):
    loaded = load_sample("digits_cnn")  # compiled with sparse_categorical_crossentropy
    ds = dataset_for(loaded).take(slice(0, 4))
    assert compute_gradients(loaded, ds.x, ds.y).target == \
        "loss: sparse_categorical_crossentropy"


def test_unknown_loss_is_a_usage_error(mlp, mlp_data):
    x, y = mlp_data
    with pytest.raises(UsageError) as excinfo:
        compute_gradients(mlp, x, y, loss="not_a_loss")
    assert_error(excinfo, UsageError, "not_a_loss")
