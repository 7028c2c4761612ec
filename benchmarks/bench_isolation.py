"""What isolated loading costs (issue 14, item 1): direct vs isolated, measured in one run.

Two models: the `digits_cnn` sample and `keras.applications.MobileNetV2(weights=None,
input_shape=(96, 96, 3))` saved to a temporary `.keras`. Three settings:

- cold CLI: `insight summary MODEL` in a fresh process, against the same work without the
  child (`load_model(path)` + `model_summary`, what `insight summary` did before);
- warm server, a model new to it: a fresh process that imported TensorFlow and loaded
  another small model, then loads MODEL for the first time: `load_model(path)` against what
  `insight.ui.cache` does, `load_model(path, isolate=True)` with a child that `prestart()`
  started and that has imported Keras. This is a server's cache miss.
- warm server, the same model again: one process loads MODEL over and over, as a server
  does when the model left its cache. The child passed these bytes the first time, so the
  server loads them again directly (`insight.model.sandbox.passed_before`).

Runs alternate direct, isolated and "phases" (`--reps` each); the table gives
medians and ratios to the direct load. Target: under 1.5x. The server follows the child step
by step (`insight.model.lockstep`), so the floor is the child's own load and first forward
pass, which the server waits for; "phases" is the loader without the steps (the server
waiting for the child's whole build, then its whole weights phase), measured in the same run.

    python benchmarks/bench_isolation.py [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("direct", "isolated", "phases")
DIGITS = ROOT / "sample_models" / "digits_cnn" / "model.keras"
DIRECT_CLI = """
import sys
from insight.cli.console import quiet_native_stderr
from insight.cli.summary import print_summary
from insight.model.loading import load_model
from insight.model.summary import model_summary
with quiet_native_stderr(True):
    summary = model_summary(load_model(sys.argv[1]))
print_summary(summary)
"""


def save_mobilenet(folder: Path) -> Path:
    path = folder / "mobilenet_v2.keras"
    code = ("import keras, sys; keras.applications.MobileNetV2(weights=None, "
            "input_shape=(96, 96, 3)).save(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                   stderr=subprocess.DEVNULL)
    return path


PHASES_CLI = """
import runpy, sys
from insight.model import lockstep
lockstep.available = lambda: False
sys.argv = ["insight", "summary", sys.argv[1]]
runpy.run_module("insight.cli", run_name="__main__")
"""


def cold(model: Path, mode: str) -> float:
    args = ([sys.executable, "-m", "insight.cli", "summary", str(model)] if mode == "isolated"
            else [sys.executable, "-c", PHASES_CLI if mode == "phases" else DIRECT_CLI,
                  str(model)])
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.perf_counter() - started


def warm(model: Path, mode: str) -> float:
    from insight.model import lockstep
    from insight.model.loading import load_model
    from insight.model.sandbox import prestart, spare_ready

    isolated = mode != "direct"
    if isolated:
        prestart()
        spare_ready(300)  # a server had it ready long before the next cache miss
    stepped = lockstep.available
    if mode == "phases":
        lockstep.available = lambda: False
    try:
        started = time.perf_counter()
        load_model(model, isolate=isolated)
        return time.perf_counter() - started
    finally:
        lockstep.available = stepped


WORKER = """
import os, sys, time
import keras
from insight.model.loading import load_model
from insight.model.sandbox import prestart, spare_ready
path, mode, warm_up = sys.argv[1], sys.argv[2], sys.argv[3]
isolated = mode != "direct"
if mode == "phases":  # the server waiting for the child's whole build, then whole weights
    from insight.model import lockstep
    lockstep.available = lambda: False
keras.Sequential([keras.Input((12, 12, 2)), keras.layers.Conv2D(3, 3), keras.layers.Flatten(),
                  keras.layers.Dense(4)]).save(warm_up)
load_model(warm_up)  # TensorFlow and Keras warmed up by another model
if isolated:
    prestart()
    spare_ready(300)
time.sleep(0.5)
started = time.perf_counter()
load_model(path, isolate=isolated)
print(time.perf_counter() - started)
"""


def first_in_warm(model: Path, mode: str, tmp: Path) -> float:
    """A server's cache miss: a warm process loading `model` for the first time."""
    out = subprocess.run([sys.executable, "-c", WORKER, str(model), mode,
                          str(tmp / "warm_up.keras")], check=True, capture_output=True,
                         text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as tmp:
        # A copy: the bundled sample itself is part of insight and skips the child.
        digits = Path(shutil.copy(DIGITS, Path(tmp) / "digits_cnn.keras"))
        models = {"digits_cnn": digits, "MobileNetV2 96px": save_mobilenet(Path(tmp))}
        rows = []
        for name, path in models.items():
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            for _ in range(args.reps):
                for mode in MODES:
                    times[mode].append(cold(path, mode))
            rows.append(("cold CLI: insight summary", name, times))
        for name, path in models.items():
            times = {mode: [] for mode in MODES}
            for _ in range(args.reps):
                for mode in MODES:
                    times[mode].append(first_in_warm(path, mode, Path(tmp)))
            rows.append(("warm server: new model", name, times))
        import keras  # the warm server's process

        from insight.model.loading import load_model
        load_model(DIGITS)  # TensorFlow and Keras warmed up by a first model
        for name, path in models.items():
            times = {mode: [] for mode in MODES}
            for _ in range(args.reps):
                for mode in MODES:
                    times[mode].append(warm(path, mode))
            rows.append(("warm server: same again", name, times))
        del keras
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"{args.reps} runs each (median)")
    print(f"{'setting':<27} {'model':<18} {'direct s':>9} {'isolated s':>11} {'ratio':>6} "
          f"{'phases':>7}")
    for setting, name, times in rows:
        med = {mode: statistics.median(t) for mode, t in times.items()}
        direct, isolated = med["direct"], med["isolated"]
        phases = f"{med['phases'] / direct:>6.2f}x" if "phases" in med else ""
        print(f"{setting:<27} {name:<18} {direct:>9.2f} {isolated:>11.2f} "
              f"{isolated / direct:>5.2f}x {phases:>7}")
    print("isolated: the server following the child step by step (insight.model.lockstep); "
          "phases: the\nserver waiting for the child's whole build, then its whole weights "
          "phase (the loader before\nlock-step), same run. same again: from the second load "
          "on, bytes the child passed load\nwithout it.")


if __name__ == "__main__":
    main()
