"""The projector's panels: the projection scatter and the nearest-neighbour table.

Sources: `layer` (a layer's outputs over the dataset), `embedding` (an Embedding layer's
weights with its vocabulary), `file` (`ctx.vectors_path` with `ctx.metadata_path`), `logdir`
(the first embedding of a TensorBoard projector logdir). Expensive steps (the vectors, the
projection) go through `ctx.cached`, so a colour or a search does not recompute a UMAP.

Example:

>>> from insight.panels import build_panel, PanelContext
>>> fig = build_panel("projection", PanelContext(loaded, data_path),
...                   layer="dense1", method="pca")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insight.errors import UsageError
from insight.figures.projector import projection_figure
from insight.panels.probe import output_layers
from insight.panels.registry import Panel, PanelContext, Param, register
from insight.projector.projection import METHODS, METRICS, neighbors, project

__all__ = ["SOURCES", "SOURCE_TITLES", "METHOD_TITLES", "projected", "source_vectors",
           "default_color", "default_layer"]

SOURCES = ("layer", "embedding", "file", "logdir")
SOURCE_TITLES = {"layer": "A layer's outputs", "embedding": "An Embedding layer's weights",
                 "file": "A vectors file", "logdir": "The logdir's projector config"}
METHOD_TITLES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}

_SOURCE_PARAMS = (
    Param("source", "str", "layer", SOURCES, "what to project"),
    Param("layer", "str", "", help="layer path (source=layer); empty: the last hidden layer"),
    Param("reduce", "str", "flatten", ("flatten", "mean", "max"),
          "Flatten each output, or pool it over space (one value per channel)"),
    Param("sample", "int", 0, help="0 projects every point. A positive number projects a "
          "seeded random sample of that many; the plot's title then says so.",
          min_value=0, step=1000),
)
_METHOD_PARAMS = (
    Param("method", "str", "pca", METHODS[:3], "projection method"),
    Param("dims", "int", 2, (2, 3), "2-D or 3-D"),
    Param("seed", "int", 0, help="random seed", min_value=0, max_value=2**32 - 1),
    Param("metric", "str", "euclidean", METRICS, "distance"),
    Param("n_neighbors", "int", 15, help="UMAP neighbourhood size", min_value=2,
          max_value=200),
    Param("min_dist", "float", 0.1, help="UMAP minimum distance", min_value=0.0,
          max_value=1.0, step=0.05),
    Param("perplexity", "float", 30.0, help="t-SNE perplexity", min_value=2.0,
          max_value=100.0, step=1.0),
)
_VIEW_PARAMS = (
    Param("color", "str", "", help="metadata column to colour by; empty: label, else prediction"),
    Param("search", "str", "", help="highlight points whose metadata contains this"),
    Param("regex", "bool", False, help="search with a regular expression"),
    Param("point", "int", -1, help="selected point (its neighbours are ringed); -1: none"),
    Param("k", "int", 10, help="neighbours of the selected point"),
)


def default_layer(ctx: PanelContext) -> str:
    """The layer projected when `layer` is empty: the last hidden one, the last that is not
    one of the model's outputs (with two heads, the layer before both; alone, the last).

    Raises:
        UsageError: the model has no layers.
    """
    from insight.model.layers import layer_paths

    paths = layer_paths(ctx.loaded.model)
    if not paths:
        raise UsageError("The model has no layers to project.", "", "layers=[]")
    outputs = output_layers(ctx.loaded.model)
    hidden = [p for p in paths if p not in outputs]
    return hidden[-1] if hidden else paths[-1]


def _vectors(ctx: PanelContext, source: str, layer: str, reduce: str):
    from insight.projector import sources as es

    if source == "layer":
        from insight.data import dataset_for

        dataset = ctx.cached("dataset", lambda: dataset_for(ctx.loaded, ctx.data_path))
        # a stream is read batch by batch up to its cap (the layer's vectors kept, not the
        # inputs), the progress bar fed as the Activations page's is
        return es.layer_vectors(ctx.loaded, dataset, layer or default_layer(ctx),
                                reduce=reduce, progress=ctx.progress)
    if source == "embedding":
        return es.embedding_vectors(ctx.loaded, layer or None)
    if source == "file":
        if ctx.vectors_path is None:
            raise UsageError("No vectors file given.", "Enter a .npy or .tsv path.",
                             "vectors=None")
        return es.file_vectors(ctx.vectors_path, ctx.metadata_path)
    if ctx.logdir is None:
        raise UsageError("No logdir given.", "Set the logdir in the sidebar.", "logdir=None")
    return es.projector_vectors(ctx.logdir)[0]


def source_vectors(ctx: PanelContext, *, source: str, layer: str, reduce: str, sample: int = 0,
                   seed: int = 0, **_: Any):
    """The `Vectors` to project, memoised through `ctx.cached`; a seeded random subset of
    `sample` rows when `0 < sample < n` (its metadata then gains a `row` column: the index
    of each point in the full set)."""
    vkey = f"vectors|{source}|{layer}|{reduce}"
    vectors = ctx.cached(vkey, lambda: _vectors(ctx, source, layer, reduce))
    if sample < 0:
        raise UsageError("The sample size must be 0 (every point) or positive.", "",
                         f"sample={sample!r}")
    if not 0 < sample < len(vectors.vectors):
        return vectors
    return ctx.cached(f"{vkey}|sample={sample}|{seed}", lambda: _subset(vectors, sample, seed))


def _subset(vectors, sample: int, seed: int):
    from dataclasses import replace

    rows = np.sort(np.random.default_rng(seed).choice(len(vectors.vectors), sample,
                                                      replace=False))
    meta = vectors.metadata.iloc[rows].reset_index(drop=True)
    meta.insert(0, "row", rows)
    return replace(vectors, vectors=vectors.vectors[rows], metadata=meta,
                   images=None if vectors.images is None else vectors.images[rows],
                   name=vectors.name, total=len(vectors.vectors))


def projected(ctx: PanelContext, *, source: str, layer: str, reduce: str, method: str,
              dims: int, seed: int, metric: str, n_neighbors: int, min_dist: float,
              perplexity: float, sample: int = 0):
    """`(Vectors, coords)` for the parameters, both memoised through `ctx.cached`."""
    vectors = source_vectors(ctx, source=source, layer=layer, reduce=reduce, sample=sample,
                             seed=seed)
    pkey = (f"vectors|{source}|{layer}|{reduce}|{sample}|{method}|{dims}|{seed}|{metric}|"
            f"{n_neighbors}|{min_dist}|{perplexity}")
    coords = ctx.cached(pkey, lambda: project(
        vectors.vectors, method=method, dims=dims, seed=seed, metric=metric,
        n_neighbors=n_neighbors, min_dist=min_dist, perplexity=perplexity,
        progress=ctx.progress))
    return vectors, coords


def default_color(meta: pd.DataFrame) -> str | None:
    """The column to colour by when none is chosen."""
    for name in ("label", "predicted", "token"):
        if name in meta.columns:
            return name
    return next(iter(meta.columns), None)


def _split(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    view = {p.name for p in _VIEW_PARAMS}
    return ({k: v for k, v in params.items() if k not in view},
            {k: v for k, v in params.items() if k in view})


def _with_point(ctx: PanelContext, params: dict[str, Any]):
    """`(base, view, vectors)`; a selected point outside the points shown (another file, a
    smaller sample) counts as no selection."""
    base, view = _split(params)
    vectors = source_vectors(ctx, **base)
    if not 0 <= view["point"] < len(vectors.vectors):
        view = {**view, "point": -1}
    return base, view, vectors


def _projection(ctx: PanelContext, **params: Any):
    base, view, _ = _with_point(ctx, params)
    vectors, coords = projected(ctx, **base)
    color = view["color"] or default_color(vectors.metadata)
    highlight: list[int] = []
    if view["point"] >= 0:
        near = neighbors(vectors.vectors, view["point"], k=view["k"], metric=base["metric"])
        highlight = [view["point"], *near["index"].tolist()]
    what = METHOD_TITLES[base["method"]]
    if vectors.total > len(coords):
        title = (f"{what} of {vectors.name}: a random sample of {len(coords):,} of "
                 f"{vectors.total:,} points (seed {base['seed']})")
    else:
        title = f"{what} of {vectors.name}: all {len(coords):,} points"
    return projection_figure(coords, vectors.metadata, color=color, search=view["search"],
                             regex=view["regex"], highlight=highlight, title=title)


def _neighbors(ctx: PanelContext, **params: Any) -> pd.DataFrame:
    base, view, vectors = _with_point(ctx, params)
    if view["point"] < 0:
        return pd.DataFrame(columns=["index", "distance"])
    near = neighbors(vectors.vectors, view["point"], k=view["k"], metric=base["metric"])
    meta = vectors.metadata.iloc[near["index"]].reset_index(drop=True)
    return pd.concat([near, meta], axis=1)


def _neighbor_images(ctx: PanelContext, **params: Any):
    from insight.figures.activations import image_grid_figure, message_figure

    base, view, vectors = _with_point(ctx, params)
    title = "Selected point and its neighbours"
    if view["point"] < 0 or vectors.images is None:
        why = "Click a point." if view["point"] < 0 else "The inputs are not images."
        return message_figure(why, title=title, height=120)
    near = neighbors(vectors.vectors, view["point"], k=view["k"], metric=base["metric"])
    idx = [view["point"], *near["index"].tolist()]
    meta = vectors.metadata
    label = default_color(meta)
    captions = [f"#{i}" + (f" {meta[label].iloc[i]}" if label else "") for i in idx]
    captions[0] = "selected " + captions[0]
    return image_grid_figure(vectors.images[idx], captions, title=title, cols=len(idx))


def _selected_point(ctx: PanelContext, **params: Any):
    """The clicked point's input (for images) and metadata, for beside the scatter."""
    from insight.figures.activations import image_grid_figure, message_figure

    base, view, vectors = _with_point(ctx, params)
    point = view["point"]
    if not 0 <= point < len(vectors.vectors):
        return message_figure("Click a point to see its input and metadata here.",
                              title="Selected point", height=160, wrap=28)
    row = vectors.metadata.iloc[point] if len(vectors.metadata.columns) else {}
    lines = [f"{k}: {_short(v)}" for k, v in list(dict(row).items())[:8]]
    if vectors.images is None:
        return message_figure(" · ".join(lines) or "No metadata.", title=f"Point {point}",
                              height=160, wrap=28)
    fig = image_grid_figure(vectors.images[[point]], [""],
                            title="<br>".join([f"Point {point}", *lines]), cols=1)
    fig.update_layout(height=300 + 18 * len(lines), title_font_size=13)
    return fig


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float | np.floating) else str(value)[:40]


_ALL = _SOURCE_PARAMS + _METHOD_PARAMS + _VIEW_PARAMS
_USES = ("model", "data", "logdir", "vectors")
register(Panel("projection", "Embedding projection", "figure", _projection, _ALL,
               description="Any layer's outputs, an Embedding's weights or your vectors, "
                           "projected with PCA, UMAP or t-SNE, every point.", uses=_USES))
register(Panel("neighbor_images", "Neighbour thumbnails", "figure", _neighbor_images, _ALL,
               description="The selected input and its nearest neighbours, as images.",
               uses=_USES))
register(Panel("selected_point", "Selected point", "figure", _selected_point, _ALL,
               description="The clicked point's input (a thumbnail for images) and metadata.",
               uses=_USES))
register(Panel("neighbors", "Nearest neighbours", "table", _neighbors, _ALL,
               description="The selected point's nearest neighbours in the original space.",
               uses=_USES))
