"""CKA of every layer pair of two ResNet50s (64x64, weights=None): streamed vs keep-everything.

- streamed: `insight.compare.cka.cka_matrix`: per minibatch, each model's compiled forward
  pass returns its layers' Gram matrices (batch x batch), which the unbiased HSIC estimator
  accumulates; no activation leaves the graph.
- naive: `insight.activations` keeps every layer's output for every input of both models,
  then CKA of every pair on all inputs at once from one centred Gram matrix per layer (the
  same unbiased HSIC, one "batch" of every input; a fair keep-everything version: notebook
  code that recomputes both Grams per pair is ~175x slower still): memory grows with the
  inputs.

Each variant runs in a fresh child process (its own allocator and TensorFlow), after the two
models and the inputs exist; reported: wall time of the CKA and RSS growth over that
baseline (peak of /proc/self/statm, sampled every 20 ms). The naive run uses fewer inputs
(`--naive-inputs`): its memory is linear in the inputs, so its size at `--inputs` is
extrapolated and said to be. The same run also times the streamed variant on the naive's
inputs, and checks both matrices agree there.

Usage: python benchmarks/bench_compare.py [--inputs 1024] [--naive-inputs 128]
       [--batch-size 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Peak resident memory of this process while active, sampled from /proc/self/statm."""

    def __init__(self) -> None:
        self.base = self.peak = self._now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _now() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._now())

    def __enter__(self) -> PeakRss:
        self.base = self.peak = self._now()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._now())


def _models():
    import keras

    keras.utils.set_random_seed(0)
    a = keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None)
    keras.utils.set_random_seed(1)
    b = keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None)
    return a, b


def child(mode: str, n: int, batch: int, threads: int) -> dict:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from insight.compare.cka import cka_matrix, gram
    from insight.probe.capture import activations

    a, b = _models()
    x = np.random.default_rng(0).normal(size=(n, 64, 64, 3)).astype("float32")
    cpu0 = time.process_time()
    if mode == "streamed":  # both variants' times include tracing their forward passes
        t0 = time.perf_counter()
        with PeakRss() as rss:
            m = cka_matrix(a, b, x, batch_size=batch)
        seconds = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        with PeakRss() as rss:
            acts_a = activations(a, x, batch_size=batch)
            acts_b = activations(b, x, batch_size=batch)
            m = _full_batch(acts_a, acts_b, gram)
        seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    z = m.to_numpy()
    return {"mode": mode, "inputs": n, "layers": list(z.shape), "seconds": seconds, "cpu": cpu,
            "rss_growth_mb": (rss.peak - rss.base) / 2**20,
            "diag_mean": float(np.nanmean(np.diag(z))), "matrix": np.round(z, 4).tolist()}


def _full_batch(acts_a: dict, acts_b: dict, gram) -> object:
    """CKA of every pair on all inputs at once, with the same unbiased HSIC estimator (one
    n x n Gram per layer): the value the streamed minibatches estimate."""
    import pandas as pd

    from insight.compare.cka import MinibatchCKA

    acc = MinibatchCKA(len(acts_a), len(acts_b))
    acc.update_grams([gram(v) for v in acts_a.values()], [gram(v) for v in acts_b.values()])
    return pd.DataFrame(acc.matrix(), index=list(acts_a), columns=list(acts_b))


def _run(mode: str, n: int, batch: int, threads: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--inputs", str(n),
                          "--batch-size", str(batch), "--threads", str(threads)],
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode:
        raise SystemExit(f"{mode} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--inputs", type=int, default=1024)
    p.add_argument("--naive-inputs", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", choices=("streamed", "naive"))
    p.add_argument("--streamed-only", action="store_true",
                   help="only the streamed run at --inputs (no naive baseline)")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.inputs, args.batch_size, args.threads)))
        return
    if args.streamed_only:
        load = os.getloadavg()
        r = _run("streamed", args.inputs, args.batch_size, args.threads)
        print(f"streamed {args.inputs} inputs: {r['seconds']:.1f} s wall, {r['cpu']:.0f} CPU s, "
              f"RSS growth {r['rss_growth_mb']:.0f} MB; load average before {load[0]:.1f}, "
              f"after {os.getloadavg()[0]:.1f}")
        return
    import numpy as np

    load = os.getloadavg()
    small_naive = _run("naive", args.naive_inputs, args.batch_size, args.threads)
    small_stream = _run("streamed", args.naive_inputs, args.batch_size, args.threads)
    big = _run("streamed", args.inputs, args.batch_size, args.threads)
    gap = np.nanmax(np.abs(np.array(small_naive["matrix"]) - np.array(small_stream["matrix"])))
    scale = args.inputs / args.naive_inputs
    print(f"two ResNet50 (64x64), {big['layers'][0]} x {big['layers'][1]} layer pairs, "
          f"minibatch {args.batch_size}, {args.threads} threads; load average before "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, after {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<34} {'inputs':>6} {'seconds':>8} {'CPU s':>7} {'RSS growth MB':>14}")
    for name, r in (("naive (keep every activation)", small_naive),
                    ("streamed (insight cka_matrix)", small_stream),
                    ("streamed (insight cka_matrix)", big)):
        print(f"{name:<34} {r['inputs']:>6} {r['seconds']:>8.1f} {r['cpu']:>7.0f} "
              f"{r['rss_growth_mb']:>14.0f}")
    print(f"{'naive, extrapolated (linear)':<34} {args.inputs:>6} "
          f"{small_naive['seconds'] * scale:>8.0f} {small_naive['cpu'] * scale:>7.0f} "
          f"{small_naive['rss_growth_mb'] * scale:>14.0f}")
    print("CPU s: user + system seconds of the child over the timed part; on an idle machine "
          f"with {args.threads} cores the wall time is at least CPU s / {args.threads}.")
    print(f"largest |naive - streamed| CKA at {args.naive_inputs} inputs: {gap:.4f} "
          f"({-(-args.naive_inputs // args.batch_size)} minibatch(es) vs one batch of all); "
          f"mean diagonal at {args.inputs}: {big['diag_mean']:.3f}")
    ok = big["seconds"] < 60 and big["rss_growth_mb"] < 2048
    print(f"targets (< 60 s, < 2 GB growth at {args.inputs} inputs): "
          f"{'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
