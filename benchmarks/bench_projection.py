"""Projections and neighbours against the plain library calls, in one run.

Rows (each beside its baseline, measured in the same run; fresh processes where a first call
is the point):
- UMAP 5,000 x 64, first call in a fresh process: insight (exact scikit-learn neighbours, no
  pynndescent JIT; numba cache as left by earlier runs) vs plain umap-learn, seeded both.
- PCA 1,000,000 x 64: insight (covariance + eigh) vs scikit-learn PCA (randomized solver).
- k-NN query on 100,000 x 64: insight.neighbors vs scikit-learn NearestNeighbors (brute).
- `--full`: UMAP 50,000 x 64 warm (second call in the process) vs plain umap-learn warm,
  t-SNE 50,000 x 64 (openTSNE, FFT) vs plain openTSNE, and t-SNE 10,000 x 64: insight
  (openTSNE) vs scikit-learn TSNE.

Usage: python benchmarks/bench_projection.py [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")


def blobs(n: int, d: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, size=(10, d))
    return (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, d))).astype(np.float32)


_FIRST_CALL = """
import json, time, sys, numpy as np
sys.path.insert(0, {bench!r})
from bench_projection import blobs
x = blobs({n})
start = time.perf_counter()
if {ours}:
    from insight.projector.projection import project
    project(x, "umap", seed=0)
else:
    import umap
    umap.UMAP(random_state=0).fit_transform(x)
print(json.dumps(time.perf_counter() - start))
"""


def first_call(n: int, ours: bool) -> float:
    code = _FIRST_CALL.format(bench=os.path.dirname(os.path.abspath(__file__)), n=n, ours=ours)
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
                         check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def pca_row(pca_class, project) -> tuple:
    big = blobs(1_000_000)
    ours = timed(lambda: project(big, "pca"))
    base = timed(lambda: pca_class(2, svd_solver="randomized", random_state=0).fit_transform(big))
    return ("PCA 1,000,000 x 64", ours, "scikit-learn PCA (randomized)", base, "< 5 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the 50k UMAP and 10k t-SNE")
    args = parser.parse_args()
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    from insight.projector.projection import neighbors, project

    rows = []
    ours, plain = first_call(5000, True), first_call(5000, False)
    rows.append(("UMAP 5,000 x 64, first call (fresh process)", ours, "umap-learn first call",
                 plain, "< 5 s"))
    rows.append(pca_row(PCA, project))
    pts = blobs(100_000)
    index = NearestNeighbors(n_neighbors=11, algorithm="brute").fit(pts)
    rows.append(("k-NN query, 100,000 x 64", timed(lambda: neighbors(pts, 7, 10, "euclidean"), 7),
                 "scikit-learn brute kneighbors", timed(lambda: index.kneighbors(pts[7:8]), 7),
                 "< 50 ms"))
    if args.full:
        import umap

        mid = blobs(50_000)
        from insight.projector.projection import warm_up

        project(mid[:2000], "umap")
        warm_up(approximate=True)
        umap.UMAP(random_state=0).fit_transform(mid[:5000])  # warm both
        rows.append(("UMAP 50,000 x 64, warm", timed(lambda: project(mid, "umap"), 1),
                     "umap-learn warm", timed(lambda: umap.UMAP(random_state=0).fit_transform(mid),
                                              1), "<= 1x"))
        from openTSNE import TSNE as OpenTSNE
        from sklearn.manifold import TSNE

        rows.append(("t-SNE 50,000 x 64", timed(lambda: project(mid, "tsne"), 1),
                     "openTSNE defaults", timed(lambda: OpenTSNE(random_state=0).fit(mid), 1),
                     "~47 s measured before"))
        ten = blobs(10_000)
        rows.append(("t-SNE 10,000 x 64", timed(lambda: project(ten, "tsne"), 1),
                     "scikit-learn TSNE", timed(lambda: TSNE(random_state=0).fit_transform(ten),
                                                1), "faster"))
    print(f"{'measure':44} {'insight':>9}  {'baseline':32} {'base':>9} {'ratio':>6}  target")
    for name, a, base_name, b, target in rows:
        print(f"{name:44} {a:9.3f}  {base_name:32} {b:9.3f} {a / b:6.2f}  {target}")


if __name__ == "__main__":
    main()
