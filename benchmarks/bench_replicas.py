"""Replicas sharing one results cache: what the first replica computes, the second reads.

Each "replica" is a fresh Python process pointed at the same `INSIGHT_CACHE_DIR` (as two
`insight serve` replicas on shared storage are); both do what the app's pages do, timed inside
the process (imports and the model's load excluded, UMAP's numba compilation done first, as
`insight serve` warms up):

- a converted profile: `prepare(run)` (the Profiler page's conversion of its tools with xprof)
  then every page tool and the timeline read back (`--capture N`: a profile of N training
  steps of `digits_cnn` captured first, instead of the sample's small one);
- a projection: the Embeddings page's UMAP of `digits_cnn`'s `dense1` over its 1,797 examples
  (`panels.projector.projected` through the app's memo, `insight.ui.cache.with_memo`), after
  its vectors (one activations pass, memoised in memory only: the `vectors` row);
- activation statistics: the Activations page's statistics pass (`panels.activations._stats`).

The first replica is the baseline (it computes and stores); the second one's ratio against it
is what sharing the cache saves. The results cache's own counters confirm the second computed
nothing. Prints the load average next to the table (2 shared cores: ratios hold, seconds drift).

Usage: python benchmarks/bench_replicas.py [--profile PATH.xplane.pb | --capture 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UMAP = dict(source="layer", layer="dense1", reduce="flatten", method="umap", dims=2, seed=0,
            metric="euclidean", n_neighbors=15, min_dist=0.1, perplexity=30.0, sample=0)


def replica(logdir: str) -> dict:
    """One replica's work (runs in a child process); seconds per step."""
    import streamlit as st  # noqa: F401  (the app's caches: Streamlit's, in memory here)

    from insight import results
    from insight.model.loading import load_model
    from insight.model.samples import sample_root
    from insight.panels import activations, projector
    from insight.panels.registry import PanelContext
    from insight.profiler.capture import PAGE_TOOLS, find_profiles, profile_trace, tool_data
    from insight.profiler.prepare import prepare
    from insight.projector.projection import warm_up
    from insight.ui.cache import with_memo

    out: dict = {}
    (run,) = find_profiles(logdir)
    t = time.perf_counter()
    prepare(run)
    for tool in PAGE_TOOLS:
        profile_trace(run) if tool == "trace" else tool_data(run, tool)
    out["profile"] = time.perf_counter() - t

    loaded = load_model(sample_root() / "digits_cnn" / "model.keras")
    warm_up()
    t = time.perf_counter()  # the vectors: one activations pass, memoised in memory only
    projector.source_vectors(with_memo(PanelContext(loaded=loaded)), **UMAP)
    out["vectors"] = time.perf_counter() - t
    t = time.perf_counter()
    projector.projected(with_memo(PanelContext(loaded=loaded)), **UMAP)
    out["projection"] = time.perf_counter() - t
    t = time.perf_counter()
    activations._stats(with_memo(PanelContext(loaded=loaded)))
    out["statistics"] = time.perf_counter() - t
    out["counters"] = results.counters()
    return out


def capture(steps: int, logdir: Path) -> Path:
    """A profile of `steps` training steps of digits_cnn (batch 256), captured now."""
    from insight.data import dataset_for
    from insight.model.loading import load_model
    from insight.model.samples import sample_root
    from insight.profiler.capture import capture_profile

    loaded = load_model(sample_root() / "digits_cnn" / "model.keras")
    run = capture_profile(loaded, dataset_for(loaded, None), logdir, steps=steps, train=True,
                          batch_size=256)
    return run.hosts[0]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", help="an .xplane.pb to convert (default: digits_cnn's)")
    parser.add_argument("--capture", type=int, default=0,
                        help="capture a profile of this many training steps of digits_cnn")
    parser.add_argument("--keep", help="keep the cache folder here (default: a temporary one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(replica(args.child)))
        return

    from insight.model.samples import sample_root
    from insight.profiler.capture import find_profiles

    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    if args.capture:
        source = capture(args.capture, tmp / "captured")
    else:
        source = Path(args.profile) if args.profile else \
            find_profiles(sample_root() / "digits_cnn" / "logs")[0].hosts[0]
    run = tmp / "logs" / "plugins" / "profile" / "run"
    run.mkdir(parents=True)
    shutil.copy(source, run / source.name)
    cache = Path(args.keep) if args.keep else tmp / "shared-cache"
    env = {**os.environ, "INSIGHT_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    rows, loads = [], [load()]
    for n in (1, 2):
        done = subprocess.run([sys.executable, __file__, "--child", str(tmp / "logs")],
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"replica {n} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        loads.append(load())
    size = sum(f.stat().st_size for f in (cache / "results").rglob("*") if f.is_file())
    print(f"profile: {source.name} ({source.stat().st_size / 2**20:.1f} MB); "
          f"results cache {size / 2**20:.1f} MB; load average {' -> '.join(loads)}")
    print("| step | replica 1 (computes) | replica 2 (shared cache) | ratio |\n|---|---|---|---|")
    for step in ("profile", "vectors", "projection", "statistics"):
        a, b = rows[0][step], rows[1][step]
        print(f"| {step} | {a:.3f} s | {b:.3f} s | {b / a:.3f}x |")
    print(f"replica 1 counters: {rows[0]['counters']}\nreplica 2 counters: {rows[1]['counters']}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
