"""Capture, statistics and gradients of insight against their baselines, in one run.

Rows (every one beside its baseline measured in the same run, the repeats interleaved, the
order swapped every repeat; medians of `--repeat` timings after untimed warm-up calls,
so tracing is excluded):
- capture: `insight.activations(model, x)` (all layers, numpy arrays out) for one batch of 64,
  vs a plain forward pass compiled the same way (`tf.function` of `model(x, training=False)`).
  Target <= 1.3x.
- floors of the capture: TF's own multi-output graph of every layer; the forward pass with
  Grappler's fusions off (no conv+BN+ReLU fusion survives when every output is returned);
  the copy of the activations out of TF (`np.asarray`), beside a numpy copy of the bytes.
- capture fn: the compiled capture function alone,
  `insight.probe.capture.capture_function(model, layer_paths(model), x)(x)` (the very function
  `activations` compiled and cached), vs the same forward pass. Target <= 1.3x.
- naive: a multi-output `keras.Model(inputs, [every layer's output]).predict(x)` vs the
  model's own `predict(x)`, as in the reference (anchors-performance.md 2a: 2.0-3.1x).
- stats time: `insight.activation_stats` over 2,048 random inputs, batch 64, vs 32 compiled
  forward passes over the same batches. Target <= 1.5x. Beside it: the same statistics with
  TensorFlow's kernels (what a GPU runs, and what the CPU ran before the one-read kernels of
  `insight.probe.fused`); floors: the capture passes alone (every layer's output kept), with
  one `reduce_sum` per layer in the graph, with the hand-off alone (a `tf.numpy_function` per
  layer that reads nothing), and with one read per layer on the host (a numba sum through
  `tf.numpy_function`, the route the statistics take); and one forward pass under XLA
  (`jit_compile=True`), the only TensorFlow route that fuses reductions into the producers.
Ratios also give process CPU time (all threads), steadier than wall time on a shared machine.
- stats peak RSS: peak resident-memory growth of that call, vs the 32 forward passes, each
  in a fresh subprocess (a thread samples VmRSS from /proc/self/status every 2 ms; the
  kernel's VmHWM is reset through /proc/self/clear_refs where allowed). Both include
  tracing (a cold call). Target < 1.5 GB.
- gradients: `insight.gradients(model, x, y)` (loss w.r.t. every weight and every layer
  output, numpy out, norm table) with random integer labels, vs a bare `tf.function`
  `GradientTape` of the same loss (sparse categorical cross-entropy) w.r.t. the weights only.
  Target <= 1.2x.
- keract: the peer library, when it imports and runs on this TensorFlow/Keras; else why not.

Models: `keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)` and
`ResNet50(input_shape=(64, 64, 3), weights=None)` (1,000 classes), random inputs.

Usage: python benchmarks/bench_probe.py [--repeat 5] [--stats-repeat 3] [--quick]
[--only capture|stats] [--stats-rows N]. `--quick`: MobileNetV2 only, 2 repeats, statistics
over 256 inputs: a smoke run (~1-2 min).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 64
STATS_ROWS = 2048
QUICK_STATS_ROWS = 256
MODELS = {
    "MobileNetV2-96": ("MobileNetV2", (96, 96, 3)),
    "ResNet50-64": ("ResNet50", (64, 64, 3)),
}


# -- helpers ------------------------------------------------------------------------------------

def build(name: str):
    import keras

    keras.utils.set_random_seed(0)
    app, shape = MODELS[name]
    return getattr(keras.applications, app)(input_shape=shape, weights=None)


def inputs(name: str, rows: int, seed: int = 0):
    import numpy as np

    shape = MODELS[name][1]
    return np.random.default_rng(seed).random((rows, *shape), dtype=np.float32)


def compiled_forward(model, jit_compile: bool = False):
    import tensorflow as tf

    return tf.function(lambda a: model(a, training=False), reduce_retracing=True,
                       jit_compile=jit_compile)


CPU_RATIOS: list[float] = []  # the CPU-time ratio of the last `interleaved` call


def interleaved(a: Callable[[], object], b: Callable[[], object], repeat: int,
                warmup: int = 1) -> tuple[float, float]:
    """Medians of `repeat` timings of `a` and `b`, alternated (order swapped each repeat);
    the ratio of their CPU times (all threads) goes to `CPU_RATIOS`."""
    for _ in range(warmup):
        a()
        b()
    gc.collect()
    ta, tb, ca, cb = [], [], [], []
    for i in range(repeat):
        order = [(a, ta, ca), (b, tb, cb)] if i % 2 == 0 else [(b, tb, cb), (a, ta, ca)]
        for fn, out, cpu in order:
            gc.collect()
            cpu_start, start = time.process_time(), time.perf_counter()
            result = fn()
            out.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
            del result
    CPU_RATIOS.append(statistics.median(ca) / statistics.median(cb))
    return statistics.median(ta), statistics.median(tb)


def unfused_forward(model):
    """The compiled forward pass traced with Grappler's remapper (op fusion) off."""
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"remapping": False})
    try:
        fn = compiled_forward(model)
        fn.get_concrete_function(tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32))
    finally:
        tf.config.optimizer.set_experimental_options({"remapping": before.get("remapping", True)})
    return fn


def copy_out_seconds(fn, x, repeat: int) -> dict:
    """Median time of `np.asarray` on every activation the capture function returned (what
    `insight.activations` does), beside a numpy copy of the same bytes."""
    import numpy as np

    seconds, memcpy = [], []
    shared = True
    for _ in range(repeat):
        _, acts = fn(x)
        start = time.perf_counter()
        arrays = [np.asarray(v) for v in acts.values()]
        seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        copies = [a.copy() for a in arrays]
        memcpy.append(time.perf_counter() - start)
        shared = shared and all(np.shares_memory(a, np.asarray(v))  # TF's own buffer
                                for a, v in zip(arrays, acts.values(), strict=True))
        gb = sum(a.nbytes for a in arrays) / 1e9
        del acts, arrays, copies
    return {"seconds": statistics.median(seconds), "memcpy": statistics.median(memcpy),
            "gb": gb, "shared": "yes" if shared else "no"}


def stats_floors(model, x_example):
    """Per-batch floors of the statistics: the capture, and the capture with one `reduce_sum`
    per layer in the graph, with a hand-off per layer to Python that reads nothing, or with
    one read per layer on the host."""
    import numpy as np
    import tensorflow as tf

    from insight.model.layers import layer_paths
    from insight.probe.capture import capture_function, first_output
    fn = capture_function(model, layer_paths(model), x_example, with_outputs=False)

    def per_layer(reduce):
        """A compiled capture pass with `reduce` applied to every layer's float32 output."""
        @tf.function(reduce_retracing=True)
        def run(a):
            _, acts = fn(a)
            return [reduce(tf.cast(first_output(v), tf.float32)) for v in acts.values()]
        return run

    def host_read(t):
        from insight.probe.fused import moments

        return tf.numpy_function(
            lambda b: moments(b.reshape(-1, b.shape[-1]) if b.ndim > 1 else b.reshape(-1, 1))[0],
            [t], tf.float64, stateful=False)

    def hand_off(t):
        return tf.numpy_function(lambda b: np.zeros(1), [t], tf.float64, stateful=False)

    one_sum = per_layer(lambda t: tf.reduce_sum(t, list(range(max(t.shape.rank - 1, 1)))))
    return fn, one_sum, per_layer(hand_off), per_layer(host_read)


class Table:
    def __init__(self) -> None:
        self.rows: list[list[str]] = []

    def add(self, model: str, measure: str, insight: str, baseline: str, ratio: str,
            target: str) -> None:
        self.rows.append([model, measure, insight, baseline, ratio, target])
        print(f"  .. {model} | {measure} | {insight} | {baseline} | {ratio}", flush=True)

    def timing(self, model: str, measure: str, t_insight: float, t_base: float,
               base_name: str, target: str) -> None:
        cpu = f" (cpu {CPU_RATIOS[-1]:.2f}x)" if CPU_RATIOS else ""
        self.add(model, measure, f"{t_insight:.3f} s", f"{t_base:.3f} s ({base_name})",
                 f"{t_insight / t_base:.2f}x{cpu}", target)

    def render(self) -> str:
        head = ["model", "measure", "insight", "baseline", "ratio", "target"]
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(len(head))]

        def line(cells):
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) \
                + " |"

        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(head), sep, *(line(r) for r in self.rows)])


# -- memory, in a fresh subprocess ------------------------------------------------------------

def _rss_kib(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as f:
        for row in f:
            if row.startswith(field + ":"):
                return int(row.split()[1])
    return 0


def child_memory(mode: str, model_name: str, rows: int) -> dict:
    """Peak RSS growth of one statistics run (or of the forward passes), in MiB."""
    import numpy as np

    import insight

    model = build(model_name)
    x = inputs(model_name, rows)
    forward = compiled_forward(model)
    gc.collect()
    try:  # reset the kernel's peak (VmHWM) to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        hwm_ok = True
    except OSError:
        hwm_ok = False
    before = _rss_kib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kib())
            done.wait(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    if mode == "stats":
        insight.activation_stats(model, x, batch_size=BATCH)
    else:
        for i in range(0, rows, BATCH):
            np.asarray(forward(x[i:i + BATCH]))
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    peak_kib = max(peak[0], _rss_kib("VmHWM") if hwm_ok else 0)
    return {"growth_mib": (peak_kib - before) / 1024, "before_mib": before / 1024,
            "seconds": seconds, "hwm": hwm_ok}


def measure_memory(mode: str, model_name: str, rows: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--model", model_name, "--rows", str(rows)],
        capture_output=True, text=True, check=False, env=dict(os.environ))
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {mode} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- rows ---------------------------------------------------------------------------------------

def bench_capture(table: Table, name: str, model, x, repeat: int) -> None:
    import keras

    import insight
    from insight.model.layers import layer_paths
    from insight.probe.capture import capture_function

    forward = compiled_forward(model)
    paths = layer_paths(model)

    def fwd():
        return forward(x)
    def capture():
        return insight.activations(model, x)

    acts = capture()  # compiles and caches the capture function (and checks it)
    assert len(acts) == len(paths) and all(v.shape[0] == BATCH for v in acts.values())
    del acts
    fn = capture_function(model, paths, x)

    t_ins, t_base = interleaved(capture, fwd, repeat)
    table.timing(name, f"capture all {len(paths)} layers, batch {BATCH}", t_ins, t_base,
                 "fwd tf.function", "<= 1.3x")
    t_ins, t_base = interleaved(lambda: fn(x), fwd, repeat)
    table.timing(name, "capture fn alone (compiled)", t_ins, t_base, "fwd tf.function",
                 "<= 1.3x")

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    probe_fn = compiled_forward(probe)
    t_ins, t_base = interleaved(lambda: probe_fn(x), fwd, repeat)
    table.timing(name, "floor: TF's own multi-output graph (keras.Model of every layer's "
                 "output, tf.function)", t_ins, t_base, "fwd tf.function", "-")
    unfused = unfused_forward(model)
    t_ins, t_base = interleaved(lambda: unfused(x), fwd, repeat)
    table.timing(name, "floor: forward pass without Grappler's fusions (remapping off; "
                 "returning every layer forbids them)", t_ins, t_base, "fwd tf.function", "-")
    copy = copy_out_seconds(fn, x, repeat)
    table.add(name, f"copy of every activation out of TF ({copy['gb']:.2f} GB, np.asarray; "
              f"zero-copy: {copy['shared']})", f"{copy['seconds'] * 1000:.1f} ms",
              f"{copy['memcpy'] * 1000:.0f} ms (np.copy of the same bytes)",
              f"{copy['seconds'] / t_base:.3f}x of fwd", "measured")
    t_ins, t_base = interleaved(lambda: probe.predict(x, batch_size=BATCH, verbose=0),
                                lambda: model.predict(x, batch_size=BATCH, verbose=0),
                                repeat)
    table.timing(name, "naive multi-output Model.predict", t_ins, t_base, "model.predict",
                 "ref 2.0-3.1x")


def bench_stats(table: Table, name: str, model, rows: int, repeat: int) -> None:
    import numpy as np

    import insight

    x = inputs(name, rows, seed=1)
    forward = compiled_forward(model)
    batches = rows // BATCH

    def passes():
        for i in range(0, rows, BATCH):
            np.asarray(forward(x[i:i + BATCH]))

    def stats():
        return insight.activation_stats(model, x, batch_size=BATCH)

    # Warm-up (tracing) on one batch only: a full untimed pass would double the row's cost.
    insight.activation_stats(model, x[:BATCH], batch_size=BATCH)
    np.asarray(forward(x[:BATCH]))
    t_ins, t_base = interleaved(stats, passes, repeat, warmup=0)
    table.timing(name, f"stats over {rows:,} inputs, batch {BATCH}", t_ins, t_base,
                 f"{batches} fwd passes", "<= 1.5x")
    import insight.probe.stats as stats_module

    keep = stats_module.on_host
    stats_module.on_host = lambda: False
    try:
        insight.activation_stats(model, x[:BATCH], batch_size=BATCH)
        t_ins, t_base = interleaved(stats, passes, repeat, warmup=0)
    finally:
        stats_module.on_host = keep
    table.timing(name, "same statistics, TensorFlow's kernels (a GPU's path; the CPU's before "
                 "insight.probe.fused)", t_ins, t_base, f"{batches} fwd passes", "-")
    capture, one_sum, hand_off, one_read = stats_floors(model, x[:BATCH])
    for warm in (one_sum, hand_off, one_read):
        warm(x[:BATCH])
    def each(fn):
        """`fn` on every batch, each result dropped before the next (a list of 32 captures
        would hold 32 GB)."""
        for i in range(0, rows, BATCH):
            out = fn(x[i:i + BATCH])
            del out

    t_ins, t_base = interleaved(lambda: each(capture), passes, repeat, warmup=0)
    table.timing(name, f"floor: {batches} capture passes (every layer's output kept)", t_ins,
                 t_base, f"{batches} fwd passes", "-")
    for floor, what in ((one_sum, "one reduce_sum per layer (in graph)"),
                        (hand_off, "a hand-off per layer to Python (tf.numpy_function, no read)"),
                        (one_read, "one read per layer on the host")):
        t_ins, t_base = interleaved(lambda f=floor: each(lambda b: np.asarray(f(b)[0])),
                                    passes, repeat, warmup=0)
        table.timing(name, f"floor: {batches} capture passes + {what}", t_ins, t_base,
                     f"{batches} fwd passes", "-")
    # The only TensorFlow route that fuses reductions into the kernels producing the outputs
    # (what the target needs): is its forward pass itself fast enough on this CPU?
    xla = compiled_forward(model, jit_compile=True)
    np.asarray(xla(x[:BATCH]))  # compiles
    t_ins, t_base = interleaved(lambda: np.asarray(xla(x[:BATCH])),
                                lambda: np.asarray(forward(x[:BATCH])), repeat, warmup=0)
    table.timing(name, f"floor: one forward pass under XLA (jit_compile=True), batch {BATCH}",
                 t_ins, t_base, "1 fwd pass", "-")
    mem_ins = measure_memory("stats", name, rows)
    mem_base = measure_memory("forward", name, rows)
    table.add(name, f"stats peak RSS growth, {rows:,} inputs (fresh process, cold)",
              f"{mem_ins['growth_mib']:,.0f} MiB", f"{mem_base['growth_mib']:,.0f} MiB "
              f"({batches} fwd passes)", f"{mem_ins['growth_mib'] / mem_base['growth_mib']:.2f}x",
              "< 1.5 GB (1,431 MiB)")


def bench_gradients(table: Table, name: str, model, x, repeat: int) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    from insight.probe.backprop import gradients

    classes = int(model.outputs[0].shape[-1])
    y = np.random.default_rng(2).integers(0, classes, BATCH).astype(np.int64)
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def bare(a, b):
        with tf.GradientTape() as tape:
            out = model(a, training=False)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(b, out))
        return tape.gradient(loss, variables)

    g = gradients(model, x, y)
    assert g.target == "loss: sparse_categorical_crossentropy", g.target
    t_ins, t_base = interleaved(lambda: gradients(model, x, y), lambda: bare(x, y), repeat)
    table.timing(name, "gradients: loss wrt all weights + all layer outputs", t_ins, t_base,
                 "tf.function tape, weights only", "<= 1.2x")


def bench_keract(table: Table, name: str, model, x, repeat: int) -> None:
    try:
        import keract
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        table.add(name, "keract get_activations (peer)", f"not available: {exc}", "-", "-",
                  "-")
        return
    version = getattr(keract, "__version__", "?")
    forward = compiled_forward(model)
    try:
        keract.get_activations(model, x)
    except Exception as exc:  # noqa: BLE001
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:110]}"
        table.add(name, f"keract {version} get_activations (peer)",
                  f"fails on TF/Keras 3: {reason}", "-", "-", "-")
        return
    t_ins, t_base = interleaved(lambda: keract.get_activations(model, x), lambda: forward(x),
                                repeat)
    table.timing(name, f"keract {version} get_activations (peer)", t_ins, t_base,
                 "fwd tf.function", "-")


# -- main ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats (median)")
    parser.add_argument("--stats-repeat", type=int, default=3,
                        help="timed repeats of the statistics row (each is ~33 passes)")
    parser.add_argument("--quick", action="store_true", help="fast smoke mode")
    parser.add_argument("--only", choices=["capture", "stats"],
                        help="MobileNetV2-96's capture or statistics rows alone")
    parser.add_argument("--stats-rows", type=int, help="inputs of the statistics rows")
    parser.add_argument("--child", choices=["stats", "forward"], help=argparse.SUPPRESS)
    parser.add_argument("--model", default="MobileNetV2-96", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=STATS_ROWS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_memory(args.child, args.model, args.rows)))
        return

    import keras
    import tensorflow as tf

    repeat = 2 if args.quick and args.repeat == 5 else args.repeat
    names = ["MobileNetV2-96"] if args.quick else list(MODELS)
    stats_rows = args.stats_rows or (QUICK_STATS_ROWS if args.quick else STATS_ROWS)
    if args.only:
        names = ["MobileNetV2-96"]
    started = time.perf_counter()
    table = Table()
    for name in names:
        model = build(name)
        x = inputs(name, BATCH)
        print(f"{name}: {len(model.layers)} layers, {model.count_params():,} params",
              flush=True)
        if args.only != "stats":
            bench_capture(table, name, model, x, repeat)
        if name == "MobileNetV2-96" and args.only != "capture":
            bench_stats(table, name, model, stats_rows, min(repeat, args.stats_repeat))
        if not args.only:
            bench_gradients(table, name, model, x, repeat)
        if name == "MobileNetV2-96" and not args.only:
            bench_keract(table, name, model, x, repeat)
        del model
        keras.backend.clear_session()
        gc.collect()
    print()
    print(f"bench_probe: TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, "
          f"median of {repeat} interleaved repeats after warm-up "
          f"({min(repeat, args.stats_repeat)} for the statistics row)"
          f"{' (quick)' if args.quick else ''}; total {time.perf_counter() - started:.0f} s")
    print()
    print(table.render())


if __name__ == "__main__":
    main()
