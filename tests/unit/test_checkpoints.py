"""Checkpoint folders: epochs from file names, weights read as data and checked first, the
weight-change timeline on known weights, Procrustes alignment, CKA against the final epoch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from insight.compare.checkpoints import find_checkpoints, parse_epoch, read_weights
from insight.compare.timeline import (
    cka_timeline,
    procrustes_align,
    projection_frame,
    timeline_model,
    timeline_report,
    weight_timeline,
)
from insight.errors import DataError, UnsafeModelError
from insight.model.samples import get_sample

SAMPLE = get_sample("digits_cnn")
SAMPLE_CKPTS = SAMPLE.model.parent / "checkpoints"


@pytest.mark.parametrize(("name", "epoch"), [
    ("epoch_03.keras", 3), ("ckpt-07.weights.h5", 7), ("model.12-0.45.keras", 12),
    ("weights.05-1.23e-02.weights.h5", 5), ("model_epoch10_acc0.91.keras", 10),
    ("cp-0042.weights.h5", 42), ("best.keras", None), ("final.weights.h5", None)])
def test_epoch_parsed_from_checkpoint_names(name, epoch):
    assert parse_epoch(name) == epoch


def _tiny(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2, name="a"),
                             keras.layers.Dense(2, name="b")], name="tiny")


def _set(model, a: float, b: float) -> None:
    """Layer `a`'s kernel and bias all `a`, layer `b`'s all `b`."""
    for name, v in (("a", a), ("b", b)):
        layer = model.get_layer(name)
        layer.set_weights([np.full(w.shape, v, np.float32) for w in layer.get_weights()])


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> Path:
    """Weights checkpoints with known values beside one model file: layer a goes 1 -> 2 ->
    -2 (relative change 1, then 2; cosine 1, then -1), layer b stays 3."""
    folder = tmp_path_factory.mktemp("known")
    model = _tiny()
    model.save(folder / "model.keras")
    for epoch, a in ((1, 1.0), (2, 2.0), (10, -2.0)):
        _set(model, a, 3.0)
        model.save_weights(folder / f"ckpt-{epoch:02d}.weights.h5")
    return folder


def test_weights_folder_ordered_by_epoch_with_its_model(known):
    found = find_checkpoints(known)
    assert found.epochs == [1, 2, 10] and found.epochs_from == "names"
    assert found.model_file == known / "model.keras"
    assert found.layers == ["a", "b"]
    assert [c.kind for c in found.checkpoints] == ["weights"] * 3


def test_weight_change_on_known_weights(known):
    df = weight_timeline(known)
    a = df[df.layer == "a"].set_index("epoch")
    assert a.relative_change.tolist() == pytest.approx([1.0, 2.0])
    assert a.cosine.tolist() == pytest.approx([1.0, -1.0])
    assert a.from_epoch.tolist() == [1, 2]
    b = df[df.layer == "b"]
    assert b.relative_change.tolist() == pytest.approx([0.0, 0.0])
    assert df.depth.tolist() == [0, 0, 1, 1] and set(df.params) == {8, 6}


def test_read_weights_of_a_keras_archive_are_the_models():
    import keras

    stored = read_weights(SAMPLE.model)
    model = keras.saving.load_model(SAMPLE.model, compile=False)
    for name, arrays in stored.items():
        for got, want in zip(arrays, model.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    assert list(stored) == ["conv1", "conv2", "dense1", "predictions"]


def test_legacy_h5_weights_read_by_layer_names():
    legacy = read_weights(get_sample("digits_cnn_h5").model)  # the same trained CNN
    current = read_weights(SAMPLE.model)
    assert list(legacy) == list(current)
    for name, arrays in current.items():
        for got, want in zip(legacy[name], arrays, strict=True):
            np.testing.assert_array_equal(got, want)


def test_full_checkpoints_in_file_order_when_names_give_no_epoch(tmp_path):
    model = _tiny()
    for i, name in enumerate(("first.keras", "second.keras", "third.keras")):
        _set(model, float(i + 1), 1.0)
        model.save(tmp_path / name)
    found = find_checkpoints(tmp_path)
    assert found.epochs_from == "order" and found.epochs == [1, 2, 3]
    assert [c.path.name for c in found.checkpoints] == ["first.keras", "second.keras",
                                                          "third.keras"]
    assert found.model_file == tmp_path / "third.keras"
    rel = weight_timeline(found).set_index(["layer", "epoch"]).relative_change
    assert rel[("a", 2)] == pytest.approx(1.0) and rel[("a", 3)] == pytest.approx(0.5)


def test_fewer_than_two_checkpoints_refused(tmp_path):
    _tiny().save(tmp_path / "epoch_01.keras")
    with pytest.raises(DataError, match="at least two checkpoints") as err:
        find_checkpoints(tmp_path)
    assert "Received:" in str(err.value) and "epoch_01.keras" in str(err.value)
    with pytest.raises(DataError, match="must be a folder"):
        find_checkpoints(tmp_path / "epoch_01.keras")


def test_weights_file_linking_elsewhere_refused(known, tmp_path):
    folder = tmp_path / "ckpts"
    shutil.copytree(known, folder)
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["data"] = np.arange(3.0)
    with h5py.File(folder / "ckpt-02.weights.h5", "a") as f:
        f["layers/dense/leak"] = h5py.ExternalLink(str(secret), "/data")
    with pytest.raises(UnsafeModelError, match="points into other files"):
        weight_timeline(folder)


def test_lambda_checkpoint_refused_in_safe_mode(tmp_path):
    import keras

    inp = keras.Input((3,))
    out = keras.layers.Lambda(lambda t: t * 2, name="double")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="d")(out))
    for e in (1, 2):
        model.save(tmp_path / f"epoch_{e}.keras")
    with pytest.raises(UnsafeModelError):
        find_checkpoints(tmp_path)
    assert find_checkpoints(tmp_path, safe_mode=False).epochs == [1, 2]


def test_procrustes_aligns_a_rotated_copy_back():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 2)) + [3.0, -1.0]
    theta = 1.1
    turn = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    np.testing.assert_allclose(procrustes_align(a, a @ turn), a, atol=1e-9)
    flip = np.array([[1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_allclose(procrustes_align(a, a @ flip), a, atol=1e-9)
    assert not np.allclose(a @ turn, a)


def test_projection_frames_follow_the_previous_epoch():
    """Two equally strong directions: a little noise turns PCA's axes freely between epochs
    (here by a large angle); aligned, the points stay where they were, up to the noise."""
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(100, 6)) * [3, 3, 0.5, 0.3, 0.2, 0.1]
    later = acts + rng.normal(size=acts.shape) * 0.3
    df = projection_frame({1: acts, 2: later})
    xy = {e: g.sort_values("row")[["x", "y"]].to_numpy() for e, g in df.groupby("epoch")}
    assert np.abs(xy[2] - xy[1]).mean() < 0.1
    unaligned = projection_frame({2: later}).sort_values("row")[["x", "y"]].to_numpy()
    assert np.abs(unaligned - xy[1]).mean() > 0.5


def test_cka_against_the_final_checkpoint(known):
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    loaded = timeline_model(known)
    df = cka_timeline(known, loaded, x)
    last = df[df.epoch == 10]
    assert last.cka.tolist() == pytest.approx([1.0, 1.0])
    assert set(df.layer) == {"a", "b"} and len(df) == 6


def test_timeline_report_of_the_sample(tmp_path):
    report = timeline_report(SAMPLE_CKPTS, isolate=False, max_inputs=64)
    assert report.folder.epochs == list(range(11))
    assert report.cka is not None and len(report.cka) == 4 * 11
    summary = report.summary().set_index("layer")
    assert list(summary.index) == ["conv1", "conv2", "dense1", "predictions"]
    assert (summary.at_epoch <= 2).all()  # every layer moves most in its first epochs
    assert (summary.last_change < summary.largest_change / 4).all()
    assert report.cka[report.cka.epoch == 10].cka.tolist() == pytest.approx([1.0] * 4)
    text = report.text()
    assert "11 checkpoints" in text and "from the file names" in text
    assert json.loads(json.dumps(report.to_dict()))["weights"][0]["layer"] == "conv1"


def test_nested_model_weights_by_layer_path():
    import keras

    from insight.compare.timeline import apply_weights

    path = get_sample("nested").model
    stored = read_weights(path)
    assert sorted(stored) == ["backbone/conv1", "backbone/conv2", "head_dense", "predictions"]
    model = keras.saving.load_model(path, compile=False)
    conv = model.get_layer("backbone").get_layer("conv1")
    conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    apply_weights(model, stored)
    np.testing.assert_array_equal(conv.get_weights()[0], stored["backbone/conv1"][0])
