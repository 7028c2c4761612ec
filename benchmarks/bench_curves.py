"""Training curves: insight's event reader against TensorBoard's own loaders, the Training
page's render and smoothing change, live refresh, and the ActivationLogger's cost, in one run.

Data: a synthetic logdir of 3 runs x 5 tags x 100,000 steps (1.5M scalar points, ~110 MB),
written with `tf.summary` and cached (`benchmarks/_curves_data.py`; `INSIGHT_BENCH_CACHE`
moves the cache), so reruns skip the writing. Page cache warm; medians of `--repeat` timings
for the fast readers, one timing for the slow ones (`--slow-repeat`).

Rows:
- insight: `insight.read_scalars(logdir)`, the tidy DataFrame of every point (every record's
  length and payload CRC checked).
- summary_iterator: `tf.compat.v1.train.summary_iterator` over every file, the value taken
  from each event (tensor_content or simple_value), no DataFrame.
- EventAccumulator: `EventAccumulator(run, size_guidance={"tensors": 0, "scalars": 0})`
  (no sampling) per run, `Reload()`, `Tensors(tag)` with `tensor_util.make_ndarray`.
- tbparse: `SummaryReader(logdir).tensors` (it wraps EventAccumulator, builds a DataFrame).
- framing floor: the plain framing loop (read the file, unpack each length, jump), no CRC,
  no parsing: what merely walking the records costs in Python.
- page first render: the Training page under Streamlit's AppTest for this logdir, caches
  cleared (imports warmed on the sample logdir first; no GC after each run and long-lived
  objects frozen, as `insight serve` runs the app): read, 5 metric charts, tables.
- smoothing change: the same page after switching EMA -> Gaussian (reader memoised).
- live refresh: `Logdir.refresh()` after 1,000 points were appended to a copy of one run,
  vs reading that run from scratch.
- ActivationLogger (`--logger-only`: only these rows): a small CNN's `fit` on digits (7,188
  examples, batch 32; 5, 10 and 15 epochs: about 3, 6 and 9 s on a quiet machine) plain, with
  the callback at its default frequency (every epoch) tracing in a thread during the first
  epoch (`background=True`), and with the default (traced on the first log), interleaved, medians of
  `--repeat`. Overheads against the plain fit: wall, the main thread's time inside the
  callback's hooks (what the fit waits for; robust on a shared machine) and process CPU
  (the background trace's cost lands here, not in the hooks). Then the logger's one-off
  work (its first log: prepare, trace, TensorFlow's first run) in CPU seconds beside two
  floors: a bare `tf.function` of the forward pass and loss gradient traced and run once, and
  Keras' own first `train_on_batch` (the train step every `fit` traces).

- `--read-only`: only `read_scalars` on the large logdir and on a small one (3 runs x 4 tags x
  25,000 steps, 300k points, where per-file and per-tag fixed costs weigh most), interleaved.
- Logger overheads are paired: each repetition runs plain, background and foreground fits
  back to back (their order rotated), and the overhead is the median [range] over
  repetitions of each one's wall time over the plain fit's of the same repetition.

Usage: python benchmarks/bench_curves.py [--repeat 3] [--slow-repeat 1] [--steps 100000]
       python benchmarks/bench_curves.py --read-only [--repeat 9]
       python benchmarks/bench_curves.py --logger-only [--repeat 3] [--epochs 5,10,15]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _curves_data import synthetic_logdir, warm_training_page  # noqa: E402

CPU: dict[str, float] = {}  # median process CPU seconds per row (a shared machine's wall
# clock includes waiting for a core; CPU time does not)


def timed(fn, repeat: int, name: str = "") -> tuple[float, int]:
    times, cpus, n = [], [], 0
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        n = fn()
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    CPU[name] = statistics.median(cpus)
    return statistics.median(times), n


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*tfevents*"))


def insight_reader(root: Path) -> int:
    from insight.curves.logdir import read_scalars

    return len(read_scalars(root))


def framing_floor(root: Path) -> int:
    import struct

    unpack = struct.Struct("<Q").unpack_from
    n = 0
    for f in files(root):
        data = f.read_bytes()
        pos, end = 0, len(data)
        while pos + 12 <= end:
            (length,) = unpack(data, pos)
            pos += length + 16
            n += 1
    return n - len(files(root))  # minus each file's version record: points


def summary_iterator(root: Path) -> int:
    import numpy as np
    import tensorflow as tf

    n = 0
    for f in files(root):
        for e in tf.compat.v1.train.summary_iterator(str(f)):
            for v in e.summary.value:
                value = np.frombuffer(v.tensor.tensor_content, np.float32)[0] \
                    if v.HasField("tensor") else v.simple_value
                n += value is not None
    return n


def event_accumulator(root: Path) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    n = 0
    for run in sorted({f.parent for f in files(root)}):
        acc = EventAccumulator(str(run), size_guidance={"tensors": 0, "scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["tensors"]:
            n += sum(1 for t in acc.Tensors(tag) if tensor_util.make_ndarray(t.tensor_proto)
                     is not None)
    return n


def tbparse_reader(root: Path) -> int:
    from tbparse import SummaryReader

    return len(SummaryReader(str(root)).tensors)


def page_times(root: Path) -> tuple[float, float]:
    page = warm_training_page()
    at = page(root)
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    assert not at.exception, at.exception
    at.selectbox(key="train_smoothing").set_value("gaussian")
    start = time.perf_counter()
    at.run()
    change = time.perf_counter() - start
    assert not at.exception, at.exception
    return first, change


def live_refresh(root: Path) -> tuple[float, float]:
    import numpy as np
    import tensorflow as tf

    from insight.curves.logdir import Logdir

    tmp = Path(tempfile.mkdtemp(prefix="insight-live-"))
    try:
        shutil.copytree(root / "run_0", tmp / "run_0")
        logs = Logdir(tmp)
        start = time.perf_counter()
        logs.refresh()
        full = time.perf_counter() - start
        writer = tf.summary.create_file_writer(str(tmp / "run_0"))
        with writer.as_default():
            for step in range(1000):
                tf.summary.scalar("appended", np.float32(step), step=10**6 + step)
        writer.flush()
        start = time.perf_counter()
        new = logs.refresh()
        incremental = time.perf_counter() - start
        assert new == 1000, new
        return incremental, full
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SMALL = (3, 4, 25_000)  # runs, tags, steps: the logdir where fixed costs weigh most


def read_rows(roots: list[Path], repeat: int) -> list[str]:
    """`read_scalars` on each logdir, interleaved `repeat` times (page cache and imports
    warm): median wall and CPU, points per second, and the wall range."""
    for root in roots:
        insight_reader(root)
    runs: dict = {root: ([], []) for root in roots}
    n = {}
    for _ in range(repeat):
        for root in roots:
            start, cpu = time.perf_counter(), time.process_time()
            n[root] = insight_reader(root)
            runs[root][0].append(time.perf_counter() - start)
            runs[root][1].append(time.process_time() - cpu)
    lines = ["| logdir | points | wall: median [range] | points/s (wall) | CPU | points/s "
             "(CPU) | target >= 1M/s |", "|---|---:|---:|---:|---:|---:|---|"]
    for root in roots:
        wall, cpu = statistics.median(runs[root][0]), statistics.median(runs[root][1])
        met = "yes" if n[root] / wall >= 1e6 else "CPU only" if n[root] / cpu >= 1e6 else "NO"
        lines.append(f"| {root.name} | {n[root]:,} | {wall:.3f} s [{min(runs[root][0]):.3f}-"
                     f"{max(runs[root][0]):.3f}] | {n[root] / wall / 1e6:.2f}M | {cpu:.3f} s | "
                     f"{n[root] / cpu / 1e6:.2f}M | "
                     f"{met} |")
    return lines


LOGGER_HOOKS = ("on_train_begin", "on_train_batch_begin", "on_train_batch_end", "on_epoch_end",
                "on_test_begin", "on_train_end")  # every hook the logger defines


def digits_fit_data():
    """The logger rows' training data: digits, 8x8x1 in [0, 1], tiled to 7,188 examples."""
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    return (np.tile((d.images[..., None] / 16).astype("float32"), (4, 1, 1, 1)),
            np.tile(d.target, 4))


def digits_fit_model():
    """The logger rows' small CNN, compiled, the same weights every time."""
    import keras

    keras.utils.set_random_seed(0)
    m = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def logger_one_off(repeat: int = 5) -> dict:
    """CPU seconds (medians of `repeat`, each on a fresh model) of the logger's one-off work,
    its first log (prepare, trace, TensorFlow's first run of the graph), against two floors:
    a bare `tf.function` of the forward pass and the loss gradient of the same 64 rows,
    traced and run once (no per-layer outputs, no statistics), and Keras' own first
    `train_on_batch` (the train step every `fit` traces before its first batch)."""
    import keras
    import tensorflow as tf

    from insight.callbacks import ActivationLogger

    x, y = digits_fit_data()
    digits_fit_model().fit(x[:256], y[:256], epochs=1, verbose=0)  # warm Keras/TF once
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    out: dict = {"logger": [], "bare": [], "keras": []}
    for _ in range(repeat):
        m = digits_fit_model()
        m.predict(x[:8], verbose=0)
        tmp = tempfile.mkdtemp(prefix="insight-cb-")
        logger = ActivationLogger(tmp, x, y)
        logger.set_model(m)
        start = time.process_time()
        logger.log(0)
        out["logger"].append(time.process_time() - start)
        shutil.rmtree(tmp, ignore_errors=True)

        @tf.function
        def bare(a, b, m=m):
            with tf.GradientTape() as tape:
                value = loss(b, m(a, training=False))
            return tape.gradient(value, m.trainable_variables)

        start = time.process_time()
        for grad in bare(tf.constant(x[:64]), tf.constant(y[:64])):
            grad.numpy()  # wait for the values, as the logger's first log does
        out["bare"].append(time.process_time() - start)
        fresh = digits_fit_model()
        start = time.process_time()
        fresh.train_on_batch(x[:32], y[:32])
        out["keras"].append(time.process_time() - start)
    return {k: statistics.median(v) for k, v in out.items()}


def one_off_table(one_off: dict) -> list[str]:
    """The logger's first log beside its two floors, CPU seconds."""
    return ["| one-off work, CPU (median, fresh model each) | seconds | ratio to the logger |",
            "|---|---:|---:|",
            f"| the logger's first log (prepare, trace, first run, write) | "
            f"{one_off['logger']:.3f} s | 1.00x |",
            f"| floor: bare tf.function forward + loss gradient, traced and run once | "
            f"{one_off['bare']:.3f} s | {one_off['bare'] / one_off['logger']:.2f}x |",
            f"| Keras' own first train_on_batch (every fit pays it) | "
            f"{one_off['keras']:.3f} s | {one_off['keras'] / one_off['logger']:.2f}x |"]


def logger_overhead(epochs: tuple[int, ...] = (5, 10, 15), repeat: int = 3) -> dict:
    """Plain `fit` against `fit` with an ActivationLogger tracing in the background
    (`background=True`) and one tracing on its first log (the default), interleaved,
    `repeat` times per length.

    Returns `{(epochs, variant): [run, ...]}`, each run a dict of `wall`, `cpu` (process CPU
    seconds), `inside` (main-thread seconds inside the logger's hooks), `first` (the first
    log, incl. any trace not done in the background) and `steady` (median later log).
    """
    from insight.callbacks import ActivationLogger

    x, y = digits_fit_data()
    model = digits_fit_model

    def timed_logger(tmp: str, background: bool, run: dict):
        logger = ActivationLogger(tmp, x, y, background=background)

        def wrap(fn, key):
            def hook(*args, **kwargs):
                start = time.perf_counter()
                out = fn(*args, **kwargs)
                run[key].append(time.perf_counter() - start)
                return out
            return hook

        for name in LOGGER_HOOKS:
            setattr(logger, name, wrap(getattr(logger, name), "hooks"))
        logger.log = wrap(logger.log, "logs")
        return logger

    model().fit(x[:256], y[:256], epochs=1, verbose=0)  # warm Keras/TF once
    out: dict = {}
    variants = ("plain", "background", "foreground")
    for rep in range(repeat):
        for n in epochs:
            # rotated each repetition: no variant always runs first (after a GC, a cold cache)
            for variant in variants[rep % 3:] + variants[:rep % 3]:
                tmp = tempfile.mkdtemp(prefix="insight-cb-")
                run: dict = {"hooks": [], "logs": []}
                callbacks = [] if variant == "plain" else \
                    [timed_logger(tmp, variant == "background", run)]
                m = model()
                gc.collect()
                start, cpu = time.perf_counter(), time.process_time()
                m.fit(x, y, epochs=n, batch_size=32, verbose=0, callbacks=callbacks)
                run.update(wall=time.perf_counter() - start, cpu=time.process_time() - cpu)
                shutil.rmtree(tmp, ignore_errors=True)
                logs = run.pop("logs")
                run.update(inside=sum(run.pop("hooks")), first=logs[0] if logs else 0.0,
                           steady=statistics.median(logs[1:]) if logs[1:] else 0.0)
                out.setdefault((n, variant), []).append(run)
    return out


def paired(result: dict, n: int, variant: str, key: str = "wall") -> list[float]:
    """Per repetition: `variant`'s time over the plain fit's of the same repetition, minus 1
    (the two ran back to back, so a load change between repetitions cancels)."""
    return [r[key] / p[key] - 1 for r, p in zip(result[(n, variant)], result[(n, "plain")],
                                                strict=True)]


def spread(values: list[float]) -> str:
    """Median and range of paired overheads, e.g. `+2.1% [-3.0, +6.4]`."""
    return (f"{statistics.median(values):+.1%} [{min(values) * 100:+.1f}, "
            f"{max(values) * 100:+.1f}]")


def logger_table(result: dict) -> list[str]:
    """The logger's rows: medians per fit length, overheads against the plain fit of the same
    repetition (wall: median and range of the paired ratios; the main thread's time inside
    the hooks; process CPU)."""
    def med(n, variant, key):
        return statistics.median(r[key] for r in result[(n, variant)])

    reps = len(next(iter(result.values())))
    lines = [f"| fit ({reps} interleaved repetitions) | plain fit wall (CPU) | + logger, "
             "background trace: wall (CPU) | wall overhead, paired: median [range] | inside "
             "the hooks | CPU overhead | first log, steady log | + logger, trace on first "
             "log: wall | wall overhead, paired | inside | target < 5% |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for n in sorted({n for n, _ in result}):
        base, base_cpu = med(n, "plain", "wall"), med(n, "plain", "cpu")
        bg, bg_cpu, fg = med(n, "background", "wall"), med(n, "background", "cpu"), \
            med(n, "foreground", "wall")
        inside, fg_inside = med(n, "background", "inside"), med(n, "foreground", "inside")
        wall_bg = statistics.median(paired(result, n, "background"))
        met = "yes" if inside / base < 0.05 and wall_bg < 0.05 else \
            "inside yes, wall NO" if inside / base < 0.05 else "NO"
        lines.append(
            f"| {n} epochs | {base:.2f} s ({base_cpu:.2f} s) | {bg:.2f} s ({bg_cpu:.2f} s) | "
            f"{spread(paired(result, n, 'background'))} | {inside:.3f} s, {inside / base:.1%} | "
            f"{bg_cpu / base_cpu - 1:+.1%} | {med(n, 'background', 'first') * 1e3:.0f} ms, "
            f"{med(n, 'background', 'steady') * 1e3:.1f} ms | {fg:.2f} s | "
            f"{spread(paired(result, n, 'foreground'))} "
            f"| {fg_inside:.3f} s, {fg_inside / base:.1%} | {met} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slow-repeat", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--logger-only", action="store_true",
                        help="only the ActivationLogger rows (fits of 5, 10 and 15 epochs)")
    parser.add_argument("--epochs", default="5,10,15",
                        help="fit lengths of --logger-only, comma-separated")
    parser.add_argument("--read-only", action="store_true",
                        help="only the read rows: the large logdir and the small one "
                             f"({' x '.join(map(str, SMALL))} runs x tags x steps)")
    args = parser.parse_args()
    if args.logger_only:
        print(f"load average {os.getloadavg()[0]:.1f} before", file=sys.stderr)
        epochs = tuple(int(e) for e in args.epochs.split(","))
        lines = logger_table(logger_overhead(epochs, repeat=args.repeat))
        lines += [""] + one_off_table(logger_one_off())
        print(f"load average {os.getloadavg()[0]:.1f} after", file=sys.stderr)
        print("\n".join(lines))
        return
    if args.read_only:
        print(f"load average {os.getloadavg()[0]:.1f} before", file=sys.stderr)
        lines = read_rows([synthetic_logdir(3, 5, args.steps), synthetic_logdir(*SMALL)],
                          args.repeat)
        print(f"load average {os.getloadavg()[0]:.1f} after", file=sys.stderr)
        print("\n".join(lines))
        return
    root = synthetic_logdir(3, 5, args.steps)
    mb = sum(f.stat().st_size for f in files(root)) / 1e6
    print(f"logdir {root}: {mb:.1f} MB", file=sys.stderr)

    start = time.perf_counter()
    import tensorflow  # noqa: F401  (imported once, before every timing)
    tf_import = time.perf_counter() - start
    start = time.perf_counter()
    import tbparse  # noqa: F401
    tbparse_import = time.perf_counter() - start

    rows = {}
    insight_reader(root)  # warm the page cache and imports
    for name, fn, repeat in (("insight", insight_reader, args.repeat),
                             ("floor", framing_floor, args.repeat)):
        rows[name] = timed(lambda fn=fn: fn(root), repeat, name)
    # the page, live and callback rows before the slow loaders fill the heap
    first, change = page_times(root)
    incremental, full = live_refresh(root)
    cb = logger_overhead(epochs=(10,), repeat=1)
    for name, fn, repeat in (("summary_iterator", summary_iterator, args.slow_repeat),
                             ("EventAccumulator", event_accumulator, args.slow_repeat),
                             ("tbparse", tbparse_reader, args.slow_repeat)):
        rows[name] = timed(lambda fn=fn: fn(root), repeat, name)
    for name, (t, n) in rows.items():
        print(f"{name}: {t:.3f} s, {n:,} points", file=sys.stderr)

    ins_t, ins_n = rows["insight"]
    rate = ins_n / ins_t
    print(f"\nCurves benchmark: {ins_n:,} points, {mb:.0f} MB, 3 runs x 5 tags; "
          f"TensorFlow import {tf_import:.1f} s, tbparse import {tbparse_import:.1f} s "
          "(not in the timings)\n")
    print("| row | insight | baseline | ratio | target | met |")
    print("|---|---:|---:|---:|---|---|")
    cpu_rate = ins_n / CPU["insight"]
    print(f"| read every point | {ins_t:.2f} s wall, {rate / 1e6:.2f}M points/s "
          f"({CPU['insight']:.2f} s CPU, {cpu_rate / 1e6:.2f}M points/s) | | | >= 1M points/s | "
          f"{'yes' if rate >= 1e6 else 'CPU only' if cpu_rate >= 1e6 else 'NO'} |")
    targets = {"summary_iterator": 3.0, "tbparse": 15.0, "EventAccumulator": None}
    for name, need in targets.items():
        t, n = rows[name]
        ratio = t / ins_t
        met = "" if need is None else ("yes" if ratio >= need else "NO")
        label = "EventAccumulator (size_guidance 0)" if name == "EventAccumulator" else name
        print(f"| vs {label} | {ins_t:.2f} s | {t:.2f} s, {n / t / 1e3:.0f}k points/s | "
              f"{ratio:.1f}x faster | {f'>= {need:g}x' if need else ''} | {met} |")
    t, n = rows["floor"]
    print(f"| vs framing-only floor | {ins_t:.2f} s | {t:.2f} s, {n / t / 1e6:.1f}M records/s "
          f"| {ins_t / t:.1f}x the floor (CPU: {CPU['insight'] / CPU['floor']:.1f}x) | within 8x "
          f"| {'yes' if ins_t / t <= 8 else 'NO'} |")
    print(f"| Training page first render (AppTest) | {first:.2f} s | | | < 3 s | "
          f"{'yes' if first < 3 else 'NO'} |")
    print(f"| smoothing change EMA -> Gaussian | {change:.2f} s | | | < 0.5 s | "
          f"{'yes' if change < 0.5 else 'NO'} |")
    print(f"| live refresh, 1,000 points appended to a 500k-point run | {incremental * 1e3:.0f} ms"
          f" | {full:.2f} s (read from scratch) | {full / incremental:.0f}x faster | | |")
    print("\nActivationLogger on digits (one run; `--logger-only --repeat 3` for the fit "
          "lengths and medians):\n")
    print("\n".join(logger_table(cb)))

if __name__ == "__main__":
    main()
