"""Data fitted to a model: which data to use, checked against the model's inputs.

`dataset_for` picks the data (the user's file, the `data.npz` bundled beside a sample model,
else synthetic inputs); `conform_to_model` checks it against the model's inputs, applies the
few safe fix-ups (a missing channel axis, image size, float64 to float32) and counts NaN/Inf
values so the UI can report them.

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

__all__ = ["conform_to_model", "dataset_for"]


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
    specs = input_specs(model)
    if specs is None:  # a model never built: only dtypes and NaN/Inf can be looked at
        x: Arrays = {k: _to_float32(v) for k, v in array_items(dataset.x)}
        counts = {k: c for k, v in x.items() if (c := count_nonfinite(v))}
        x = x if isinstance(dataset.x, dict) else x["x"]
        return replace(dataset, x=x, nonfinite=counts)
    names = [s.name for s in specs]
    given = _match_inputs(specs, dataset.x, where)
    images = dataset.path is not None and dataset.path.is_dir()
    fitted = {s.name: _fit_input(s, given[s.name], images=images, where=where) for s in specs}
    counts = {k: c for k, v in fitted.items() if (c := count_nonfinite(v))}
    x = fitted if len(names) > 1 else fitted[names[0]]
    return replace(dataset, x=x, nonfinite=counts)


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


def _fit_input(spec: InputSpec, arr: np.ndarray, *, images: bool, where: str) -> np.ndarray:
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
        loaded: an `insight.model.loading.LoadedModel`.
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
