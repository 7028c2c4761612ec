"""Inputs: every loader format, synthetic inputs per sample, choosing and fitting the data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from insight.data import Dataset, conform_to_model, dataset_for, load_dataset, synthetic_dataset
from insight.errors import DataError, UsageError

from ._errors import assert_error

SHAPE_FREE = 8  # what synthetic_dataset uses for a None dimension



def _input_specs(model):
    return [(t.name, tuple(t.shape), str(t.dtype)) for t in model.inputs]


@pytest.fixture(scope="module")
def digits_npz(samples_dir):
    return samples_dir / "digits_cnn" / "data.npz"


@pytest.fixture(scope="module")
def digits(load_sample):
    return load_sample("digits_cnn")


@pytest.fixture(scope="module")
def multi_io(load_sample):
    return load_sample("multi_io")


@pytest.fixture(scope="module")
def text(load_sample):
    return load_sample("text_embedding")


# -- .npz / .npy ---------------------------------------------------------------------------

def test_load_npz_x_y_class_names(digits_npz):
    ds = load_dataset(digits_npz)
    assert ds.x.shape == (1797, 8, 8, 1) and ds.x.dtype == np.float32
    assert ds.y.shape == (1797,) and ds.y.dtype.kind == "i"
    assert ds.class_names == [str(i) for i in range(10)]
    assert (ds.source, ds.name, ds.path, ds.synthetic) == ("file", "data.npz", digits_npz, False)
    assert len(ds) == 1797
    assert ds.describe() == "data.npz: 1,797 examples, x (8, 8, 1) float32, labels 10 classes"


def test_load_npz_multi_input_and_output(samples_dir):
    ds = load_dataset(samples_dir / "multi_io" / "data.npz")
    assert set(ds.x) == {"image", "stats"}
    assert ds.x["image"].shape == (1797, 8, 8, 1) and ds.x["stats"].shape == (1797, 3)
    assert set(ds.y) == {"digit", "is_even"}
    assert set(np.unique(ds.y["is_even"])) == {0, 1}
    assert "labels for digit, is_even" in ds.describe()


def test_load_npz_text_labels_become_classes(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, x=np.zeros((3, 2), "float32"), y=np.array(["cat", "dog", "cat"]))
    ds = load_dataset(path)
    assert ds.y.tolist() == [0, 1, 0] and ds.class_names == ["cat", "dog"]


def test_load_npz_object_array_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.zeros((2, 3)), y=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, "pickled", "'y'", "safety", "obj.npz")


def test_load_npy_object_array_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([[1], "a"], dtype=object), allow_pickle=True)
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, "pickled")


def test_load_npz_both_label_styles_refused(tmp_path):
    path = tmp_path / "both.npz"
    np.savez(path, x=np.zeros((2, 3)), y=np.zeros(2), y_out=np.zeros(2))
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, "'y'", "y_<output>")


def test_load_npz_only_labels(tmp_path):
    path = tmp_path / "labels.npz"
    np.savez(path, y=np.zeros(2), class_names=np.array(["a", "b"]))
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, "no inputs", "keys=['y', 'class_names']")


def test_load_npz_length_mismatch(tmp_path):
    path = tmp_path / "len.npz"
    np.savez(path, x=np.zeros((3, 2)), y=np.zeros(4))
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, "x: 3", "y: 4")


def test_load_npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(12, dtype="float64").reshape(4, 3))
    ds = load_dataset(path)
    assert ds.x.shape == (4, 3) and ds.y is None and ds.name == "x.npy"
    assert ds.describe().endswith("no labels")


@pytest.mark.parametrize("name, content, fragment", [
    ("missing.npz", None, "no file or folder"),
    ("empty.npz", b"", "empty"),
    ("random.npz", b"\x00\x13garbage" * 10, "not a readable NumPy .npz"),
    ("random.npy", b"\x00\x13garbage" * 10, "not a readable NumPy .npy"),
    ("data.txt", b"1,2,3\n", ".txt files"),
])
def test_load_bad_files(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, fragment, name)


def test_load_truncated_npz(tmp_path, digits_npz):
    path = tmp_path / "cut.npz"
    data = digits_npz.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, "truncated")


# -- .csv ----------------------------------------------------------------------------------

def test_load_csv_label_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,Label\n1.5,2,dog\n3,4,cat\n5,6,dog\n")
    ds = load_dataset(path)
    assert ds.x.shape == (3, 2) and ds.x.dtype == np.float32
    assert ds.x[:, 0].tolist() == [1.5, 3.0, 5.0]
    assert ds.y.tolist() == [1, 0, 1] and ds.class_names == ["cat", "dog"]


def test_load_csv_numeric_target_no_names(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("f1,f2,target\n1,2,0\n3,4,1\n")
    ds = load_dataset(path)
    assert ds.y.tolist() == [0, 1] and ds.class_names is None
    assert ds.x.dtype.kind == "i"  # integer features keep their type (token ids)


def test_load_csv_non_numeric_feature(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,colour,shape,y\n1,red,square,0\n2,blue,circle,1\n")
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, "non-numeric", "colour, shape")


def test_load_csv_header_only(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n")
    with pytest.raises(DataError) as excinfo:
        load_dataset(path)
    assert_error(excinfo, DataError, "no examples")


# -- folders of images ---------------------------------------------------------------------

def _png(path, size, value, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "imgs"
    _png(root / "cat" / "a.png", (12, 10), 255)
    _png(root / "cat" / "b.png", (12, 10), 0)
    _png(root / "dog" / "c.png", (24, 20), 128)  # another size: resized to the first
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "empty_class").mkdir()
    return root


def test_load_image_folder_with_classes(image_folder):
    ds = load_dataset(image_folder)
    assert ds.x.shape == (3, 10, 12, 1) and ds.x.dtype == np.float32
    assert ds.x.min() >= 0 and ds.x.max() <= 1
    assert ds.x[0].max() == 1.0 and ds.x[1].max() == 0.0
    assert ds.y.tolist() == [0, 0, 1] and ds.class_names == ["cat", "dog"]
    assert ds.name == "imgs/"


def test_load_flat_rgb_folder(tmp_path):
    for i in range(2):
        _png(tmp_path / "flat" / f"{i}.jpg", (5, 4), (255, 0, 0), mode="RGB")
    ds = load_dataset(tmp_path / "flat")
    assert ds.x.shape == (2, 4, 5, 3) and ds.y is None
    assert ds.x[0, 0, 0, 0] > 0.9 and ds.x[0, 0, 0, 1] < 0.1


def test_empty_image_folder(tmp_path):
    (tmp_path / "nothing" / "sub").mkdir(parents=True)
    with pytest.raises(DataError) as excinfo:
        load_dataset(tmp_path / "nothing")
    assert_error(excinfo, DataError, "no PNG or JPEG images")


def test_image_folder_conformed_to_model(image_folder, digits):
    ds = conform_to_model(digits.model, load_dataset(image_folder))
    assert ds.x.shape == (3, 8, 8, 1) and ds.x.dtype == np.float32
    assert np.allclose(ds.x[0], 1.0) and np.allclose(ds.x[1], 0.0)
    assert digits.model.predict(ds.x, verbose=0).shape == (3, 10)


def test_rgb_image_folder_becomes_grayscale_for_model(tmp_path, digits):
    _png(tmp_path / "rgb" / "a.png", (16, 16), (255, 255, 255), mode="RGB")
    ds = conform_to_model(digits.model, load_dataset(tmp_path / "rgb"))
    assert ds.x.shape == (1, 8, 8, 1) and np.allclose(ds.x, 1.0, atol=1e-3)


# -- synthetic inputs ----------------------------------------------------------------------

def test_synthetic_for_every_sample(sample_name, load_sample):
    model = load_sample(sample_name).model
    ds = synthetic_dataset(model, n=5, seed=3)
    assert ds.source == "synthetic" and ds.synthetic and ds.y is None
    assert ds.name == "synthetic (5 examples)"
    assert ds.describe().startswith("synthetic: 5 random examples")
    if sample_name == "subclassed":  # no model.inputs: the build config gives the shape
        specs = [("input", (None, 8, 8, 1), "float32")]
    else:
        specs = _input_specs(model)
    arrays = ds.x if isinstance(ds.x, dict) else {specs[0][0]: ds.x}
    assert list(arrays) == [name for name, _, _ in specs]
    for name, shape, dtype in specs:
        assert arrays[name].shape == (5, *(SHAPE_FREE if d is None else d for d in shape[1:]))
        assert str(arrays[name].dtype) == dtype
        if dtype.startswith("float"):
            assert arrays[name].min() >= 0 and arrays[name].max() < 1
    again = synthetic_dataset(model, n=5, seed=3)
    for name in arrays:
        again_x = again.x if not isinstance(again.x, dict) else again.x[name]
        assert np.array_equal(arrays[name], again_x)
    other = synthetic_dataset(model, n=5, seed=4)
    first = next(iter(arrays))
    assert not np.array_equal(arrays[first], other.x[first] if isinstance(other.x, dict)
                              else other.x)
    import keras

    outputs = keras.tree.flatten(model(ds.x))  # the model runs on them
    assert outputs and all(np.all(np.isfinite(np.asarray(o))) for o in outputs)


def test_synthetic_token_ids_within_vocab(text):
    import keras

    embedding = next(layer for layer in text.model.layers
                     if isinstance(layer, keras.layers.Embedding))
    ds = synthetic_dataset(text.model, n=200)
    assert ds.x.dtype == np.int32 and ds.x.min() >= 0
    assert ds.x.max() < embedding.input_dim
    assert ds.x.max() >= 100  # the vocab, not the default range, bounds them


def test_synthetic_token_ids_in_nested_embedding():
    import keras

    inner = keras.Sequential([keras.Input((4,), dtype="int32"),
                              keras.layers.Embedding(7, 2), keras.layers.Flatten()], name="in")
    x = keras.Input((4,), dtype="int32", name="ids")
    model = keras.Model(x, keras.layers.Dense(1)(inner(x)))
    ds = synthetic_dataset(model, n=300)
    assert ds.x.max() == 6 and ds.x.min() == 0


def test_synthetic_unbuilt_subclassed_model():
    import keras

    class Unbuilt(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(DataError) as excinfo:
        synthetic_dataset(Unbuilt(name="unbuilt"))
    assert_error(excinfo, DataError, "never built", "input_shape", "unbuilt")
    ds = synthetic_dataset(Unbuilt(), n=3, input_shape=(5,))
    assert ds.x.shape == (3, 5) and ds.x.dtype == np.float32


def test_synthetic_bad_n(digits):
    with pytest.raises(UsageError):
        synthetic_dataset(digits.model, n=0)


# -- dataset_for ---------------------------------------------------------------------------

def test_dataset_for_prefers_explicit_data(digits, tmp_path):
    path = tmp_path / "mine.npy"
    np.save(path, np.ones((3, 8, 8), "float64"))
    ds = dataset_for(digits, path)
    assert (ds.source, ds.name, len(ds)) == ("file", "mine.npy", 3)
    assert ds.x.shape == (3, 8, 8, 1) and ds.x.dtype == np.float32  # conformed


def test_dataset_for_bundled_then_synthetic(digits, multi_io, load_sample, digits_npz):
    ds = dataset_for(digits)
    assert (ds.source, ds.path, len(ds)) == ("bundled", digits_npz, 1797)
    assert ds.describe().startswith("data.npz (bundled with the model): 1,797 examples")
    multi = dataset_for(multi_io)
    assert multi.source == "bundled" and set(multi.x) == {"image", "stats"}
    h5 = dataset_for(load_sample("digits_cnn_h5"), n_synthetic=10)  # no data.npz beside it
    assert (h5.source, len(h5), h5.synthetic) == ("synthetic", 10, True)
    sub = dataset_for(load_sample("subclassed"), n_synthetic=4)
    assert sub.source == "synthetic" and sub.x.shape == (4, 8, 8, 1)


def test_dataset_for_text_bundled_fits(text):
    ds = dataset_for(text)
    assert ds.source == "bundled" and ds.x.dtype == np.int32 and ds.x.shape[1:] == (24,)


# -- conform_to_model ----------------------------------------------------------------------

def test_wrong_shape_names_both_shapes(digits):
    with pytest.raises(DataError) as excinfo:
        conform_to_model(digits.model, Dataset(x=np.zeros((5, 4, 4)), name="small.npy"))
    assert_error(excinfo, DataError, "(None, 8, 8, 1)", "(5, 4, 4)", "'image'", "small.npy")


def test_wrong_rank_for_token_input(text):
    with pytest.raises(DataError) as excinfo:
        conform_to_model(text.model, Dataset(x=np.zeros((5, 24, 2), "int32")))
    assert_error(excinfo, DataError, "(None, 24)", "(5, 24, 2)")


def test_float_into_token_input_refused(text):
    with pytest.raises(DataError) as excinfo:
        conform_to_model(text.model, Dataset(x=np.zeros((2, 24), "float32")))
    assert_error(excinfo, DataError, "int32 token ids", "float32")


def test_dtype_casts(digits, text):
    ds = conform_to_model(digits.model, Dataset(x=np.zeros((2, 8, 8, 1), "float64")))
    assert ds.x.dtype == np.float32
    ds = conform_to_model(digits.model, Dataset(x=np.zeros((2, 8, 8, 1), "uint8")))
    assert ds.x.dtype == np.float32
    ds = conform_to_model(text.model, Dataset(x=np.zeros((2, 24), "int64")))
    assert ds.x.dtype == np.int32


def test_missing_input_name_lists_expected(multi_io):
    x = {"image": np.zeros((2, 8, 8, 1), "float32"), "stat": np.zeros((2, 3), "float32")}
    with pytest.raises(DataError) as excinfo:
        conform_to_model(multi_io.model, Dataset(x=x))
    assert_error(excinfo, DataError, "expects: image, stats", "missing: stats",
                  "not inputs of the model: stat")


def test_single_array_for_multi_input_model(multi_io):
    with pytest.raises(DataError) as excinfo:
        conform_to_model(multi_io.model, Dataset(x=np.zeros((2, 8, 8, 1))))
    assert_error(excinfo, DataError, "2 inputs (image, stats)", "single input array")


def test_single_input_dict_unwrapped(digits):
    ds = conform_to_model(digits.model, Dataset(x={"image": np.zeros((2, 8, 8, 1))}))
    assert isinstance(ds.x, np.ndarray) and ds.x.shape == (2, 8, 8, 1)


def test_nonfinite_counted_not_raised(multi_io):
    image = np.zeros((4, 8, 8, 1), "float32")
    image[0, 0, 0, 0], image[1, 2, 3, 0], image[3, 1, 1, 0] = np.nan, np.inf, -np.inf
    stats = np.zeros((4, 3), "float64")
    stats[2, 1] = np.nan
    given = Dataset(x={"image": image, "stats": stats}, name="bad.npz")
    ds = conform_to_model(multi_io.model, given)
    assert ds.nonfinite == {"image": 3, "stats": 1}
    assert given.nonfinite == {} and given.x["stats"].dtype == np.float64  # not mutated
    assert "4 NaN/Inf values in image, stats" in ds.describe()
    assert np.isnan(ds.x["image"][0, 0, 0, 0])  # reported, not replaced
    assert ds.take([2, 3]).nonfinite == {"image": 1, "stats": 1}
    assert ds.take([1]).nonfinite == {"image": 1}
    clean = conform_to_model(multi_io.model, load_dataset(multi_io.path.parent / "data.npz"))
    assert clean.nonfinite == {}


# -- Dataset -------------------------------------------------------------------------------

def test_batches_cover_all_rows_in_order():
    x = np.arange(10, dtype="float32").reshape(10, 1)
    ds = Dataset(x={"a": x, "b": -x}, y=np.arange(10))
    batches = list(ds.batches(4))
    assert [len(b[0]["a"]) for b in batches] == [4, 4, 2]
    assert np.concatenate([b[0]["a"] for b in batches]).ravel().tolist() == list(range(10))
    assert np.concatenate([b[0]["b"] for b in batches]).ravel().tolist() == \
        [-float(i) for i in range(10)]
    assert np.concatenate([b[1] for b in batches]).tolist() == list(range(10))
    assert all(yb is None for _, yb in Dataset(x=x).batches())
    with pytest.raises(UsageError):
        list(ds.batches(0))


def test_take_keeps_structure_and_metadata(digits_npz):
    ds = load_dataset(digits_npz)
    for indices in ([5, 1, 7], np.array([5, 1, 7]), slice(5, 8)):
        sub = ds.take(indices)
        assert len(sub) == 3 and sub.class_names == ds.class_names
        assert (sub.name, sub.source, sub.path) == (ds.name, ds.source, ds.path)
    assert ds.take([5, 1]).y.tolist() == [ds.y[5], ds.y[1]]
    assert np.array_equal(ds.take([5, 1]).x, ds.x[[5, 1]])
    mask = np.zeros(len(ds), bool)
    mask[:4] = True
    assert len(ds.take(mask)) == 4 and len(ds.take([])) == 0
    multi = Dataset(x={"a": np.zeros((3, 2)), "b": np.ones((3,))}, y={"o": np.arange(3)})
    sub = multi.take([2])
    assert set(sub.x) == {"a", "b"} and sub.y["o"].tolist() == [2]
    with pytest.raises(UsageError):
        ds.take([5000])
    with pytest.raises(UsageError):
        ds.take([0.5])


def test_dataset_checks_lengths_and_repr():
    with pytest.raises(DataError) as excinfo:
        Dataset(x={"a": np.zeros((3, 2)), "b": np.zeros((4, 2))})
    assert_error(excinfo, DataError, "x['a']: 3", "x['b']: 4")
    ds = Dataset(x=np.zeros((100, 3)), name="n")
    assert repr(ds) == "Dataset(name='n', source='file', examples=100, inputs=['x'])"
    with pytest.raises(UsageError):
        Dataset(x=np.zeros((1, 1)), source="web")
