"""Activation statistics streamed over a whole dataset, memory bounded whatever its size.

Each batch runs one compiled forward pass that also reduces every layer's output, inside the
graph, to per-unit sums, extremes, zero and saturation counts and a fixed-bin histogram; only
those small vectors leave the graph and are accumulated in float64. The last axis is the unit
axis (Dense units, conv channels, embedding dimensions).

- dead unit: a unit whose output is exactly 0 for every value over the dataset (a ReLU that
  never fires);
- saturation: for layers ending in sigmoid (values < 0.01 or > 0.99), tanh (|v| > 0.99) or
  softmax (rows whose largest probability is > 0.99), the fraction of saturated values / rows.

Example:

>>> stats = activation_stats(loaded, dataset)  # doctest: +SKIP
>>> stats.table[["layer", "mean", "dead_fraction"]].head(2)  # doctest: +SKIP
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from insight.errors import UsageError
from insight.model.layers import as_model, iter_layers, resolve_layers, saturating_activation
from insight.probe.capture import (
    COMPILED,
    TRACE_LOCK,
    count_rows,
    first_output,
    input_batches,
    input_spec,
    recording,
    signature_key,
)

__all__ = ["ActivationStats", "activation_stats", "STAT_COLUMNS", "HIST_SAMPLE"]

# Histograms read every k-th value, at most this many per layer per batch: a histogram of
# every value (~1 GB of activations per batch on MobileNetV2) doubles the cost of a pass.
HIST_SAMPLE = 65_536

STAT_COLUMNS = ["layer", "class", "shape", "units", "mean", "std", "min", "max",
                "zero_fraction", "dead_units", "dead_fraction", "saturation", "saturated_fraction"]


@dataclass
class ActivationStats:
    """Per-layer and per-unit statistics of activations over a dataset.

    Attributes:
        table: one row per layer, columns `STAT_COLUMNS`.
        units: `{layer: DataFrame}` per unit: `mean`, `std`, `min`, `max`, `zero_fraction`,
            `dead`.
        histograms: `{layer: (counts, edges)}`, fixed bins (values outside the first batch's
            range, padded by 10%, fall into the edge bins), from every value of layers with at
            most `HIST_SAMPLE` values per batch, else from every k-th value; every statistic
            of `table` and `units` is exact.
        n_examples: rows seen.
    """

    table: pd.DataFrame
    units: dict[str, pd.DataFrame] = field(default_factory=dict)
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    n_examples: int = 0


def _reduce(a, given_range, bins: int, saturation: str | None):
    """One layer's output reduced to `(adds, mins, maxs, used_range)`, all small vectors.

    `adds` (summed over batches) is `[count, sum(units), sumsq(units), nonzero(units),
    saturated?, hist(bins)]`; `given_range` of NaNs asks for this batch's extremes, padded by
    10% (by 0.5 when constant), as the histogram range.
    """
    import tensorflow as tf

    a = tf.cast(a, tf.float32)
    if a.shape.rank is not None and a.shape.rank <= 1:
        a = tf.reshape(a, (-1, 1))
    axes = list(range(a.shape.rank - 1))
    u = tf.reshape(a, (-1, tf.shape(a)[-1]))
    lo, hi = _unit_extremes(a, u)
    low, high = tf.reduce_min(lo), tf.reduce_max(hi)
    pad = tf.where(high > low, (high - low) * 0.1, 0.5)
    value_range = tf.where(tf.math.is_nan(given_range), tf.stack([low - pad, high + pad]),
                           given_range)
    flat = tf.reshape(a, [-1])
    step = tf.maximum(tf.size(flat) // HIST_SAMPLE, 1)
    adds = [
        tf.cast(tf.shape(u)[:1], tf.float32),
        # Sums over the original axes: ~2x faster than over the (rows, units) view on CPU.
        tf.reduce_sum(a, axes),
        tf.reduce_sum(tf.square(a), axes),
        tf.reduce_sum(tf.cast(tf.not_equal(u, 0.0), tf.float32), 0),
    ]
    if saturation == "sigmoid":
        adds.append(tf.reduce_sum(tf.cast((u < 0.01) | (u > 0.99), tf.float32))[None])
    elif saturation == "tanh":
        adds.append(tf.reduce_sum(tf.cast(tf.abs(u) > 0.99, tf.float32))[None])
    elif saturation == "softmax":
        adds.append(tf.reduce_sum(tf.cast(tf.reduce_max(u, -1) > 0.99, tf.float32))[None])
    adds.append(tf.cast(tf.histogram_fixed_width(flat[::step], value_range, nbins=bins),
                        tf.float32))
    return tf.concat(adds, 0), lo, hi, value_range


def _unit_extremes(a, u):
    """Per-unit min and max. For an image-shaped output (rows, h, w, units) a window of the
    whole image in oneDNN's max pooling first: ~4x faster than `reduce_max` on CPU, and exact."""
    import tensorflow as tf

    if a.shape.rank == 4 and a.shape[1] is not None and a.shape[2] is not None:
        window = [int(a.shape[1]), int(a.shape[2])]
        hi = tf.reduce_max(tf.nn.max_pool2d(a, window, window, "VALID"), [0, 1, 2])
        lo = -tf.reduce_max(tf.nn.max_pool2d(-a, window, window, "VALID"), [0, 1, 2])
        return lo, hi
    return tf.reduce_min(u, 0), tf.reduce_max(u, 0)


def _stats_function(model: Any, paths: list[str], x_example: Any, bins: int):
    """The compiled `run(x, ranges) -> (adds, mins, maxs, used_ranges, units)` of `paths`.

    One forward pass per batch, every layer reduced in the same graph, the reductions of all
    layers packed into three flat vectors: three copies out of TensorFlow per batch and three
    numpy operations to accumulate them, whatever the number of layers.
    """
    import tensorflow as tf

    key = ("stats", tuple(paths), signature_key(x_example), bins)
    cache = COMPILED.setdefault(model, {})
    if key in cache:
        return cache[key]
    layers = {p: layer for p, layer, _ in iter_layers(model)}
    kinds = {p: saturating_activation(layers[p]) for p in paths}
    wanted = set(paths)

    def run(x, ranges):
        store: dict[str, Any] = {}
        with recording(model, wanted, store):
            model(x, training=False)
        parts = [_reduce(first_output(store[p]), ranges[i], bins, kinds[p])
                 for i, p in enumerate(paths)]
        return (tf.concat([q[0] for q in parts], 0), tf.concat([q[1] for q in parts], 0),
                tf.concat([q[2] for q in parts], 0), tf.stack([q[3] for q in parts]),
                tf.stack([tf.size(q[1]) for q in parts]))

    spec = input_spec(x_example)
    fn = tf.function(run, input_signature=[spec, tf.TensorSpec((len(paths), 2), tf.float32)])
    with TRACE_LOCK:
        fn.get_concrete_function()
    cache[key] = (fn, kinds)
    return fn, kinds


def read_ahead(batches: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """`batches`, read `depth` ahead in a thread while the compiled pass runs (TensorFlow
    releases the GIL): a dataset that reads or decodes its rows overlaps with the compute."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone

    def fill() -> None:
        try:
            for item in batches:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            put((end, exc))

    thread = threading.Thread(target=fill, name="insight-stats-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()


def activation_stats(model: Any, data: Any, *, layers: str | Iterable[str] | None = None,
                     batch_size: int = 64, bins: int = 32) -> ActivationStats:
    """Statistics of every chosen layer's activations over all of `data`, batch by batch.

    Args:
        model: a `keras.Model` or a `LoadedModel`.
        data: an input array, `{input_name: array}`, a list of arrays in `model.inputs`
            order, or an `insight.data.Dataset`.
        layers: layer paths; `None` for every layer. Defaults to `None`.
        batch_size: rows per forward pass. Defaults to `64`.
        bins: histogram bins per layer. Defaults to `32`.

    Returns:
        An `ActivationStats`.

    Example:

    >>> stats = activation_stats(loaded, x, batch_size=128)  # doctest: +SKIP
    >>> stats.table.loc[stats.table.dead_units > 0, "layer"].tolist()  # doctest: +SKIP
    []
    """
    keras_model = as_model(model)
    paths = resolve_layers(keras_model, layers)
    ranges = np.full((len(paths), 2), np.nan, np.float32)  # NaN: the first batch's extremes
    adds = mins = maxs = units = None
    n = 0
    kinds: dict[str, str | None] = {}
    for xb in read_ahead(input_batches(data, batch_size, keras_model)):
        run, kinds = _stats_function(keras_model, paths, xb, bins)
        out = run(xb, ranges)
        n += count_rows(xb)
        if adds is None:
            adds = out[0].numpy().astype(np.float64)
            mins, maxs = out[1].numpy(), out[2].numpy()
            ranges, units = out[3].numpy(), out[4].numpy()
        else:
            adds += out[0].numpy()
            np.minimum(mins, out[1].numpy(), out=mins)
            np.maximum(maxs, out[2].numpy(), out=maxs)
    if adds is None:
        raise UsageError("The dataset is empty: no rows to compute statistics on.", "",
                         "rows=0")
    layers_by_path = {p: layer for p, layer, _ in iter_layers(keras_model)}
    rows, per_units, hists = [], {}, {}
    unpacked = _unpack(adds, mins, maxs, units, paths, kinds, bins)
    for i, (p, acc) in enumerate(zip(paths, unpacked, strict=True)):
        row, per_unit = _summarise(p, layers_by_path[p], acc, kinds.get(p), n)
        rows.append(row)
        per_units[p] = per_unit
        hists[p] = (acc["hist"], np.linspace(ranges[i, 0], ranges[i, 1], bins + 1))
    return ActivationStats(pd.DataFrame(rows, columns=STAT_COLUMNS), per_units, hists, n)


def _unpack(adds: np.ndarray, mins: np.ndarray, maxs: np.ndarray, units: np.ndarray,
            paths: list[str], kinds: dict[str, str | None], bins: int
            ) -> Iterator[dict[str, Any]]:
    """Each layer's totals, `{count, sum, sumsq, nonzero, [saturated], hist, min, max}`, cut
    out of the packed vectors in `_reduce`'s order."""
    at = unit_at = 0
    for p, c in zip(paths, units.tolist(), strict=True):
        acc: dict[str, Any] = {"count": adds[at], "sum": adds[at + 1:at + 1 + c],
                               "sumsq": adds[at + 1 + c:at + 1 + 2 * c],
                               "nonzero": adds[at + 1 + 2 * c:at + 1 + 3 * c]}
        at += 1 + 3 * c
        if kinds.get(p) is not None:
            acc["saturated"] = adds[at]
            at += 1
        acc["hist"] = np.rint(adds[at:at + bins]).astype(np.int64)
        at += bins
        acc["min"], acc["max"] = mins[unit_at:unit_at + c], maxs[unit_at:unit_at + c]
        unit_at += c
        yield acc


def _summarise(path: str, layer: Any, a: dict[str, np.ndarray], saturation: str | None,
               n_examples: int) -> tuple[dict[str, Any], pd.DataFrame]:
    count = float(a["count"])  # values per unit
    mean_u = a["sum"] / count
    std_u = np.sqrt(np.maximum(a["sumsq"] / count - mean_u**2, 0.0))
    dead = a["nonzero"] == 0
    n_units = int(mean_u.size)
    total = count * n_units
    mean = float(a["sum"].sum() / total)
    std = float(np.sqrt(max(a["sumsq"].sum() / total - mean**2, 0.0)))
    shape = _shape_of(layer)
    saturated = float("nan")
    if saturation == "softmax":  # counted per softmax row (example, or example x step)
        saturated = float(a["saturated"]) / count
    elif saturation is not None:
        saturated = float(a["saturated"]) / total
    row = {
        "layer": path, "class": type(layer).__name__, "shape": shape, "units": n_units,
        "mean": mean, "std": std, "min": float(a["min"].min()), "max": float(a["max"].max()),
        "zero_fraction": float(1 - a["nonzero"].sum() / total), "dead_units": int(dead.sum()),
        "dead_fraction": float(dead.mean()), "saturation": saturation or "",
        "saturated_fraction": saturated,
    }
    per_unit = pd.DataFrame({"mean": mean_u, "std": std_u, "min": a["min"], "max": a["max"],
                             "zero_fraction": 1 - a["nonzero"] / count, "dead": dead})
    return row, per_unit


def _shape_of(layer: Any) -> str:
    from insight.model.layers import output_shape_text

    return output_shape_text(layer)
