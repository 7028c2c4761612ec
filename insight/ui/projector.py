"""Widgets of the Embeddings page: source and method controls, the selectable scatter."""

from __future__ import annotations

from typing import Any

import streamlit as st

from insight.model.layers import iter_layers, layer_paths
from insight.panels.registry import PanelContext
from insight.ui.cache import ModelRef, panel
from insight.ui.feedback import progress_bar, show_error

__all__ = ["projection_controls", "show_projection", "compare_layer"]

_LABELS = {"layer": "A layer's outputs", "embedding": "An Embedding layer's weights",
           "file": "A vectors file", "logdir": "The logdir's projector config"}
_METHODS = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
_COLOURS = {"layer": ["label", "predicted", "correct", "confidence"], "embedding": ["token"]}


def _spatial(ctx: PanelContext, layer: str) -> bool:
    for path, lyr, _ in iter_layers(ctx.loaded.model):
        if path == layer:
            try:
                return len(lyr.output.shape) > 2
            except (AttributeError, ValueError):
                return True
    return False


def _sources(ctx: PanelContext) -> list[str]:
    out = ["layer"]
    if any(type(layer).__name__ == "Embedding" for _, layer, _ in iter_layers(ctx.loaded.model)):
        out.append("embedding")
    out.append("file")
    if ctx.logdir is not None and (ctx.logdir / "projector_config.pbtxt").is_file():
        out.append("logdir")
    return out


def projection_controls(ctx: PanelContext, *, key: str) -> dict[str, Any]:
    """Draw the controls; returns the `projection` panel's parameters."""
    sources = _sources(ctx)
    top = st.columns([2, 2, 1, 1])
    source = top[0].selectbox("Project", sources, format_func=_LABELS.get,
                              key=f"proj_source|{key}")
    layer, reduce = "", "flatten"
    if source == "layer":
        paths = layer_paths(ctx.loaded.model)
        layer = top[1].selectbox("Layer", paths, index=max(len(paths) - 2, 0),
                                 key=f"proj_layer|{key}")
        if _spatial(ctx, layer):
            reduce = top[2].selectbox("Conv outputs", ["flatten", "mean", "max"],
                                      key=f"proj_reduce|{key}",
                                      help="Flatten each output, or pool it over space "
                                           "(one value per channel)")
    with st.form(f"proj_form|{key}", border=False):
        cols = st.columns(7)
        method = cols[0].selectbox("Method", list(_METHODS), format_func=_METHODS.get,
                                   key=f"proj_method|{key}")
        dims = cols[1].selectbox("Dimensions", [2, 3], key=f"proj_dims|{key}")
        metric = cols[2].selectbox("Distance", ["euclidean", "cosine"], key=f"proj_metric|{key}")
        n_neighbors = cols[3].number_input("UMAP neighbours", 2, 200, 15,
                                           key=f"proj_nn|{key}")
        min_dist = cols[4].number_input("UMAP min dist", 0.0, 1.0, 0.1, 0.05,
                                        key=f"proj_md|{key}")
        perplexity = cols[5].number_input("t-SNE perplexity", 2.0, 100.0, 30.0, 1.0,
                                          key=f"proj_px|{key}")
        sample = cols[6].number_input("Sample points", 0, None, 0, 1000, key=f"proj_sample|{key}",
                                      help="0 projects every point. A positive number projects "
                                           "a seeded random sample of that many; the plot's "
                                           "title then says so.")
        st.form_submit_button("Project")
    view = st.columns([2, 3, 1])
    if source in _COLOURS:
        color = view[0].selectbox("Colour by", _COLOURS[source], key=f"proj_color|{key}|{source}")
    else:
        color = view[0].text_input("Colour by (metadata column)", key=f"proj_color|{key}|{source}",
                                   placeholder="a column of the metadata file")
    search = view[1].text_input("Search metadata", key=f"proj_search|{key}",
                                placeholder="substring; matches stay bright")
    regex = view[2].checkbox("Regex", key=f"proj_regex|{key}")
    return {"source": source, "layer": layer, "reduce": reduce, "sample": int(sample),
            "method": method,
            "dims": int(dims), "seed": 0, "metric": metric, "n_neighbors": int(n_neighbors),
            "min_dist": float(min_dist), "perplexity": float(perplexity),
            "color": color.strip(), "search": search.strip(), "regex": bool(regex),
            "point": int(st.session_state.get(_point_key(key, source, int(sample)), -1)),
            "k": 10}


def _point_key(key: str, source: str, sample: int) -> str:
    """Where the selected point is kept: per source and sample size (indices change meaning
    with either; across layers they name the same example)."""
    return f"proj_point|{key}|{source}|{sample}"


def compare_layer(ctx: PanelContext, params: dict[str, Any], *, key: str) -> str:
    """A second layer to project the same points with, side by side; `""` for none."""
    if params["source"] != "layer":
        return ""
    others = [p for p in layer_paths(ctx.loaded.model) if p != params["layer"]]
    choice = st.selectbox("Compare with layer", ["(none)", *others], key=f"proj_compare|{key}",
                          help="Project the same points through a second layer; the selected "
                               "point and its neighbours are ringed in both.")
    return "" if choice == "(none)" else choice


def show_projection(ref: ModelRef, ctx: PanelContext, params: dict[str, Any], *,
                    slot: str = "main") -> bool:
    """The scatter; clicking a point selects it (its neighbours are then ringed)."""
    try:
        with st.spinner(f"Projecting with {_METHODS[params['method']]}…"), \
                progress_bar() as ctx.progress:
            fig = panel("projection", ref, ctx, **params)
    except Exception as exc:
        show_error(exc)
        return False
    finally:
        ctx.progress = None
    event = st.plotly_chart(fig, theme=None, on_select="rerun", selection_mode="points",
                            key=f"proj_chart|{ref.path}|{slot}", config={"displaylogo": False})
    from insight.ui.share import share_control

    share_control("projection", ref, ctx, params, fig, key=f"projection|{slot}")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if points:
        chosen = int(points[0]["customdata"][0])
        if chosen != params["point"]:
            st.session_state[_point_key(ref.path, params["source"], params["sample"])] = chosen
            st.rerun()
    return True
