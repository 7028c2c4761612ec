"""What isolated loading costs (issue 14, item 1): direct vs isolated, measured in one run.

Two models: the `digits_cnn` sample and `keras.applications.MobileNetV2(weights=None,
input_shape=(96, 96, 3))` saved to a temporary `.keras`. Two settings:

- cold CLI: `insight summary MODEL` in a fresh process, against the same work without the
  child (`load_model(path)` + `model_summary`, what `insight summary` did before);
- warm server: TensorFlow imported and another model loaded already, a model cache miss:
  `load_model(path)` against what `insight.ui.cache` does, `load_model(path, isolate=True)`
  with a child that `prestart()` started and that has imported Keras.

Runs alternate direct and isolated (`--reps` each); the table gives medians and the ratio.
Target: under 1.5x. The floor column: the direct load plus one build of the model from its
config, which the server cannot start before the child has finished its own.

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


def cold(model: Path, isolated: bool) -> float:
    args = ([sys.executable, "-m", "insight.cli", "summary", str(model)] if isolated
            else [sys.executable, "-c", DIRECT_CLI, str(model)])
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return time.perf_counter() - started


def warm(model: Path, isolated: bool) -> float:
    from insight.model.loading import load_model
    from insight.model.sandbox import prestart, spare_ready

    if isolated:
        prestart()
        spare_ready(300)  # a server had it ready long before the next cache miss
    started = time.perf_counter()
    load_model(model, isolate=isolated)
    return time.perf_counter() - started


def build_time(model: Path) -> float:
    """Seconds to build the model from its config alone (the step the server waits for)."""
    from insight.model import keras_phases

    started = time.perf_counter()
    keras_phases.build(model, custom_objects=None, safe_mode=True)
    return time.perf_counter() - started


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
        builds: dict[str, float] = {}
        for name, path in models.items():
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.reps):
                for isolated in (False, True):
                    times[isolated].append(cold(path, isolated))
            rows.append(("cold CLI: insight summary", name, times))
        import keras  # the warm server's process

        from insight.model.loading import load_model
        load_model(DIGITS)  # TensorFlow and Keras warmed up by a first model
        for name, path in models.items():
            times = {False: [], True: []}
            for _ in range(args.reps):
                for isolated in (False, True):
                    times[isolated].append(warm(path, isolated))
            rows.append(("warm server: cache miss", name, times))
            builds[name] = statistics.median(build_time(path) for _ in range(args.reps))
        del keras
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"{args.reps} runs each (median)")
    print(f"{'setting':<27} {'model':<18} {'direct s':>9} {'isolated s':>11} {'ratio':>6} "
          f"{'floor':>6}")
    for setting, name, times in rows:
        direct, isolated = statistics.median(times[False]), statistics.median(times[True])
        floor = f"{(direct + builds[name]) / direct:>5.2f}x" if setting.startswith("warm") \
            else ""
        print(f"{setting:<27} {name:<18} {direct:>9.2f} {isolated:>11.2f} "
              f"{isolated / direct:>5.2f}x {floor:>6}")
    print("floor: the server builds the model only once the child has built it, so a cache "
          "miss takes at least\nthe direct load plus one build from the config (measured "
          "here: keras_phases.build).")


if __name__ == "__main__":
    main()
