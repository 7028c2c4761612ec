"""The statistics `ActivationLogger` writes for each layer, split between graph and host.

Each op a traced function holds costs twice before the first log: once in Python while it is
traced, once in TensorFlow's graph optimizer on its first run (about 30 ops and 20 ms of CPU
per layer for these six statistics, measured on a small CNN). A small layer's output (its
weights, its output and its gradient: at most `HOST_MAX` values) therefore leaves the graph
as it is and numpy reduces it after the run, which costs microseconds a log; a larger one is
reduced inside the graph by TensorFlow's kernels, which use every core and send back six
numbers. Both give the same statistics (`tests/unit/test_logged.py`).

Example:

>>> parts = in_graph(acts, a_grads, w_grads, rows=64)  # traced  # doctest: +SKIP
>>> values = finish(parts[0], *fn(x, y))  # (layers, len(LOGGED_STATS)), float32  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["HOST_MAX", "LOGGED_STATS", "finish", "in_graph", "on_host"]

LOGGED_STATS = ("mean_abs", "std", "zero_fraction", "dead_fraction", "weight_grad_norm",
                "output_grad_norm")

# Values (output, its gradient, the weights' gradients) up to which a layer is reduced by
# numpy after the run: 2^18 float32 values are 1 MiB, a few hundred microseconds per log.
HOST_MAX = 1 << 18


def on_host(a: Any, ws: list, rows: int) -> bool:
    """Whether one layer (its traced output `a`, weight gradients `ws`, `rows` examples) is
    small enough to be reduced on the host; unknown sizes stay in the graph."""
    per_row = a.shape[1:].num_elements()
    sizes = [w.shape.num_elements() for w in ws]
    if per_row is None or None in sizes:
        return False
    return 2 * rows * per_row + sum(sizes) <= HOST_MAX


def in_graph(acts: list, a_grads: list, w_grads: list[list], rows: int) -> tuple:
    """Inside the traced function: `(mask, stats, raw)` with `mask[i]` true where layer `i`
    is reduced on the host, `stats` the `(graph layers, 6)` statistics of the others, `raw`
    `[(output, gradient, [weight gradients])]` of the host ones (in layer order each). The
    function returns `(stats, raw)`; `mask` is known once traced, keep it beside it."""
    import tensorflow as tf

    layers = list(zip(acts, a_grads, w_grads, strict=True))
    mask = tuple(on_host(a, ws, rows) for a, _, ws in layers)
    big = [layer for layer, host in zip(layers, mask, strict=True) if not host]
    raw = [(a, g, list(ws)) for (a, g, ws), host in zip(layers, mask, strict=True) if host]
    stats = (_graph_statistics(*map(list, zip(*big, strict=True))) if big else
             tf.zeros((0, len(LOGGED_STATS))))
    return mask, stats, raw


def finish(mask: tuple, stats: Any, raw: list) -> np.ndarray:
    """The `(layers, len(LOGGED_STATS))` float32 statistics from `in_graph`'s parts once run
    (`stats` and `raw` as tensors or arrays), rows in layer order."""
    graph_rows = iter(np.asarray(stats, np.float32))
    host_rows = iter(raw)
    out = [next(graph_rows) if not host else _host_row(*next(host_rows)) for host in mask]
    return np.array(out, np.float32).reshape(len(mask), len(LOGGED_STATS))


def _host_row(a: Any, g: Any, ws: list) -> list[float]:
    """One layer's statistics in numpy, as `_graph_statistics` computes them."""
    a = np.asarray(a).astype(np.float32, copy=False)
    g = np.asarray(g).astype(np.float32, copy=False)
    units = a.reshape(-1, a.shape[-1] if a.ndim > 1 else 1)
    nan = float("nan")
    if not units.size:
        return [nan] * len(LOGGED_STATS)
    magnitude = np.abs(units)
    squares = [float(np.square(np.asarray(w, np.float64)).sum()) for w in ws]
    per_example = np.sqrt(np.square(g.reshape(len(g), -1), dtype=np.float64).sum(axis=1))
    return [float(magnitude.mean()), float(units.std()),
            1.0 - np.count_nonzero(units) / units.size,
            # A unit is dead when zero for every example; a NaN is not zero (as in the graph).
            float(np.mean(magnitude.max(axis=0) == 0)),
            math.sqrt(sum(squares)) if ws else nan,
            float(per_example.mean())]


def _graph_statistics(acts: list, a_grads: list, w_grads: list):
    """In the graph: the `(layers, len(LOGGED_STATS))` statistics, in few ops (each costs
    tracing time): shared constants, static shapes."""
    import tensorflow as tf

    zero, one, nan = tf.constant(0.0), tf.constant(1.0), tf.constant(float("nan"))
    values = []
    for a, g, ws in zip(acts, a_grads, w_grads, strict=True):
        a, g = tf.cast(a, tf.float32), tf.cast(g, tf.float32)
        # Rows of units, rows of examples: static shapes (one constant op) when known.
        k, n = a.shape[-1] if a.shape.rank > 1 else 1, g.shape[1:].num_elements()
        nonzero = tf.cast(tf.not_equal(tf.reshape(a, (-1, k if k is not None else
                                                      tf.shape(a)[-1])), zero), tf.float32)
        values += [
            tf.reduce_mean(tf.abs(a)), tf.math.reduce_std(a), one - tf.reduce_mean(nonzero),
            tf.reduce_mean(tf.cast(tf.equal(tf.reduce_max(nonzero, axis=0), zero), tf.float32)),
            tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(tf.cast(w, tf.float32))) for w in ws]))
            if ws else nan,
            tf.reduce_mean(tf.norm(tf.reshape(g, (-1, n) if n else (tf.shape(g)[0], -1)),
                                   axis=1))]
    return tf.reshape(tf.stack(values), (len(acts), len(LOGGED_STATS)))
