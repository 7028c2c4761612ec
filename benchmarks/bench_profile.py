"""Profiler: capture overhead, xprof conversion, and how fast the Profiler page draws a profile.

Model: `keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)`, training steps
(Adam, sparse categorical cross-entropy, random images and labels, batch `--batch`), run the
way `insight.capture_profile` runs them (a copy of the model, `train_on_batch`).

Rows, each beside its baseline measured in the same run:
- step time: median of 20 profiled steps (inside `tf.profiler.experimental.start` and a
  `Trace("train", step_num=i, _r=1)` marker each) vs 20 unprofiled steps of the same step
  function, after the same warm-up.
- conversion: insight's `tool_data(run, "trace_viewer")` (a symlink in the cache, then
  `json.loads`) vs the raw `xprof.convert.raw_to_tool_data.xspace_to_tool_data([path],
  "trace_viewer", {})` call alone (xprof's saved results off for both); then the parse into the
  timeline table (`trace_events`: lanes, layers, steps).
- page cold: every panel of the Profiler page (card, step breakdown, timeline, top ops table
  and treemap, memory) from nothing: xprof conversions, parse, figures, plus
  `fig.to_json()` (what Streamlit sends). Baseline: the raw xprof calls of the same tools.
- timeline warm (first paint): the timeline panel of the whole profile with the parsed trace
  memoised (as on the page after a capture or a rerun), figure + JSON; target < 3 s. Baseline:
  the same figure with every event as its own bar (no merging).
- timeline warm, one step: the zoomed view of the middle step.
- The same at 200 steps (10x): target < 5 s for the warm whole-profile timeline.
- Opening the 200-step profile, each in a fresh process (peak RSS from `getrusage`, time
  after the imports, as in a running server): xprof's raw `xspace_to_tool_data(...,
  "trace_viewer")` alone (the baseline); insight's former route (that call, `json.loads`,
  `trace_events`); the first open with an empty disk cache (the page's tools converted into
  `insight.profiler.cache`, the timeline read from xprof's protobuf into Parquet); the second
  open in a new process (target < 5 s); and the whole page's panels on that second open.

Usage: python benchmarks/bench_profile.py [--steps 20] [--batch 8] [--quick]
       python benchmarks/bench_profile.py --open-only [--reuse .bench/profile]
`--quick`: 4 and 40 steps, batch 8: a smoke run. `--open-only`: only the open rows, on the
200-step profile kept under `--reuse` (captured there the first time). The page-cold row is
measured at the base step count only (at 10x it is the sum of conversion and parse).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")  # memory events, as `insight profile`
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def build(batch: int, folder: Path):
    """The model (also saved, so panels read its layer names from the file like the app),
    and random images with labels."""
    import keras
    import numpy as np

    from insight.data import Dataset
    from insight.model.loading import LoadedModel
    from insight.model.preflight import preflight

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)
    model.save(folder / "mobilenetv2.keras")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch * 4, 96, 96, 3)).astype("float32")
    y = rng.integers(0, 1000, batch * 4)
    loaded = LoadedModel(model=model, preflight=preflight(folder / "mobilenetv2.keras"))
    return loaded, Dataset(x=x, y=y, source="synthetic", name="random")


def unprofiled_steps(loaded, dataset, steps: int, batch: int) -> tuple[list[float], float]:
    """The capture's own step function (a copy of the model, compiled on first use), 2
    warm-up steps, then `steps` timed steps, all without the profiler."""
    from insight.profiler.steps import make_train_step, repeat_batches

    t0 = time.perf_counter()
    step = make_train_step(loaded.model, False)
    batches = repeat_batches(dataset, batch)
    for _ in range(2):
        step(*next(batches))
    times = []
    for _ in range(steps):
        xb, yb = next(batches)
        t = time.perf_counter()
        step(xb, yb)
        times.append(time.perf_counter() - t)
    return times, time.perf_counter() - t0


def profiled(loaded, dataset, logdir: Path, steps: int, batch: int):
    from insight.profiler.capture import capture_profile

    marks: list[float] = []
    t0 = time.perf_counter()
    run = capture_profile(loaded, dataset, logdir, steps=steps, train=True, warmup=2,
                          batch_size=batch, on_step=lambda i: marks.append(time.perf_counter()))
    total = time.perf_counter() - t0
    times = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return run, times, total


def page_panels(ctx, run_label: str) -> None:
    from insight.panels import build_panel

    card = build_panel("profile_card", ctx, run=run_label)
    figs = [build_panel("trace_timeline", ctx, run=run_label),
            build_panel("top_ops_treemap", ctx, run=run_label)]
    if not card["no_step_markers"]:
        figs.append(build_panel("step_breakdown", ctx, run=run_label))
    if card["memory_events"]:
        figs.append(build_panel("memory_profile", ctx, run=run_label))
    build_panel("top_ops", ctx, run=run_label)
    for f in figs:
        f.to_json()


def measure_profile(run, loaded, label: str, rows: list) -> None:
    from xprof.convert import raw_to_tool_data

    from insight.figures.profiler import timeline_figure
    from insight.panels import PanelContext, build_panel
    from insight.panels.profiler import profile_trace
    from insight.profiler.capture import tool_data
    from insight.profiler.tables import layer_names, trace_events
    from insight.profiler.timeline import timeline_bars

    path = str(run.hosts[0])
    size_mb = run.size / 2**20
    fresh = {"use_saved_result": False}
    ours_s, data = timed(lambda: tool_data(run, "trace_viewer", fresh))
    parse_s, trace = timed(lambda: trace_events(data, layer_names(loaded.preflight)))
    n = len(trace.events)
    data = None  # noqa: F841  (free it before the raw call and the page)
    raw_s, _ = timed(lambda: raw_to_tool_data.xspace_to_tool_data([path], "trace_viewer",
                                                                   fresh))
    rows.append((f"{label}: conversion (trace_viewer, {size_mb:.1f} MB xplane)",
                 ours_s, "raw xspace_to_tool_data", raw_s, ""))
    rows.append((f"{label}: parse into the timeline table ({n:,} events)", parse_s, "", None,
                 ""))
    memo: dict = {}

    def cached(key, compute):
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    ctx = PanelContext(preflight=loaded.preflight, logdir=run.logdir, memo=cached)
    if label == FIRST:  # the whole page from nothing (at 10x it is the sum of the rows above)
        tools = ("overview_page", "trace_viewer", "framework_op_stats", "memory_profile")
        raw_all, _ = timed(lambda: [raw_to_tool_data.xspace_to_tool_data([path], t, fresh)
                                    for t in tools])
        cold_s, _ = timed(lambda: page_panels(ctx, run.label))
        rows.append((f"{label}: page cold (all panels + JSON)", cold_s,
                     "raw xprof, same 4 tools", raw_all, ""))
    # the parsed trace above is what the page memoises (no second conversion at 10x)
    cached(f"{ctx.identity()}|trace|{run.folder}|{run.stamp}", lambda: trace)
    profile_trace(ctx, run)
    warm_s, _ = timed(lambda: build_panel("trace_timeline", ctx, run=run.label).to_json())
    if n <= 700_000:
        full_s, _ = timed(lambda: timeline_figure(timeline_bars(trace, min_px=0.0),
                                                  trace.rows, title="all").to_json())
    else:  # a figure of millions of bars: not attempted (gigabytes of JSON)
        full_s = None
    target = 3.0 if label == FIRST else 5.0
    rows.append((f"{label}: timeline warm, whole profile (first paint)", warm_s,
                 f"every event a bar ({n:,})" + ("" if full_s else ": not attempted"),
                 full_s,
                 f"{'ok' if warm_s < target else 'MISSED'} (< {target:g} s)"))
    if len(trace.steps):
        mid = int(trace.steps["step"].iloc[len(trace.steps) // 2])
        step_s, _ = timed(lambda: build_panel("trace_timeline", ctx, run=run.label,
                                              step=mid).to_json())
        rows.append((f"{label}: timeline warm, step {mid}", step_s, "", None, ""))


FIRST = ""
OPEN_MODES = ("raw", "json", "first", "second", "page")


def child(mode: str, logdir: str, model: str) -> None:
    """One open of the newest profile under `logdir`, in this fresh process; prints JSON."""
    import resource

    from xprof.convert import raw_to_tool_data

    from insight.model.preflight import preflight
    from insight.panels import PanelContext
    from insight.profiler.capture import PAGE_TOOLS, find_profiles, profile_trace, tool_data
    from insight.profiler.prepare import prepare
    from insight.profiler.tables import layer_names, trace_events

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    pf = preflight(model)
    run, layers = find_profiles(logdir)[0], layer_names(pf)
    base = rss_mb()
    t = time.perf_counter()
    if mode == "raw":
        raw_to_tool_data.xspace_to_tool_data([str(run.hosts[0])], "trace_viewer",
                                             {"use_saved_result": False})
    elif mode == "json":  # insight's route before the cache: the page's tools, JSON trace
        fresh = {"use_saved_result": False}
        _ = [tool_data(run, t, fresh) for t in PAGE_TOOLS if t != "trace"]
        trace_events(tool_data(run, "trace_viewer", fresh), layers)
    elif mode == "open":  # what the page reads, through the disk cache
        prepare(run, PAGE_TOOLS)
        _ = [tool_data(run, t) for t in PAGE_TOOLS if t != "trace"]
        profile_trace(run, layers)
    else:  # every panel of the page, as a new server draws it
        memo: dict = {}

        def cached(key, compute):
            if key not in memo:
                memo[key] = compute()
            return memo[key]

        page_panels(PanelContext(preflight=pf, logdir=run.logdir, memo=cached), run.label)
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"s": time.perf_counter() - t, "rss_mb": rss_mb(), "base_mb": base,
                      "child_mb": child_mb}))


def open_rows(run, model: Path, cache: Path, rows: list, modes=OPEN_MODES) -> None:
    """The open rows: each mode in a new process, the cache emptied before the first open
    (`modes`: some of `OPEN_MODES`, in order)."""
    env = {**os.environ, "INSIGHT_CACHE_DIR": str(cache)}
    got = {}
    for mode in modes:
        if mode in ("raw", "first"):  # nothing converted before is left for the first open
            shutil.rmtree(cache, ignore_errors=True)
        proc = subprocess.run([sys.executable, __file__, "--child",
                               {"first": "open", "second": "open"}.get(mode, mode),
                               str(run.logdir), str(model)], env=env, capture_output=True,
                              text=True, check=True)
        got[mode] = out = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  ({mode}: {out['s']:.1f} s, peak RSS {out['rss_mb']:,.0f} MiB, "
              f"{out['base_mb']:,.0f} MiB after imports, converter child "
              f"{out['child_mb']:,.0f} MiB)", flush=True)
    raw = got["raw"]["s"] if "raw" in got else None
    base = "raw xspace_to_tool_data" if raw else ""

    def mib(m: str) -> str:
        peak, start = got[m]["rss_mb"], got[m]["base_mb"]
        return f"peak RSS {peak:,.0f} MiB (+{peak - start:,.0f} after imports)"

    named = {"raw": (f"open ({run.size / 2**20:.0f} MB xplane): raw xspace_to_tool_data "
                     "trace_viewer alone", lambda: mib("raw")),
             "json": ("open: former route (4 page tools, trace_viewer JSON, trace_events)",
                      lambda: mib("json")),
             "first": ("open: first, empty disk cache (4 page tools + timeline to Parquet)",
                       lambda: f"server {mib('first')}; converter child peak "
                               f"{got['first']['child_mb']:,.0f} MiB"),
             "second": ("open: second, new process (4 page tools + timeline from disk)",
                        lambda: f"{'ok' if got['second']['s'] < 5 else 'MISSED'} (< 5 s); "
                                f"{mib('second')}"),
             "page": ("open: second, new process, every page panel + JSON",
                      lambda: mib("page"))}
    for mode in modes:
        name, note = named[mode]
        rows.append((name, got[mode]["s"], "" if mode == "raw" else base,
                     None if mode == "raw" else raw, note()))
    files = [f for f in cache.rglob("*") if f.is_file()]
    print(f"  (disk cache: {sum(f.stat().st_size for f in files) / 2**20:.1f} MiB in "
          f"{len(files)} files)", flush=True)


class Table(list):
    """Rows printed as they are measured (a long run still leaves its first rows)."""

    def append(self, row) -> None:
        super().append(row)
        name, ours, bname, theirs, note = row
        ratio = f"{ours / theirs:.2f}x" if theirs else ""
        shown = f"{theirs:.3f}" if theirs is not None else ""
        print(f"| {name} | {ours:.3f} | {bname} | {shown} | {ratio} | {note} |", flush=True)


def main() -> None:
    global FIRST
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--open-only", action="store_true")
    parser.add_argument("--reuse", default=".bench/profile")
    parser.add_argument("--child", nargs=3)
    parser.add_argument("--cache", default="", help="the disk cache (default: REUSE/cache)")
    parser.add_argument("--modes", default=",".join(OPEN_MODES),
                        help="the open rows to measure, in order, e.g. raw,first,second")
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    steps, batch = (4, 8) if args.quick else (args.steps, args.batch)
    FIRST = f"{steps} steps"
    print(f"\nMobileNetV2 96x96, training, batch {batch}, {os.cpu_count()} CPUs "
          "(shared with other jobs)\n")
    print("| measurement | insight (s) | baseline | baseline (s) | ratio | target |")
    print("|---|---:|---|---:|---:|---|", flush=True)
    rows = Table()
    if args.open_only:
        from insight.profiler.capture import find_profiles

        keep = Path(args.reuse).resolve()
        keep.mkdir(parents=True, exist_ok=True)
        runs = find_profiles(keep) if (keep / "p200").exists() else []
        if not runs:
            loaded, dataset = build(batch, keep)
            runs = [profiled(loaded, dataset, keep / "p200", steps * 10, batch)[0]]
        open_rows(runs[0], keep / "mobilenetv2.keras", Path(args.cache or keep / "cache"), rows,
                  tuple(args.modes.split(",")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["INSIGHT_CACHE_DIR"] = str(Path(tmp) / "cache")
        loaded, dataset = build(batch, Path(tmp))
        base, base_total = unprofiled_steps(loaded, dataset, steps, batch)
        run, prof, total = profiled(loaded, dataset, Path(tmp) / "p20", steps, batch)
        rows.append((f"{steps} steps: median step time, profiled", statistics.median(prof),
                     "unprofiled", statistics.median(base), ""))
        rows.append((f"{steps} steps: whole capture (warm-up, start, steps, write)", total,
                     "the same without the profiler", base_total, ""))
        measure_profile(run, loaded, f"{steps} steps", rows)
        run10, _, total10 = profiled(loaded, dataset, Path(tmp) / "p200", steps * 10, batch)
        rows.append((f"{steps * 10} steps: whole capture", total10, "", None, ""))
        del run, prof
        measure_profile(run10, loaded, f"{steps * 10} steps", rows)
        open_rows(run10, Path(tmp) / "mobilenetv2.keras", Path(tmp) / "open_cache", rows)


if __name__ == "__main__":
    main()
