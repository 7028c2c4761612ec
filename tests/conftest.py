"""Shared fixtures: the bundled samples, generated model files (good and bad), subprocess runs.

Everything expensive is session-scoped and built lazily, so a test module that needs none of
it (the page tests) pays nothing. Nothing here writes into the repository: generated files
go to pytest's temporary directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO / "sample_models"

# name -> (model file relative to sample_models/, format, model kind)
SAMPLE_MODELS = {
    "digits_cnn": ("digits_cnn/model.keras", "keras", "sequential"),
    "digits_cnn_h5": ("digits_cnn_h5/model.h5", "h5", "sequential"),
    "multi_io": ("multi_io/model.keras", "keras", "functional"),
    "nested": ("nested/model.keras", "keras", "functional"),
    "subclassed": ("subclassed/model.keras", "keras", "subclassed"),
    "text_embedding": ("text_embedding/model.keras", "keras", "functional"),
}
SUBCLASSED_CUSTOM_OBJECTS = SAMPLES_DIR / "subclassed" / "custom_objects.py"


@pytest.fixture(autouse=True)
def _child_checks_every_file():
    """Each test sees the isolated loader check its files in the child, whatever bytes an
    earlier test of this process got passed (`insight.model.sandbox.passed_before`)."""
    sandbox = sys.modules.get("insight.model.sandbox")
    if sandbox is not None:
        sandbox.forget_passed()

# A package name no module imported by the tests registers anything under.
FRESH_PACKAGE = "insight_unit_fresh"
FRESH_MODULE = "insight_unit_fresh_layers"
FRESH_SOURCE = f'''"""Custom layers for the missing-custom-class tests (never imported here)."""
import keras


@keras.saving.register_keras_serializable(package="{FRESH_PACKAGE}")
class FreshScale(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {{**super().get_config(), "factor": self.factor}}


class FreshShift(keras.layers.Layer):
    """Not registered: Keras records only its module and class name."""

    def call(self, x):
        return x + 1.0
'''
FRESH_BUILD = f"""
import keras
import {FRESH_MODULE} as m
keras.utils.set_random_seed(0)
x = keras.Input((3,), name="x")
y = keras.layers.Dense(2, name="dense")(m.FreshScale(name="scale")(x))
keras.Model(x, y, name="fresh_registered").save("fresh_registered.keras")
x = keras.Input((3,), name="x")
keras.Model(x, m.FreshShift(name="shift")(x), name="fresh_unregistered").save(
    "fresh_unregistered.keras")
"""


def pytest_configure(config):
    """One private insight cache for the whole run (results, converted profiles, fetched
    remote files): nothing is written to the user's ~/.cache, and no test reads a result an
    earlier run left there. Subprocesses and served apps inherit it."""
    if not os.environ.get("INSIGHT_CACHE_DIR"):
        import tempfile

        os.environ["INSIGHT_CACHE_DIR"] = tempfile.mkdtemp(prefix="insight-test-cache-")


def pytest_generate_tests(metafunc):
    """Run every test that takes `sample_name` once per bundled sample."""
    if "sample_name" in metafunc.fixturenames:
        metafunc.parametrize("sample_name", list(SAMPLE_MODELS))


@pytest.fixture(scope="session")
def sample_models():
    """`{name: (file under sample_models/, format, kind)}` of the bundled samples."""
    return dict(SAMPLE_MODELS)


@pytest.fixture(scope="session")
def samples_dir():
    """The repository's `sample_models/` folder."""
    return SAMPLES_DIR


@pytest.fixture(scope="session")
def subclassed_custom_objects():
    """The subclassed sample's custom objects file."""
    return SUBCLASSED_CUSTOM_OBJECTS


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for child Pythons: quiet TensorFlow, no bytecode, no INSIGHT_* leaks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHT_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def run_python(tmp_path_factory):
    """Run `python ARGS...` in a scratch directory; returns the CompletedProcess."""
    default_cwd = tmp_path_factory.mktemp("subprocess_cwd")

    def run(*args: str, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=cwd or default_cwd, env=subprocess_env(),
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    return run


@contextlib.contextmanager
def no_bytecode():
    """Keep Python from writing `__pycache__` next to files it imports (e.g. in samples)."""
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = old


@pytest.fixture(scope="session")
def sample_path():
    """`sample_path(name)`: the model file of a bundled sample."""

    def get(name: str) -> Path:
        return SAMPLES_DIR / SAMPLE_MODELS[name][0]

    return get


@pytest.fixture(scope="session")
def load_sample(sample_path):
    """`load_sample(name)`: the sample loaded with insight (cached for the session)."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            from insight.model.loading import load_model

            custom = SUBCLASSED_CUSTOM_OBJECTS if name == "subclassed" else None
            with no_bytecode():
                cache[name] = load_model(sample_path(name), custom_objects=custom)
        return cache[name]

    return get


def _rewrite_config(src: Path, dst: Path, edit) -> None:
    """Copy a .keras archive, replacing config.json with `edit(config_text)`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                data = edit(data.decode("utf-8")).encode("utf-8")
            zout.writestr(info, data)


def _set_dense_activation(activation):
    def edit(text: str) -> str:
        config = json.loads(text)
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense":
                layer["config"]["activation"] = activation
        return json.dumps(config)

    return edit


@pytest.fixture(scope="session")
def model_files(tmp_path_factory):
    """Tiny models (1-2 Dense layers) and every kind of bad input, built once.

    Attributes of the returned namespace are paths; see the assignments below.
    """
    import keras
    import numpy as np
    from keras.src.utils import python_utils

    root = tmp_path_factory.mktemp("model_files")
    keras.utils.set_random_seed(0)
    f = SimpleNamespace(root=root)

    x = keras.Input((3,), name="x")
    tiny = keras.Model(x, keras.layers.Dense(2, name="d1")(x), name="tiny")
    f.tiny_model = tiny
    f.tiny_keras = root / "tiny.keras"
    tiny.save(f.tiny_keras)
    f.tiny_h5 = root / "tiny.h5"
    tiny.save(f.tiny_h5)
    f.weights_h5 = root / "tiny.weights.h5"
    tiny.save_weights(f.weights_h5)
    f.weights_only_h5 = root / "weights_only.h5"  # weights saved under a plain .h5 name
    shutil.copy(f.weights_h5, f.weights_only_h5)

    x = keras.Input((3,), name="x")
    lam = keras.Model(x, keras.layers.Lambda(lambda v: v * 2, name="double")(x), name="lam")
    f.lambda_keras = root / "lambda.keras"
    lam.save(f.lambda_keras)
    f.lambda_h5 = root / "lambda.h5"
    lam.save(f.lambda_h5)

    x = keras.Input((3,), name="x")
    inner = keras.Sequential([keras.layers.Lambda(lambda v: v + 1, name="plus_one")],
                             name="inner")
    nested_lam = keras.Model(x, keras.layers.Dense(1, name="out")(inner(x)), name="nested_lam")
    f.nested_lambda_keras = root / "nested_lambda.keras"
    nested_lam.save(f.nested_lambda_keras)

    f.savedmodel = root / "exported"
    tiny.export(str(f.savedmodel), verbose=False)

    data = f.tiny_keras.read_bytes()
    rng = np.random.default_rng(0)
    f.truncated_keras = root / "truncated.keras"
    f.truncated_keras.write_bytes(data[: len(data) // 2])
    f.random_keras = root / "random.keras"
    f.random_keras.write_bytes(b"\x00\x13" + rng.bytes(2046))
    f.random_h5 = root / "random.h5"
    f.random_h5.write_bytes(b"\x00\x13" + rng.bytes(2046))
    f.empty_keras = root / "empty.keras"
    f.empty_keras.write_bytes(b"")
    f.empty_h5 = root / "empty.h5"
    f.empty_h5.write_bytes(b"")
    f.text_file = root / "model.txt"
    f.text_file.write_text("not a model\n")

    f.bad_json_keras = root / "bad_json.keras"
    _rewrite_config(f.tiny_keras, f.bad_json_keras, lambda text: text[: len(text) // 2])
    f.no_config_keras = root / "no_config.keras"
    with zipfile.ZipFile(f.no_config_keras, "w") as zf:
        zf.writestr("readme.txt", "hello")
    f.print_keras = root / "print_activation.keras"
    _rewrite_config(f.tiny_keras, f.print_keras, _set_dense_activation(
        {"module": "builtins", "class_name": "function", "config": "print",
         "registered_name": None}))
    f.lambda_fn_keras = root / "lambda_activation.keras"
    _rewrite_config(f.tiny_keras, f.lambda_fn_keras, _set_dense_activation(
        {"class_name": "__lambda__",
         "config": {"value": python_utils.func_dump(lambda v: v * 2)}}))

    f.dir_without_model = root / "no_model_dir"
    f.dir_without_model.mkdir()
    (f.dir_without_model / "notes.txt").write_text("no model here\n")
    f.dir_two_models = root / "two_models_dir"
    f.dir_two_models.mkdir()
    shutil.copy(f.tiny_keras, f.dir_two_models / "a.keras")
    shutil.copy(f.tiny_h5, f.dir_two_models / "b.h5")
    f.dir_one_model = root / "one_model_dir"
    f.dir_one_model.mkdir()
    shutil.copy(f.tiny_keras, f.dir_one_model / "only.keras")
    shutil.copy(f.weights_h5, f.dir_one_model / "only.weights.h5")  # not a second model
    f.unzipped_keras_dir = root / "unzipped_keras"
    with zipfile.ZipFile(f.tiny_keras) as zf:
        zf.extractall(f.unzipped_keras_dir)

    f.raising_custom_objects = root / "raising_layers.py"
    f.raising_custom_objects.write_text("raise RuntimeError('boom from the custom file')\n")
    f.missing = root / "does_not_exist.keras"
    return f


@pytest.fixture(scope="session")
def fresh_custom(tmp_path_factory, run_python):
    """Models using custom classes that this test process has never imported.

    The classes live in a .py file in a temporary folder; the models are saved by a child
    Python, so nothing registers them here until a test passes the file as custom objects.
    """
    root = tmp_path_factory.mktemp("fresh_custom")
    module_file = root / f"{FRESH_MODULE}.py"
    module_file.write_text(FRESH_SOURCE)
    proc = run_python("-c", FRESH_BUILD, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return SimpleNamespace(
        root=root, module_file=module_file, package=FRESH_PACKAGE, module=FRESH_MODULE,
        registered=root / "fresh_registered.keras",
        unregistered=root / "fresh_unregistered.keras",
    )


@pytest.fixture(scope="session")
def _s3_server():
    from unit import _s3

    server = _s3.start()
    yield server
    server.server.stop()


@pytest.fixture
def s3(_s3_server, monkeypatch, tmp_path):
    """A real S3 endpoint (moto's server) with its environment set for this test, and a
    private insight cache folder (`INSIGHT_CACHE_DIR`). See tests/unit/_s3.py."""
    from unit import _s3

    for key, value in _s3_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path / "insight-cache"))
    _s3.clear_fs_cache()
    yield _s3_server
    _s3.clear_fs_cache()


@pytest.fixture(scope="session")
def _gcs_server():
    from unit import _gcs

    server = _gcs.start()
    yield server
    server.server.stop()


@pytest.fixture
def gcs(_gcs_server, monkeypatch, tmp_path):
    """A real GCS endpoint (gcp-storage-emulator's server) with its environment set for this
    test, and a private insight cache folder (`INSIGHT_CACHE_DIR`). See tests/unit/_gcs.py."""
    from unit import _gcs

    for key, value in _gcs_server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("INSIGHT_CACHE_DIR", str(tmp_path / "insight-cache"))
    _gcs.clear_fs_cache()
    yield _gcs_server
    _gcs.clear_fs_cache()
