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
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    input_batches,
    input_spec,
    recording,
    signature_key,
    slice_rows,
)
from insight.probe.reductions import (
    HIST_SAMPLE,
    on_host,
    reduce_in_graph,
    reduce_on_host,
    warm_up,
)

__all__ = ["ActivationStats", "activation_stats", "STAT_COLUMNS", "HIST_SAMPLE", "Progress",
           "data_batches", "expected_rows", "replicas", "read_ahead"]

# `progress(fraction_done, what_is_running)`, as the app's progress bar takes it.
Progress = Callable[[float, str], None]

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


def _stats_function(model: Any, paths: list[str], x_example: Any, bins: int):
    """The compiled `run(x, ranges) -> (adds, mins, maxs, used_ranges, units)` of `paths`.

    One forward pass per batch, every layer reduced in the same graph, the reductions of all
    layers packed into three flat vectors: three copies out of TensorFlow per batch and three
    numpy operations to accumulate them, whatever the number of layers.
    """
    import tensorflow as tf

    reduce = reduce_on_host if on_host() else reduce_in_graph
    key = ("stats", tuple(paths), signature_key(x_example), bins, reduce.__name__)
    cache = COMPILED.setdefault(model, {})
    if key in cache:
        return cache[key]
    layers = {p: layer for p, layer, _ in iter_layers(model)}
    kinds = {p: saturating_activation(layers[p]) for p in paths}
    wanted = set(paths)
    if reduce is reduce_on_host:
        warm_up()  # compiled here, not inside the graph's first run

    def run(x, ranges):
        store: dict[str, Any] = {}
        with recording(model, wanted, store):
            model(x, training=False)
        parts = [reduce(first_output(store[p]), ranges[i], bins, kinds[p])
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
                     batch_size: int = 64, bins: int = 32, max_examples: int | None = None,
                     progress: Progress | None = None,
                     devices: str | Sequence[str] | None = "auto") -> ActivationStats:
    """Statistics of every chosen layer's activations over all of `data`, batch by batch.

    Memory stays bounded whatever the size of `data`: a dataset that streams (TFRecord
    shards, a `tf.data` builder: `Dataset.stream`) is read one batch at a time, never
    gathered. With several local devices the batches are split across them under
    `tf.distribute.MirroredStrategy` and the per-device sums, counts, minima and maxima are
    combined exactly as one device accumulates them: counts, extremes and histogram ranges
    are identical, sums equal up to float32 summation order (the first batch, which fixes
    the histogram ranges, runs on one device). Histograms of layers with more than
    `HIST_SAMPLE` values per batch sample every k-th value of each device's share instead of
    the whole batch's.

    Args:
        model: a `keras.Model` or a `LoadedModel`.
        data: an input array, `{input_name: array}`, a list of arrays in `model.inputs`
            order, or an `insight.data.Dataset` (streamed when it has a `stream`).
        layers: layer paths; `None` for every layer. Defaults to `None`.
        batch_size: rows per forward pass (over all devices). Defaults to `64`.
        bins: histogram bins per layer. Defaults to `32`.
        max_examples: read at most this many examples. Defaults to `None` (all).
        progress: called as `progress(fraction, message)` after each batch (`fraction` is
            0 while the total is unknown: a stream without `max_examples`). Defaults to
            `None`.
        devices: `"auto"` (every local GPU when there are several, else the logical CPU
            devices when several were configured, else one device), a list of device names
            for `MirroredStrategy`, or `None` for one device. Defaults to `"auto"`.

    Returns:
        An `ActivationStats`.

    Raises:
        UsageError: no rows, or a bad `max_examples`.

    Example:

    >>> stats = activation_stats(loaded, x, batch_size=128)  # doctest: +SKIP
    >>> stats.table.loc[stats.table.dead_units > 0, "layer"].tolist()  # doctest: +SKIP
    []
    """
    if max_examples is not None and (isinstance(max_examples, bool) or
                                     not isinstance(max_examples, int | np.integer)
                                     or max_examples < 1):
        raise UsageError("max_examples must be a positive integer.", "",
                         f"max_examples={max_examples!r}")
    keras_model = as_model(model)
    paths = resolve_layers(keras_model, layers)
    strategy = replicas(devices)
    total = expected_rows(data, max_examples, keras_model)
    acc = _Totals()
    kinds: dict[str, str | None] = {}
    for xb in read_ahead(data_batches(data, batch_size, keras_model, max_examples)):
        run, kinds = _stats_function(keras_model, paths, xb, bins)
        rows = count_rows(xb)
        if acc.ranges is None or strategy is None or rows < strategy.num_replicas_in_sync:
            acc.add(run(xb, acc.first_ranges(len(paths))))
        else:
            for out in _replicated(strategy, run, xb, acc.ranges):
                acc.add(out)
        acc.n += rows
        if progress is not None:
            of = f" of {total:,}" if total else ""
            progress(min(acc.n / total, 1.0) if total else 0.0,
                     f"Activation statistics: {acc.n:,}{of} examples")
    if acc.adds is None:
        raise UsageError("The dataset is empty: no rows to compute statistics on.", "",
                         "rows=0")
    ranges = acc.ranges
    layers_by_path = {p: layer for p, layer, _ in iter_layers(keras_model)}
    rows_out, per_units, hists = [], {}, {}
    unpacked = _unpack(acc.adds, acc.mins, acc.maxs, acc.units, paths, kinds, bins)
    for i, (p, a) in enumerate(zip(paths, unpacked, strict=True)):
        row, per_unit = _summarise(p, layers_by_path[p], a, kinds.get(p), acc.n)
        rows_out.append(row)
        per_units[p] = per_unit
        hists[p] = (a["hist"], np.linspace(ranges[i, 0], ranges[i, 1], bins + 1))
    return ActivationStats(pd.DataFrame(rows_out, columns=STAT_COLUMNS), per_units, hists,
                           acc.n)


class _Totals:
    """The packed sums (float64), per-unit extremes and histogram ranges so far."""

    def __init__(self) -> None:
        self.adds: np.ndarray | None = None
        self.mins = self.maxs = self.units = self.ranges = None
        self.n = 0

    def first_ranges(self, n_layers: int) -> np.ndarray:
        """NaN (the first batch's extremes) until the first batch has fixed them."""
        if self.ranges is None:
            return np.full((n_layers, 2), np.nan, np.float32)
        return self.ranges

    def add(self, out: Any) -> None:
        if self.adds is None:
            self.adds = np.asarray(out[0]).astype(np.float64)
            self.mins, self.maxs = np.asarray(out[1]).copy(), np.asarray(out[2]).copy()
            self.ranges, self.units = np.asarray(out[3]), np.asarray(out[4])
            return
        self.adds += np.asarray(out[0])
        np.minimum(self.mins, np.asarray(out[1]), out=self.mins)
        np.maximum(self.maxs, np.asarray(out[2]), out=self.maxs)


def data_batches(data: Any, batch_size: int, model: Any, max_examples: int | None = None
                 ) -> Iterator[Any]:
    """The input batches of `data` (streamed from `data.stream` when it has one), at most
    `max_examples` rows in all, each in the form `model` is called with."""
    stream = getattr(data, "stream", None)
    if stream is not None:
        for xb, _ in stream.batches(batch_size, max_examples):
            yield as_inputs(xb, model)
        return
    left = max_examples
    for xb in input_batches(data, batch_size, model):
        if left is not None:
            if left <= 0:
                return
            rows = count_rows(xb)
            if rows > left:
                xb = slice_rows(xb, 0, left)
            left -= min(rows, left)
        yield xb


def expected_rows(data: Any, max_examples: int | None, model: Any) -> int | None:
    """How many rows `activation_stats` will read, or `None` when unknown (a stream)."""
    stream = getattr(data, "stream", None)
    if stream is not None:
        caps = [c for c in (stream.max_examples, max_examples) if c is not None]
        return min(caps) if caps else None
    if hasattr(data, "batches"):
        try:
            n = len(data)
        except TypeError:  # a source that only yields batches
            return max_examples
    else:
        n = count_rows(as_inputs(data, model))
    return n if max_examples is None else min(n, max_examples)


_STRATEGIES: dict[tuple[str, ...], Any] = {}


def replicas(devices: str | Sequence[str] | None = "auto"):
    """The `MirroredStrategy` over `devices` (see `activation_stats`), or `None` for one
    device; made once per set of devices."""
    if devices is None:
        return None
    import tensorflow as tf

    if devices == "auto":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        names = gpus if len(gpus) > 1 else cpus if not gpus and len(cpus) > 1 else []
    else:
        names = [str(d) for d in devices]
    if len(names) < 2:
        return None
    key = tuple(names)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = tf.distribute.MirroredStrategy(names)
    return _STRATEGIES[key]


def _replicated(strategy: Any, run: Any, xb: Any, ranges: np.ndarray) -> list[tuple]:
    """`run` on each replica's share of the batch: one output tuple per replica."""
    n = strategy.num_replicas_in_sync
    bounds = np.linspace(0, count_rows(xb), n + 1).astype(int)

    def share(ctx: Any) -> Any:
        i = ctx.replica_id_in_sync_group
        return slice_rows(xb, int(bounds[i]), int(bounds[i + 1]))

    shares = strategy.experimental_distribute_values_from_function(share)
    out = strategy.run(lambda x, r: run(x, r), args=(shares, ranges))
    local = [strategy.experimental_local_results(o) for o in out]
    return [tuple(part[i].numpy() for part in local) for i in range(n)]


def _unpack(adds: np.ndarray, mins: np.ndarray, maxs: np.ndarray, units: np.ndarray,
            paths: list[str], kinds: dict[str, str | None], bins: int
            ) -> Iterator[dict[str, Any]]:
    """Each layer's totals, `{count, sum, sumsq, nonzero, [saturated], hist, min, max}`, cut
    out of the packed vectors in `reduce_in_graph`'s order."""
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
