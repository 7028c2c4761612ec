"""The doctor benchmark's training setups: buggy/fixed pairs, each buggy one labelled with the
doctor category it should be diagnosed with.

Every scenario is a function `build(fixed: bool) -> Setup`: the two setups share everything
but the bug, so the fixed one is "the same setup done right". Data come from scikit-learn's
bundled datasets (iris, wine, breast cancer, digits), `make_moons` / `make_circles`, XOR and
a sine; nothing is downloaded. Models are small MLPs trained for a few epochs.

`scenario_key(scenario)` hashes a scenario's definition (its function's source, the shared
helpers' source, the library versions) so cached training results stay valid exactly as long
as the definition does.

Example:

>>> from _doctor_scenarios import SCENARIOS
>>> SCENARIOS["one_unit_softmax"].category
'loss_activation_mismatch'
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SEED = 0


@dataclass
class Setup:
    """One training run: the model, how it is compiled and fitted, and the data.

    `x` and `y` hold every example (saved as the data the doctor reads); `val` is the index
    array of the validation rows, the rest train (`train`, when given, restricts training
    to those rows).
    """

    model: Any
    loss: Any
    optimizer: Any
    x: np.ndarray
    y: np.ndarray
    val: np.ndarray
    epochs: int = 20
    batch_size: int = 32
    train: np.ndarray | None = None
    class_names: list[str] | None = None
    metrics: list[str] = field(default_factory=lambda: ["accuracy"])


@dataclass(frozen=True)
class Scenario:
    """A buggy/fixed pair: its name, the category the buggy one should get, the bug."""

    name: str
    category: str
    bug: str
    build: Callable[[bool], Setup]


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, category: str, bug: str) -> Callable:
    def register(build: Callable[[bool], Setup]) -> Callable[[bool], Setup]:
        SCENARIOS[name] = Scenario(name, category, bug, build)
        return build
    return register


# -- shared helpers (their source is part of every scenario's cache key) -----------------------

def standardize(x: np.ndarray) -> np.ndarray:
    std = x.std(0)
    return ((x - x.mean(0)) / np.where(std > 0, std, 1)).astype("float32")


def split(y: np.ndarray, val_fraction: float = 0.25) -> np.ndarray:
    """The validation rows of a fixed, stratified split (when the labels are classes)."""
    from sklearn.model_selection import train_test_split

    labels = y if y.ndim == 1 and y.dtype.kind in "iu" else None
    _, val = train_test_split(np.arange(len(y)), test_size=val_fraction, random_state=SEED,
                              stratify=labels)
    return np.sort(val)


def tabular(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A bundled scikit-learn dataset: raw float32 features, int64 labels."""
    from sklearn import datasets

    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine,
              "cancer": datasets.load_breast_cancer}[name]
    x, y = loader(return_X_y=True)
    return x.astype("float32"), y.astype("int64")


def digits_flat() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 digits flattened to 64 features in [0, 1], int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype("float32"), d.target.astype("int64")


def toy(name: str, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """2-D toy problems: moons, circles, XOR (classes), sine (x -> sin(x))."""
    from sklearn.datasets import make_circles, make_moons

    rng = np.random.default_rng(SEED)
    if name == "moons":
        x, y = make_moons(n, noise=0.2, random_state=SEED)
    elif name == "circles":
        x, y = make_circles(n, noise=0.08, factor=0.5, random_state=SEED)
    elif name == "xor":
        x = rng.uniform(-1, 1, (n, 2))
        y = (x[:, 0] * x[:, 1] > 0).astype("int64")
    elif name == "sine":
        x = rng.uniform(-np.pi, np.pi, (n, 1))
        return x.astype("float32"), np.sin(x).astype("float32")
    else:
        raise ValueError(f"unknown toy problem {name!r}")
    return x.astype("float32"), y.astype("int64")


def mlp(inputs: int, outputs: int, *, hidden: tuple[int, ...] = (32, 32),
        activation: str = "relu", output_activation: str = "softmax",
        kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
        name: str = "mlp") -> Any:
    import keras

    layers = [keras.Input((inputs,), name="features")]
    for i, units in enumerate(hidden):
        layers.append(keras.layers.Dense(units, activation=activation,
                                         kernel_initializer=kernel_initializer,
                                         bias_initializer=bias_initializer, name=f"dense{i + 1}"))
    layers.append(keras.layers.Dense(outputs, activation=output_activation,
                                     kernel_initializer=kernel_initializer, name="output"))
    return keras.Sequential(layers, name=name)


def adam(lr: float = 3e-3) -> Any:
    import keras

    return keras.optimizers.Adam(learning_rate=lr)


def sgd(lr: float, momentum: float = 0.0) -> Any:
    import keras

    return keras.optimizers.SGD(learning_rate=lr, momentum=momentum)


def one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype="float32")[y]


HELPERS = (standardize, split, tabular, digits_flat, toy, mlp, adam, sgd, one_hot)


def scenario_key(s: Scenario) -> str:
    """A hash of the scenario's definition: its source, the helpers', the library versions."""
    import keras
    import sklearn
    import tensorflow as tf

    parts = [inspect.getsource(s.build), s.category, s.bug,
             *(inspect.getsource(h) for h in HELPERS),
             inspect.getsource(Setup), keras.__version__, tf.__version__, np.__version__,
             sklearn.__version__]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# -- loss vs output ----------------------------------------------------------------------------

@scenario("sigmoid_output_cce", "loss_activation_mismatch",
          "3 sigmoid outputs under categorical cross-entropy (wine)")
def _sigmoid_output_cce(fixed: bool) -> Setup:
    x, y = tabular("wine")
    model = mlp(13, 3, hidden=(16,), output_activation="softmax" if fixed else "sigmoid")
    return Setup(model, "categorical_crossentropy", adam(), standardize(x), one_hot(y, 3),
                 split(y), epochs=30)


@scenario("one_unit_softmax", "loss_activation_mismatch",
          "a one-unit softmax (always 1.0) under binary cross-entropy (breast cancer)")
def _one_unit_softmax(fixed: bool) -> Setup:
    x, y = tabular("cancer")
    model = mlp(30, 1, hidden=(16,), output_activation="sigmoid" if fixed else "softmax")
    return Setup(model, "binary_crossentropy", adam(), standardize(x),
                 y.astype("float32")[:, None], split(y), epochs=15)


@scenario("mse_on_softmax", "loss_activation_mismatch",
          "mean squared error on a softmax classifier's probabilities (iris)")
def _mse_on_softmax(fixed: bool) -> Setup:
    x, y = tabular("iris")
    model = mlp(4, 3, hidden=(16,))
    return Setup(model, "categorical_crossentropy" if fixed else "mse", adam(1e-2),
                 standardize(x), one_hot(y, 3), split(y), epochs=40, batch_size=16)


@scenario("softmax_bce", "loss_activation_mismatch",
          "binary cross-entropy on a 10-way softmax with one-hot labels (digits)")
def _softmax_bce(fixed: bool) -> Setup:
    x, y = digits_flat()
    model = mlp(64, 10, hidden=(32,))
    return Setup(model, "categorical_crossentropy" if fixed else "binary_crossentropy", adam(),
                 x, one_hot(y, 10), split(y), epochs=10)


@scenario("from_logits_on_softmax", "loss_activation_mismatch",
          "from_logits=True on an output that already applies softmax (wine)")
def _from_logits_on_softmax(fixed: bool) -> Setup:
    import keras

    x, y = tabular("wine")
    model = mlp(13, 3, hidden=(16,))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not fixed)
    return Setup(model, loss, adam(), standardize(x), y, split(y), epochs=30)


# -- labels ------------------------------------------------------------------------------------

@scenario("labels_off_by_one", "label_problem",
          "class labels 1..3 (as the file numbers them) for a 3-unit softmax (wine; fit fails)")
def _labels_off_by_one(fixed: bool) -> Setup:
    x, y = tabular("wine")
    model = mlp(13, 3, hidden=(16,))
    return Setup(model, "sparse_categorical_crossentropy", adam(), standardize(x),
                 y if fixed else y + 1, split(y), epochs=30)


@scenario("onehot_with_sparse_loss", "label_problem",
          "one-hot labels under sparse categorical cross-entropy (iris; fit fails)")
def _onehot_with_sparse_loss(fixed: bool) -> Setup:
    x, y = tabular("iris")
    model = mlp(4, 3, hidden=(16,))
    return Setup(model, "sparse_categorical_crossentropy", adam(1e-2), standardize(x),
                 y if fixed else one_hot(y, 3), split(y), epochs=40, batch_size=16)


@scenario("binary_labels_1_2", "label_problem",
          "labels 1/2 instead of 0/1 under a sigmoid and binary cross-entropy (breast cancer)")
def _binary_labels_1_2(fixed: bool) -> Setup:
    x, y = tabular("cancer")
    model = mlp(30, 1, hidden=(16,), output_activation="sigmoid")
    labels = (y if fixed else y + 1).astype("float32")[:, None]
    return Setup(model, "binary_crossentropy", adam(), standardize(x), labels, split(y),
                 epochs=15)


@scenario("sine_sigmoid_output", "label_problem",
          "a sigmoid output (0..1) regressing sin(x), whose targets reach -1 (sine)")
def _sine_sigmoid_output(fixed: bool) -> Setup:
    x, y = toy("sine")
    model = mlp(1, 1, hidden=(32, 32), activation="tanh",
                output_activation="linear" if fixed else "sigmoid")
    return Setup(model, "mse", adam(1e-2), x, y, split(y), epochs=40, metrics=[])


# -- data --------------------------------------------------------------------------------------

@scenario("class_imbalance", "class_imbalance",
          "2% positives: 357 benign and 7 malignant tumours (breast cancer)")
def _class_imbalance(fixed: bool) -> Setup:
    x, y = tabular("cancer")
    if not fixed:
        rng = np.random.default_rng(SEED)
        keep = np.sort(np.concatenate([np.flatnonzero(y == 1),
                                       rng.choice(np.flatnonzero(y == 0), 7, replace=False)]))
        x, y = x[keep], y[keep]
    model = mlp(30, 1, hidden=(16,), output_activation="sigmoid")
    return Setup(model, "binary_crossentropy", adam(), standardize(x),
                 y.astype("float32")[:, None], split(y), epochs=15)


@scenario("raw_unscaled_features", "unnormalized_input",
          "raw features up to ~4,000 never standardized (breast cancer)")
def _raw_unscaled_features(fixed: bool) -> Setup:
    x, y = tabular("cancer")
    model = mlp(30, 1, hidden=(16,), output_activation="sigmoid")
    return Setup(model, "binary_crossentropy", adam(), standardize(x) if fixed else x,
                 y.astype("float32")[:, None], split(y), epochs=15)


@scenario("raw_pixels", "unnormalized_input",
          "digits as raw 0-255 pixels, never divided by 255 (digits)")
def _raw_pixels(fixed: bool) -> Setup:
    x, y = digits_flat()
    pixels = np.round(x * 255)
    model = mlp(64, 10, hidden=(32,))
    return Setup(model, "sparse_categorical_crossentropy", adam(1e-3),
                 (pixels / 255 if fixed else pixels).astype("float32"), y, split(y), epochs=10)


@scenario("constant_features", "unnormalized_input",
          "a preprocessing bug left 10 of 13 features constant (wine)")
def _constant_features(fixed: bool) -> Setup:
    x, y = tabular("wine")
    x = standardize(x)
    if not fixed:
        x[:, 3:] = 0.0
    model = mlp(13, 3, hidden=(16,))
    return Setup(model, "sparse_categorical_crossentropy", adam(), x, y, split(y), epochs=30)


@scenario("nan_in_inputs", "nan_inf",
          "2% of the feature values are NaN (missing, never imputed) (breast cancer)")
def _nan_in_inputs(fixed: bool) -> Setup:
    x, y = tabular("cancer")
    x = standardize(x)
    missing = np.random.default_rng(SEED).random(x.shape) < 0.02
    x[missing] = 0.0 if fixed else np.nan  # the fix: impute the (standardized) mean
    model = mlp(30, 1, hidden=(16,), output_activation="sigmoid")
    return Setup(model, "binary_crossentropy", adam(), x, y.astype("float32")[:, None],
                 split(y), epochs=15)


# -- initial state -----------------------------------------------------------------------------

@scenario("zero_init", "bad_init",
          "every kernel initialised to zero: the hidden units stay identical (wine)")
def _zero_init(fixed: bool) -> Setup:
    x, y = tabular("wine")
    model = mlp(13, 3, kernel_initializer="glorot_uniform" if fixed else "zeros")
    return Setup(model, "sparse_categorical_crossentropy", adam(), standardize(x), y,
                 split(y), epochs=30)


@scenario("huge_init", "bad_init",
          "kernels drawn with standard deviation 10 (wine)")
def _huge_init(fixed: bool) -> Setup:
    import keras

    x, y = tabular("wine")
    init = "glorot_uniform" if fixed else keras.initializers.RandomNormal(stddev=10.0, seed=SEED)
    model = mlp(13, 3, kernel_initializer=init)
    return Setup(model, "sparse_categorical_crossentropy", adam(), standardize(x), y,
                 split(y), epochs=30)


@scenario("negative_bias_dead_relu", "dead_units",
          "ReLU biases initialised to -3: the hidden units never fire (wine)")
def _negative_bias_dead_relu(fixed: bool) -> Setup:
    import keras

    x, y = tabular("wine")
    model = mlp(13, 3, bias_initializer="zeros" if fixed else keras.initializers.Constant(-3.0))
    return Setup(model, "sparse_categorical_crossentropy", adam(), standardize(x), y,
                 split(y), epochs=30)


# -- gradients ---------------------------------------------------------------------------------

@scenario("deep_sigmoid", "vanishing_gradient",
          "10 sigmoid layers: the first ones get almost no gradient (moons)")
def _deep_sigmoid(fixed: bool) -> Setup:
    x, y = toy("moons")
    model = mlp(2, 2, hidden=(16,) * 10, activation="relu" if fixed else "sigmoid",
                kernel_initializer="he_normal" if fixed else "glorot_uniform")
    return Setup(model, "sparse_categorical_crossentropy", adam(1e-3), x, y, split(y),
                 epochs=20)


@scenario("deep_linear_exploding", "exploding_gradient",
          "8 linear layers with unit-variance kernels (each layer multiplies by ~8) (digits)")
def _deep_linear_exploding(fixed: bool) -> Setup:
    import keras

    x, y = digits_flat()
    init = (keras.initializers.GlorotUniform(seed=SEED) if fixed
            else keras.initializers.RandomNormal(stddev=1.0, seed=SEED))
    model = mlp(64, 10, hidden=(64,) * 8, activation="linear", kernel_initializer=init)
    return Setup(model, "sparse_categorical_crossentropy", adam(1e-3), x, y, split(y),
                 epochs=5)


@scenario("saturated_tanh", "saturated_units",
          "tanh units behind kernels of standard deviation 3: most sit at -1 or 1 (wine)")
def _saturated_tanh(fixed: bool) -> Setup:
    import keras

    x, y = tabular("wine")
    init = "glorot_uniform" if fixed else keras.initializers.RandomNormal(stddev=3.0, seed=SEED)
    model = mlp(13, 3, hidden=(32, 32), activation="tanh", kernel_initializer=init)
    return Setup(model, "sparse_categorical_crossentropy", sgd(0.01), standardize(x), y,
                 split(y), epochs=20)


# -- learning rate and curves ------------------------------------------------------------------

@scenario("lr_too_high", "learning_rate_high",
          "SGD with momentum 0.9 at a learning rate of 0.5: NaN within the first epoch (digits)")
def _lr_too_high(fixed: bool) -> Setup:
    x, y = digits_flat()
    model = mlp(64, 10, hidden=(32, 32), activation="leaky_relu")
    return Setup(model, "sparse_categorical_crossentropy", sgd(0.01 if fixed else 0.5, 0.9),
                 x, y, split(y), epochs=10)


@scenario("lr_too_high_adam", "learning_rate_high",
          "Adam at a learning rate of 0.2: the loss stalls high and jumps around (digits)")
def _lr_too_high_adam(fixed: bool) -> Setup:
    x, y = digits_flat()
    model = mlp(64, 10, hidden=(32, 32))
    return Setup(model, "sparse_categorical_crossentropy", adam(3e-3 if fixed else 0.2),
                 x, y, split(y), epochs=10)


@scenario("lr_too_low", "learning_rate_low",
          "SGD at a learning rate of 1e-5: the loss creeps (iris)")
def _lr_too_low(fixed: bool) -> Setup:
    x, y = tabular("iris")
    model = mlp(4, 3, hidden=(16,))
    return Setup(model, "sparse_categorical_crossentropy", sgd(0.1 if fixed else 1e-5),
                 standardize(x), y, split(y), epochs=40, batch_size=16)


@scenario("frozen_layers", "not_learning",
          "every layer frozen (trainable=False) before compile: nothing trains (XOR)")
def _frozen_layers(fixed: bool) -> Setup:
    x, y = toy("xor")
    model = mlp(2, 2, hidden=(16, 16))
    model.trainable = fixed
    return Setup(model, "sparse_categorical_crossentropy", adam(1e-2), x, y, split(y),
                 epochs=30)


@scenario("overfitting_tiny_train", "overfitting",
          "a 256-unit MLP trained 80 epochs on 40 digits, validated on 450 (digits)")
def _overfitting_tiny_train(fixed: bool) -> Setup:
    x, y = digits_flat()
    val = split(y)
    rest = np.setdiff1d(np.arange(len(y)), val)
    train = rest if fixed else np.sort(np.random.default_rng(SEED).choice(rest, 40,
                                                                            replace=False))
    model = mlp(64, 10, hidden=(256,))
    return Setup(model, "sparse_categorical_crossentropy", adam(3e-3 if not fixed else 1e-3),
                 x, y, val, train=train, epochs=80 if not fixed else 8)


@scenario("underfitting_linear", "underfitting",
          "a linear model (no hidden layer) on concentric circles (circles)")
def _underfitting_linear(fixed: bool) -> Setup:
    x, y = toy("circles")
    model = mlp(2, 2, hidden=(16, 16) if fixed else ())
    return Setup(model, "sparse_categorical_crossentropy", adam(1e-2), x, y, split(y),
                 epochs=40)
