"""A `.keras` file loaded in two steps (`insight.model.keras_phases`), and the isolated
loader keeping each of the server's steps behind the child's (`insight.load_model(path,
isolate=...)`, `insight.model.lockstep`).

The server runs each step of the load (a variable created or assigned, and the code before
it) only once the child has run past it: a config that breaks Keras never breaks the
server's Keras, and weights that break h5py never reach the server's h5py. The spies below
wrap the real functions in this process only (the child is another process, untouched).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from insight.errors import ModelLoadError
from insight.model import keras_phases
from insight.model.sandbox import LoadLimits, forget_passed, prestart, stop_spare

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "sample_models" / "digits_cnn" / "model.keras"
LIMITS = LoadLimits(60, 4 * 2**30)


def _same_weights(a, b) -> None:
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb) > 0
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)


def test_two_steps_load_what_keras_loads():
    import keras

    assert keras_phases.phased()  # this Keras has the seam; else the loader uses one call
    model = keras_phases.build(DIGITS, custom_objects=None, safe_mode=True)
    fresh = [w.copy() for w in model.get_weights()]
    keras_phases.load_weights(model, DIGITS)
    reference = keras.saving.load_model(DIGITS, compile=False)
    _same_weights(model, reference)
    assert any(not np.array_equal(f, w) for f, w in zip(fresh, model.get_weights(), strict=True))


def test_two_steps_keep_assets(tmp_path):
    """A lookup layer keeps its vocabulary in the archive's assets, not in the weights."""
    import keras

    lookup = keras.layers.StringLookup()
    lookup.adapt(np.array(["cat", "dog", "eel"]))  # an adapted vocabulary is saved as an asset
    model = keras.Sequential([keras.Input((1,), dtype="string"), lookup])
    path = tmp_path / "lookup.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        assert any(n.startswith("assets/") for n in zf.namelist())
    built = keras_phases.build(path, custom_objects=None, safe_mode=True)
    keras_phases.load_weights(built, path)
    words = np.array([["eel"], ["cat"], ["owl"]])
    np.testing.assert_array_equal(np.asarray(built(words)), np.asarray(model(words)))


@pytest.fixture(scope="module")
def spares():
    prestart()

    def ready():
        forget_passed()  # each test loads the digits bytes anew through the child
        prestart()

    yield ready
    stop_spare()


@pytest.fixture
def spies(monkeypatch):
    calls: list[str] = []
    build, load_weights = keras_phases.build, keras_phases.load_weights

    def spy_build(*args, **kwargs):
        calls.append("build")
        return build(*args, **kwargs)

    def spy_weights(*args, **kwargs):
        calls.append("weights")
        return load_weights(*args, **kwargs)

    monkeypatch.setattr(keras_phases, "build", spy_build)
    monkeypatch.setattr(keras_phases, "load_weights", spy_weights)
    return calls


def _with_config_change(src: Path, dst: Path, old: bytes, new: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                assert old in data
                data = data.replace(old, new, 1)
            zout.writestr(item, data)
    return dst


def _with_weights(src: Path, dst: Path, weights: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = weights if item.filename == "model.weights.h5" else zin.read(item.filename)
            zout.writestr(item, data)
    return dst


@pytest.mark.slow
def test_isolated_load_builds_and_reads_after_the_child(spares, spies, tmp_path):
    import insight

    spares()
    copy = shutil.copy(DIGITS, tmp_path / "digits.keras")  # the bundled sample skips the child
    loaded = insight.load_model(copy, isolate=LIMITS)
    assert spies == ["build", "weights"] and loaded.model.count_params() > 0


@pytest.fixture
def shapes(monkeypatch):
    """The shape of every Keras variable this process creates."""
    from keras.src.backend.common.variables import Variable

    created: list[tuple] = []
    init = Variable.__init__

    def spy(self, initializer, shape=None, *args, **kwargs):
        created.append(tuple(shape) if shape is not None else ())
        return init(self, initializer, shape, *args, **kwargs)

    monkeypatch.setattr(Variable, "__init__", spy)
    return created


@pytest.mark.slow
def test_a_config_keras_cannot_build_never_reaches_the_server(spares, spies, shapes, tmp_path):
    import insight

    spares()
    bad = _with_config_change(DIGITS, tmp_path / "bad.keras", b'"units": 10', b'"units": -1')
    with pytest.raises(ModelLoadError, match="could not build the model") as refused:
        insight.load_model(bad, isolate=LIMITS)
    # The server followed the child up to the step Keras cannot take, and stopped there: the
    # error is the child's, not one of the server's own Keras (which would be its cause).
    assert refused.value.__cause__ is None and "ModelLoadError" not in str(refused.value)
    assert spies in (["build"], [])
    assert not any(d < 0 for shape in shapes for d in shape if d is not None)


@pytest.mark.slow
def test_the_server_builds_beside_the_child_not_after_it(spares, spies, shapes, tmp_path):
    """Step by step: the server's build starts while the child is still building."""
    import insight
    from insight.model import sandbox

    seen: list[tuple[int, str]] = []
    reached = sandbox.PendingCheck.reached

    def spy(self, step):
        reached(self, step)
        seen.append((step, self.stage))

    spares()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sandbox.PendingCheck, "reached", spy)
        insight.load_model(shutil.copy(DIGITS, tmp_path / "digits.keras"), isolate=LIMITS)
    assert seen[0][0] == 1 and [s for s, _ in seen] == list(range(1, len(seen) + 1))
    assert len(seen) >= len(shapes) > 0  # a wait before every variable made here
    assert seen[0][1] == "load"  # the first of them while the child was still building


@pytest.mark.slow
def test_weights_h5py_cannot_read_never_reach_the_server(spares, spies, tmp_path):
    import insight

    spares()
    bad = _with_weights(DIGITS, tmp_path / "bad.keras", b"\x89HDF\r\n\x1a\n" + b"\0" * 4096)
    with pytest.raises(ModelLoadError):
        insight.load_model(bad, isolate=LIMITS)
    # Built here while the child read the weights, unless the child's error came first
    # (both are fine); the weights are never read here.
    assert spies in (["build"], [])


@pytest.mark.slow
def test_bytes_the_child_passed_load_again_without_it(spares, tmp_path):
    """A model evicted from the app's cache and loaded again: the same bytes passed the child
    and loaded here once, so the second load skips the child; other bytes do not."""
    import insight
    from insight.model import sandbox

    spares()
    first = shutil.copy(DIGITS, tmp_path / "a.keras")
    insight.load_model(first, isolate=LIMITS)
    again = shutil.copy(DIGITS, tmp_path / "b.keras")  # same bytes, another name
    bad = _with_config_change(DIGITS, tmp_path / "bad.keras", b'"units": 10', b'"units": -1')
    started: list[str] = []
    start = sandbox.start_check

    def spy(path, **kwargs):
        started.append(Path(path).name)
        return start(path, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sandbox, "start_check", spy)
        assert insight.load_model(again, isolate=LIMITS).model.count_params() > 0
        for _ in range(2):  # a refusal is not remembered as a pass
            with pytest.raises(ModelLoadError):
                insight.load_model(bad, isolate=LIMITS)
        insight.load_model(again, isolate=LIMITS, safe_mode=False)  # another check
    assert started == ["bad.keras", "bad.keras", "b.keras"]
