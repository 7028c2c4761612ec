"""Activations: per-layer statistics over the data (dead and saturated layers flagged),
histograms by depth, one example through one layer, and the examples that drive one unit."""

from dataclasses import replace

import streamlit as st

from insight.panels.activations import RIDGE_FRAME, RIDGE_ROWS, STATS_EXAMPLES, layer_units
from insight.ui.doctor import page_findings
from insight.ui.feedback import progress_bar
from insight.ui.widgets import param_of, probe_page, show_panel

ref, ctx, ds = probe_page("Activations", "activations")
st.caption(f"Statistics over {min(len(ds), STATS_EXAMPLES):,} examples"
           + (f" (the first of {len(ds):,})." if len(ds) > STATS_EXAMPLES else "."))
with progress_bar() as progress:  # one pass over the data (streamed shards: batch by batch)
    table = show_panel("activation_table", ref, replace(ctx, progress=progress))
if table is None:
    st.stop()
page_findings("activations", ref, ctx, info=False)  # the flags' warnings, with their fixes

by = param_of("activation_ridge", "by").default
if len(table) > RIDGE_ROWS:  # a big model: blocks, or every layer in a scrolling frame
    by = st.radio("Histogram rows", ["auto", "layer"], horizontal=True,
                  format_func={"auto": "one per block", "layer": "every layer"}.get,
                  key=f"act_ridge_by|{ref.path}", help=param_of("activation_ridge", "by").help)
with st.container(height=RIDGE_FRAME if by == "layer" and len(table) > RIDGE_ROWS
                  else "content", border=False):
    show_panel("activation_ridge", ref, ctx, by=by)

st.subheader("One example through one layer")
layer_col, example_col, unit_col = st.columns(3)
layer = layer_col.selectbox("Layer", table["layer"].tolist(), key=f"act_layer|{ref.path}")
units = layer_units(table, layer)
example = example_col.number_input(f"Example (0–{len(ds) - 1})", 0, len(ds) - 1,
                                   param_of("example_input", "example").default,
                                   key=f"act_example|{ref.path}")
unit = unit_col.number_input(f"Unit of {layer} (0–{units - 1})", 0, units - 1,
                             param_of("top_examples", "unit").default,
                             key=f"act_unit|{ref.path}|{layer}")
input_col, maps_col = st.columns([1, 3], gap="large")
with input_col:
    show_panel("example_input", ref, ctx, example=int(example))
with maps_col:
    show_panel("layer_activations", ref, ctx, layer=layer, example=int(example))
show_panel("top_examples", ref, ctx, layer=layer, unit=int(unit))
