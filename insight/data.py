"""Inputs for the activation and gradient panels: a `Dataset`, and where it comes from.

A `Dataset` is read from a file the user gives (`--data`: `.npz`, `.npy`, `.csv` or a folder
of images), taken from the `data.npz` bundled beside a sample model, or built at random from
the model's input spec (always labelled "synthetic"). `conform_to_model` then checks it
against the model's inputs, applies the few safe fix-ups (a missing channel axis, image
size, float64 to float32) and counts NaN/Inf values so the UI can report them.

Example:

>>> import numpy as np
>>> ds = Dataset(x=np.zeros((3, 4), "float32"), y=np.array([0, 1, 1]), name="toy")
>>> ds.describe()
'toy: 3 examples, x (4,) float32, labels 2 classes'
>>> [len(xb) for xb, _ in ds.batches(2)]
[2, 1]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from insight.errors import DataError, UsageError
from insight.summary import shape_text

__all__ = ["Dataset", "load_dataset", "synthetic_dataset", "dataset_for", "conform_to_model",
           "DATA_FORMATS", "LABEL_COLUMNS", "IMAGE_SUFFIXES"]

Arrays = np.ndarray | dict[str, np.ndarray]

DATA_FORMATS = ("an .npz file (x, optional y and class_names; or one key per model input), "
                "an .npy file (x only), a .csv file (numeric columns, a 'label' column) or a "
                "folder of PNG/JPEG images (one subfolder per class)")
LABEL_COLUMNS = ("label", "y", "target", "class")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SOURCES = ("file", "bundled", "synthetic")
DEFAULT_VOCAB = 100  # token ids for an integer input when the model has no Embedding layer
FREE_DIM = 8  # size used for a None dimension (other than the batch) in synthetic inputs



# -- the dataset ---------------------------------------------------------------------------

@dataclass(repr=False)
class Dataset:
    """Examples to feed a model, with their labels and where they came from.

    Attributes:
        x: one array for a single-input model, `{input_name: array}` for several inputs;
            the first axis indexes examples.
        y: labels, one array, or `{output_name: array}` for a multi-output model; or `None`.
        class_names: the name of each class index, when known.
        source: `"file"` (given by the user), `"bundled"` (shipped beside a sample model) or
            `"synthetic"` (random, built from the model's input spec).
        path: the file or folder it was read from.
        name: a short name for the UI, e.g. `"data.npz"` or `"synthetic (64 examples)"`.
        nonfinite: `{input_name: number of NaN/Inf values}` for the inputs that have any;
            filled by `conform_to_model`.

    Raises:
        DataError: inputs or labels of different lengths, or a scalar instead of an array.

    Example:

    >>> ds = Dataset(x={"a": np.ones((4, 2)), "b": np.ones((4, 3))})
    >>> len(ds), len(ds.take([0, 2]))
    (4, 2)
    """

    x: Arrays
    y: Arrays | None = None
    class_names: list[str] | None = None
    source: str = "file"
    path: Path | None = None
    name: str = ""
    nonfinite: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise UsageError(f"Unknown dataset source {self.source!r}; it is one of "
                             f"{', '.join(SOURCES)}.", "", f"source={self.source!r}")
        self.x = _as_arrays(self.x, "x", self.name)
        if self.y is not None:
            self.y = _as_arrays(self.y, "y", self.name)
        if self.path is not None:
            self.path = Path(self.path)
        if self.class_names is not None:
            self.class_names = [str(c) for c in self.class_names]
        lengths = {f"x[{k!r}]" if isinstance(self.x, dict) else "x": len(v)
                   for k, v in _items(self.x)}
        if self.y is not None:
            lengths.update({f"y[{k!r}]" if isinstance(self.y, dict) else "y": len(v)
                            for k, v in _items(self.y)})
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise DataError(
                f"The arrays in {self.name or 'the data'} have different numbers of examples "
                f"({shown}); inputs and labels need one row per example.",
                "Save arrays of the same length.",
                f"lengths={{{shown}}}",
            )

    def __len__(self) -> int:
        return len(next(iter(self.x.values())) if isinstance(self.x, dict) else self.x)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, source={self.source!r}, examples={len(self)}, "
                f"inputs={_input_names(self.x)})")

    @property
    def synthetic(self) -> bool:
        """Whether the inputs are random ones built from the model's input spec."""
        return self.source == "synthetic"

    def batches(self, batch_size: int = 64) -> Iterator[tuple[Arrays, Arrays | None]]:
        """Iterate over `(x_batch, y_batch)` in order; the last batch may be smaller.

        Args:
            batch_size: examples per batch. Defaults to `64`.

        Yields:
            `(x_batch, y_batch)`, each with the structure of `x` and `y` (`y_batch` is
            `None` when there are no labels).

        Raises:
            UsageError: `batch_size` is not a positive integer.

        Example:

        >>> ds = Dataset(x=np.arange(5.0).reshape(5, 1))
        >>> [xb.ravel().tolist() for xb, _ in ds.batches(2)]
        [[0.0, 1.0], [2.0, 3.0], [4.0]]
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) \
                or batch_size < 1:
            raise UsageError("The batch size must be a positive integer.", "",
                             f"batch_size={batch_size!r}")
        for start in range(0, len(self), int(batch_size)):
            rows = slice(start, start + int(batch_size))
            yield _index(self.x, rows), None if self.y is None else _index(self.y, rows)

    def take(self, indices: slice | Sequence[int] | np.ndarray) -> Dataset:
        """A subset of the examples, with the same structure, names and source.

        Args:
            indices: a slice, a list or array of row numbers, or a boolean mask.

        Returns:
            A new `Dataset`; NaN/Inf counts are recounted for the subset.

        Raises:
            UsageError: indices that are not integers or lie outside the data.

        Example:

        >>> ds = Dataset(x=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 2]))
        >>> ds.take([2, 0]).y.tolist()
        [2, 0]
        """
        rows: Any = indices
        if not isinstance(indices, slice):
            rows = np.asarray(indices)
            if rows.size == 0:
                rows = rows.astype(np.intp)
            if rows.dtype.kind not in "biu" or rows.ndim != 1:
                raise UsageError("Indices must be a slice, row numbers or a boolean mask.", "",
                                 f"indices={indices!r}")
        try:
            x = _index(self.x, rows)
            y = None if self.y is None else _index(self.y, rows)
        except IndexError as exc:
            raise UsageError(f"Some indices lie outside the {len(self)} examples: {exc}.", "",
                             f"indices={indices!r}") from exc
        counts = {}
        for key in self.nonfinite:
            arr = x.get(key) if isinstance(x, dict) else x
            if arr is not None and (count := _count_nonfinite(arr)):
                counts[key] = count
        return replace(self, x=x, y=y, nonfinite=counts)

    def describe(self) -> str:
        """One line for the UI: what the data is, how much, its shapes and labels.

        Example:

        >>> Dataset(x=np.zeros((64, 3), "float32"), source="synthetic").describe()
        "synthetic: 64 random examples built from the model's input spec (no real data given)"
        """
        n = len(self)
        if self.synthetic:
            return (f"synthetic: {n:,} random examples built from the model's input spec "
                    "(no real data given)")
        head = self.name or (self.path.name if self.path else "data")
        if self.source == "bundled":
            head += " (bundled with the model)"
        parts = [f"{n:,} examples",
                 ", ".join(f"{k} {shape_text(v.shape[1:])} {v.dtype}" for k, v in _items(self.x))]
        parts.append(self._labels_text())
        if self.nonfinite:
            total = sum(self.nonfinite.values())
            parts.append(f"{total:,} NaN/Inf values in {', '.join(self.nonfinite)}")
        return f"{head}: " + ", ".join(parts)

    def _labels_text(self) -> str:
        if self.y is None:
            return "no labels"
        if isinstance(self.y, dict):
            return "labels for " + ", ".join(self.y)
        if self.class_names:
            return f"labels {len(self.class_names)} classes"
        if self.y.dtype.kind in "biu":
            return f"labels {len(np.unique(self.y))} classes"
        return f"labels {shape_text(self.y.shape[1:])} {self.y.dtype}"


def _as_arrays(value: Any, what: str, name: str) -> Arrays:
    if isinstance(value, dict):
        if not value:
            raise DataError(f"The {what} dictionary of {name or 'the data'} is empty.",
                            "Give at least one array.", f"{what}={{}}")
        return {str(k): _as_array(v, f"{what}[{k!r}]", name) for k, v in value.items()}
    return _as_array(value, what, name)


def _as_array(value: Any, what: str, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        raise DataError(f"{what} of {name or 'the data'} is a single value, not an array of "
                        "examples.", "Give an array whose first axis indexes examples.",
                        f"{what}={value!r}")
    return arr


def _items(arrays: Arrays) -> list[tuple[str, np.ndarray]]:
    return list(arrays.items()) if isinstance(arrays, dict) else [("x", arrays)]


def _input_names(arrays: Arrays) -> list[str]:
    return list(arrays) if isinstance(arrays, dict) else ["x"]


def _index(arrays: Arrays, rows: Any) -> Arrays:
    if isinstance(arrays, dict):
        return {k: v[rows] for k, v in arrays.items()}
    return arrays[rows]


def _count_nonfinite(arr: np.ndarray) -> int:
    if arr.dtype.kind not in "fc":
        return 0
    return int(arr.size - np.count_nonzero(np.isfinite(arr)))


# -- reading files -------------------------------------------------------------------------

def load_dataset(path: str | Path) -> Dataset:
    """Read inputs (and labels, when present) from `.npz`, `.npy`, `.csv` or an image folder.

    The formats and their rules are those of `insight.data_files.read_dataset`.

    Raises:
        DataError: a missing, empty, corrupt or unsupported file.
    """
    from insight.data_files import read_dataset

    return read_dataset(path)


# -- the model's input spec ----------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    name: str
    shape: tuple[int | None, ...]  # batch axis first
    dtype: str


def _input_specs(model: Any, input_shape: Sequence[int | None] | None = None) \
        -> list[_Spec] | None:
    """The model's inputs: from `model.inputs`, `input_shape`, or the build config."""
    dtype = str(getattr(model, "input_dtype", None) or "float32")
    if input_shape is not None:
        return [_Spec("input", (None, *tuple(input_shape)), dtype)]
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        return [_Spec(str(t.name), tuple(t.shape), str(t.dtype)) for t in inputs]
    config = model.get_build_config() if hasattr(model, "get_build_config") else None
    shape = (config or {}).get("input_shape")
    if isinstance(shape, list | tuple) and shape and all(
            d is None or isinstance(d, int) for d in shape):
        return [_Spec("input", (None, *tuple(shape)[1:]), dtype)]
    return None


def _walk_layers(layer: Any) -> Iterator[Any]:
    for sub in getattr(layer, "layers", None) or []:
        yield sub
        yield from _walk_layers(sub)


def _vocab_size(model: Any) -> int:
    import keras

    for layer in _walk_layers(model):
        if isinstance(layer, keras.layers.Embedding):
            return int(layer.input_dim)
    return DEFAULT_VOCAB


def _is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


def _np_dtype(dtype: str) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError:  # bfloat16 and other dtypes numpy lacks
        return np.dtype(np.float32)


def synthetic_dataset(model: Any, n: int = 64, seed: int = 0, *,
                      input_shape: Sequence[int | None] | None = None) -> Dataset:
    """Random inputs shaped like the model's, for when no real data is given.

    Float inputs are uniform in [0, 1); integer inputs (token ids) are uniform in
    [0, vocab), where vocab is the `input_dim` of the model's first `Embedding` layer
    (nested models included), else 100. `None` dimensions other than the batch become 8.

    Args:
        model: a `keras.Model`.
        n: number of examples. Defaults to `64`.
        seed: seed of the random generator; the same seed gives the same inputs.
            Defaults to `0`.
        input_shape: one example's shape, without the batch axis (like
            `keras.Input(shape=...)`), for a subclassed model that records none.
            Defaults to `None`.

    Returns:
        A `Dataset` with `source="synthetic"` and no labels.

    Raises:
        DataError: the model was never built and no `input_shape` was given.
        UsageError: `n` is not a positive integer.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> ds = synthetic_dataset(model, n=4)
    >>> ds.x.shape, ds.name
    ((4, 3), 'synthetic (4 examples)')
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise UsageError("The number of synthetic examples must be a positive integer.", "",
                         f"n={n!r}")
    specs = _input_specs(model, input_shape)
    if specs is None:
        raise DataError(
            "The model was never built, so its input shape is unknown and insight cannot make "
            "synthetic inputs for it.",
            "Give real data (--data), pass input_shape=(...) (one example's shape), or call "
            "the model once on data before saving it.",
            f"model={getattr(model, 'name', type(model).__name__)!r}")
    rng = np.random.default_rng(seed)
    x: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = (int(n), *(FREE_DIM if d is None else int(d) for d in spec.shape[1:]))
        if _is_int(spec.dtype):
            x[spec.name] = rng.integers(0, _vocab_size(model), shape).astype(spec.dtype)
        elif spec.dtype == "bool":
            x[spec.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            x[spec.name] = rng.random(shape, dtype=np.float32).astype(_np_dtype(spec.dtype))
    return Dataset(x=x if len(x) > 1 else next(iter(x.values())), source="synthetic",
                   name=f"synthetic ({int(n)} examples)")


# -- fitting data to the model -------------------------------------------------------------

def conform_to_model(model: Any, dataset: Dataset) -> Dataset:
    """Check a dataset against the model's inputs, fix what is safe to fix, count NaN/Inf.

    Checks the number of inputs, their names (for a dict `x`), each example's shape (`None`
    in the model matches any size) and dtype. Fix-ups: a missing trailing axis of size 1 is
    added (grayscale `(N, 8, 8)` for `(None, 8, 8, 1)`); images read from a folder are
    resized to the model's height and width and converted to its number of channels;
    float64 and integer data for a float input are cast to the input's dtype. NaN and Inf
    values are counted into `nonfinite`, not raised.

    Args:
        model: a `keras.Model`.
        dataset: the data to check.

    Returns:
        A new `Dataset` (the given one is left as it is): `x` is one array for a
        single-input model, `{input_name: array}` otherwise.

    Raises:
        DataError: the wrong number of inputs, missing input names (the message lists the
            expected ones), a shape that does not fit (the message names both shapes), or
            float data for an integer (token id) input.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    >>> conform_to_model(model, Dataset(x=np.zeros((2, 8, 8)))).x.shape
    (2, 8, 8, 1)
    """
    where = dataset.name or "the data"
    specs = _input_specs(model)
    if specs is None:  # a model never built: only dtypes and NaN/Inf can be looked at
        x: Arrays = {k: _to_float32(v) for k, v in _items(dataset.x)}
        counts = {k: c for k, v in x.items() if (c := _count_nonfinite(v))}
        x = x if isinstance(dataset.x, dict) else x["x"]
        return replace(dataset, x=x, nonfinite=counts)
    names = [s.name for s in specs]
    given = _match_inputs(specs, dataset.x, where)
    images = dataset.path is not None and dataset.path.is_dir()
    fitted = {s.name: _fit_input(s, given[s.name], images=images, where=where) for s in specs}
    counts = {k: c for k, v in fitted.items() if (c := _count_nonfinite(v))}
    x = fitted if len(names) > 1 else fitted[names[0]]
    return replace(dataset, x=x, nonfinite=counts)


def _to_float32(arr: np.ndarray) -> np.ndarray:
    return arr.astype(np.float32) if arr.dtype == np.float64 else arr


def _match_inputs(specs: list[_Spec], x: Arrays, where: str) -> dict[str, np.ndarray]:
    names = [s.name for s in specs]
    if not isinstance(x, dict):
        if len(specs) > 1:
            raise DataError(
                f"The model takes {len(specs)} inputs ({', '.join(names)}), but {where} holds "
                "a single input array.",
                "Save one array per input, under the input's name: "
                f"np.savez('data.npz', {', '.join(f'{n}=...' for n in names)}, y=...).",
                f"x_shape={shape_text(x.shape)}")
        return {names[0]: x}
    missing = [n for n in names if n not in x]
    extra = [k for k in x if k not in names]
    if missing or extra:
        raise DataError(
            f"The inputs in {where} do not match the model's inputs. The model expects: "
            f"{', '.join(names)}; missing: {', '.join(missing) or 'none'}; "
            f"not inputs of the model: {', '.join(extra) or 'none'}.",
            "Name each array after a model input (or save a single-input model's array "
            "under 'x').",
            f"keys={list(x)}")
    return dict(x)


def _fits(expected: tuple[int | None, ...], shape: tuple[int, ...]) -> bool:
    return len(shape) == len(expected) and all(
        e is None or e == r for e, r in zip(expected[1:], shape[1:], strict=True))


def _fit_input(spec: _Spec, arr: np.ndarray, *, images: bool, where: str) -> np.ndarray:
    expected = spec.shape
    fitted = arr
    if images and fitted.ndim == 4 and len(expected) == 4 and fitted.dtype.kind == "f":
        fitted = _fit_images(fitted, expected)
    if fitted.ndim == len(expected) - 1 and expected[-1] == 1 and \
            _fits(expected, (*fitted.shape, 1)):
        fitted = fitted[..., None]
    if not _fits(expected, fitted.shape):
        example = ", ".join(str(d) for d in expected[1:])
        fix = ("Reshape the data to the model's input shape"
               + (f", e.g. x.reshape(-1, {example})." if None not in expected[1:] else "."))
        raise DataError(
            f"Input {spec.name!r} of the model expects shape {shape_text(expected)} (None "
            f"matches any size), but {where} has shape {shape_text(arr.shape)}.",
            fix,
            f"input={spec.name!r}, expected_shape={shape_text(expected)}, "
            f"received_shape={shape_text(arr.shape)}")
    return _fit_dtype(spec, fitted, where)


def _fit_images(arr: np.ndarray, expected: tuple[int | None, ...]) -> np.ndarray:
    """Resize (N, h, w, c) images to the model's height and width and channel count."""
    height, width, channels = expected[1:]
    if channels == 1 and arr.shape[-1] == 3:
        arr = (arr @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    elif channels == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if height is None or width is None or arr.shape[1:3] == (height, width):
        return arr
    from PIL import Image

    out = np.empty((arr.shape[0], height, width, arr.shape[-1]), np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[-1]):
            plane = Image.fromarray(np.ascontiguousarray(arr[i, :, :, c], np.float32))
            out[i, :, :, c] = np.asarray(plane.resize((width, height),
                                                      Image.Resampling.BILINEAR))
    return out


def _fit_dtype(spec: _Spec, arr: np.ndarray, where: str) -> np.ndarray:
    kind = arr.dtype.kind
    shown = f"input={spec.name!r}, expected_dtype={spec.dtype}, received_dtype={arr.dtype}"
    if _is_int(spec.dtype):
        if kind in "biu":
            return arr if arr.dtype == np.dtype(spec.dtype) else arr.astype(spec.dtype)
        raise DataError(
            f"Input {spec.name!r} of the model expects {spec.dtype} token ids (integers), but "
            f"{where} gives {arr.dtype} values.",
            "Pass integer ids, e.g. x.astype('int32') once they are whole numbers.", shown)
    if _is_float(spec.dtype):
        if kind in "biuf":
            target = _np_dtype(spec.dtype)
            return arr if arr.dtype == target else arr.astype(target)
        raise DataError(f"Input {spec.name!r} of the model expects {spec.dtype} numbers, but "
                        f"{where} gives {arr.dtype} values.",
                        "Convert the data to numbers first.", shown)
    return arr  # bool, string inputs: passed as they are


# -- choosing the data ---------------------------------------------------------------------

def _bundled_data(model_path: Path) -> Path | None:
    folder = model_path if model_path.is_dir() else model_path.parent
    candidate = folder / "data.npz"
    return candidate if candidate.is_file() else None


def dataset_for(loaded: Any, data_path: str | Path | None = None, *,
                n_synthetic: int = 64) -> Dataset:
    """The data to inspect a loaded model with, checked against its inputs.

    In order: the file the user gave, the `data.npz` bundled beside the model (as with the
    sample models; `source="bundled"`), else synthetic inputs (`source="synthetic"`).

    Args:
        loaded: an `insight.loading.LoadedModel`.
        data_path: the `--data` file or folder. Defaults to `None`.
        n_synthetic: examples to build when there is no data. Defaults to `64`.

    Returns:
        A `Dataset`, passed through `conform_to_model`.

    Raises:
        DataError: the data cannot be read or does not fit the model.

    Example:

    >>> import insight
    >>> loaded = insight.load_model("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
    >>> dataset_for(loaded).source  # doctest: +SKIP
    'bundled'
    """
    if data_path is not None and str(data_path) != "":
        dataset = load_dataset(data_path)
    elif (bundled := _bundled_data(Path(loaded.path))) is not None:
        dataset = replace(load_dataset(bundled), source="bundled")
    else:
        dataset = synthetic_dataset(loaded.model, n=n_synthetic)
    return conform_to_model(loaded.model, dataset)
