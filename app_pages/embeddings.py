"""Embeddings: project any layer's outputs, an Embedding's weights or your own vectors with
PCA, UMAP or t-SNE (every point), colour and search by metadata, inspect neighbours. A
projector logdir may be remote (s3://...): its config and the files it names are fetched."""

import streamlit as st

from insight.projector.layers import STREAM_POINTS
from insight.ui.cache import get_dataset
from insight.ui.projector import (
    compare_layer,
    projection_controls,
    projector_logdir,
    show_projection,
    vectors_files,
)
from insight.ui.widgets import require_model, require_ref, show_panel

ref = require_ref()
ctx = require_model(ref)
st.title("Embeddings")
ctx = projector_logdir(ctx)  # a remote logdir: its projector files fetched into the cache
params = projection_controls(ctx, key=ref.path)
if params["source"] == "file":
    ctx = vectors_files(ctx)

other = compare_layer(ctx, params, key=ref.path)
if other:
    left, right = st.columns(2, gap="medium")
    with left:
        shown = show_projection(ref, ctx, params, slot="left")
    with right:
        show_projection(ref, ctx, {**params, "layer": other}, slot="right")
else:
    plot_col, side_col = st.columns([4, 1], gap="small")
    with plot_col:
        shown = show_projection(ref, ctx, params)
    if shown:
        with side_col:
            show_panel("selected_point", ref, ctx, **params)
if not shown:
    st.stop()
every = ("Every point is projected." if not params["sample"] else
         f"Sampling is on: at most {params['sample']:,} points, chosen at random (seed 0); "
         "the `row` column gives each point's index in the full set.")
streamed = ""
if params["source"] == "layer" and getattr(get_dataset(ctx), "stream", None) is not None:
    streamed = (" A layer's vectors are read from the stream batch by batch, its inputs not "
                "kept: the first `--max-examples` examples (2,048 when not given, those every "
                f"page reads), never more than {STREAM_POINTS:,}.")
st.caption(f"{every}{streamed} Drag to zoom; click a point to see it beside the plot and list "
           "its neighbours in the original space, not in the projection.")
if params["point"] >= 0:
    st.subheader(f"Nearest neighbours of point {params['point']}")
    show_panel("neighbor_images", ref, ctx, **params)
    show_panel("neighbors", ref, ctx, **params)
