"""The XLA compiler page's cost on MobileNetV2, against TensorFlow's own HLO call, in one run.

Rows (each beside its baseline measured in the same run; cold rows run in fresh processes,
insight and baseline alternating, medians of `--repeat`):
- HLO shown, cold: from the model in memory (a fresh process, the model loaded, TensorFlow
  imported) to both HLO stages parsed and the page's panels built (summary, op counts, fusion
  table, per-layer table, instruction table, HLO text, entry computation graph), vs the raw
  `tf.function(jit_compile=True).experimental_get_compiler_ir(x)` for `stage="hlo"` and
  `stage="optimized_hlo"` in a fresh process. Target: under 10 s.
- its parts, inside the insight process: trace with layer scopes, the two TensorFlow calls,
  parsing both modules, building the panels.
- step time (warm, same batch of 32): XLA vs eager and vs `tf.function` without XLA, from
  `insight.compiler.xla.step_times`; and the first XLA call (compilation for execution).

The train-step baseline applies Keras' SGD optimizer to the variables; insight's train step
returns the update instead (the model must not change), so that ratio is indicative only.

Model: `keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)`, synthetic
inputs (insight's, from the model's input spec), batch 32.

Usage: python benchmarks/bench_xla.py [--repeat 3] [--train]
`--train` adds the train step's rows (several times slower to compile).
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
BATCH = 32
PANELS = [("xla_summary", {}), ("xla_op_counts", {}), ("xla_fusions", {}), ("xla_layers", {}),
          ("xla_instructions", {}), ("xla_hlo", {}), ("xla_graph", {})]


def _save_model(path: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    keras.applications.MobileNetV2(input_shape=SHAPE, weights=None).save(path)


def child_insight(model_path: str, function: str, timing: bool) -> dict:
    """In a fresh process: load (untimed), then compile, parse and build the panels."""
    import insight
    from insight.compiler.xla import step_times
    from insight.panels import PanelContext, build_panel
    from insight.panels.compiler import compilation

    loaded = insight.load_model(model_path)
    store: dict = {}

    def memo(key, compute):
        if key not in store:
            store[key] = compute()
        return store[key]

    ctx = PanelContext(loaded, memo=memo)
    ctx.dataset()  # data in memory too: the clock starts at the compile
    start = time.perf_counter()
    comp = compilation(ctx, function)
    compiled = time.perf_counter() - start
    for name, params in PANELS:
        build_panel(name, ctx, function=function, **params)
    total = time.perf_counter() - start
    out = {"total": total, "panels": total - compiled, **comp.seconds,
           "before": int(comp.op_count_table()["before"].sum()),
           "after": int(comp.op_count_table()["after"].sum()),
           "fusions": len(comp.fusion_table())}
    if timing:
        out["times"] = step_times(comp, budget_s=2.0, min_runs=4).to_dict("list")
    return out


def child_raw(function: str) -> dict:
    """In a fresh process: the bare TensorFlow call for the same function and batch."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=SHAPE, weights=None)
    x = tf.constant(np.random.default_rng(0).random((BATCH, *SHAPE), dtype=np.float32))
    if function == "forward":
        fn = tf.function(lambda a: model(a, training=False), jit_compile=True)
        args = (x,)
    else:
        y = tf.constant(np.random.default_rng(0).integers(0, 1000, BATCH))
        opt = keras.optimizers.SGD(0.01)
        loss_fn = keras.losses.SparseCategoricalCrossentropy()

        def step(a, b):
            with tf.GradientTape() as tape:
                loss = loss_fn(b, model(a, training=True))
            opt.apply(tape.gradient(loss, model.trainable_variables),
                      model.trainable_variables)
            return loss

        fn = tf.function(step, jit_compile=True)
        args = (x, y)
    start = time.perf_counter()
    ir = fn.experimental_get_compiler_ir(*args)
    ir(stage="hlo")
    ir(stage="optimized_hlo")
    return {"total": time.perf_counter() - start}


def _run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                          text=True, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _faster(baseline_ms: float, ours_ms: float) -> str:
    if ours_ms <= baseline_ms:
        return f"{baseline_ms / ours_ms:.2f}x faster"
    return f"{ours_ms / baseline_ms:.2f}x slower"


def _med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def measure(model_path: Path, function: str, repeat: int) -> list[str]:
    ours, raw = [], []
    for i in range(repeat):  # alternate which goes first; time the steps once
        order = ["insight", "raw"] if i % 2 == 0 else ["raw", "insight"]
        for kind in order:
            if kind == "insight":
                ours.append(_run_child("insight", str(model_path), function,
                                       "1" if not ours else "0"))
            else:
                raw.append(_run_child("raw", function))
    name = {"forward": "forward pass", "train": "train step"}[function]
    total, base = _med(ours, "total"), _med(raw, "total")
    rows = [
        f"| HLO shown, cold ({name}): compile + parse + {len(PANELS)} panels | {total:.2f} s "
        f"| raw experimental_get_compiler_ir, both stages: {base:.2f} s | {total / base:.2f}x "
        f"| < 10 s: {'yes' if total < 10 else 'NO'} |",
    ]
    parts = " · ".join(f"{k} {_med(ours, k):.2f} s" for k in ("trace", "hlo", "optimized_hlo",
                                                              "parse", "panels"))
    rows.append(f"| &nbsp;&nbsp;its parts ({name}) | {parts} | | | |")
    counts = ours[0]
    rows.append(f"| &nbsp;&nbsp;what fusion did ({name}) | {counts['before']:,} → "
                f"{counts['after']:,} instructions, {counts['fusions']} fusions | | | |")
    times = ours[0]["times"]
    by_mode = {m: i for i, m in enumerate(times["mode"])}
    xla, eager, graph = (times["median_ms"][by_mode[m]] for m in ("xla", "eager", "graph"))
    rows.append(f"| step time, warm ({name}, batch {BATCH}): XLA | {xla:.1f} ms "
                f"| eager {eager:.1f} ms | {_faster(eager, xla)} | |")
    rows.append(f"| step time, warm ({name}): XLA | {xla:.1f} ms | tf.function without XLA "
                f"{graph:.1f} ms | {_faster(graph, xla)} | |")
    first = times["first_call_s"][by_mode["xla"]]
    rows.append(f"| first XLA call ({name}): compile for execution | {first:.2f} s | | | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "save":
            _save_model(Path(rest[0]))
            print("{}")
        elif kind == "insight":
            print(json.dumps(child_insight(rest[0], rest[1], rest[2] == "1")))
        else:
            print(json.dumps(child_raw(rest[0])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "mobilenetv2_96.keras"
        _run_child("save", str(model_path))
        rows = measure(model_path, "forward", args.repeat)
        if args.train:
            rows += measure(model_path, "train", max(1, args.repeat - 1))
    print(f"MobileNetV2 (96x96x3, weights=None), batch {BATCH}, {os.cpu_count()} CPUs, "
          f"median of {args.repeat} fresh processes each\n")
    print("| measurement | insight | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
