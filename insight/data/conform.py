"""Data fitted to a model: which data to use, checked against the model's inputs.

`dataset_for` picks the data (the user's file, the `data.npz` bundled beside a sample model,
else synthetic inputs); `conform_to_model` checks it against the model's inputs, applies the
few safe fix-ups (a missing channel axis, image size, float64 to float32) and counts NaN/Inf
values so the UI can report them.

Images of another size are resized, not refused: a folder of images always (to the model's
height, width and channels), and an `(N, H, W, C)` array whose channels match an image input
(`C` of 1, 3 or 4) with bilinear interpolation to the input's height and width. A resize is
never silent: the dataset's name, and so `Dataset.describe()` and every caption built from
it, says "images resized from 32x32 to 96x96". Anything else that does not fit is a
`DataError` naming both shapes and the fix (reshape, or resize for images).

Example:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
>>> conform_to_model(model, Dataset(x=np.zeros((2, 8, 8)))).x.shape
(2, 8, 8, 1)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from insight.data.dataset import Arrays, Dataset, array_items, count_nonfinite
from insight.data.files import load_dataset
from insight.data.stream import is_stream_path
from insight.data.synthetic import (
    InputSpec,
    input_specs,
    is_float_dtype,
    is_int_dtype,
    numpy_dtype,
    synthetic_dataset,
)
from insight.errors import DataError
from insight.model.layers import shape_text

__all__ = ["conform_to_model", "dataset_for", "bundled_data", "HEAD_ROWS"]

HEAD_ROWS = 2048  # rows of a stream kept in memory (one gradient batch, the probes)


def conform_to_model(model: Any, dataset: Dataset) -> Dataset:
    """Check a dataset against the model's inputs, fix what is safe to fix, count NaN/Inf.

    Checks the number of inputs, their names (for a dict `x`), each example's shape (`None`
    in the model matches any size) and dtype. Fix-ups: a missing trailing axis of size 1 is
    added (grayscale `(N, 8, 8)` for `(None, 8, 8, 1)`); images read from a folder are
    resized to the model's height and width and converted to its number of channels;
    `(N, H, W, C)` arrays for an image input with the same `C` (1, 3 or 4) are resized to its
    height and width (bilinear, as float32; values are not rescaled); float64 and integer
    data for a float input are cast to the input's dtype. A resize is named in the returned
    dataset's `name` ("x.npz (images resized from 32x32 to 96x96)"). NaN and Inf values are
    counted into `nonfinite`, not raised.

    Args:
        model: a `keras.Model`.
        dataset: the data to check.

    Returns:
        A new `Dataset` (the given one is left as it is): `x` is one array for a
        single-input model, `{input_name: array}` otherwise.

    Raises:
        DataError: the wrong number of inputs, missing input names (the message lists the
            expected ones), a shape that does not fit (the message names both shapes and,
            for images, how to resize), or float data for an integer (token id) input.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    >>> conform_to_model(model, Dataset(x=np.zeros((2, 8, 8)))).x.shape
    (2, 8, 8, 1)
    >>> conform_to_model(model, Dataset(x=np.zeros((2, 4, 4, 1)), name="x.npy")).describe()
    'x.npy (images resized from 4x4 to 8x8): 2 examples, x (8, 8, 1) float32, no labels'
    """
    where = dataset.name or "the data"
    specs = input_specs(model)
    if specs is None:  # a model never built: only dtypes and NaN/Inf can be looked at
        x: Arrays = {k: _to_float32(v) for k, v in array_items(dataset.x)}
        counts = {k: c for k, v in x.items() if (c := count_nonfinite(v))}
        x = x if isinstance(dataset.x, dict) else x["x"]
        return replace(dataset, x=x, nonfinite=counts)
    names = [s.name for s in specs]
    given = _match_inputs(specs, dataset.x, where)
    images = dataset.path is not None and dataset.path.is_dir()
    fitted, notes = {}, []
    for s in specs:
        fitted[s.name], note = _fit_input(s, given[s.name], images=images, where=where)
        if note:
            notes.append(note if len(specs) == 1 else f"{s.name}: {note}")
    counts = {k: c for k, v in fitted.items() if (c := count_nonfinite(v))}
    x = fitted if len(names) > 1 else fitted[names[0]]
    base = dataset.name or (dataset.path.name if dataset.path else "data")
    name = f"{base} ({'; '.join(notes)})" if notes else dataset.name
    return replace(dataset, x=x, nonfinite=counts, name=name)


def _to_float32(arr: np.ndarray) -> np.ndarray:
    return arr.astype(np.float32) if arr.dtype == np.float64 else arr


def _match_inputs(specs: list[InputSpec], x: Arrays, where: str) -> dict[str, np.ndarray]:
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


_IMAGE_CHANNELS = (1, 3, 4)  # the last axis of an image input: gray, RGB, RGBA


def _image_input(expected: tuple[int | None, ...]) -> bool:
    """Whether an input looks like images: (None, H, W, C), C of 1, 3 or 4."""
    return len(expected) == 4 and expected[-1] in _IMAGE_CHANNELS


def _resizable(expected: tuple[int | None, ...], arr: np.ndarray) -> bool:
    """An (N, h, w, C) array of numbers for an image input with the same C and known H, W."""
    return (_image_input(expected) and arr.ndim == 4 and arr.shape[-1] == expected[-1]
            and None not in expected[1:3] and arr.dtype.kind in "uif"
            and min(arr.shape[1:3]) > 0 and arr.shape[1:3] != tuple(expected[1:3]))


def _shape_fix(expected: tuple[int | None, ...], arr: np.ndarray) -> str:
    """What to do about a shape that does not fit: resize images, reshape anything else."""
    if _image_input(expected) and arr.ndim in (3, 4) and None not in expected[1:3]:
        height, width, channels = expected[1:]
        folder = ("or give a folder of PNG/JPEG images as data (--data, or the sidebar's Data): "
                  "it is read at any size and colour mode")
        if arr.ndim == 3 and channels == 1:
            return (f"Images of another size need resizing, not reshaping: add the channel "
                    f"axis (x[..., None]) and insight resizes (N, H, W, 1) arrays to "
                    f"{height}x{width} itself, {folder}.")
        given = arr.shape[-1]
        return (f"Images with {given} channel{'s' * (given != 1)} need converting to "
                f"{channels}, not reshaping (insight then resizes (N, H, W, {channels}) "
                f"arrays to {height}x{width} itself), {folder}.")
    if None in expected[1:]:
        return "Reshape the data to the model's input shape."
    dims = ", ".join(str(d) for d in expected[1:])
    per_example, takes = int(np.prod(arr.shape[1:])), int(np.prod(expected[1:]))
    if per_example != takes:
        return (f"Each example holds {per_example:,} values and the input takes {takes:,}, so "
                "no reshape fits: give data made for this model's input.")
    return f"Reshape the data to the model's input shape, e.g. x.reshape(-1, {dims})."


def _fit_input(spec: InputSpec, arr: np.ndarray, *, images: bool,
               where: str) -> tuple[np.ndarray, str]:
    """The array fitted to one input, and a note of what was changed ("" for nothing)."""
    expected = spec.shape
    fitted, note = arr, ""
    if images and fitted.ndim == 4 and len(expected) == 4 and fitted.dtype.kind == "f":
        fitted, note = _fit_images(fitted, expected)
    elif _resizable(expected, fitted) and is_float_dtype(spec.dtype):
        fitted, note = _fit_images(fitted.astype(np.float32, copy=False), expected)
    if fitted.ndim == len(expected) - 1 and expected[-1] == 1 and \
            _fits(expected, (*fitted.shape, 1)):
        fitted = fitted[..., None]
    if not _fits(expected, fitted.shape):
        raise DataError(
            f"Input {spec.name!r} of the model expects shape {shape_text(expected)} (None "
            f"matches any size), but {where} has shape {shape_text(arr.shape)}.",
            _shape_fix(expected, arr),
            f"input={spec.name!r}, expected_shape={shape_text(expected)}, "
            f"received_shape={shape_text(arr.shape)}")
    return _fit_dtype(spec, fitted, where), note


def _fit_images(arr: np.ndarray, expected: tuple[int | None, ...]) -> tuple[np.ndarray, str]:
    """Resize (N, h, w, c) images to the model's height and width and channel count; returns
    them and a note of the resize ("" when the size was right)."""
    height, width, channels = expected[1:]
    if channels == 1 and arr.shape[-1] == 3:
        arr = (arr @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    elif channels == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if height is None or width is None or arr.shape[1:3] == (height, width):
        return arr, ""
    from PIL import Image

    out = np.empty((arr.shape[0], height, width, arr.shape[-1]), np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[-1]):
            plane = Image.fromarray(np.ascontiguousarray(arr[i, :, :, c], np.float32))
            out[i, :, :, c] = np.asarray(plane.resize((width, height),
                                                      Image.Resampling.BILINEAR))
    note = f"images resized from {arr.shape[1]}x{arr.shape[2]} to {height}x{width}"
    return out, note


def _fit_dtype(spec: InputSpec, arr: np.ndarray, where: str) -> np.ndarray:
    kind = arr.dtype.kind
    shown = f"input={spec.name!r}, expected_dtype={spec.dtype}, received_dtype={arr.dtype}"
    if is_int_dtype(spec.dtype):
        if kind in "biu":
            return arr if arr.dtype == np.dtype(spec.dtype) else arr.astype(spec.dtype)
        raise DataError(
            f"Input {spec.name!r} of the model expects {spec.dtype} token ids (integers), but "
            f"{where} gives {arr.dtype} values.",
            "Pass integer ids, e.g. x.astype('int32') once they are whole numbers.", shown)
    if is_float_dtype(spec.dtype):
        if kind in "biuf":
            target = numpy_dtype(spec.dtype)
            return arr if arr.dtype == target else arr.astype(target)
        raise DataError(f"Input {spec.name!r} of the model expects {spec.dtype} numbers, but "
                        f"{where} gives {arr.dtype} values.",
                        "Convert the data to numbers first.", shown)
    return arr  # bool, string inputs: passed as they are




def bundled_data(model_path: str | Path) -> Path | None:
    """The `data.npz` beside a model file (or inside a SavedModel folder) that `dataset_for`
    uses when no data is given, or `None`."""
    model_path = Path(model_path)
    folder = model_path if model_path.is_dir() else model_path.parent
    candidate = folder / "data.npz"
    return candidate if candidate.is_file() else None


def dataset_for(loaded: Any, data_path: str | Path | None = None, *,
                n_synthetic: int = 64, features: str | Path | None = None,
                data_fn: str | Path | None = None, max_examples: int | None = None,
                head_rows: int = HEAD_ROWS) -> Dataset:
    """The data to inspect a loaded model with, checked against its inputs.

    In order: the builder file (`data_fn`), the file, folder or TFRecord shards the user gave,
    the `data.npz` bundled beside the model (as with the sample models; `source="bundled"`),
    else synthetic inputs (`source="synthetic"`). Shards and builders are streamed
    (`insight.data.stream`): the returned dataset holds the first rows in memory and the
    whole `Stream` in `stream`. In the app, `features`, `data_fn` and `max_examples` left out
    come from the options it was launched with (`insight serve --features ...`), the
    features only for the data it was launched with; there a stream is read up to
    `--max-examples`, else `HEAD_ROWS` examples, as much as the pages read of data in memory.

    Args:
        loaded: an `insight.model.loading.LoadedModel`.
        data_path: the `--data` file, folder, or TFRecord shards (`'shards/*.tfrecord'`, an
            `s3://` pattern). Defaults to `None`.
        n_synthetic: examples to build when there is no data. Defaults to `64`.
        features: the features spec JSON of the shards (`insight.data.features`). Defaults
            to `None`.
        data_fn: a trusted `.py` file defining `dataset() -> tf.data.Dataset` (executed).
            Defaults to `None`.
        max_examples: stream at most this many examples. Defaults to `None` (all).
        head_rows: rows of a stream kept in memory (what reads rows rather than the
            stream: one gradient batch, one example's probes; the projector's vectors read
            the stream past them). Defaults to `HEAD_ROWS`.

    Returns:
        A `Dataset`, passed through `conform_to_model`.

    Raises:
        DataError: the data cannot be read or does not fit the model, or shards without a
            features spec.

    Example:

    >>> import insight
    >>> loaded = insight.load_model("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
    >>> dataset_for(loaded).source  # doctest: +SKIP
    'bundled'
    >>> dataset_for(loaded, "shards/*.tfrecord", features="spec.json").stream.name
    ... # doctest: +SKIP
    'shards/*.tfrecord (4 shards)'
    """
    from insight.launch import launched

    given = None if data_path is None or str(data_path) == "" else str(data_path)
    opts = launched()
    if opts is not None:  # the app: what `insight serve` was started with
        if given is None and data_fn is None:
            data_fn = opts.data_fn
        if features is None and given is not None and opts.features and \
                _same_data(given, opts.data):
            features = opts.features
        # the pages read at most HEAD_ROWS examples of data in memory too; more on request
        max_examples = max_examples or opts.max_examples or HEAD_ROWS
    if data_fn is not None and given is not None:
        raise DataError("Both --data and --data-fn were given.",
                        "Give one: --data-fn's dataset() replaces --data.",
                        f"data={given!r}, data_fn={str(data_fn)!r}")
    if data_fn is not None or is_stream_path(given):
        return _streamed(loaded.model, given, features, data_fn, max_examples, head_rows)
    if given is not None:
        dataset = load_dataset(given)
    elif (bundled := bundled_data(loaded.path)) is not None:
        dataset = replace(load_dataset(bundled), source="bundled")
    else:
        dataset = synthetic_dataset(loaded.model, n=n_synthetic)
    return conform_to_model(loaded.model, dataset)


def _same_data(given: str, launched_data: str | None) -> bool:
    return launched_data is not None and (given == launched_data or Path(given).expanduser()
                                          == Path(launched_data).expanduser())


def _streamed(model: Any, data_path: str | None, features: str | Path | None,
              data_fn: str | Path | None, max_examples: int | None,
              head_rows: int = HEAD_ROWS) -> Dataset:
    """A `Dataset` holding a stream's first rows, fitted to the model, and the stream."""
    from insight.data.features import read_features
    from insight.data.stream import builder_stream, shard_stream

    if max_examples is not None and (isinstance(max_examples, bool) or max_examples < 1):
        raise DataError("--max-examples must be a positive number of examples.", "",
                        f"max_examples={max_examples!r}")
    if data_fn is not None:
        stream = builder_stream(data_fn)
    else:
        if features is None:
            raise DataError("TFRecord shards need a features spec saying what each record "
                            "holds.", "Give --features spec.json (see the README's 'Data "
                            "beyond memory').", f"data={data_path!r}")
        stream = shard_stream(data_path, read_features(features))
    specs = input_specs(model)
    name = stream.name

    def fit(x: Any, y: Any) -> tuple[Any, Any]:
        fitted = conform_to_model(model, Dataset(x=x, y=y, name=name))
        if fitted.name != name:  # resized: every batch would be, slowly
            raise DataError(f"The streamed images do not have the model's size ({fitted.name}).",
                            "Resize them in the records, or in the builder's dataset().",
                            f"data={name!r}")
        return fitted.x, y

    stream = replace(stream, fit=fit, input_ranks=tuple(len(s.shape) for s in specs or ()))
    cap = stream.capped(max_examples).max_examples
    wanted = head_rows if cap is None else min(head_rows, cap)
    # One row past the rows kept: whether the stream holds more than them, so that the
    # caption can say "the first 2,048 of a longer stream" rather than "all of it".
    x, y, ended = stream.first(wanted + 1)
    more = _rows_of(x) > wanted
    if more:
        x, y = _first_rows(x, wanted), (None if y is None else _first_rows(y, wanted))
    stream = replace(stream.capped(cap), truncated=more and cap == wanted)
    classes = stream.spec.class_names if stream.spec is not None else None
    head = Dataset(x=x, y=y, class_names=classes, name=name,
                   path=None if data_path is None or "://" in data_path else Path(data_path))
    counts = {k: c for k, v in array_items(head.x) if (c := count_nonfinite(v))}
    if not isinstance(head.x, dict) and counts:
        counts = {(specs[0].name if specs else "x"): counts["x"]}
    if ended:  # the stream ended: it holds exactly these rows
        stream = stream.capped(len(head))
    return replace(head, nonfinite=counts, stream=stream)


def _rows_of(arrays: Any) -> int:
    return len(next(iter(arrays.values())) if isinstance(arrays, dict) else arrays)


def _first_rows(arrays: Any, n: int) -> Any:
    return {k: v[:n] for k, v in arrays.items()} if isinstance(arrays, dict) else arrays[:n]
