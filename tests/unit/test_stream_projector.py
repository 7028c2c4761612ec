"""The projector's layer vectors over a stream (read batch by batch past the rows kept in
memory, capped, with progress and the stream's labels), and the Data caption of a stream
longer than what is read."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from insight.data import Dataset
from insight.data.conform import dataset_for
from insight.data.shards import write_shards
from insight.projector import layers
from insight.projector.layers import layer_vectors

ROWS = 500


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((6,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(hidden))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(ROWS, 6)).astype("float32"), rng.integers(0, 3, ROWS)
    folder = tmp_path_factory.mktemp("shards")
    pattern, _ = write_shards(folder, x, y, shards=4, class_names=["a", "b", "c"])
    return SimpleNamespace(pattern=pattern, spec=folder / "features.json", x=x, y=y)


def _loaded(model):
    return SimpleNamespace(model=model, path=Path("/nonexistent/model.keras"))


def test_vectors_stream_past_the_rows_in_memory_with_labels_and_progress(model, shards):
    ds = dataset_for(_loaded(model), shards.pattern, features=shards.spec, max_examples=400,
                     head_rows=100)
    assert len(ds) == 100  # the rows in memory: the projector reads the stream past them
    seen = []
    vectors = layer_vectors(model, ds, "hidden", batch_size=64,
                            progress=lambda f, m: seen.append((f, m)))
    expected = layer_vectors(model, Dataset(x=shards.x[:400], y=shards.y[:400],
                                            class_names=["a", "b", "c"]), "hidden")
    assert vectors.vectors.shape == (400, 8)
    np.testing.assert_allclose(vectors.vectors, expected.vectors, rtol=1e-6, atol=1e-7)
    assert vectors.metadata["label"].tolist() == [["a", "b", "c"][k] for k in shards.y[:400]]
    assert vectors.metadata.equals(expected.metadata)  # predictions and correct, too
    assert vectors.images is None and vectors.name.endswith("(4 shards), streamed)")
    assert len(seen) == 7 and seen[-1] == (1.0, "Layer vectors of hidden: 400 of 400 examples")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)


def test_the_stream_is_capped_by_max_examples_and_stream_points(model, shards, monkeypatch):
    ds = dataset_for(_loaded(model), shards.pattern, features=shards.spec, head_rows=50)
    assert ds.stream.max_examples is None  # the CLI without --max-examples: all of it
    assert layer_vectors(model, ds, "hidden").vectors.shape == (ROWS, 8)
    assert layer_vectors(model, ds, "hidden", max_examples=120).vectors.shape == (120, 8)
    monkeypatch.setattr(layers, "STREAM_POINTS", 300)
    assert layer_vectors(model, ds, "hidden").vectors.shape == (300, 8)


def test_vectors_stop_growing_at_their_byte_budget(model, shards, monkeypatch):
    ds = dataset_for(_loaded(model), shards.pattern, features=shards.spec, head_rows=50)
    monkeypatch.setattr(layers, "VECTOR_BYTES", 200 * 8 * 4)  # 200 rows of 8 float32
    assert layer_vectors(model, ds, "hidden", batch_size=100).vectors.shape == (200, 8)


def test_image_thumbnails_kept_from_the_stream_under_their_budget(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten(name="flat")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(flat))
    x = np.random.default_rng(0).random((90, 8, 8, 1)).astype("float32")
    pattern, _ = write_shards(tmp_path, x, np.zeros(90, int), shards=3)
    ds = dataset_for(_loaded(model), pattern, features=tmp_path / "features.json",
                     head_rows=30)
    vectors = layer_vectors(model, ds, "flat", batch_size=32)
    assert vectors.images.shape == (90, 8, 8)
    np.testing.assert_array_equal(vectors.images, x[..., 0])
    monkeypatch.setattr(layers, "IMAGE_BYTES", 50 * 8 * 8 * 4)
    assert layer_vectors(model, ds, "flat", batch_size=32).images is None  # not half of them


def test_the_projection_panel_streams_in_the_app(model, tmp_path, monkeypatch):
    import insight
    from insight.panels import PanelContext, build_panel

    rows = 2600  # past the 2,048 rows the app keeps in memory
    x = np.random.default_rng(2).normal(size=(rows, 6)).astype("float32")
    pattern, _ = write_shards(tmp_path, x, np.arange(rows) % 3, shards=2)
    entry = Path(insight.__file__).parent / "ui" / "entry.py"
    monkeypatch.setattr("sys.argv", [str(entry), "--data", pattern, "--features",
                                     str(tmp_path / "features.json"), "--max-examples", "2500"])
    seen = []
    loaded = SimpleNamespace(model=model, path=Path("/nonexistent/m.keras"), preflight=None)
    ctx = PanelContext(loaded, pattern, progress=lambda f, m: seen.append(m))
    fig = build_panel("projection", ctx, layer="hidden", method="pca")
    assert "all 2,500 points" in fig.layout.title.text, fig.layout.title.text
    assert seen and seen[-1] == "Layer vectors of hidden: 2,500 of 2,500 examples"


# ---------------------------------------------------------------- the Data caption
def test_a_stream_longer_than_the_cap_is_said_to_be_cut(model, shards, monkeypatch):
    import insight

    entry = Path(insight.__file__).parent / "ui" / "entry.py"
    monkeypatch.setattr("sys.argv", [str(entry), "--data", shards.pattern, "--features",
                                     str(shards.spec)])
    monkeypatch.setattr("insight.data.conform.HEAD_ROWS", 200)  # the app's 2,048, scaled
    ds = dataset_for(_loaded(model), shards.pattern, head_rows=200)  # the app's own cap
    text = ds.describe()
    assert "streamed (the first 200 examples of a longer stream, all in memory)" in text, text
    assert "all 200 examples fit" not in text
    exact = dataset_for(_loaded(model), shards.pattern, max_examples=ROWS, head_rows=ROWS)
    assert f"streamed (all {ROWS} examples fit in memory)" in exact.describe()
    longer = dataset_for(_loaded(model), shards.pattern, max_examples=ROWS + 100,
                         head_rows=ROWS + 100)  # the stream ends first: it holds them all
    assert f"streamed (all {ROWS} examples fit in memory)" in longer.describe()
    assert longer.stream.max_examples == ROWS and not longer.stream.truncated
    prefix = ds.take(slice(0, 50))
    assert "the first 50 examples of a longer stream" in prefix.describe()


def test_results_of_streams_with_the_same_head_and_other_caps_are_kept_apart(model, shards):
    """The app's results cache keys a projection by the data's content: two servers on one
    cache, streaming the same shards with other caps, have the same rows in memory but
    project other points."""
    from insight.ui.cache import dataset_hash

    def digest(max_examples):
        ds = dataset_for(_loaded(model), shards.pattern, features=shards.spec,
                         max_examples=max_examples, head_rows=100)
        return dataset_hash(SimpleNamespace(dataset=lambda: ds))

    assert digest(300) != digest(400)
    assert digest(300) == digest(300)
