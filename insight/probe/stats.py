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

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from insight.errors import UsageError
from insight.model.layers import as_model, iter_layers, resolve_layers, saturating_activation
from insight.probe.capture import (
    COMPILED,
    TRACE_LOCK,
    as_inputs,
    count_rows,
    first_output,
    input_spec,
    recording,
    signature_key,
    slice_rows,
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


def _as_units(a):
    """(rows, units) view of an activation: the last axis is the unit axis."""
    import tensorflow as tf

    a = tf.cast(a, tf.float32)
    if a.shape.rank is not None and a.shape.rank <= 1:
        a = tf.reshape(a, (-1, 1))
    return tf.reshape(a, (-1, tf.shape(a)[-1]))


def _reduce(a, value_range, bins: int, saturation: str | None):
    import tensorflow as tf

    a = tf.cast(a, tf.float32)
    if a.shape.rank is not None and a.shape.rank <= 1:
        a = tf.reshape(a, (-1, 1))
    axes = list(range(a.shape.rank - 1))
    u = _as_units(a)
    flat = tf.reshape(a, [-1])
    step = tf.maximum(tf.size(flat) // HIST_SAMPLE, 1)
    out = {
        "count": tf.cast(tf.shape(u)[0], tf.float32),
        # Sums over the original axes: ~2x faster than over the (rows, units) view on CPU.
        "sum": tf.reduce_sum(a, axes),
        "sumsq": tf.reduce_sum(tf.square(a), axes),
        "min": tf.reduce_min(u, 0),
        "max": tf.reduce_max(u, 0),
        "nonzero": tf.reduce_sum(tf.cast(tf.not_equal(u, 0.0), tf.float32), 0),
        "hist": tf.histogram_fixed_width(flat[::step], value_range, nbins=bins),
    }
    if saturation == "sigmoid":
        out["saturated"] = tf.reduce_sum(tf.cast((u < 0.01) | (u > 0.99), tf.float32))
    elif saturation == "tanh":
        out["saturated"] = tf.reduce_sum(tf.cast(tf.abs(u) > 0.99, tf.float32))
    elif saturation == "softmax":
        out["saturated"] = tf.reduce_sum(tf.cast(tf.reduce_max(u, -1) > 0.99, tf.float32))
    return out


def _stats_function(model: Any, paths: list[str], x_example: Any, bins: int):
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
        return {p: _reduce(first_output(store[p]), ranges[i], bins, kinds[p])
                for i, p in enumerate(paths)}

    def extremes(x):
        store: dict[str, Any] = {}
        with recording(model, wanted, store):
            model(x, training=False)
        return tf.stack([tf.stack([tf.reduce_min(tf.cast(first_output(store[p]), tf.float32)),
                                   tf.reduce_max(tf.cast(first_output(store[p]), tf.float32))])
                         for p in paths])

    spec = input_spec(x_example)
    fns = (tf.function(run, input_signature=[spec, tf.TensorSpec((len(paths), 2), tf.float32)]),
           tf.function(extremes, input_signature=[spec]), kinds)
    with TRACE_LOCK:
        fns[0].get_concrete_function()
        fns[1].get_concrete_function()
    cache[key] = fns
    return fns




def _batches(data: Any, batch_size: int, model: Any):
    if hasattr(data, "batches"):
        for xb, _ in data.batches(batch_size):
            yield as_inputs(xb, model)
        return
    x = as_inputs(data, model)
    n = count_rows(x)
    for start in range(0, n, batch_size):
        yield slice_rows(x, start, min(n, start + batch_size))


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
    acc: dict[str, dict[str, np.ndarray]] = {}
    ranges = None
    edges: dict[str, np.ndarray] = {}
    n = 0
    kinds: dict[str, str | None] = {}
    for xb in _batches(data, batch_size, keras_model):
        run, extremes, kinds = _stats_function(keras_model, paths, xb, bins)
        if ranges is None:
            lo_hi = extremes(xb).numpy().astype(np.float64)
            pad = np.maximum((lo_hi[:, 1] - lo_hi[:, 0]) * 0.1, 0.5 * (lo_hi[:, 1] == lo_hi[:, 0]))
            ranges = np.stack([lo_hi[:, 0] - pad, lo_hi[:, 1] + pad], 1).astype(np.float32)
            edges = {p: np.linspace(ranges[i, 0], ranges[i, 1], bins + 1)
                     for i, p in enumerate(paths)}
        out = run(xb, ranges)
        n += count_rows(xb)
        for p in paths:
            _accumulate(acc.setdefault(p, {}), {k: v.numpy() for k, v in out[p].items()})
    if not acc:
        raise UsageError("The dataset is empty: no rows to compute statistics on.", "",
                         "rows=0")
    layers_by_path = {p: layer for p, layer, _ in iter_layers(keras_model)}
    rows, units, hists = [], {}, {}
    for p in paths:
        row, per_unit = _summarise(p, layers_by_path[p], acc[p], kinds.get(p), n)
        rows.append(row)
        units[p] = per_unit
        hists[p] = (acc[p]["hist"], edges[p])
    return ActivationStats(pd.DataFrame(rows, columns=STAT_COLUMNS), units, hists, n)


def _accumulate(total: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> None:
    for k, v in batch.items():
        v = v.astype(np.float64) if k != "hist" else v.astype(np.int64)
        if k not in total:
            total[k] = v
        elif k == "min":
            total[k] = np.minimum(total[k], v)
        elif k == "max":
            total[k] = np.maximum(total[k], v)
        else:
            total[k] = total[k] + v


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
