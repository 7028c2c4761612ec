"""Data beyond memory: TFRecord shards with a features spec, or a trusted `tf.data` builder,
streamed through the statistics pass, the doctor's evidence and the projector's vectors.

Streamed statistics equal the in-memory pass on the same rows (float64 accumulation of
float32 batch sums in another order: `rtol=1e-6`; counts, extremes and dead units exactly);
an endless stream with `--max-examples` ends, which a pass gathering its inputs never would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from insight.data import Dataset
from insight.data.conform import dataset_for
from insight.data.features import parse_features, read_features
from insight.data.shards import write_shards
from insight.data.stream import is_stream_path, list_shards
from insight.errors import DataError, StorageError
from insight.probe.stats import activation_stats

RTOL = 1e-6  # float32 batch sums accumulated in float64, batches in another order


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    inp = keras.Input((6,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(hidden))


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 6)).astype("float32"), rng.integers(0, 3, 300)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, arrays):
    folder = tmp_path_factory.mktemp("shards")
    pattern, _ = write_shards(folder, *arrays, shards=3, class_names=["a", "b", "c"])
    return SimpleNamespace(pattern=pattern, spec=folder / "features.json", folder=folder)


def _loaded(model):
    return SimpleNamespace(model=model, path=Path("/nonexistent/model.keras"))


def _same_stats(a, b, *, histograms: bool = False) -> None:
    assert a.n_examples == b.n_examples
    cols = ["min", "max", "dead_units", "units"]
    assert a.table[cols].equals(b.table[cols])
    for c in ("mean", "std", "zero_fraction", "saturated_fraction"):
        np.testing.assert_allclose(a.table[c], b.table[c], rtol=RTOL, equal_nan=True)
    for layer, units in a.units.items():
        np.testing.assert_allclose(units["mean"], b.units[layer]["mean"], rtol=RTOL,
                                   atol=1e-7)
        assert (units["min"] == b.units[layer]["min"]).all()
        assert (units["max"] == b.units[layer]["max"]).all()
        if histograms:
            assert (a.histograms[layer][0] == b.histograms[layer][0]).all()
            assert (a.histograms[layer][1] == b.histograms[layer][1]).all()


# ---------------------------------------------------------------- the features spec
GOOD = {"features": {"x": {"dtype": "float32", "shape": [6]},
                     "label": {"dtype": "int64", "shape": []}},
        "inputs": "x", "labels": "label"}


@pytest.mark.parametrize(("change", "words"), [
    ({"extra": 1}, "Unknown keys"),
    ({"features": {}}, "non-empty 'features'"),
    ({"inputs": "missing"}, "does not declare: ['missing']"),
    ({"inputs": []}, "needs 'inputs'"),
    ({"labels": 3}, "'labels'"),
    ({"features": {"x": {"dtype": "uint8", "shape": [6]}}}, 'add "encoding": "raw"'),
    ({"features": {"x": {"dtype": "float32", "shape": [0]}}}, "positive sizes"),
    ({"features": {"x": {"dtype": "float32", "shape": "6"}}}, "positive sizes"),
    ({"features": {"x": {"dtype": "float32", "shape": [6], "typo": 1}}}, "Unknown keys"),
    ({"features": {"x": {"dtype": "float32", "shape": [6], "encoding": "png"}}}, "encoding"),
])
def test_a_bad_spec_is_refused_naming_what_and_the_value(change, words):
    spec = {**GOOD, **change}
    if "features" in change and change["features"]:
        spec["labels"] = None
    with pytest.raises(DataError) as err:
        parse_features(spec)
    assert words in str(err.value) and "Received:" in str(err.value)


def test_spec_file_errors(tmp_path):
    with pytest.raises(DataError, match="no features spec file"):
        read_features(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_features(tmp_path / "bad.json")


def test_shards_without_a_spec_are_refused(model, shards):
    with pytest.raises(DataError, match="--features"):
        dataset_for(_loaded(model), shards.pattern)


def test_stream_paths_and_globs(shards, tmp_path):
    assert is_stream_path(shards.pattern) and is_stream_path("s3://b/k/part-*.tfrecord")
    assert not is_stream_path("data.npz") and not is_stream_path(None)
    assert len(list_shards(shards.pattern)) == 3
    with pytest.raises(DataError, match="No TFRecord shard matches"):
        list_shards(tmp_path / "nothing-*.tfrecord")


# ---------------------------------------------------------------- streamed statistics
def test_streamed_statistics_equal_the_in_memory_pass(model, shards, arrays):
    ds = dataset_for(_loaded(model), shards.pattern, features=shards.spec)
    assert ds.stream is not None and len(ds) == 300
    assert ds.class_names == ["a", "b", "c"]
    assert "streamed (all 300 examples fit in memory)" in ds.describe()
    assert "streamed (all examples; first 100 in memory)" in dataset_for(
        _loaded(model), shards.pattern, features=shards.spec, head_rows=100).describe()
    streamed = activation_stats(model, ds, batch_size=64)
    in_memory = activation_stats(model, Dataset(x=arrays[0], y=arrays[1]), batch_size=64)
    _same_stats(streamed, in_memory)


def test_one_shard_in_order_gives_the_same_histograms(model, arrays, tmp_path):
    pattern, _ = write_shards(tmp_path, arrays[0], shards=1)
    ds = dataset_for(_loaded(model), pattern, features=tmp_path / "features.json")
    _same_stats(activation_stats(model, ds, batch_size=50),
                activation_stats(model, arrays[0], batch_size=50), histograms=True)


def test_max_examples_caps_the_stream_and_progress_reaches_one(model, shards):
    ds = dataset_for(_loaded(model), shards.pattern, features=shards.spec, max_examples=130)
    assert len(ds) == 130 and ds.stream.max_examples == 130
    seen: list[tuple[float, str]] = []
    stats = activation_stats(model, ds, batch_size=64, progress=lambda f, m: seen.append((f, m)))
    assert stats.n_examples == 130
    assert [f for f, _ in seen] == pytest.approx([64 / 130, 128 / 130, 1.0])
    assert seen[-1][1] == "Activation statistics: 130 of 130 examples"
    assert activation_stats(model, ds, batch_size=64, max_examples=70).n_examples == 70


def test_an_endless_builder_is_streamed_in_bounded_memory(model, tmp_path):
    """A pass that gathered its inputs first would never end on an endless stream."""
    builder = tmp_path / "endless.py"
    builder.write_text(
        "import tensorflow as tf\n\n"
        "def dataset():\n"
        "    x = tf.data.Dataset.random(seed=1).map(\n"
        "        lambda s: tf.random.stateless_normal((6,), tf.stack([s, s])))\n"
        "    return tf.data.Dataset.zip((x, tf.data.Dataset.range(3).repeat())).batch(32)\n")
    ds = dataset_for(_loaded(model), data_fn=builder, max_examples=5000)
    assert ds.stream is not None and len(ds) == 2048  # the head kept in memory
    seen: list[float] = []
    stats = activation_stats(model, ds, batch_size=500, progress=lambda f, m: seen.append(f))
    assert stats.n_examples == 5000 and len(seen) == 10 and seen[-1] == 1.0
    assert ds.y is not None and set(np.unique(ds.y)) == {0, 1, 2}


@pytest.mark.parametrize(("source", "words"), [
    ("x = 1\n", "no dataset() function"),
    ("def dataset():\n    return [1, 2]\n", "must return a tf.data.Dataset"),
    ("raise ValueError('boom')\n", "Running the data builder failed: ValueError: boom"),
])
def test_a_bad_builder_is_refused(model, tmp_path, source, words):
    builder = tmp_path / "b.py"
    builder.write_text(source)
    with pytest.raises(DataError, match=re.escape(words)):
        dataset_for(_loaded(model), data_fn=builder)


def test_data_and_data_fn_together_are_refused(model, shards, tmp_path):
    with pytest.raises(DataError, match="Both --data and --data-fn"):
        dataset_for(_loaded(model), shards.pattern, data_fn=tmp_path / "b.py")


def test_records_that_do_not_match_the_spec_fail_with_a_data_error(model, shards, tmp_path):
    spec = json.loads(Path(shards.spec).read_text())
    spec["features"]["x"]["shape"] = [5]
    (tmp_path / "wrong.json").write_text(json.dumps(spec))
    with pytest.raises(DataError, match="Reading shard-\\*.tfrecord .* failed") as err:
        dataset_for(_loaded(model), shards.pattern, features=tmp_path / "wrong.json")
    assert "features spec matches the records" in str(err.value)


def test_a_shard_truncated_mid_record_fails_with_a_data_error(model, arrays, tmp_path):
    pattern, _ = write_shards(tmp_path, *arrays, shards=2)
    ds = dataset_for(_loaded(model), pattern, features=tmp_path / "features.json")
    last = sorted(tmp_path.glob("shard-*.tfrecord"))[-1]  # cut after the stream was opened
    last.write_bytes(last.read_bytes()[:-40])
    with pytest.raises(DataError, match="truncated record") as err:
        activation_stats(model, ds, batch_size=64)
    assert "no shard is truncated or corrupt" in str(err.value)


def test_a_prefix_keeps_the_stream_capped_other_subsets_drop_it(model, shards):
    ds = dataset_for(_loaded(model), shards.pattern, features=shards.spec)
    assert ds.take(slice(0, 50)).stream.max_examples == 50
    assert ds.take([0, 2]).stream is None and ds.take(slice(5, 9)).stream is None
    assert activation_stats(model, ds.take(slice(0, 50)), batch_size=64).n_examples == 50


def test_the_doctor_reads_a_stream_capped_at_its_rows(model, tmp_path, monkeypatch):
    from insight.doctor import evidence

    pattern, _ = write_shards(tmp_path, np.ones((40, 6), "float32"), np.zeros(40, int),
                              shards=2)
    ds = dataset_for(_loaded(model), pattern, features=tmp_path / "features.json")
    monkeypatch.setattr(evidence, "STATS_ROWS", 25)
    ev = evidence.Evidence(model, ds)
    assert ev.stats.n_examples == 25
    assert ev.grads.table.shape[0] > 0  # one batch of the rows in memory


def test_the_projector_reads_the_first_rows_of_a_stream(model, shards):
    from insight.projector.sources import layer_vectors

    ds = dataset_for(_loaded(model), shards.pattern, features=shards.spec, max_examples=90)
    vectors = layer_vectors(model, ds, "hidden")
    assert vectors.vectors.shape == (90, 8) and len(vectors.metadata) == 90


def test_the_app_takes_the_spec_and_builder_it_was_launched_with(model, shards, tmp_path,
                                                                 monkeypatch):
    import insight
    from insight.launch import launched

    assert launched() is None  # pytest is not the app: the CLI passes its own arguments
    entry = Path(insight.__file__).parent / "ui" / "entry.py"
    monkeypatch.setattr("sys.argv", [str(entry), "--data", shards.pattern, "--features",
                                     str(shards.spec)])
    ds = dataset_for(_loaded(model), shards.pattern, head_rows=100)
    assert ds.stream is not None and ds.stream.max_examples == 2048  # as the pages read
    with pytest.raises(DataError, match="--features"):  # the spec is for the launched data
        dataset_for(_loaded(model), str(tmp_path / "other-*.tfrecord"))
    builder = tmp_path / "fn.py"
    builder.write_text("import tensorflow as tf\n\ndef dataset():\n"
                       "    return tf.data.Dataset.from_tensor_slices(tf.ones((20, 6)))\n")
    monkeypatch.setattr("sys.argv", [str(entry), "--data-fn", str(builder),
                                     "--max-examples", "15"])
    ds = dataset_for(_loaded(model))
    assert len(ds) == 15 and ds.y is None and ds.stream.max_examples == 15


# ---------------------------------------------------------------- remote shards
def test_remote_shards_stream_like_local_ones(model, shards, s3):
    bucket = s3.bucket()
    for f in sorted(Path(shards.folder).glob("shard-*.tfrecord")):
        s3.upload(f, f"s3://{bucket}/data/{f.name}")
    remote = dataset_for(_loaded(model), f"s3://{bucket}/data/shard-*.tfrecord",
                         features=shards.spec)
    assert len(remote.stream.shards) == 3 and remote.stream.shards[0].startswith("s3://")
    local = dataset_for(_loaded(model), shards.pattern, features=shards.spec)
    _same_stats(activation_stats(model, remote, batch_size=64),
                activation_stats(model, local, batch_size=64))
    with pytest.raises(DataError, match="No TFRecord shard matches"):
        dataset_for(_loaded(model), f"s3://{bucket}/other/shard-*.tfrecord",
                    features=shards.spec)
    with pytest.raises(StorageError):
        dataset_for(_loaded(model), f"s3://{s3.bucket()}-gone/shard-*.tfrecord",
                    features=shards.spec)


# ---------------------------------------------------------------- the command line
@pytest.mark.slow  # the model's first load runs in the sandbox child (~20 s on 2 cores)
def test_cli_stats_streams_shards_with_max_examples(model, shards, tmp_path, capsys):
    from insight.cli.main import main

    path = tmp_path / "tiny.keras"
    model.save(path)
    code = main(["stats", str(path), "--data", shards.pattern, "--features", str(shards.spec),
                 "--max-examples", "100"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "streamed (up to 100 examples; first 64 in memory)" in out
    assert "statistics over 100 streamed examples" in out
    with pytest.raises(SystemExit):
        main(["stats", str(path), "--data", shards.pattern, "--max-examples", "0"])
    assert "must be a positive integer. Received: '0'" in capsys.readouterr().err
