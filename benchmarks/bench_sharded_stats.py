"""Activation statistics over TFRecord shards: in memory vs streamed, one device vs two.

Rows, each pass in a fresh child process (so peak memory is that pass's own, and the
logical devices can be configured before TensorFlow starts), the order rotated every repeat:
- memory: today's pass, `insight.activation_stats(model, dataset)` over the examples read
  into memory first (uint8 images fitted to the model's float32 input: 226 MB at 2,048
  examples of 96x96x3);
- stream-1: the same examples streamed from the shards
  (`dataset_for(loaded, 'shard-*.tfrecord', features=...)`: `TFRecordDataset` with parallel
  reads, `tf.io.parse_example` in `map(num_parallel_calls=AUTOTUNE)`), one device, keeping
  64 rows in memory as `insight stats` does (its gradient batch);
- stream-2: the same stream split across two logical CPU devices under
  `tf.distribute.MirroredStrategy` (`activation_stats(..., devices="auto")`).
Each child first runs a two-batch pass (tracing; under the strategy, each device
instantiating and optimising the function: a one-off cost reported apart as "warm-up"), then
the timed pass over `--rows` examples. Reported: wall seconds, process CPU seconds (all threads),
peak RSS of the child (VmHWM) and the growth of RSS during the timed pass (sampled every
5 ms), and the 1-minute load average before each run. The child also checks the statistics
against the memory pass's (max relative difference of the per-unit means).

What two logical CPU devices can show on this machine: that the strategy splits each batch,
runs both halves and combines them exactly, and what that costs. Not a speed-up: both
logical devices share the same two cores and TensorFlow's one intra-op thread pool (each
half-batch already uses both cores), so the pass can only be as fast or slower. On a machine
with several GPUs each replica gets its own device and the forward passes run in parallel.

Model: `keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)`, random
uint8 images, 8 shards written once to a temporary folder (or `--dir`).

Usage: python benchmarks/bench_sharded_stats.py [--rows 2048] [--shards 8] [--repeat 2]
[--quick] (`--quick`: 256 rows, 1 repeat).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SHAPE = (96, 96, 3)
BATCH = 64

CHILD = r'''
import json, os, resource, sys, threading, time
mode, folder, rows, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import tensorflow as tf
if mode == "stream-2":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from types import SimpleNamespace
from insight.data import Dataset, conform_to_model
from insight.data.conform import dataset_for
from insight.probe.stats import activation_stats

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0

keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)
loaded = SimpleNamespace(model=model, path="/none/model.keras")
devices = "auto" if mode == "stream-2" else None
if mode == "memory":
    with np.load(os.path.join(folder, "x.npz")) as f:
        data = conform_to_model(model, Dataset(x=f["x"][:rows]))
else:
    data = dataset_for(loaded, os.path.join(folder, "shard-*.tfrecord"),
                       features=os.path.join(folder, "features.json"), max_examples=rows,
                       head_rows=batch)  # as `insight stats` keeps: the gradient batch
warm = time.perf_counter()
# two batches: the first fixes the histogram ranges on one device, the second is the first
# split across the replicas (each device instantiates and optimises the function once)
activation_stats(model, data, batch_size=batch, max_examples=2 * batch, devices=devices)
warm = time.perf_counter() - warm
peak = [0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.005)
base = rss()
threading.Thread(target=sample, daemon=True).start()
wall, cpu = time.perf_counter(), time.process_time()
stats = activation_stats(model, data, batch_size=batch, devices=devices)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
stop.set()
means = np.concatenate([u["mean"].to_numpy() for u in stats.units.values()])
np.save(os.path.join(folder, f"means-{mode}.npy"), means)
hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"mode": mode, "rows": stats.n_examples, "wall": wall, "cpu": cpu,
                  "warm": warm,
                  "hwm": hwm, "growth": max(peak[0] - base, 0)}))
'''


def write_data(folder: Path, rows: int, shards: int) -> None:
    import numpy as np

    from insight.data.shards import write_shards

    x = np.random.default_rng(0).integers(0, 256, (rows, *SHAPE), dtype=np.uint8)
    np.savez(folder / "x.npz", x=x)
    write_shards(folder, x, shards=shards)


def run_child(mode: str, folder: Path, rows: int) -> dict:
    script = folder / "child.py"
    script.write_text(CHILD)
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, str(script), mode, str(folder), str(rows),
                           str(BATCH)], capture_output=True, text=True, timeout=1800,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["load"] = load
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dir", help="where the shards go (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 256, 1
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_data(folder, args.rows, args.shards)
        size = sum(f.stat().st_size for f in folder.glob("shard-*.tfrecord"))
        print(f"{args.rows:,} examples in {args.shards} shards, {size / 2**20:.0f} MB, "
              f"written in {time.perf_counter() - started:.1f} s", flush=True)
        modes = ["memory", "stream-1", "stream-2"]
        results: dict[str, list[dict]] = {m: [] for m in modes}
        for r in range(args.repeat):
            for mode in modes[r % 3:] + modes[:r % 3]:
                out = run_child(mode, folder, args.rows)
                results[mode].append(out)
                print(f"  {mode:9s} {out['wall']:6.1f} s wall {out['cpu']:6.1f} s CPU  "
                      f"(warm-up {out['warm']:.1f} s)  "
                      f"peak RSS {out['hwm'] / 2**20:5.0f} MB (+{out['growth'] / 2**20:.0f} "
                      f"MB in the pass)  load {out['load']:.2f}", flush=True)
        ref = np.load(folder / "means-memory.npy")
        base = statistics.median(o["wall"] for o in results["memory"])
        print("\n| pass | rows | wall s (median) | vs memory | CPU s | warm-up s | peak RSS MB "
              "| RSS growth in pass MB | load avg | max diff of unit means |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for mode in modes:
            rs = results[mode]
            wall = statistics.median(o["wall"] for o in rs)
            loads = ", ".join(f"{o['load']:.2f}" for o in rs)
            means = np.load(folder / f"means-{mode}.npy")
            # relative to the layer's scale: near-zero means make a plain ratio meaningless
            diff = float(np.max(np.abs(means - ref)) / max(float(np.max(np.abs(ref))), 1e-12))
            print(f"| {mode} | {rs[0]['rows']:,} | {wall:.1f} | {wall / base:.2f}x | "
                  f"{statistics.median(o['cpu'] for o in rs):.1f} | "
                  f"{statistics.median(o['warm'] for o in rs):.1f} | "
                  f"{max(o['hwm'] for o in rs) / 2**20:.0f} | "
                  f"{max(o['growth'] for o in rs) / 2**20:.0f} | "
                  f"{loads} | {diff:.1e} |")


if __name__ == "__main__":
    main()
