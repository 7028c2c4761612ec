"""Widgets of the Embeddings page: source and method controls, the vectors files, the
selectable scatter.

Defaults, choices, ranges, titles and help come from the `projection` panel's `Param` schema
(`insight.panels.projector`), so a widget and a deep link always mean the same thing.

A remote logdir's projector config (and the files it names, nothing else) is fetched into
insight's cache (`insight.projector.sources.fetch_projector`) and read from there.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from insight.errors import InsightError, UsageError
from insight.launch import LaunchOptions
from insight.model.layers import iter_layers, layer_paths
from insight.panels.projector import METHOD_TITLES, SOURCE_TITLES, default_layer
from insight.panels.registry import PanelContext, Param
from insight.paths import typed_path
from insight.projector.sources import fetch_projector
from insight.remote import is_remote
from insight.ui.cache import ModelRef, get_dataset, panel
from insight.ui.feedback import progress_bar, show_error
from insight.ui.scatter_component import scatter_chart
from insight.ui.widgets import param_of

__all__ = ["projection_controls", "vectors_files", "show_projection", "compare_layer",
           "projector_logdir"]

CONFIG_TTL_S = 30  # a remote projector config is looked at again after this

_COLOURS = {"layer": ["label", "predicted", "correct", "confidence"], "embedding": ["token"]}
# The settings each method has, shown only while it is picked: (parameter, label, key).
_METHOD_SETTINGS = {"umap": (("n_neighbors", "Neighbours", "nn"),
                             ("min_dist", "Min distance", "md")),
                    "tsne": (("perplexity", "Perplexity", "px"),)}
_METHOD_SETTINGS_ALL = [s for settings in _METHOD_SETTINGS.values() for s in settings]


@st.cache_resource(ttl=CONFIG_TTL_S, max_entries=8, show_spinner=False)
def _fetched_projector(url: str) -> Path | None:
    return fetch_projector(url)  # errors are not cached: the next rerun tries again


def projector_logdir(ctx: PanelContext) -> PanelContext:
    """`ctx` with the sidebar's logdir as the projector reads it: a remote one replaced by
    its fetched local copy (`None` when it has no projector config). A remote logdir that
    cannot be read is said here; the page goes on with the other sources."""
    logdir = st.session_state.get("insight_logdir")
    if not is_remote(logdir):
        return ctx
    try:
        with st.spinner(f"Looking for a projector config in {logdir}…"):
            local = _fetched_projector(logdir)
    except InsightError as exc:
        st.warning(f"**The logdir's projector config cannot be read.** {exc}",
                   icon=":material/cloud_off:")
        local = None
    return replace(ctx, logdir=local)


def _param(name: str) -> Param:
    return param_of("projection", name)


def _number(column: Any, label: str, name: str, *, key: str, **kwargs: Any) -> Any:
    """A number input with the parameter's range, step and default."""
    p = _param(name)
    return column.number_input(label, p.min_value, p.max_value, p.default, p.step, key=key,
                               **kwargs)


def _spatial(ctx: PanelContext, layer: str) -> bool:
    for path, lyr, _ in iter_layers(ctx.loaded.model):
        if path == layer:
            try:
                return len(lyr.output.shape) > 2
            except (AttributeError, ValueError):
                return True
    return False


def _sources(ctx: PanelContext) -> list[str]:
    """The sources this model and logdir offer, in the schema's order."""
    from insight.ui.sidebar import launch_options

    opts = launch_options()
    # Served beyond localhost without --root, no file can be typed in: no "file" source.
    offered = {"layer"} if opts.locked and not opts.root else {"layer", "file"}
    if any(type(layer).__name__ == "Embedding" for _, layer, _ in iter_layers(ctx.loaded.model)):
        offered.add("embedding")
    if ctx.logdir is not None and (ctx.logdir / "projector_config.pbtxt").is_file():
        offered.add("logdir")
    return [s for s in _param("source").choices if s in offered]


def projection_controls(ctx: PanelContext, *, key: str) -> dict[str, Any]:
    """Draw the controls; returns the `projection` panel's parameters.

    The method is picked outside the form, so that the form shows only that method's
    settings (UMAP's neighbours and minimum distance, t-SNE's perplexity; PCA has none);
    the others keep their defaults in the parameters."""
    top = st.columns([3, 3, 2, 2])
    source = top[0].selectbox("Project", _sources(ctx), format_func=SOURCE_TITLES.get,
                              key=f"proj_source|{key}")
    layer, reduce = _param("layer").default, _param("reduce").default
    if source == "layer":
        paths = layer_paths(ctx.loaded.model)
        layer = top[1].selectbox("Layer", paths, index=paths.index(default_layer(ctx)),
                                 key=f"proj_layer|{key}")
        if _spatial(ctx, layer):
            reduce = top[2].selectbox("Conv outputs", _param("reduce").choices,
                                      key=f"proj_reduce|{key}", help=_param("reduce").help)
    method = top[3].selectbox("Method", _param("method").choices,
                              format_func=METHOD_TITLES.get, key=f"proj_method|{key}",
                              help=_param("method").help)
    settings = _METHOD_SETTINGS.get(method, ())
    values = {name: _param(name).default for name, *_ in _METHOD_SETTINGS_ALL}
    with st.form(f"proj_form|{key}", border=False):
        cols = st.columns([2, 3] + [2] * len(settings) + [2, 2], vertical_alignment="bottom")
        dims = cols[0].selectbox("Dimensions", _param("dims").choices, key=f"proj_dims|{key}")
        metric = cols[1].selectbox("Distance", _param("metric").choices,
                                   key=f"proj_metric|{key}", help=_param("metric").help)
        for col, (name, label, short) in zip(cols[2:], settings, strict=False):
            values[name] = _number(col, label, name, key=f"proj_{short}|{key}",
                                   help=_param(name).help)
        sample = _number(cols[-2], "Sample points", "sample", key=f"proj_sample|{key}",
                         help=_param("sample").help)
        cols[-1].form_submit_button("Project", width="stretch")
    view = st.columns([2, 3, 1])
    options = _colour_options(ctx, source)
    if options:
        color = view[0].selectbox("Colour by", options, key=f"proj_color|{key}|{source}")
    else:
        color = view[0].text_input("Colour by (metadata column)", key=f"proj_color|{key}|{source}",
                                   placeholder="a column of the metadata file")
    search = view[1].text_input("Search metadata", key=f"proj_search|{key}",
                                placeholder="substring; matches stay bright")
    regex = view[2].checkbox("Regex", key=f"proj_regex|{key}")
    return {"source": source, "layer": layer, "reduce": reduce, "sample": int(sample),
            "method": method, "dims": int(dims), "seed": _param("seed").default,
            "metric": metric, "n_neighbors": int(values["n_neighbors"]),
            "min_dist": float(values["min_dist"]), "perplexity": float(values["perplexity"]),
            "color": color.strip(), "search": search.strip(), "regex": bool(regex),
            "point": int(st.session_state.get(_point_key(key, source, int(sample)), -1)),
            "k": _param("k").default}


def _colour_options(ctx: PanelContext, source: str) -> list[str]:
    """The metadata columns a source has: a layer's `label` and `correct` only with labels."""
    options = _COLOURS.get(source, [])
    if source == "layer":
        try:
            labelled = get_dataset(ctx).y is not None
        except Exception:  # noqa: BLE001  data that cannot be used: the projection says why
            labelled = True
        options = options if labelled else [c for c in options if c not in ("label", "correct")]
    return options


def vectors_files(ctx: PanelContext) -> PanelContext:
    """The vectors file (and its metadata) to project, typed in; returns a context that
    reads them. Both paths follow the server's policy (`insight.paths.typed_path`): inside
    `--root`, and refused (said here, never read) outside it."""
    from insight.ui.sidebar import launch_options

    opts = launch_options()
    where = f" Paths stay inside {opts.root}; relative ones start there." if opts.root else ""
    vec_col, meta_col = st.columns(2)
    vectors = vec_col.text_input("Vectors (.npy or .tsv)", key="proj_vectors_path",
                                 help="One vector per row." + where)
    metadata = meta_col.text_input("Metadata TSV (optional)", key="proj_metadata_path",
                                   help="One label per vector, or a header row then columns."
                                   + where)
    return replace(ctx, vectors_path=_typed("Vectors", vectors, opts),
                   metadata_path=_typed("Metadata", metadata, opts))


def _typed(label: str, value: str, opts: LaunchOptions) -> Path | None:
    if not value.strip():
        return None
    try:
        path = typed_path(value, root=opts.root, locked=opts.locked)
    except UsageError as exc:
        st.error(f"**{label}: refused.** {exc}", icon=":material/block:")
        return None
    if is_remote(value.strip()):
        return path  # the checked URL, whole (a Path would fold its `//`)
    return path if opts.root else Path(value.strip()).expanduser()


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
        with st.spinner(f"Projecting with {METHOD_TITLES[params['method']]}…"), \
                progress_bar() as progress:
            fig = panel("projection", ref, replace(ctx, progress=progress), **params)
    except Exception as exc:
        show_error(exc)
        return False
    # Kept mounted between reruns: a colour change redraws the points, not the chart.
    points = scatter_chart(fig, key=f"proj_chart|{ref.path}|{slot}")
    from insight.ui.share import share_control

    share_control("projection", ref, ctx, params, fig, key=f"projection|{slot}")
    if points:
        chosen = points[0]
        if chosen != params["point"]:
            st.session_state[_point_key(ref.path, params["source"], params["sample"])] = chosen
            st.rerun()
    return True
