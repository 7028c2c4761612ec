"""Rebuild every bundled sample model deterministically.

Run from anywhere::

    python sample_models/build.py              # every sample
    python sample_models/build.py --only sick  # only the sick samples and their fixed twins
    python sample_models/build.py --only compare  # digits_cnn's checkpoints, variants, sweep

Each sample lives in its own folder next to this file. All data is available offline:
the digits come from ``sklearn.datasets.load_digits`` and the text corpus is built from
docstrings of Python standard-library modules. Seeds are fixed and TensorFlow op
determinism is enabled, so a rebuild on the same machine and library versions gives the
same weights; ``.keras`` archives and ``.npz`` files are normalised (fixed save date, zip
timestamps and shared-object ids) so their bytes are stable too. TensorBoard logs always
differ (they hold wall-clock times and host names).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import collections  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

ROOT = Path(__file__).resolve().parent
SEED = 0
FIXED_DATE_SAVED = "2026-01-01@00:00:00"
FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)
DIGIT_CLASS_NAMES = np.array([str(i) for i in range(10)])

# Label -> standard-library module whose docstrings make up that class. `posixpath` is
# what `os.path` is on POSIX; naming it directly keeps the corpus platform independent.
TEXT_MODULES = {
    "datetime": "datetime",
    "json": "json",
    "logging": "logging",
    "math": "math",
    "os.path": "posixpath",
    "random": "random",
    "re": "re",
    "threading": "threading",
}
TEXT_MAX_PER_CLASS = 150
TEXT_VOCAB_SIZE = 500  # most frequent tokens, not counting [PAD] and [UNK]
TEXT_SEQ_LEN = 24
TOKEN_RE = re.compile(r"[a-z0-9_]+")

README_LINES = {
    "digits_cnn": "A small Sequential CNN trained on the 8x8 scikit-learn digits, with its "
    "data, training history and TensorBoard logs (scalars, histograms and a profile).",
    "digits_cnn_h5": "The trained digits CNN saved in the legacy Keras HDF5 (.h5) format.",
    "subclassed": "A subclassed keras.Model (a small MLP on the digits) that needs the "
    "registered class in custom_objects.py to load.",
    "multi_io": "A functional model with two inputs (image and pixel statistics) and two "
    "outputs (digit and is-even) whose branches merge with Concatenate.",
    "nested": "A functional model that uses a Sequential convolutional backbone as a "
    "single layer, followed by a dense head, trained on the digits.",
    "text_embedding": "A text classifier with an Embedding layer that guesses which "
    "standard-library module a docstring sentence comes from, with its vocabulary.",
}


# --------------------------------------------------------------------------- helpers


def reset_seeds() -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow ops deterministic."""
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()


def write_readme(folder: Path, sentence: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(sentence + "\n", encoding="utf-8")


def normalize_zip(path: Path, rewrite: Callable[[str, bytes], bytes] | None = None) -> None:
    """Rewrite a zip archive with fixed member timestamps (same names, order, compression)."""
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in members:
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = info.compress_type
            fixed.external_attr = 0o644 << 16
            fixed.create_system = 3
            dst.writestr(fixed, rewrite(info.filename, data) if rewrite else data)


def _renumber_shared_objects(node: object, ids: dict[int, int]) -> None:
    """Replace `shared_object_id` values (Python `id()`s) by 1, 2, ... in order of use."""
    if isinstance(node, dict):
        if "shared_object_id" in node:
            node["shared_object_id"] = ids.setdefault(node["shared_object_id"], len(ids) + 1)
        for value in node.values():
            _renumber_shared_objects(value, ids)
    elif isinstance(node, list):
        for value in node:
            _renumber_shared_objects(value, ids)


def _normalize_keras_member(name: str, data: bytes) -> bytes:
    """Fix the save date and the memory-address ids that vary between rebuilds."""
    if name == "metadata.json":
        metadata = json.loads(data)
        metadata["date_saved"] = FIXED_DATE_SAVED
        return json.dumps(metadata).encode()
    if name == "config.json":
        config = json.loads(data)
        _renumber_shared_objects(config, {})
        return json.dumps(config).encode()
    return data


def save_keras(model: keras.Model, path: Path) -> None:
    """Save a `.keras` archive and normalise it so rebuilds are byte-stable."""
    model.save(path)
    normalize_zip(path, _normalize_keras_member)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Save numeric / unicode arrays compressed, with fixed zip timestamps."""
    for name, array in arrays.items():
        if array.dtype == object:
            raise TypeError(f"{name}: object arrays would need allow_pickle")
    np.savez_compressed(path, **arrays)
    normalize_zip(path)


def compile_classifier(model: keras.Model, learning_rate: float = 3e-3) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def fit(model: keras.Model, train: tuple, validation: tuple, *, epochs: int,
        callbacks: list | None = None) -> keras.callbacks.History:
    """Train quietly in batches of 32, validating on the held-out split."""
    return model.fit(*train, validation_data=validation, epochs=epochs, batch_size=32,
                     callbacks=callbacks or [], verbose=0)


def report(sample: str, history: keras.callbacks.History) -> None:
    """Print the final validation accuracy of each output."""
    scores = {k: v[-1] for k, v in history.history.items() if k.startswith("val_") and "acc" in k}
    print(f"{sample}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)


def load_module_from_path(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- digits


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 images in [0, 1] of shape (N, 8, 8, 1), int64 labels."""
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int64")
    return x, y


def split_indices(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, stratified 80/20 train/validation split."""
    return train_test_split(
        np.arange(len(y)), test_size=0.2, random_state=SEED, stratify=y, shuffle=True
    )


def build_digits_cnn() -> keras.Sequential:
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1), name="image"),
            layers.Conv2D(8, 3, activation="relu", padding="same", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(16, 3, activation="relu", name="conv2"),
            layers.Flatten(name="flatten"),
            layers.Dense(32, activation="relu", name="dense1"),
            layers.Dropout(0.2, seed=SEED, name="dropout"),
            layers.Dense(10, activation="softmax", name="predictions"),
        ],
        name="digits_cnn",
    )


def find_profiles(logdir: Path) -> list[Path]:
    return sorted(logdir.glob("**/plugins/profile/*/*.xplane.pb"))


def capture_profile(model: keras.Model, x: np.ndarray, logdir: Path) -> None:
    """Fallback: trace a few inference steps if the callback wrote no profile."""
    tf.profiler.experimental.start(str(logdir))
    for start in range(0, 96, 32):
        model(x[start : start + 32], training=False)
    tf.profiler.experimental.stop()


def train_digits_cnn(x: np.ndarray, y: np.ndarray) -> keras.Model:
    folder = ROOT / "digits_cnn"
    logdir = folder / "logs"
    shutil.rmtree(logdir, ignore_errors=True)
    train_idx, val_idx = split_indices(y)

    reset_seeds()
    model = build_digits_cnn()
    compile_classifier(model)
    callbacks = [
        keras.callbacks.CSVLogger(str(folder / "history.csv")),
        keras.callbacks.TensorBoard(log_dir=str(logdir), histogram_freq=1, profile_batch=(2, 4)),
    ]
    history = fit(model, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), epochs=10,
                  callbacks=callbacks)
    report("digits_cnn", history)
    if not find_profiles(logdir):
        capture_profile(model, x, logdir)
    check_tensorboard_logs(logdir)

    history_json = {k: [float(v) for v in values] for k, values in history.history.items()}
    (folder / "history.json").write_text(json.dumps(history_json, indent=2) + "\n")
    save_keras(model, folder / "model.keras")
    save_npz(folder / "data.npz", x=x, y=y, class_names=DIGIT_CLASS_NAMES)
    return model


def check_tensorboard_logs(logdir: Path) -> None:
    """Fail loudly if the logdir lacks scalars for train/validation or a profile."""
    for run in ("train", "validation"):
        if not list((logdir / run).glob("events.out.tfevents.*")):
            raise RuntimeError(f"no event file in {logdir / run}")
    if not find_profiles(logdir):
        raise RuntimeError(f"no *.xplane.pb profile under {logdir}")


def build_digits_h5(model: keras.Model) -> None:
    model.save(ROOT / "digits_cnn_h5" / "model.h5")


# ------------------------------------------------------------------------ subclassed


def load_custom_objects() -> ModuleType:
    """Import subclassed/custom_objects.py, which registers `insight_samples>DigitsMLP`."""
    return load_module_from_path("custom_objects", ROOT / "subclassed" / "custom_objects.py")


def build_subclassed(x: np.ndarray, y: np.ndarray) -> None:
    folder = ROOT / "subclassed"
    custom = load_custom_objects()
    train_idx, val_idx = split_indices(y)

    reset_seeds()
    model = custom.DigitsMLP(hidden_units=32, num_classes=10, name="digits_mlp")
    compile_classifier(model)
    history = fit(model, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), epochs=8)
    report("subclassed", history)
    save_keras(model, folder / "model.keras")


FRESH_LOAD_CHECK = textwrap.dedent(
    """
    import importlib.util, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    path, custom = sys.argv[1], sys.argv[2]
    try:
        keras.saving.load_model(path, compile=False, safe_mode=True)
    except TypeError as error:
        if "Could not locate class 'DigitsMLP'" not in str(error):
            raise
    else:
        sys.exit("loaded without custom_objects.py")
    spec = importlib.util.spec_from_file_location("custom_objects", custom)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    print(type(model).__name__, model.count_params())
    """
)


def check_subclassed_fresh_process() -> None:
    """In a fresh interpreter: loading fails without custom_objects.py, works with it."""
    folder = ROOT / "subclassed"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_LOAD_CHECK,
            str(folder / "model.keras"),
            str(folder / "custom_objects.py"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or "DigitsMLP" not in result.stdout:
        raise RuntimeError(f"fresh-process load check failed:\n{result.stdout}{result.stderr}")


# -------------------------------------------------------------------------- multi_io


def pixel_stats(x: np.ndarray) -> np.ndarray:
    """Per-image mean, standard deviation and maximum of the pixels, float32 (N, 3)."""
    flat = x.reshape(len(x), -1)
    return np.stack([flat.mean(1), flat.std(1), flat.max(1)], axis=1).astype("float32")


def build_multi_io_model() -> keras.Model:
    layers = keras.layers
    image = keras.Input(shape=(8, 8, 1), name="image")
    stats = keras.Input(shape=(3,), name="stats")
    a = layers.Conv2D(8, 3, activation="relu", padding="same", name="image_conv")(image)
    a = layers.MaxPooling2D(2, name="image_pool")(a)
    a = layers.Flatten(name="image_flatten")(a)
    b = layers.Dense(8, activation="relu", name="stats_dense")(stats)
    merged = layers.Concatenate(name="merge")([a, b])
    h = layers.Dense(32, activation="relu", name="shared_dense")(merged)
    digit = layers.Dense(10, activation="softmax", name="digit")(h)
    is_even = layers.Dense(1, activation="sigmoid", name="is_even")(h)
    return keras.Model(
        inputs={"image": image, "stats": stats},
        outputs={"digit": digit, "is_even": is_even},
        name="multi_io",
    )


def build_multi_io(x: np.ndarray, y: np.ndarray) -> None:
    folder = ROOT / "multi_io"
    stats = pixel_stats(x)
    y_is_even = (y % 2 == 0).astype("int64")
    train_idx, val_idx = split_indices(y)

    reset_seeds()
    model = build_multi_io_model()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=3e-3),
        loss={"digit": "sparse_categorical_crossentropy", "is_even": "binary_crossentropy"},
        metrics={"digit": ["accuracy"], "is_even": ["accuracy"]},
    )

    def inputs(idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": x[idx], "stats": stats[idx]}

    def targets(idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"digit": y[idx], "is_even": y_is_even[idx].astype("float32")[:, None]}

    history = fit(model, (inputs(train_idx), targets(train_idx)),
                  (inputs(val_idx), targets(val_idx)), epochs=8)
    report("multi_io", history)
    save_keras(model, folder / "model.keras")
    save_npz(folder / "data.npz", image=x, stats=stats, y_digit=y, y_is_even=y_is_even)


# ---------------------------------------------------------------------------- nested


def build_nested_model() -> keras.Model:
    layers = keras.layers
    backbone = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            layers.Conv2D(8, 3, activation="relu", padding="same", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(16, 3, activation="relu", padding="same", name="conv2"),
            layers.GlobalAveragePooling2D(name="gap"),
        ],
        name="backbone",
    )
    image = keras.Input(shape=(8, 8, 1), name="image")
    features = backbone(image)
    h = layers.Dense(32, activation="relu", name="head_dense")(features)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(h)
    return keras.Model(image, outputs, name="nested")


def build_nested(x: np.ndarray, y: np.ndarray) -> None:
    train_idx, val_idx = split_indices(y)
    reset_seeds()
    model = build_nested_model()
    compile_classifier(model, learning_rate=1e-2)
    history = fit(model, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), epochs=15)
    report("nested", history)
    save_keras(model, ROOT / "nested" / "model.keras")


# -------------------------------------------------------------------- text_embedding


def docstrings(module: ModuleType) -> list[str]:
    """Docstrings of a module's public functions and classes, and the classes' methods."""
    docs = []
    for name in sorted(dir(module)):
        obj = getattr(module, name)
        if name.startswith("_") or not (inspect.isroutine(obj) or inspect.isclass(obj)):
            continue
        docs.append(inspect.getdoc(obj) or "")
        if inspect.isclass(obj):
            for attr_name, attr in sorted(vars(obj).items()):
                doc = getattr(attr, "__doc__", None)
                if not attr_name.startswith("_") and callable(attr) and doc:
                    docs.append(inspect.cleandoc(doc))
    return docs


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(text.lower())


def sentences(doc: str) -> set[str]:
    """Prose sentences of a docstring (doctest paragraphs dropped)."""
    found = set()
    for paragraph in re.split(r"\n\s*\n", doc):
        if ">>>" in paragraph:
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())):
            if 4 <= len(tokenize(sentence)) <= 60:
                found.add(sentence)
    return found


def text_corpus() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sentences, int64 labels and class names; sentences shared by modules are dropped."""
    class_names = sorted(TEXT_MODULES)
    per_class = {
        label: set().union(*map(sentences, docstrings(importlib.import_module(module))))
        for label, module in TEXT_MODULES.items()
    }
    counts = collections.Counter(s for found in per_class.values() for s in found)
    rng = np.random.default_rng(SEED)
    texts, labels = [], []
    for index, label in enumerate(class_names):
        unique = sorted(s for s in per_class[label] if counts[s] == 1)
        if len(unique) > TEXT_MAX_PER_CLASS:
            keep = np.sort(rng.choice(len(unique), TEXT_MAX_PER_CLASS, replace=False))
            unique = [unique[i] for i in keep]
        texts += unique
        labels += [index] * len(unique)
    return texts, np.array(labels, dtype="int64"), np.array(class_names)


def build_vocab(texts: list[str]) -> list[str]:
    counts = collections.Counter(token for text in texts for token in tokenize(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ["[PAD]", "[UNK]"] + [token for token, _ in ranked[:TEXT_VOCAB_SIZE]]


def encode(texts: list[str], vocab: list[str]) -> np.ndarray:
    index = {token: i for i, token in enumerate(vocab)}
    x = np.zeros((len(texts), TEXT_SEQ_LEN), dtype="int32")
    for row, text in enumerate(texts):
        ids = [index.get(token, 1) for token in tokenize(text)][:TEXT_SEQ_LEN]
        x[row, : len(ids)] = ids
    return x


def build_text_model(vocab_size: int, num_classes: int) -> keras.Model:
    layers = keras.layers
    tokens = keras.Input(shape=(TEXT_SEQ_LEN,), dtype="int32", name="tokens")
    h = layers.Embedding(vocab_size, 16, name="embedding")(tokens)
    h = layers.GlobalAveragePooling1D(name="average")(h)
    h = layers.Dense(32, activation="relu", name="hidden")(h)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(h)
    return keras.Model(tokens, outputs, name="text_embedding")


def build_text_embedding() -> None:
    folder = ROOT / "text_embedding"
    texts, y, class_names = text_corpus()
    vocab = build_vocab(texts)
    x = encode(texts, vocab)
    train_idx, val_idx = split_indices(y)

    reset_seeds()
    model = build_text_model(len(vocab), len(class_names))
    compile_classifier(model, learning_rate=1e-2)
    history = fit(model, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]), epochs=20)
    report(f"text_embedding ({len(texts)} sentences, {len(vocab)} tokens)", history)
    save_keras(model, folder / "model.keras")
    (folder / "vocab.tsv").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    save_npz(folder / "data.npz", x=x, y=y, class_names=class_names)


# ------------------------------------------------------------------------------ sick

SICK_ROOT = ROOT / "sick"


@dataclass(frozen=True)
class SickSample:
    """A digits model trained the wrong way, or its fixed twin (the same setup done right).

    `category` is the doctor's finding category the sick model should get (`None` for a
    twin: it should get no warning). The model is an MLP on the flattened 8x8 digits:
    `depth` hidden layers of `units`, then a 10-way softmax.
    """

    name: str
    sentence: str
    category: str | None
    optimizer: Callable[[], keras.optimizers.Optimizer]
    loss: str = "sparse_categorical_crossentropy"
    depth: int = 2
    units: int = 32
    activation: str = "relu"
    kernel_initializer: str = "glorot_uniform"
    bias: float = 0.0  # every hidden layer's initial bias
    dropout: float = 0.4  # before the output layer
    pixel_max: float = 1.0  # 255.0: the raw 0-255 pixels go in unscaled
    one_hot: bool = False  # labels saved and trained as one-hot rows
    epochs: int = 12


def _sick_pair(name: str, category: str, sick: str, fixed: str,
               sick_args: dict, fixed_args: dict, **shared) -> list[SickSample]:
    return [SickSample(name, sick, category, **{**shared, **sick_args}),
            SickSample(f"{name}_fixed", fixed, None, **{**shared, **fixed_args})]


SICK_SAMPLES = [
    *_sick_pair(
        "vanishing", "vanishing_gradient",
        "Sick: a deep sigmoid MLP (8 hidden layers) on the digits whose gradients vanish "
        "before the first layers, so the loss hardly moves; the fix is in vanishing_fixed.",
        "Fixed twin of vanishing: the same 8 hidden layers and optimizer with ReLU and He "
        "initialisation, so gradients reach the first layers and it learns the digits.",
        {"activation": "sigmoid"}, {"activation": "relu", "kernel_initializer": "he_normal"},
        optimizer=lambda: keras.optimizers.SGD(learning_rate=0.05), depth=8),
    *_sick_pair(
        "dead_relu", "dead_units",
        "Sick: a ReLU MLP on the digits whose hidden biases start at -1, so most units never "
        "fire (dead ReLUs), get no gradient and the loss stays at ln(10); the fix is in "
        "dead_relu_fixed.",
        "Fixed twin of dead_relu: the same ReLU MLP with biases starting at zero, so its "
        "units fire and it learns the digits.",
        {"bias": -1.0}, {},
        optimizer=lambda: keras.optimizers.Adam(learning_rate=3e-3), units=64),
    *_sick_pair(
        "diverging", "learning_rate_high",
        "Sick: a leaky-ReLU MLP on the digits trained by SGD (momentum 0.9) with a far too "
        "high learning rate (0.25): the loss climbs after the first epoch and is NaN from the "
        "third; the fix is in diverging_fixed.",
        "Fixed twin of diverging: the same MLP and SGD (momentum 0.9) with a learning rate of "
        "0.01, so the loss falls steadily.",
        {"optimizer": lambda: keras.optimizers.SGD(learning_rate=0.25, momentum=0.9)},
        {"optimizer": lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)},
        activation="leaky_relu"),
    *_sick_pair(
        "softmax_bce", "loss_activation_mismatch",
        "Sick: a 10-way softmax classifier of the digits compiled with binary cross-entropy "
        "(meant for independent sigmoid outputs); the fix is in softmax_bce_fixed.",
        "Fixed twin of softmax_bce: the same softmax classifier and one-hot labels under "
        "categorical cross-entropy.",
        {"loss": "binary_crossentropy"}, {"loss": "categorical_crossentropy"},
        optimizer=lambda: keras.optimizers.Adam(learning_rate=3e-3), one_hot=True, depth=1),
    *_sick_pair(
        "raw_pixels", "unnormalized_input",
        "Sick: an MLP fed the digits as raw 0-255 pixels, never scaled to [0, 1], so its "
        "first layer's outputs are hundreds of times too large; the fix is in raw_pixels_fixed.",
        "Fixed twin of raw_pixels: the same MLP and data with the pixels divided by 255.",
        {"pixel_max": 255.0}, {},
        optimizer=lambda: keras.optimizers.Adam(learning_rate=1e-3)),
]


def build_sick_model(sample: SickSample) -> keras.Sequential:
    layers = keras.layers
    hidden = [
        layers.Dense(sample.units, activation=sample.activation,
                     kernel_initializer=sample.kernel_initializer,
                     bias_initializer=keras.initializers.Constant(sample.bias) if sample.bias
                     else "zeros",
                     name=f"dense{i + 1}")
        for i in range(sample.depth)
    ]
    return keras.Sequential(
        [keras.Input(shape=(8, 8, 1), name="image"), layers.Flatten(name="flatten"), *hidden,
         layers.Dropout(sample.dropout, seed=SEED, name="dropout"),
         layers.Dense(10, activation="softmax", name="predictions")],
        name=sample.name,
    )


def sick_data(sample: SickSample, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The digits as this sample sees them: pixels in [0, `pixel_max`] (8-bit steps when
    raw), labels as indices or one-hot rows."""
    pixels = np.round(x * 255.0) * (sample.pixel_max / 255.0)
    labels = np.eye(10, dtype="float32")[y] if sample.one_hot else y
    return pixels.astype("float32"), labels


def build_sick(sample: SickSample, x: np.ndarray, y: np.ndarray) -> None:
    """Train one sick sample (or twin) with its CSV history, history JSON and TensorBoard
    logdir, and save its model, data and one-line README."""
    folder = SICK_ROOT / sample.name
    logdir = folder / "logs"
    shutil.rmtree(logdir, ignore_errors=True)
    write_readme(folder, sample.sentence)
    inputs, labels = sick_data(sample, x, y)
    train_idx, val_idx = split_indices(y)

    reset_seeds()
    model = build_sick_model(sample)
    model.compile(optimizer=sample.optimizer(), loss=sample.loss, metrics=["accuracy"])
    callbacks = [keras.callbacks.CSVLogger(str(folder / "history.csv")),
                 keras.callbacks.TensorBoard(log_dir=str(logdir))]
    history = fit(model, (inputs[train_idx], labels[train_idx]),
                  (inputs[val_idx], labels[val_idx]), epochs=sample.epochs, callbacks=callbacks)
    losses = ", ".join(f"{v:.3g}" for v in history.history["loss"])
    report(f"sick/{sample.name} (loss {losses})", history)
    history_json = {k: [float(v) for v in values] for k, values in history.history.items()}
    (folder / "history.json").write_text(json.dumps(history_json, indent=2) + "\n")
    save_keras(model, folder / "model.keras")
    save_npz(folder / "data.npz", x=inputs, y=labels, class_names=DIGIT_CLASS_NAMES)


# ----------------------------------------------------------------- compare, timeline

COMPARE_ROOT = ROOT / "digits_cnn"
CHECKPOINT_EPOCHS = 10
SWEEP_EPOCHS = 8
# (run, learning rate, dense units, optimizer): a small grid, each run 8 epochs
SWEEP = [("run-1", 1e-3, 16, "adam"), ("run-2", 3e-3, 32, "adam"),
         ("run-3", 1e-2, 32, "adam"), ("run-4", 3e-2, 64, "sgd")]


def build_digits_variant(width: int, initializer: str, name: str,
                         dense_units: int | None = None) -> keras.Sequential:
    """digits_cnn with `width` times its channels and units (`dense_units` for the hidden
    dense layer when given), and another initialiser."""
    layers = keras.layers
    init = {"kernel_initializer": initializer}
    return keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1), name="image"),
            layers.Conv2D(8 * width, 3, activation="relu", padding="same", name="conv1", **init),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(16 * width, 3, activation="relu", name="conv2", **init),
            layers.Flatten(name="flatten"),
            layers.Dense(dense_units or 32 * width, activation="relu", name="dense1", **init),
            layers.Dropout(0.2, seed=SEED, name="dropout"),
            layers.Dense(10, activation="softmax", name="predictions", **init),
        ],
        name=name,
    )


def build_checkpoints(x: np.ndarray, y: np.ndarray) -> None:
    """digits_cnn trained again with ModelCheckpoint(save_weights_only=True) every epoch into
    digits_cnn/checkpoints/ (epoch_00 is the initial weights); the architecture is the
    model.keras in the folder above."""
    folder = COMPARE_ROOT / "checkpoints"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    train_idx, val_idx = split_indices(y)
    reset_seeds()
    model = build_digits_cnn()
    compile_classifier(model)
    model.save_weights(folder / "epoch_00.weights.h5")
    saver = keras.callbacks.ModelCheckpoint(str(folder / "epoch_{epoch:02d}.weights.h5"),
                                            save_weights_only=True)
    history = fit(model, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]),
                  epochs=CHECKPOINT_EPOCHS, callbacks=[saver])
    report("digits_cnn/checkpoints", history)


def build_variants(x: np.ndarray, y: np.ndarray) -> None:
    """Two variants of digits_cnn to compare it with, in digits_cnn/variants/: the same
    architecture from another initialisation (seed1.keras) and twice as wide (wide.keras)."""
    folder = COMPARE_ROOT / "variants"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    train_idx, val_idx = split_indices(y)
    for file, width, init, seed in (("seed1.keras", 1, "he_normal", SEED + 1),
                                    ("wide.keras", 2, "glorot_uniform", SEED)):
        keras.utils.set_random_seed(seed)
        model = build_digits_variant(width, init, f"digits_cnn_{file.split('.')[0]}")
        compile_classifier(model)
        history = fit(model, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]),
                      epochs=10)
        report(f"digits_cnn/variants/{file}", history)
        save_keras(model, folder / file)


def build_sweep(x: np.ndarray, y: np.ndarray) -> None:
    """A small hyperparameter sweep of digits_cnn-like models in digits_cnn/sweep/: the
    hparams plugin's experiment config at the top, each run's hparams (hp.KerasCallback) and
    its train/validation scalars (TensorBoard callback) in its own folder."""
    from tensorboard.plugins.hparams import api as hp

    folder = COMPARE_ROOT / "sweep"
    shutil.rmtree(folder, ignore_errors=True)
    lr = hp.HParam("learning_rate", hp.RealInterval(1e-4, 1e-1))
    units = hp.HParam("dense_units", hp.Discrete([16, 32, 64]))
    optimizer = hp.HParam("optimizer", hp.Discrete(["adam", "sgd"]))
    with tf.summary.create_file_writer(str(folder)).as_default():
        hp.hparams_config(hparams=[lr, units, optimizer], metrics=[
            hp.Metric("epoch_accuracy", group="validation", display_name="val accuracy"),
            hp.Metric("epoch_loss", group="validation", display_name="val loss"),
            hp.Metric("epoch_loss", group="train", display_name="train loss")])
    train_idx, val_idx = split_indices(y)
    for run, rate, width, opt in SWEEP:
        reset_seeds()
        model = build_digits_variant(1, "glorot_uniform", "digits_cnn", dense_units=width)
        optim = (keras.optimizers.Adam(rate) if opt == "adam" else
                 keras.optimizers.SGD(rate, momentum=0.9))
        model.compile(optimizer=optim, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        logdir = str(folder / run)
        callbacks = [keras.callbacks.TensorBoard(logdir, write_graph=False, profile_batch=0),
                     hp.KerasCallback(logdir, {lr: rate, units: width, optimizer: opt},
                                      trial_id=run)]
        history = fit(model, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]),
                      epochs=SWEEP_EPOCHS, callbacks=callbacks)
        report(f"digits_cnn/sweep/{run}", history)


def build_compare(x: np.ndarray, y: np.ndarray) -> None:
    """What the checkpoint timeline, the Compare page and the Runs page open out of the box:
    digits_cnn's checkpoints, two variants and a hyperparameter sweep, beside its model."""
    build_checkpoints(x, y)
    build_variants(x, y)
    build_sweep(x, y)


# ---------------------------------------------------------------------------- verify

MODEL_FILES = {
    "digits_cnn": "model.keras",
    "digits_cnn_h5": "model.h5",
    "subclassed": "model.keras",
    "multi_io": "model.keras",
    "nested": "model.keras",
    "text_embedding": "model.keras",
}


def verify_and_summarize(
        groups: tuple[str, ...] = ("main", "sick")) -> list[tuple[str, str, int, int]]:
    """Load every model built (compile=False, safe_mode=True); return (sample, file, params,
    size), samples named by their folder under sample_models/."""
    files = list(MODEL_FILES.items()) if "main" in groups else []
    if "sick" in groups:
        files += [(f"sick/{s.name}", "model.keras") for s in SICK_SAMPLES]
    if "compare" in groups:
        files += [("digits_cnn/variants", "seed1.keras"), ("digits_cnn/variants", "wide.keras")]
    load_custom_objects()  # registers DigitsMLP for subclassed/model.keras
    rows = []
    for sample, filename in files:
        path = ROOT / sample / filename
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        rows.append((sample, filename, model.count_params(), path.stat().st_size))
    return rows


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def print_summary(rows: list[tuple[str, str, int, int]], seconds: float) -> None:
    print(f"{'sample':<24} {'file':<12} {'params':>8} {'file KB':>8} {'folder KB':>10}")
    for sample, filename, params, size in rows:
        total = folder_size(ROOT / sample)
        print(f"{sample:<24} {filename:<12} {params:>8} {size / 1024:>8.1f} {total / 1024:>10.1f}")
    print(f"total {folder_size(ROOT) / 1024:.1f} KB under {ROOT}, built in {seconds:.0f} s")


def build_main(x: np.ndarray, y: np.ndarray) -> None:
    """The samples the app lists in its sidebar."""
    for folder, sentence in README_LINES.items():
        write_readme(ROOT / folder, sentence)
    digits_model = train_digits_cnn(x, y)
    build_digits_h5(digits_model)
    build_subclassed(x, y)
    check_subclassed_fresh_process()
    build_multi_io(x, y)
    build_nested(x, y)
    build_text_embedding()


SICK_README = """# Sick samples

Digits models trained the wrong way on purpose, each beside its fixed twin (the same setup
done right), for insight's doctor: the sick one should get a finding of the category below,
its twin no warning. They are not listed in the app's sidebar; open one by path, e.g.

```bash
insight doctor sample_models/sick/vanishing/model.keras
insight serve sample_models/sick/vanishing/model.keras
```

`data.npz` (beside the model) and `logs/` (TensorBoard) are found on their own; each folder
also has `history.csv` (CSVLogger) and `history.json`. Rebuild them with
`python sample_models/build.py --only sick`.

| Sick | Fixed twin | Expected finding | What it shows |
| --- | --- | --- | --- |
"""


def write_sick_readme() -> None:
    rows = [f"| `{sick.name}/` | `{fixed.name}/` | `{sick.category}` | "
            f"{sick.sentence.removeprefix('Sick: ').split('; the fix')[0]} |"
            for sick, fixed in zip(SICK_SAMPLES[::2], SICK_SAMPLES[1::2], strict=True)]
    (SICK_ROOT / "README.md").write_text(SICK_README + "\n".join(rows) + "\n",
                                         encoding="utf-8")


def build_all_sick(x: np.ndarray, y: np.ndarray) -> None:
    """The sick samples under sick/ and their fixed twins (not listed in the sidebar)."""
    for sample in SICK_SAMPLES:
        build_sick(sample, x, y)
    write_sick_readme()


GROUPS = {"main": build_main, "sick": build_all_sick, "compare": build_compare}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the bundled sample models.")
    parser.add_argument("--only", choices=sorted(GROUPS), action="append",
                        help="build only this group (repeatable): main (the sidebar's "
                             "samples), sick (sick/: the doctor's sick samples and their "
                             "fixed twins) or compare (digits_cnn's checkpoints, variants and "
                             "hparams sweep); default: all")
    groups = tuple(parser.parse_args(argv).only or GROUPS)
    start = time.perf_counter()
    x, y = load_digits_arrays()
    for group in groups:
        GROUPS[group](x, y)
    print_summary(verify_and_summarize(groups), time.perf_counter() - start)


if __name__ == "__main__":
    main()
