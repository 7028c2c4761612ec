"""Projections of vectors to 2D or 3D, and nearest neighbours, computed on every point.

One call for all methods, one output shape: `project(vectors, method=...)` returns a DataFrame
with columns `x`, `y` (and `z`), one row per input row, in order.

- `"pca"`: exact, from the covariance matrix (fast at a million rows); the explained variance
  ratio of each component is in `frame.attrs["explained_variance"]`.
- `"umap"`: umap-learn, 200 epochs; seeded, so deterministic (and single-threaded); up to
  `EXACT_KNN_ROWS` points with exact neighbours from scikit-learn (no pynndescent JIT).
- `"tsne"`: openTSNE when installed, else scikit-learn's TSNE. t-SNE has no `transform`:
  new points cannot be added to an existing map.
- `"precomputed"`: coordinates the user brings (`coords=`), validated like the others.

Example:

>>> import numpy as np
>>> pts = np.random.default_rng(0).normal(size=(100, 8)).astype("float32")
>>> frame = project(pts, method="pca", dims=3)
>>> list(frame.columns), len(frame)
(['x', 'y', 'z'], 100)
>>> neighbors(pts, 0, k=3).columns.tolist()
['index', 'distance']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from insight.errors import DataError, UsageError

__all__ = ["METHODS", "METRICS", "project", "neighbors", "as_vectors", "warm_up", "Progress"]

METHODS = ("pca", "umap", "tsne", "precomputed")
UMAP_EPOCHS = 200  # umap-learn's own choice above 10,000 points; it uses 500 below that
TSNE_ITERS = (250, 500)  # openTSNE's early-exaggeration and main iterations (its defaults)
# A progress callback: `progress(fraction_done, what_is_running)`.
Progress = Callable[[float, str], None]
METRICS = ("euclidean", "cosine")
# Up to here UMAP gets exact neighbours (brute force, BLAS, no JIT); above, umap-learn's own
# pynndescent, which is ~10x faster on 50,000 points once compiled (`warm_up(approximate=True)`).
EXACT_KNN_ROWS = 20_000
_AXES = ("x", "y", "z")


def as_vectors(vectors: Any, *, what: str = "vectors") -> np.ndarray:
    """A 2-D float32 array of at least 2 rows and 2 columns, without NaN/Inf.

    Raises:
        DataError: wrong rank, too few rows or columns, non-finite values.
    """
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise DataError(f"The {what} must be a 2-D array (one row per point).",
                        "Flatten or pool each point to one vector.", f"shape={arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise DataError("Projecting needs at least 2 points of at least 2 dimensions.",
                        "Add points, or use the values directly.", f"shape={arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"The {what} must be numeric.", "", f"dtype={arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(
            f"The {what} hold {int(bad.sum()):,} NaN/Inf values in {rows.size:,} rows "
            f"(first: row {int(rows[0])}).", "Drop or fix those rows first.",
            f"shape={arr.shape}")
    return arr


def _check(method: str, dims: int, metric: str) -> None:
    if method not in METHODS:
        raise UsageError(f"Unknown projection method {method!r}. Methods are: "
                         f"{', '.join(METHODS)}.", "", f"method={method!r}")
    if dims not in (2, 3):
        raise UsageError("Projections are 2-D or 3-D.", "", f"dims={dims!r}")
    if metric not in METRICS:
        raise UsageError(f"Unknown metric {metric!r}. Metrics are: {', '.join(METRICS)}.", "",
                         f"metric={metric!r}")


def project(vectors: Any, method: str = "pca", dims: int = 2, seed: int = 0, *,
            metric: str = "euclidean", n_neighbors: int = 15, min_dist: float = 0.1,
            perplexity: float = 30.0, coords: Any = None,
            progress: Progress | None = None) -> pd.DataFrame:
    """Project every row of `vectors` to `dims` dimensions.

    Args:
        vectors: `(n, d)` numbers.
        method: `"pca"`, `"umap"`, `"tsne"` or `"precomputed"`. Defaults to `"pca"`.
        dims: 2 or 3. Defaults to `2`.
        seed: random seed (UMAP, t-SNE). Defaults to `0`.
        metric: `"euclidean"` or `"cosine"` (PCA: cosine normalises rows first). Defaults to
            `"euclidean"`.
        n_neighbors: UMAP's neighbourhood size. Defaults to `15`.
        min_dist: UMAP's minimum distance. Defaults to `0.1`.
        perplexity: t-SNE's perplexity (capped below n/3). Defaults to `30.0`.
        coords: `(n, dims)` coordinates for `"precomputed"`. Defaults to `None`.
        progress: called as `progress(fraction, message)` while UMAP or t-SNE runs (for a
            progress bar). Defaults to `None`.

    Returns:
        A DataFrame with columns `x`, `y` (and `z`), one row per input row, in order.

    Raises:
        UsageError: an unknown method or metric, or dims not 2 or 3.
        DataError: bad vectors (see `as_vectors`) or coordinates of the wrong shape.
    """
    _check(method, dims, metric)
    data = as_vectors(vectors)
    if metric == "cosine" and method in ("pca", "tsne"):
        data = _unit_rows(data)
    if method == "precomputed":
        out = as_vectors(coords, what="coordinates") if coords is not None else None
        if out is None or out.shape != (len(data), dims):
            raise DataError("Precomputed coordinates must have one row per point and one "
                            "column per dimension.", "",
                            f"coords shape={None if out is None else out.shape}, "
                            f"expected=({len(data)}, {dims})")
        attrs: dict[str, Any] = {}
    elif method == "pca":
        out, attrs = _pca(data, dims)
    elif method == "umap":
        out = _umap(data, dims, seed, metric, n_neighbors, min_dist, progress)
        attrs = {"n_epochs": UMAP_EPOCHS}
    else:
        out, attrs = _tsne(data, dims, seed, perplexity, progress)
    frame = pd.DataFrame(np.asarray(out, dtype=np.float32), columns=list(_AXES[:dims]))
    frame.attrs.update(attrs, method=method, metric=metric)
    return frame


def _unit_rows(data: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    return data / np.where(norms > 0, norms, 1)


def _pca(data: np.ndarray, dims: int) -> tuple[np.ndarray, dict[str, Any]]:
    centred = data - data.mean(axis=0, dtype=np.float64).astype(np.float32)
    cov = (centred.T.astype(np.float64) @ centred.astype(np.float64)) / max(len(data) - 1, 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    # A deterministic sign per component: the largest loading is positive.
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])])
    vectors = vectors * np.where(signs == 0, 1, signs)
    k = min(dims, vectors.shape[1])
    out = centred @ vectors[:, :k].astype(np.float32)
    if k < dims:
        out = np.pad(out, ((0, 0), (0, dims - k)))
    total = float(values.clip(min=0).sum()) or 1.0
    ratio = [float(v) / total for v in values[:dims].clip(min=0)]
    return out, {"explained_variance": ratio}


def _umap(data: np.ndarray, dims: int, seed: int, metric: str, n_neighbors: int,
          min_dist: float, progress: Progress | None = None) -> np.ndarray:
    import warnings

    import umap

    report = progress or (lambda fraction, message: None)
    k = min(n_neighbors, len(data) - 1)
    kwargs: dict[str, Any] = {}
    if len(data) <= EXACT_KNN_ROWS:
        # Exact neighbours from scikit-learn (BLAS, no JIT) instead of pynndescent, whose
        # numba compilation is ~25 s of a first UMAP and is not served from numba's disk cache.
        kwargs["precomputed_knn"] = (*_exact_knn(data, k, metric, report), None)
    report(0.15, "UMAP: fuzzy graph and spectral start")
    # 200 epochs at every size (umap-learn uses 500 below 10,000 points): 2.5x faster on 5,000
    # points, the same trustworthiness on the tests' blobs.
    reducer = umap.UMAP(n_components=dims, n_neighbors=k, min_dist=min_dist, metric=metric,
                        random_state=seed, n_epochs=UMAP_EPOCHS,
                        tqdm_kwds={"disable": progress is None, "mininterval": 0.25,
                                   "file": _EpochSink(report)}, **kwargs)
    with warnings.catch_warnings():  # "n_jobs overridden by random_state", "no transform"
        warnings.simplefilter("ignore", UserWarning)
        out = reducer.fit_transform(data)
    report(1.0, "UMAP: done")
    return out


def _exact_knn(data: np.ndarray, k: int, metric: str,
               report: Progress) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row (itself first), in chunks that report progress."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(data)
    chunk = 5_000
    dists, idx = [], []
    for start in range(0, len(data), chunk):
        report(0.15 * start / len(data), f"UMAP: exact neighbours of {len(data):,} points")
        d, i = index.kneighbors(data[start:start + chunk])
        dists.append(d)
        idx.append(i)
    return np.concatenate(idx), np.concatenate(dists)


class _EpochSink:
    """A file for tqdm that turns umap-learn's epoch bar ("37/200") into progress calls."""

    _COUNT = re.compile(r"(\d+)/(\d+)")

    def __init__(self, report: Progress) -> None:
        self._report = report

    def write(self, text: str) -> None:
        found = self._COUNT.findall(text)
        if found:
            done, total = map(int, found[-1])
            self._report(0.15 + 0.85 * done / max(total, 1),
                         f"UMAP: layout epoch {done} of {total}")

    def flush(self) -> None:
        pass


def warm_up(*, approximate: bool = False) -> None:
    """Compile umap-learn's numba functions on a tiny problem (a few seconds, once per
    process; numba's disk cache keeps most of it across processes when `NUMBA_CACHE_DIR`
    points somewhere persistent). `approximate=True` compiles pynndescent's approximate
    neighbours instead (used above `EXACT_KNN_ROWS` points; ~25 s, not served from numba's
    disk cache), with the arguments umap-learn passes."""
    rng = np.random.default_rng(0)
    if not approximate:
        _umap(rng.normal(size=(64, 4)).astype(np.float32), 2, 0, "euclidean", 8, 0.1)
        return
    from sklearn.utils import check_random_state
    from umap.umap_ import nearest_neighbors

    nearest_neighbors(rng.normal(size=(2_000, 8)).astype(np.float32), 15, "euclidean", {},
                      False, check_random_state(0), True, use_pynndescent=True, n_jobs=1)


def _tsne(data: np.ndarray, dims: int, seed: int, perplexity: float,
          progress: Progress | None = None):
    perplexity = float(min(perplexity, max((len(data) - 1) / 3, 1.0)))
    try:
        from openTSNE import TSNE as OpenTSNE
    except ImportError:
        OpenTSNE = None
    if OpenTSNE is not None:
        method = "fft" if dims == 2 and len(data) >= 10_000 else "bh"
        total = sum(TSNE_ITERS)
        done = [0]

        def tick(iteration: int, error: float, embedding: Any) -> bool:
            # openTSNE restarts its count for the main phase; count calls instead.
            done[0] += 25
            if progress is not None:
                progress(min(done[0] / total, 1.0),
                         f"t-SNE: iteration {min(done[0], total)} of {total}")
            return False

        if progress is not None:
            progress(0.0, f"t-SNE: affinities of {len(data):,} points")
        emb = OpenTSNE(n_components=dims, perplexity=perplexity, random_state=seed,
                       early_exaggeration_iter=TSNE_ITERS[0], n_iter=TSNE_ITERS[1],
                       negative_gradient_method=method, n_jobs=1, verbose=False,
                       callbacks=tick if progress is not None else None,
                       callbacks_every_iters=25).fit(data)
        return np.asarray(emb), {"implementation": "openTSNE"}
    from sklearn.manifold import TSNE

    out = TSNE(n_components=dims, perplexity=perplexity, random_state=seed,
               init="pca").fit_transform(data)
    return out, {"implementation": "scikit-learn"}


def neighbors(vectors: Any, i: int, k: int = 10, metric: str = "cosine") -> pd.DataFrame:
    """The `k` nearest points to point `i` in the original space (not the projection).

    Exact: one query is a single matrix-vector product, ~5 ms for 100,000 x 64 here, so no
    approximate index is needed (and none can miss a neighbour).

    Returns:
        Columns `index`, `distance`, nearest first, without `i` itself.

    Raises:
        UsageError: `i` out of range, `k` < 1, unknown metric.
    """
    data = np.asarray(vectors, dtype=np.float32)
    if data.ndim != 2:
        raise DataError("Vectors must be a 2-D array.", "", f"shape={data.shape}")
    if metric not in METRICS:
        raise UsageError(f"Unknown metric {metric!r}. Metrics are: {', '.join(METRICS)}.", "",
                         f"metric={metric!r}")
    n = len(data)
    if not 0 <= int(i) < n:
        raise UsageError(f"Point index out of range: there are {n:,} points.", "",
                         f"i={i!r}")
    if k < 1:
        raise UsageError("k must be at least 1.", "", f"k={k!r}")
    query = data[int(i)]
    if metric == "cosine":
        norms = np.linalg.norm(data, axis=1)
        qn = float(np.linalg.norm(query)) or 1.0
        dist = 1.0 - (data @ query) / (np.where(norms > 0, norms, 1.0) * qn)
    else:
        dist = np.sqrt(np.maximum(np.einsum("ij,ij->i", data, data) - 2 * data @ query
                                  + float(query @ query), 0.0))
    dist[int(i)] = np.inf
    k = min(k, n - 1)
    idx = np.argpartition(dist, k - 1)[:k] if k < n - 1 else np.arange(n)
    idx = idx[np.isfinite(dist[idx])]
    idx = idx[np.lexsort((idx, dist[idx]))]
    return pd.DataFrame({"index": idx.astype(np.int64), "distance": dist[idx].astype(float)})
