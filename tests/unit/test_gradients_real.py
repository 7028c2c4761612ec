"""Gradients on the shapes real models have: a weightless first layer, several outputs.

Each value is checked against a plain `tf.GradientTape` on the same layers. The models are
tiny and seeded; the bundled `multi_io` sample (two inputs, two outputs, compiled with one
loss per output) stands for the real thing.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import insight
from insight.data import dataset_for
from insight.errors import UsageError
from insight.probe.backprop import gradients as compute_gradients

from ._errors import assert_error

ROWS = 8


def _norm(a) -> float:
    return float(np.sqrt(np.sum(np.square(np.asarray(a, np.float64)))))


# -- a weightless first layer ------------------------------------------------------------------

FIRST_LAYERS = {
    "rescaling": lambda: keras.layers.Rescaling(1 / 255.0, name="first"),
    "zero_padding": lambda: keras.layers.ZeroPadding2D(1, name="first"),
    "activation": lambda: keras.layers.Activation("tanh", name="first"),
}


def _image_model(kind: str) -> keras.Model:
    """Input -> <weightless first layer> -> Conv2D -> GlobalAveragePooling2D -> Dense(softmax)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), name="img")
    h = FIRST_LAYERS[kind]()(inp)
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    return keras.Model(inp, out, name=f"first_{kind}")


def _image_data(kind: str):
    rng = np.random.default_rng(0)
    scale = 255.0 if kind == "rescaling" else 1.0  # pixels for Rescaling(1/255), else [0, 1)
    x = (rng.random((ROWS, 8, 8, 3)) * scale).astype("float32")
    return x, rng.integers(0, 3, ROWS).astype("int64")


def _tape_after(model: keras.Model, first: str, x, loss_of):
    """d loss / d (output of `first`) and d loss / d input, by a tape over the layers after it."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        h = model.get_layer(first)(x)
        tape.watch(h)
        z = h
        for layer in model.layers[2:]:  # after InputLayer and `first`
            z = layer(z)
        loss = loss_of(z)
    return np.asarray(tape.gradient(loss, h)), np.asarray(tape.gradient(loss, x))


@pytest.mark.parametrize("kind", list(FIRST_LAYERS))
def test_weightless_first_layer_has_its_output_gradient(kind):
    model = _image_model(kind)
    x, y = _image_data(kind)
    g = compute_gradients(model, x, y)
    expected, at_input = _tape_after(
        model, "first", x,
        lambda z: tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, z)))
    assert _norm(expected) > 0
    np.testing.assert_allclose(g.activations["first"], expected, rtol=1e-4, atol=1e-9)
    row = g.table.set_index("layer").loc["first"]
    per_example = np.linalg.norm(expected.reshape(ROWS, -1), axis=1).mean()
    assert row["activation_grad_norm"] == pytest.approx(per_example, rel=1e-4)
    if kind == "rescaling":  # d/dx = 1/255 d/dh: the input gradient is the scaled one
        assert _norm(at_input) == pytest.approx(_norm(expected) / 255.0, rel=1e-4)


def test_weightless_first_layer_without_labels():
    model = _image_model("rescaling")
    x, _ = _image_data("rescaling")
    g = compute_gradients(model, x)
    expected, _ = _tape_after(model, "first", x,
                              lambda z: tf.reduce_mean(tf.reduce_max(z, axis=1)))
    np.testing.assert_allclose(g.activations["first"], expected, rtol=1e-4, atol=1e-10)
    assert _norm(expected) > 0


def test_weightless_layer_on_integer_inputs():
    """A one-hot encoding of token ids: no gradient reaches the ids, but one reaches its output."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((), dtype="int32", name="ids")
    h = keras.layers.CategoryEncoding(5, output_mode="one_hot", name="onehot")(inp)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(inp, out)
    x = np.array([0, 1, 2, 3, 4, 1], "int32")
    y = np.array([0, 1, 2, 0, 1, 2], "int64")
    g = compute_gradients(model, x, y)
    h_val = tf.convert_to_tensor(model.get_layer("onehot")(x))
    with tf.GradientTape() as tape:
        tape.watch(h_val)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y, model.get_layer("out")(h_val)))
    expected = np.asarray(tape.gradient(loss, h_val))
    assert _norm(expected) > 0
    np.testing.assert_allclose(g.activations["onehot"], expected, rtol=1e-4, atol=1e-9)


def test_activation_logger_logs_the_first_layer_gradient(tmp_path):
    from insight.callbacks import LOGGED_STATS, ActivationLogger

    model = _image_model("rescaling")
    x, y = _image_data("rescaling")
    logger = ActivationLogger(tmp_path, x, y, examples=ROWS)
    logger.set_model(model)
    values = logger.log(0)
    grad = values[:, LOGGED_STATS.index("output_grad_norm")]
    by_layer = dict(zip(logger.paths, grad, strict=True))
    table = compute_gradients(model, x, y).table.set_index("layer")
    assert by_layer["first"] > 0
    assert by_layer["first"] == pytest.approx(table.loc["first", "activation_grad_norm"],
                                              rel=1e-4)


# -- several outputs ---------------------------------------------------------------------------

def _two_heads() -> keras.Model:
    """x -> shared -> (class_hidden -> class: softmax(3)) and (value_hidden -> value: linear(1))."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((5,), name="x")
    shared = keras.layers.Dense(6, activation="tanh", name="shared")(inp)
    c = keras.layers.Dense(4, activation="tanh", name="class_hidden")(shared)
    c = keras.layers.Dense(3, activation="softmax", name="class")(c)
    v = keras.layers.Dense(4, activation="tanh", name="value_hidden")(shared)
    v = keras.layers.Dense(1, name="value")(v)
    return keras.Model(inp, {"class": c, "value": v}, name="two_heads")


def _two_heads_data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(ROWS, 5)).astype("float32")
    return x, {"class": rng.integers(0, 3, ROWS).astype("int64"),
               "value": rng.normal(size=(ROWS, 1)).astype("float32")}


def _two_heads_tape(model, x, y, w_class: float, w_value: float):
    with tf.GradientTape() as tape:
        out = model(x, training=False)
        loss = (w_class * tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                    y["class"], out["class"]))
                + w_value * tf.reduce_mean(keras.losses.mean_squared_error(
                    y["value"], out["value"])))
    grads = tape.gradient(loss, model.trainable_variables)
    return float(loss), {v.path: np.asarray(gr) for v, gr in
                         zip(model.trainable_variables, grads, strict=True)}


def _weight_norms(g) -> dict[str, float]:
    return g.table.set_index("layer")["weight_grad_norm"].to_dict()


@pytest.fixture
def compiled_two_heads():
    model = _two_heads()
    model.compile(loss={"class": "sparse_categorical_crossentropy", "value": "mse"},
                  loss_weights={"class": 1.0, "value": 0.5})
    return model


def test_every_output_loss_weighted_as_compiled(compiled_two_heads):
    model = compiled_two_heads
    x, y = _two_heads_data()
    g = compute_gradients(model, x, y)
    assert g.target == ("loss: 1.0 x sparse_categorical_crossentropy(class) "
                        "+ 0.5 x mse(value)")
    assert [(t.output, t.name, t.weight) for t in g.losses] == [
        ("class", "sparse_categorical_crossentropy", 1.0), ("value", "mse", 0.5)]
    value, expected = _two_heads_tape(model, x, y, 1.0, 0.5)
    assert g.value == pytest.approx(value, rel=1e-5)
    for path, e in expected.items():
        np.testing.assert_allclose(g.weights[path], e, rtol=1e-4, atol=1e-7, err_msg=path)
    norms = _weight_norms(g)
    assert all(norms[layer] > 0 for layer in ("shared", "class_hidden", "class",
                                              "value_hidden", "value"))


def test_a_head_weighted_zero_gets_no_gradient_in_its_own_layers():
    model = _two_heads()
    model.compile(loss={"class": "sparse_categorical_crossentropy", "value": "mse"},
                  loss_weights={"class": 1.0, "value": 0.0})
    x, y = _two_heads_data()
    g = compute_gradients(model, x, y)
    norms = _weight_norms(g)
    assert norms["value_hidden"] == 0 and norms["value"] == 0
    assert norms["class_hidden"] > 0 and norms["class"] > 0 and norms["shared"] > 0
    assert "0.0 x mse(value)" in g.target


def test_compile_config_of_a_file_is_used(compiled_two_heads, tmp_path):
    path = tmp_path / "two_heads.keras"
    compiled_two_heads.save(path)
    loaded = insight.load_model(path)
    assert not loaded.model.compiled  # insight loads with compile=False: the file decides
    x, y = _two_heads_data()
    g = compute_gradients(loaded, x, y)
    assert g.target == ("loss: 1.0 x sparse_categorical_crossentropy(class) "
                        "+ 0.5 x mse(value)")
    value, expected = _two_heads_tape(loaded.model, x, y, 1.0, 0.5)
    assert g.value == pytest.approx(value, rel=1e-5)
    for path_, e in expected.items():
        np.testing.assert_allclose(g.weights[path_], e, rtol=1e-4, atol=1e-7)


def test_without_a_compile_config_the_inferred_losses_say_so(tmp_path):
    path = tmp_path / "uncompiled.keras"
    _two_heads().save(path)
    loaded = insight.load_model(path)
    x, y = _two_heads_data()
    g = compute_gradients(loaded, x, y)
    assert g.target.startswith("loss: 1.0 x sparse_categorical_crossentropy(class) "
                               "+ 1.0 x mean_squared_error(value)")
    assert "inferred from the labels" in g.target and "no compile config" in g.target
    _, expected = _two_heads_tape(loaded.model, x, y, 1.0, 1.0)
    for path_, e in expected.items():
        np.testing.assert_allclose(g.weights[path_], e, rtol=1e-4, atol=1e-7)
    mlp = _two_heads()  # an in-memory model never compiled
    assert "the model is not compiled" in compute_gradients(mlp, x, y).target


def test_without_labels_every_output_score_counts():
    model = _two_heads()
    x, _ = _two_heads_data()
    g = compute_gradients(model, x)
    assert "predicted class" in g.target and "class" in g.target and "value" in g.target
    norms = _weight_norms(g)
    assert norms["value_hidden"] > 0 and norms["class_hidden"] > 0


def test_multi_io_sample_both_heads(load_sample):
    loaded = load_sample("multi_io")
    ds = dataset_for(loaded).take(slice(0, 16))
    g = compute_gradients(loaded, ds.x, ds.y)
    assert g.target == ("loss: 1.0 x sparse_categorical_crossentropy(digit) "
                        "+ 1.0 x binary_crossentropy(is_even)")
    model = loaded.model
    with tf.GradientTape() as tape:
        out = model(ds.x, training=False)
        loss = (tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                    ds.y["digit"], out["digit"]))
                + tf.reduce_mean(keras.losses.binary_crossentropy(
                    ds.y["is_even"][:, None].astype("float32"), out["is_even"])))
    expected = tape.gradient(loss, model.trainable_variables)
    assert g.value == pytest.approx(float(loss), rel=1e-5)
    for v, e in zip(model.trainable_variables, expected, strict=True):
        np.testing.assert_allclose(g.weights[v.path], np.asarray(e), rtol=1e-4, atol=1e-7,
                                   err_msg=v.path)
    table = g.table.set_index("layer")
    for head in ("digit", "is_even"):
        assert table.loc[head, "weight_grad_norm"] > 0, head
        assert table.loc[head, "activation_grad_norm"] > 0, head
    # labels as a list in output order, and keyed y_<name>, give the same
    as_list = compute_gradients(loaded, ds.x, [ds.y["digit"], ds.y["is_even"]])
    keyed = compute_gradients(loaded, ds.x, {f"y_{k}": v for k, v in ds.y.items()})
    assert as_list.value == pytest.approx(g.value) and keyed.value == pytest.approx(g.value)


def test_multi_io_report_names_both_losses(load_sample):
    from insight.probe.report import layer_report

    loaded = load_sample("multi_io")
    table = layer_report(loaded, dataset_for(loaded).take(slice(0, 32)))
    assert "sparse_categorical_crossentropy(digit)" in table.attrs["target"]
    assert "binary_crossentropy(is_even)" in table.attrs["target"]
    rows = table.set_index("layer")
    assert rows.loc["is_even", "grad_norm"] > 0 and rows.loc["digit", "grad_norm"] > 0


def test_one_label_array_for_two_outputs_is_refused_as_by_the_profiler(load_sample):
    from insight.probe.losses import labels_per_output
    from insight.profiler.steps import labels_per_output as profiler_labels

    assert profiler_labels is labels_per_output  # one function decides for both
    loaded = load_sample("multi_io")
    ds = dataset_for(loaded).take(slice(0, 4))
    with pytest.raises(UsageError) as excinfo:
        compute_gradients(loaded, ds.x, ds.y["digit"])
    assert_error(excinfo, UsageError, "labels for each of the model's 2 outputs")
    with pytest.raises(UsageError) as excinfo:
        compute_gradients(loaded, ds.x, {"digit": ds.y["digit"]})
    assert_error(excinfo, UsageError, "No labels for the output 'is_even'", "y_<name>")


def test_training_step_of_two_outputs_uses_both_losses(load_sample, monkeypatch):
    from insight.profiler.steps import make_train_step

    compiled = []
    original = keras.Model.compile

    def compile_(self, *args, **kwargs):
        compiled.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", compile_)
    loaded = load_sample("multi_io")
    ds = dataset_for(loaded).take(slice(0, 8))
    step = make_train_step(loaded)
    step(ds.x, ds.y)
    step(ds.x, ds.y)  # compiled once, runs again
    assert len(compiled) == 1
    assert {k: v.name for k, v in compiled[0]["loss"].items()} == {
        "digit": "sparse_categorical_crossentropy", "is_even": "binary_crossentropy"}
    assert compiled[0]["loss_weights"] == {"digit": 1.0, "is_even": 1.0}
    with pytest.raises(UsageError) as excinfo:  # the same labels rule as the gradients'
        make_train_step(loaded)(ds.x, ds.y["digit"])
    assert_error(excinfo, UsageError, "labels for each of the model's 2 outputs",
                 "profile inference")


def test_activation_logger_on_two_outputs(tmp_path, compiled_two_heads):
    from insight.callbacks import LOGGED_STATS, ActivationLogger

    x, y = _two_heads_data()
    logger = ActivationLogger(tmp_path, x, y, examples=ROWS)
    logger.set_model(compiled_two_heads)
    values = logger.log(0)
    grads = dict(zip(logger.paths, values[:, LOGGED_STATS.index("weight_grad_norm")],
                     strict=True))
    expected = _weight_norms(compute_gradients(compiled_two_heads, x, y))
    for layer in ("class", "value", "value_hidden"):
        assert grads[layer] > 0
        assert grads[layer] == pytest.approx(expected[layer], rel=1e-4)


# -- several inputs as a list ------------------------------------------------------------------

def test_inputs_as_a_list_in_model_inputs_order(load_sample):
    loaded = load_sample("multi_io")
    ds = dataset_for(loaded).take(slice(0, 6))
    order = [t.name for t in loaded.model.inputs]
    as_list = [ds.x[name] for name in order]
    by_dict = insight.activations(loaded, ds.x)
    by_list = insight.activations(loaded, as_list)
    for path, value in by_dict.items():
        np.testing.assert_array_equal(by_list[path], value, err_msg=path)
    g_dict = compute_gradients(loaded, ds.x, ds.y)
    g_list = insight.gradients(loaded, tuple(as_list), ds.y)
    assert g_list.value == pytest.approx(g_dict.value)
    s_dict = insight.activation_stats(loaded, ds.x).table
    s_list = insight.activation_stats(loaded, as_list).table
    np.testing.assert_allclose(s_list["mean"], s_dict["mean"], rtol=1e-6)


def test_a_list_of_the_wrong_length_names_the_inputs(load_sample):
    from insight.errors import DataError

    loaded = load_sample("multi_io")
    x = dataset_for(loaded).take(slice(0, 2)).x
    with pytest.raises(DataError) as excinfo:
        insight.activations(loaded, [x["image"]])
    assert_error(excinfo, DataError, "2 inputs", "'image'", "'stats'", "1 array")


# -- compile configs as files record them, and losses given by hand ----------------------------

def _logits_model() -> keras.Model:
    keras.utils.set_random_seed(5)
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, keras.layers.Dense(3, name="logits")(inp), name="logits_model")


def _logits_data():
    rng = np.random.default_rng(5)
    return rng.normal(size=(ROWS, 4)).astype("float32") * 3, rng.integers(0, 3, ROWS)


def test_a_loss_object_in_the_compile_config_keeps_its_settings(tmp_path):
    """`SparseCategoricalCrossentropy(from_logits=True)` is recorded as a serialized object."""
    model = _logits_model()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(tmp_path / "logits.keras")
    loaded = insight.load_model(tmp_path / "logits.keras")
    x, y = _logits_data()
    g = compute_gradients(loaded, x, y)
    expected = keras.losses.sparse_categorical_crossentropy(
        y, loaded.model(x, training=False), from_logits=True)
    assert g.target == "loss: sparse_categorical_crossentropy"
    assert g.value == pytest.approx(float(np.mean(expected)), rel=1e-5)


def test_compiles_crossentropy_alias_is_picked_by_shape(tmp_path):
    model = _two_heads()
    model.compile(loss="crossentropy")  # binary for one unit, sparse for integer labels
    x, y = _two_heads_data()
    y = {"class": y["class"], "value": (y["value"] > 0).astype("float32")}
    g = compute_gradients(model, x, y)
    assert g.target == ("loss: 1.0 x sparse_categorical_crossentropy(class) "
                        "+ 1.0 x binary_crossentropy(value)")


def test_a_custom_compiled_loss_falls_back_and_says_so(tmp_path):
    def my_loss(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_pred), axis=-1)

    model = _logits_model()
    model.compile(loss=my_loss)
    model.save(tmp_path / "custom.keras")
    loaded = insight.load_model(tmp_path / "custom.keras", safe_mode=False)
    x, y = _logits_data()
    g = compute_gradients(loaded, x, y)
    assert g.target == ("loss: sparse_categorical_crossentropy (inferred from the labels: the "
                        "compiled loss 'my_loss' is not a built-in Keras loss)")


def test_losses_given_by_hand_per_output():
    model = _two_heads()
    x, y = _two_heads_data()
    g = compute_gradients(model, x, y, loss={"class": "sparse_categorical_crossentropy",
                                             "value": "mean_absolute_error"})
    assert g.target == ("loss: 1.0 x sparse_categorical_crossentropy(class) "
                        "+ 1.0 x mean_absolute_error(value)")
    only_class = compute_gradients(model, x, {"class": y["class"]},
                                   loss={"class": "sparse_categorical_crossentropy"})
    assert only_class.target == "loss: 1.0 x sparse_categorical_crossentropy(class)"
    assert _weight_norms(only_class)["value"] == 0  # no loss on that head
    with pytest.raises(UsageError) as excinfo:
        compute_gradients(model, x, y, loss=["mse"] * 3)
    assert_error(excinfo, UsageError, "3 losses for 2 outputs", "'class'", "'value'")
    with pytest.raises(UsageError) as excinfo:
        compute_gradients(model, x, y, loss={"klass": "mse"})
    assert_error(excinfo, UsageError, "'klass'", "'class'")
