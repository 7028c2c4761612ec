"""The `Dataset`: examples to feed a model, their labels, and where they came from.

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
from insight.model.layers import shape_text

__all__ = ["Dataset", "Arrays", "DATA_FORMATS", "LABEL_COLUMNS", "IMAGE_SUFFIXES", "SOURCES",
           "array_items", "input_names", "take_rows", "count_nonfinite"]

Arrays = np.ndarray | dict[str, np.ndarray]

DATA_FORMATS = ("an .npz file (x, optional y and class_names; or one key per model input), "
                "an .npy file (x only), a .csv file (numeric columns, a 'label' column) or a "
                "folder of PNG/JPEG images (one subfolder per class)")
LABEL_COLUMNS = ("label", "y", "target", "class")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SOURCES = ("file", "bundled", "synthetic")



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
        stream: for data beyond memory (TFRecord shards, a `tf.data` builder: see
            `insight.data.stream`), the whole `Stream`; `x` and `y` then hold its first rows
            only, which the probes that read one batch use, while `activation_stats` reads
            the stream. `take` of a prefix keeps it, capped to the prefix's length.

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
    stream: Any = field(default=None, compare=False)

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
                   for k, v in array_items(self.x)}
        if self.y is not None:
            lengths.update({f"y[{k!r}]" if isinstance(self.y, dict) else "y": len(v)
                            for k, v in array_items(self.y)})
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
                f"inputs={input_names(self.x)})")

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
            yield take_rows(self.x, rows), None if self.y is None else take_rows(self.y, rows)

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
            x = take_rows(self.x, rows)
            y = None if self.y is None else take_rows(self.y, rows)
        except IndexError as exc:
            raise UsageError(f"Some indices lie outside the {len(self)} examples: {exc}.", "",
                             f"indices={indices!r}") from exc
        counts = {}
        for key in self.nonfinite:
            arr = x.get(key) if isinstance(x, dict) else x
            if arr is not None and (count := count_nonfinite(arr)):
                counts[key] = count
        return replace(self, x=x, y=y, nonfinite=counts, stream=_prefix_stream(self, indices))

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
        if self.stream is not None:
            head += ", streamed " + _stream_text(self.stream, n)
        if self.source == "bundled":
            head += " (bundled with the model)"
        parts = [f"{n:,} examples" if self.stream is None else "",
                 ", ".join(f"{k} {shape_text(v.shape[1:])} {v.dtype}"
                           for k, v in array_items(self.x))]
        parts.append(self._labels_text())
        if self.nonfinite:
            total = sum(self.nonfinite.values())
            parts.append(f"{total:,} NaN/Inf values in {', '.join(self.nonfinite)}")
        return f"{head}: " + ", ".join(p for p in parts if p)

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


def _stream_text(stream: Any, n: int) -> str:
    """How much of a stream is read, `n` rows of it in memory.

    >>> from types import SimpleNamespace as S
    >>> _stream_text(S(max_examples=2048, truncated=True), 2048)
    '(the first 2,048 examples of a longer stream, all in memory)'
    """
    cap = stream.max_examples
    if cap == n:
        return (f"(the first {n:,} examples of a longer stream, all in memory)"
                if stream.truncated else f"(all {n:,} examples fit in memory)")
    if cap and stream.truncated:
        return f"(the first {cap:,} examples of a longer stream; first {n:,} in memory)"
    return f"({f'up to {cap:,}' if cap else 'all'} examples; first {n:,} in memory)"


def _prefix_stream(dataset: Dataset, indices: Any) -> Any:
    """The stream of a subset: capped for the first rows (`slice(0, n)`), else none (the
    subset is what is in memory)."""
    s = dataset.stream
    if s is None or not isinstance(indices, slice) or indices.start not in (None, 0) or \
            indices.step not in (None, 1):
        return None
    if indices.stop is None:
        return s
    stop = max(int(indices.stop), 0)
    capped = s.capped(stop)
    # rows in memory past the prefix: the prefix's stream is cut short
    return replace(capped, truncated=True) if stop < len(dataset) else capped


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


def array_items(arrays: Arrays) -> list[tuple[str, np.ndarray]]:
    return list(arrays.items()) if isinstance(arrays, dict) else [("x", arrays)]


def input_names(arrays: Arrays) -> list[str]:
    return list(arrays) if isinstance(arrays, dict) else ["x"]


def take_rows(arrays: Arrays, rows: Any) -> Arrays:
    if isinstance(arrays, dict):
        return {k: v[rows] for k, v in arrays.items()}
    return arrays[rows]


def count_nonfinite(arr: np.ndarray) -> int:
    if arr.dtype.kind not in "fc":
        return 0
    return int(arr.size - np.count_nonzero(np.isfinite(arr)))
