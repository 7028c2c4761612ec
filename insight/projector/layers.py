"""A layer's outputs as vectors to project: one vector per example, over data in memory or a
stream read batch by batch.

Over a stream (`Dataset.stream`: TFRecord shards, a `tf.data` builder) each batch is read,
run through the model and dropped: only the layer's vectors, the first output's prediction
and the label are kept (and small image inputs, for thumbnails, while they stay under
`IMAGE_BYTES`). The stream is read up to its cap (`--max-examples`; in the app 2,048 when
none is given, the rows every page reads, so the points are the examples the Activations
page's statistics cover), never past `STREAM_POINTS` examples or `VECTOR_BYTES` of vectors.

Example:

>>> v = layer_vectors(loaded, dataset, "dense1", progress=print)  # doctest: +SKIP
>>> v.vectors.shape, list(v.metadata.columns)  # doctest: +SKIP
((1797, 32), ['label', 'predicted', 'correct', 'confidence'])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from insight.errors import DataError, UsageError
from insight.projector.vectors import Vectors

__all__ = ["layer_vectors", "REDUCTIONS", "STREAM_POINTS", "VECTOR_BYTES", "IMAGE_BYTES"]

REDUCTIONS = ("flatten", "mean", "max")
# The most points a stream gives the projector, whatever --max-examples says: the exact
# neighbour search's limit (`projection.EXACT_KNN_ROWS`), past which UMAP's neighbours are
# approximate and a t-SNE on a CPU takes minutes. --max-examples raises the app's 2,048 up to it.
STREAM_POINTS = 20_000
VECTOR_BYTES = 256 * 2**20  # the vectors of a stream stop growing here (a wide conv layer)
IMAGE_BYTES = 64 * 2**20  # thumbnails kept while under this; past it, none (metadata only)


def _reduce(a: np.ndarray, how: str) -> np.ndarray:
    if a.ndim <= 2:
        return a.reshape(len(a), -1)
    if how == "flatten":
        return a.reshape(len(a), -1)
    axes = tuple(range(1, a.ndim - 1))  # spatial axes; the last is channels
    return a.mean(axis=axes) if how == "mean" else a.max(axis=axes)


def layer_vectors(loaded: Any, dataset: Any, layer: str, *, reduce: str = "flatten",
                  batch_size: int = 256, max_examples: int | None = None,
                  progress: Callable[[float, str], None] | None = None) -> Vectors:
    """The output of `layer` for every example of `dataset`, one vector per example.

    A dataset whose stream may hold more rows than it keeps in memory is read from the
    stream, batch by batch, up to the stream's cap, `max_examples` and `STREAM_POINTS`.

    Args:
        loaded: a `LoadedModel` or `keras.Model`.
        dataset: an `insight.data.Dataset` (streamed when its `stream` goes past its rows).
        layer: a layer path (see `insight.model.layers.layer_paths`).
        reduce: for outputs with spatial axes: `"flatten"`, or global `"mean"`/`"max"` pooling
            over them (one value per channel). Defaults to `"flatten"`.
        batch_size: rows per forward pass. Defaults to `256`.
        max_examples: read at most this many examples. Defaults to `None` (the stream's cap).
        progress: called as `progress(fraction, message)` after each batch. Defaults to
            `None`.

    Returns:
        `Vectors` whose metadata has `label` (class names when known), `predicted`, `correct`
        and `confidence` (from the model's first output, computed in the same pass).

    Raises:
        UsageError: an unknown reduction or layer.
        DataError: the stream cannot be read, or holds no examples.
    """
    from insight.model.layers import resolve_layers
    from insight.probe.capture import capture_function, first_output

    if reduce not in REDUCTIONS:
        raise UsageError(f"Unknown reduction {reduce!r}. Reductions are: "
                         f"{', '.join(REDUCTIONS)}.", "", f"reduce={reduce!r}")
    model = getattr(loaded, "model", loaded)
    [path] = resolve_layers(model, [layer])
    total, batches, streamed = _batches(dataset, batch_size, max_examples)
    fn = None
    parts, outs, labels = [], [], []
    images = _Thumbnails() if streamed else None
    rank = n = size = 0
    for xb, yb in batches:
        fn = fn or capture_function(model, [path], xb)
        out, acts = fn(xb)
        raw = np.asarray(first_output(acts[path]))
        rank = raw.ndim
        parts.append(_reduce(raw, reduce).astype(np.float32))
        outs.append(np.asarray(first_output(out)))
        labels.append(_label_column(yb))
        if images is not None:
            images.add(xb)
        n += len(raw)
        size += parts[-1].nbytes
        if progress is not None:
            of = f" of {total:,}" if total else ""
            progress(min(n / total, 1.0) if total else 0.0,
                     f"Layer vectors of {path}: {n:,}{of} examples")
        if streamed and size >= VECTOR_BYTES:
            break
    if not parts:
        raise DataError(f"{dataset.name or 'The data'} holds no examples to project.",
                        "Give data with at least one example.", f"data={dataset.name!r}")
    meta = _prediction_metadata(np.concatenate(outs), _joined(labels),
                                list(dataset.class_names or []))
    how = f", {reduce}" if rank > 2 and reduce != "flatten" else ""
    what = f"{dataset.name}, streamed" if streamed else dataset.name  # the title counts them
    if images is None:  # the rows in memory: a view of them, whatever their size
        from insight.probe.capture import slice_rows

        thumbs = _images(slice_rows(dataset.x, 0, n))
    else:
        thumbs = images.joined()
    return Vectors(np.concatenate(parts), meta, f"layer {path}{how} ({what})", thumbs)


def _batches(dataset: Any, batch_size: int, max_examples: int | None
             ) -> tuple[int | None, Iterator[tuple[Any, Any]], bool]:
    """`(rows expected or None, (x, y) batches, streamed)`: the stream when it may hold more
    rows than are in memory, else the rows in memory (the same first rows, already read)."""
    from insight.probe.capture import slice_rows

    stream = getattr(dataset, "stream", None)
    n = len(dataset)
    if stream is not None:
        cap = min(c for c in (max_examples, STREAM_POINTS, stream.max_examples)
                  if c is not None)
        if cap > n:
            return cap, stream.batches(batch_size, cap), True
    rows = n if max_examples is None else min(n, max_examples)

    def in_memory() -> Iterator[tuple[Any, Any]]:
        x, y = dataset.x, dataset.y
        for start in range(0, rows, batch_size):
            stop = min(rows, start + batch_size)
            yield slice_rows(x, start, stop), (None if y is None else slice_rows(y, start, stop))

    return rows, in_memory(), False


def _label_column(y: Any) -> np.ndarray | None:
    """One label per row (the first output's, its first value): all the metadata keeps."""
    if isinstance(y, Mapping):
        y = next(iter(y.values()), None)
    if y is None:
        return None
    y = np.asarray(y)
    return y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y


def _joined(parts: list[np.ndarray | None]) -> np.ndarray | None:
    return None if not parts or any(p is None for p in parts) else np.concatenate(parts)


def _prediction_metadata(outputs: np.ndarray, y: np.ndarray | None,
                         names: list[str]) -> pd.DataFrame:
    meta = pd.DataFrame(index=range(len(outputs)))
    flat = outputs.reshape(len(outputs), -1)

    def label(i: np.ndarray) -> Any:
        return [names[k] if 0 <= k < len(names) else str(k) for k in i]

    if flat.shape[1] > 1:
        predicted = flat.argmax(axis=1)
        meta["predicted"] = label(predicted)
        meta["confidence"] = flat.max(axis=1).astype(float)
    else:
        predicted = (flat[:, 0] > 0.5).astype(int)
        meta["predicted"] = predicted.astype(str)
        meta["confidence"] = np.where(predicted == 1, flat[:, 0], 1 - flat[:, 0]).astype(float)
    if y is not None and np.issubdtype(y.dtype, np.integer):
        meta.insert(0, "label", label(y))
        meta["correct"] = y == predicted
    return meta


class _Thumbnails:
    """Image inputs kept for thumbnails while under `IMAGE_BYTES`; past it, none at all."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] | None = []
        self.size = 0

    def add(self, x: Any) -> None:
        if self.parts is None:
            return
        image = _images(x)
        if image is None or self.size + image.nbytes > IMAGE_BYTES:
            self.parts = None
            return
        self.parts.append(image)
        self.size += image.nbytes

    def joined(self) -> np.ndarray | None:
        return np.concatenate(self.parts) if self.parts else None


def _images(x: Any) -> np.ndarray | None:
    arr = None if isinstance(x, Mapping) else np.asarray(x)
    if arr is not None and arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] >= 4:
        return arr[..., 0] if arr.shape[-1] == 1 else arr
    return None
