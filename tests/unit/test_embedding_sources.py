"""Vectors to project: layer outputs, Embedding weights, files, TensorBoard projector logdirs."""

from __future__ import annotations

import numpy as np
import pytest

from insight.data import dataset_for
from insight.errors import DataError, UsageError
from insight.probe.capture import activations
from insight.projector.sources import (
    embedding_vectors,
    file_vectors,
    layer_vectors,
    projector_vectors,
)


def test_layer_vectors_match_activations_and_predictions(load_sample):
    loaded = load_sample("digits_cnn")
    dataset = dataset_for(loaded).take(slice(0, 300))
    vec = layer_vectors(loaded, dataset, "dense1", batch_size=128)
    direct = activations(loaded, dataset.x, ["dense1", "predictions"])
    np.testing.assert_allclose(vec.vectors, direct["dense1"], atol=1e-5)
    probs = direct["predictions"]
    assert vec.metadata["predicted"].tolist() == [str(i) for i in probs.argmax(1)]
    np.testing.assert_allclose(vec.metadata["confidence"], probs.max(1), atol=1e-6)
    assert vec.metadata["correct"].tolist() == list(dataset.y == probs.argmax(1))
    assert vec.images.shape == (300, 8, 8)


def test_conv_outputs_flattened_or_pooled(load_sample):
    loaded = load_sample("digits_cnn")
    dataset = dataset_for(loaded).take(slice(0, 50))
    conv = activations(loaded, dataset.x, ["conv1"])["conv1"]
    assert layer_vectors(loaded, dataset, "conv1").vectors.shape == (50, 8 * 8 * 8)
    pooled = layer_vectors(loaded, dataset, "conv1", reduce="mean").vectors
    np.testing.assert_allclose(pooled, conv.mean(axis=(1, 2)), atol=1e-5)
    with pytest.raises(UsageError, match="Reductions are"):
        layer_vectors(loaded, dataset, "conv1", reduce="median")


def test_embedding_weights_with_vocabulary(load_sample):
    loaded = load_sample("text_embedding")
    vec = embedding_vectors(loaded)
    assert vec.vectors.shape[0] == len(vec.metadata) == 502
    assert vec.metadata["token"].tolist()[:2] == ["[PAD]", "[UNK]"]
    with pytest.raises(UsageError, match="no Embedding layer"):
        embedding_vectors(load_sample("digits_cnn"))


def test_projector_logdir_round_trip(tmp_path):
    from tensorboard.plugins import projector

    vectors = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    np.savetxt(tmp_path / "tensors.tsv", vectors, delimiter="\t")
    (tmp_path / "meta.tsv").write_text("word\tcount\n" + "".join(
        f"w{i}\t{i}\n" for i in range(20)))
    config = projector.ProjectorConfig()
    emb = config.embeddings.add()
    emb.tensor_name, emb.tensor_path, emb.metadata_path = "words", "tensors.tsv", "meta.tsv"
    projector.visualize_embeddings(str(tmp_path), config)
    [got] = projector_vectors(tmp_path)
    np.testing.assert_allclose(got.vectors, vectors, atol=1e-6)
    assert got.metadata.columns.tolist() == ["word", "count"]
    assert got.metadata["word"].tolist()[:2] == ["w0", "w1"] and got.name == "words"


def test_projector_config_outside_logdir_refused(tmp_path):
    outside = tmp_path / "secret.tsv"
    np.savetxt(outside, np.ones((3, 2)), delimiter="\t")
    logdir = tmp_path / "logs"
    logdir.mkdir()
    (logdir / "projector_config.pbtxt").write_text(
        'embeddings { tensor_name: "x" tensor_path: "../secret.tsv" }\n')
    with pytest.raises(DataError, match="outside its logdir") as err:
        projector_vectors(logdir)
    assert "Received: tensor_path='../secret.tsv'" in str(err.value)


@pytest.mark.parametrize("where", ["../secret_meta.tsv", "absolute"])
def test_projector_metadata_outside_logdir_refused(tmp_path, where):
    """The tensor is inside the logdir, its metadata is not: refused, nothing read."""
    secret = tmp_path / "secret_meta.tsv"
    secret.write_text("a\nb\nc\n")
    logdir = tmp_path / "logs"
    logdir.mkdir()
    np.savetxt(logdir / "tensors.tsv", np.ones((3, 2)), delimiter="\t")
    meta = str(secret) if where == "absolute" else where
    (logdir / "projector_config.pbtxt").write_text(
        f'embeddings {{ tensor_name: "x" tensor_path: "tensors.tsv" metadata_path: "{meta}" }}\n')
    with pytest.raises(DataError, match="points metadata_path outside its logdir") as err:
        projector_vectors(logdir)
    assert f"Received: metadata_path={meta!r}" in str(err.value)


def test_metadata_row_count_must_match(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((4, 3), np.float32))
    (tmp_path / "m.tsv").write_text("a\nb\nc\n")
    with pytest.raises(DataError, match="3 rows but there are 4 vectors"):
        file_vectors(tmp_path / "v.npy", tmp_path / "m.tsv")


def test_file_vectors_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        file_vectors(tmp_path / "none.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled arrays are refused"):
        file_vectors(tmp_path / "obj.npy")
    (tmp_path / "bad.tsv").write_text("1\tx\n")
    with pytest.raises(DataError, match="other than numbers"):
        file_vectors(tmp_path / "bad.tsv")
