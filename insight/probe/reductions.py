"""One layer's output reduced, inside the compiled statistics pass, to a few small vectors.

Two ways, the same numbers: `reduce_in_graph` with TensorFlow's kernels (what a GPU runs, next
to its activations), and `reduce_on_host` through `tf.numpy_function` into the one-read numba
kernels of `insight.probe.fused` (what a CPU runs: there memory, not arithmetic, bounds the
pass). `on_host` chooses. Both return `(adds, mins, maxs, used_range)`: `adds` is `[count,
sum(units), sumsq(units), nonzero(units), saturated?, hist(bins)]`, summed over batches.

Example:

>>> adds, lo, hi, used = reduce_in_graph(x, tf.constant([0.0, 2.0]), 32, None)  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["HIST_SAMPLE", "on_host", "reduce_in_graph", "reduce_on_host", "unit_extremes",
           "warm_up"]

# Histograms read every k-th value, at most this many per layer per batch: a histogram of
# every value (~1 GB of activations per batch on MobileNetV2) doubles the cost of a pass.
HIST_SAMPLE = 65_536


def reduce_in_graph(a, given_range, bins: int, saturation: str | None):
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
    lo, hi = unit_extremes(a, u)
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


def reduce_on_host(a, given_range, bins: int, saturation: str | None):
    """`reduce_in_graph` on the host, every statistic in one read of the output
    (`insight.probe.fused`): what a CPU runs, where memory, not arithmetic, bounds the pass."""
    import tensorflow as tf

    from insight.probe.fused import SATURATION_MODES, reduce_host_arrays

    a = tf.cast(a, tf.float32)
    mode = SATURATION_MODES[saturation]
    units = 1 if a.shape.rank is not None and a.shape.rank <= 1 else a.shape[-1]
    adds, lo, hi, used = tf.numpy_function(
        lambda v, r: reduce_host_arrays(v, r, bins, mode, HIST_SAMPLE), [a, given_range],
        [tf.float64, tf.float32, tf.float32, tf.float32], stateful=False)
    if units is not None:
        adds.set_shape((1 + 3 * units + (1 if mode else 0) + bins,))
        lo.set_shape((units,))
        hi.set_shape((units,))
    used.set_shape((2,))
    return adds, lo, hi, used


def on_host() -> bool:
    """Whether the statistics reduce on the host (`reduce_on_host`): when TensorFlow sees no
    GPU. On a GPU the reductions stay on the device, next to the activations."""
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


def warm_up() -> None:
    """Compile the host kernels (from numba's disk cache after a first time) where the host
    path is the one used; nothing on a GPU."""
    if on_host():
        from insight.probe.fused import warm_up as compile_kernels

        compile_kernels()


def unit_extremes(a, u):
    """Per-unit min and max. For an image-shaped output (rows, h, w, units) a window of the
    whole image in oneDNN's max pooling first: ~4x faster than `reduce_max` on CPU, and exact."""
    import tensorflow as tf

    if a.shape.rank == 4 and a.shape[1] is not None and a.shape[2] is not None:
        window = [int(a.shape[1]), int(a.shape[2])]
        hi = tf.reduce_max(tf.nn.max_pool2d(a, window, window, "VALID"), [0, 1, 2])
        lo = -tf.reduce_max(tf.nn.max_pool2d(-a, window, window, "VALID"), [0, 1, 2])
        return lo, hi
    return tf.reduce_min(u, 0), tf.reduce_max(u, 0)
