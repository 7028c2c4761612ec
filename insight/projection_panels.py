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

import pandas as pd

from insight.errors import UsageError
from insight.figures.projection import projection_figure
from insight.panels import Panel, PanelContext, Param, register
from insight.projection import METHODS, METRICS, neighbors, project

__all__ = ["SOURCES", "projected", "default_color"]

SOURCES = ("layer", "embedding", "file", "logdir")

_SOURCE_PARAMS = (
    Param("source", "str", "layer", SOURCES, "what to project"),
    Param("layer", "str", "", help="layer path (source=layer); empty: the last hidden layer"),
    Param("reduce", "str", "flatten", ("flatten", "mean", "max"),
          "conv outputs: flatten, or pool over space"),
)
_METHOD_PARAMS = (
    Param("method", "str", "pca", METHODS[:3], "projection method"),
    Param("dims", "int", 2, (2, 3), "2-D or 3-D"),
    Param("seed", "int", 0, help="random seed"),
    Param("metric", "str", "euclidean", METRICS, "distance"),
    Param("n_neighbors", "int", 15, help="UMAP neighbourhood size"),
    Param("min_dist", "float", 0.1, help="UMAP minimum distance"),
    Param("perplexity", "float", 30.0, help="t-SNE perplexity"),
)
_VIEW_PARAMS = (
    Param("color", "str", "", help="metadata column to colour by; empty: label, else prediction"),
    Param("search", "str", "", help="highlight points whose metadata contains this"),
    Param("regex", "bool", False, help="search with a regular expression"),
    Param("point", "int", -1, help="selected point (its neighbours are ringed); -1: none"),
    Param("k", "int", 10, help="neighbours of the selected point"),
)


def _default_layer(ctx: PanelContext) -> str:
    from insight.probing import layer_paths

    paths = layer_paths(ctx.loaded.model)
    if not paths:
        raise UsageError("The model has no layers to project.", "", "layers=[]")
    return paths[-2] if len(paths) > 1 else paths[-1]


def _vectors(ctx: PanelContext, source: str, layer: str, reduce: str):
    from insight import embedding_sources as es

    if source == "layer":
        from insight.data import dataset_for

        dataset = ctx.cached("dataset", lambda: dataset_for(ctx.loaded, ctx.data_path))
        return es.layer_vectors(ctx.loaded, dataset, layer or _default_layer(ctx),
                                reduce=reduce)
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


def projected(ctx: PanelContext, *, source: str, layer: str, reduce: str, method: str,
              dims: int, seed: int, metric: str, n_neighbors: int, min_dist: float,
              perplexity: float):
    """`(Vectors, coords)` for the parameters, both memoised through `ctx.cached`."""
    vkey = f"vectors|{source}|{layer}|{reduce}"
    vectors = ctx.cached(vkey, lambda: _vectors(ctx, source, layer, reduce))
    pkey = f"{vkey}|{method}|{dims}|{seed}|{metric}|{n_neighbors}|{min_dist}|{perplexity}"
    coords = ctx.cached(pkey, lambda: project(
        vectors.vectors, method=method, dims=dims, seed=seed, metric=metric,
        n_neighbors=n_neighbors, min_dist=min_dist, perplexity=perplexity))
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


def _projection(ctx: PanelContext, **params: Any):
    base, view = _split(params)
    vectors, coords = projected(ctx, **base)
    color = view["color"] or default_color(vectors.metadata)
    highlight: list[int] = []
    if view["point"] >= 0:
        near = neighbors(vectors.vectors, view["point"], k=view["k"], metric=base["metric"])
        highlight = [view["point"], *near["index"].tolist()]
    what = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}[base["method"]]
    title = f"{what} of {vectors.name}: all {len(coords):,} points"
    return projection_figure(coords, vectors.metadata, color=color, search=view["search"],
                             regex=view["regex"], highlight=highlight, title=title)


def _neighbors(ctx: PanelContext, **params: Any) -> pd.DataFrame:
    base, view = _split(params)
    vectors = ctx.cached(f"vectors|{base['source']}|{base['layer']}|{base['reduce']}",
                         lambda: _vectors(ctx, base["source"], base["layer"], base["reduce"]))
    if view["point"] < 0:
        return pd.DataFrame(columns=["index", "distance"])
    near = neighbors(vectors.vectors, view["point"], k=view["k"], metric=base["metric"])
    meta = vectors.metadata.iloc[near["index"]].reset_index(drop=True)
    return pd.concat([near, meta], axis=1)


def _neighbor_images(ctx: PanelContext, **params: Any):
    from insight.figures.activations import image_grid_figure, message_figure

    base, view = _split(params)
    vectors = ctx.cached(f"vectors|{base['source']}|{base['layer']}|{base['reduce']}",
                         lambda: _vectors(ctx, base["source"], base["layer"], base["reduce"]))
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


_ALL = _SOURCE_PARAMS + _METHOD_PARAMS + _VIEW_PARAMS
_USES = ("model", "data", "logdir", "vectors")
register(Panel("projection", "Embedding projection", "figure", _projection, _ALL,
               description="Any layer's outputs, an Embedding's weights or your vectors, "
                           "projected with PCA, UMAP or t-SNE, every point.", uses=_USES))
register(Panel("neighbor_images", "Neighbour thumbnails", "figure", _neighbor_images, _ALL,
               description="The selected input and its nearest neighbours, as images.",
               uses=_USES))
register(Panel("neighbors", "Nearest neighbours", "table", _neighbors, _ALL,
               description="The selected point's nearest neighbours in the original space.",
               uses=_USES))
