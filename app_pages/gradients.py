"""Gradients: per-layer gradient norms by depth (vanishing or exploding), one layer's weight
and gradient histograms, and attribution maps of one example."""

import streamlit as st

from insight.panels.gradients import (
    GRADIENT_BATCH,
    METHOD_TITLES,
    attribution_methods,
    weighted_layers,
)
from insight.ui.doctor import page_findings
from insight.ui.widgets import param_of, probe_page, show_panel

ref, ctx, ds = probe_page("Gradients", "gradients")
st.caption(f"One batch: the first {min(len(ds), GRADIENT_BATCH)} examples; "
           + ("gradients of the loss against their labels." if ds.y is not None else
              "no labels, so gradients of the predicted class's score."))
page_findings("gradients", ref, ctx)  # the doctor's verdicts, marked on the chart too
norms_slot = st.container()  # full width: a big model's layers need it
with st.expander("Gradient norms per layer (numbers)"):
    table = show_panel("gradient_table", ref, ctx)
with norms_slot:
    show_panel("gradient_norms", ref, ctx)
layer_col, _ = st.columns([1, 2])
weighted = [] if table is None else weighted_layers(table)
layer = layer_col.selectbox("Layer", weighted, key=f"grad_layer|{ref.path}",
                            help="The layers with trainable weights.")
if layer:
    show_panel("weight_histograms", ref, ctx, layer=layer)

st.subheader("Attribution: which parts of the input drive the prediction")
method_col, example_col = st.columns(2)
method = method_col.selectbox("Method", attribution_methods(ctx.loaded),
                              format_func=METHOD_TITLES.get, key="grad_method")
example = example_col.number_input(f"Example (0–{len(ds) - 1})", 0, len(ds) - 1,
                                   param_of("attribution", "example").default,
                                   key=f"grad_example|{ref.path}")
show_panel("attribution", ref, ctx, method=method, example=int(example))
