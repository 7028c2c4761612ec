"""The checkpoint timeline's weight-change heatmap: 20 epochs of digits_cnn, read as data.

Data: digits_cnn (the sample's architecture and training setup) trained 20 epochs on the
scikit-learn digits with `ModelCheckpoint` every epoch, once as `.weights.h5` files beside
one `model.keras`, once as full `.keras` files, in a temporary folder (about 1.5 MB each).

Rows (medians of `--repeat`, imports warmed first, each run from a fresh `find_checkpoints`):
- insight .weights.h5 / .keras: `find_checkpoints` (names parsed, every file preflighted or
  link-checked) + `weight_timeline` (every file read with h5py, no model built) +
  `weight_change_heatmap` (the figure): what the Checkpoints page's first chart costs.
- naive .keras: what the same table costs when each checkpoint is loaded as a model
  (`keras.saving.load_model(..., compile=False, safe_mode=True)` then `get_weights()` per
  layer), the relative change computed the same way: one model build per checkpoint.
- cold CLI: `insight compare FOLDER` with no data (weights only) as a fresh process, imports
  and all: what a user waits for at the terminal.

Target: the heatmap under 3 s on 2 cores.

Usage: python benchmarks/bench_checkpoints.py [--epochs 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def train(folder: Path, epochs: int) -> tuple[Path, Path]:
    """`(weights folder, keras folder)` of digits_cnn trained `epochs` epochs."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int64")
    keras.utils.set_random_seed(0)
    # The sample's own architecture, freshly initialised (not a second copy of its layers).
    from insight.model.samples import get_sample

    model = keras.models.clone_model(
        keras.saving.load_model(get_sample("digits_cnn").model, compile=False))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    weights, full = folder / "weights", folder / "keras"
    weights.mkdir()
    full.mkdir()
    model.save(weights / "model.keras")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[
        keras.callbacks.ModelCheckpoint(str(weights / "epoch_{epoch:02d}.weights.h5"),
                                        save_weights_only=True),
        keras.callbacks.ModelCheckpoint(str(full / "epoch_{epoch:02d}.keras"))])
    assert np.isfinite(model.get_weights()[0]).all()
    return weights, full


def insight_heatmap(folder: Path) -> int:
    from insight.compare.checkpoints import find_checkpoints
    from insight.compare.timeline import weight_timeline
    from insight.figures.timeline import weight_change_heatmap

    df = weight_timeline(find_checkpoints(folder))
    weight_change_heatmap(df)
    return len(df)


def naive_table(folder: Path) -> int:
    import keras
    import numpy as np

    from insight.compare.weights import weight_change

    files = sorted(folder.glob("epoch_*.keras"))
    rows, previous = 0, None
    for file in files:
        model = keras.saving.load_model(file, compile=False, safe_mode=True)
        current = {layer.name: [np.asarray(w) for w in layer.get_weights()]
                   for layer in model.layers if layer.get_weights()}
        if previous is not None:
            for name in current:
                weight_change(previous[name], current[name])
                rows += 1
        previous = current
    return rows


def timed(fn, arg, repeat: int) -> tuple[float, int]:
    times, out = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def cold_cli(folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "insight.cli", "compare", str(folder)], check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        weights, full = train(Path(tmp), args.epochs)
        print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s; "
              f"{sum(p.stat().st_size for p in weights.iterdir()) / 1024:.0f} KB of "
              f".weights.h5, {sum(p.stat().st_size for p in full.iterdir()) / 1024:.0f} KB "
              "of .keras")
        insight_heatmap(weights)  # imports and first-use caches
        naive_table(full)
        rows = [("insight .weights.h5", *timed(insight_heatmap, weights, args.repeat)),
                ("insight .keras", *timed(insight_heatmap, full, args.repeat)),
                ("naive .keras (load_model each)", *timed(naive_table, full, args.repeat))]
        cli = cold_cli(weights)
    base = rows[2][1]
    print(f"\n{'route':<32} {'median s':>9} {'rows':>6} {'vs naive':>9}")
    for name, seconds, n in rows:
        print(f"{name:<32} {seconds:>9.3f} {n:>6} {base / seconds:>8.1f}x")
    print(f"{'cold CLI (insight compare DIR)':<32} {cli:>9.3f}")
    print(f"\ntarget: heatmap < 3 s; load average {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
