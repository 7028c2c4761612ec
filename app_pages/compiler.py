"""XLA compiler: the model's forward pass (or a train step) compiled by XLA for one batch: the
HLO before and after optimisation, what fusion did, each layer's instructions, the graph of
one computation, and the step time compiled vs eager."""

import streamlit as st

from insight.panels.compiler import BATCH
from insight.ui.cache import panel
from insight.ui.compiler import (
    function_picker,
    graph_controls,
    hlo_filters,
    hlo_table,
    hlo_view,
    step_time,
    summary_metrics,
)
from insight.ui.feedback import show_error
from insight.ui.widgets import require_dataset, require_model, require_ref, show_panel


def card(name: str, **params):
    """A card panel's dict (the page lays it out), or its error shown and `None`."""
    try:
        return panel(name, ref, ctx, **params)
    except Exception as exc:
        show_error(exc)
        return None


ref = require_ref()
ctx = require_model(ref)
st.title("XLA compiler")
ds = require_dataset(ctx)
function = function_picker(ref, ds)
st.caption(f"Compiled with `jit_compile=True` for one batch of {min(len(ds), BATCH)} examples"
           + ("" if ds.y is not None else "; no labels, so no train step")
           + ". *Before optimisation* is the HLO TensorFlow hands to XLA; *after* is what XLA "
           "runs, its elementwise ops fused into kernels.")
with st.spinner("Compiling with XLA…"):
    summary = card("xla_summary", function=function)
if summary is None:
    st.stop()
summary_metrics(summary)

counts_col, fusions_col = st.columns(2, gap="large")
with counts_col:
    show_panel("xla_op_counts", ref, ctx, function=function)
with fusions_col:
    st.markdown("**Fusions**: each runs as one kernel; *members* are the ops fused into it.")
    hlo_table("xla_fusions", ref, ctx, function=function)

st.subheader("From a layer to its HLO")
filters = hlo_filters(ref, summary)
layer, stage, search = filters["layer"], filters["stage"], filters["search"]
if not layer and not search:
    with st.expander("Instructions per layer", expanded=True):
        show_panel("xla_layers", ref, ctx, function=function)
        st.caption("A layer with no instruction after optimisation computes nothing there "
                   "(Dropout at inference) or was folded into a neighbour (Flatten becomes a "
                   "bitcast, ZeroPadding2D the convolution's padding).")
hlo_table("xla_instructions", ref, ctx, function=function, **filters)
hlo = card("xla_hlo", function=function, **filters)
if hlo is not None:
    hlo_view(hlo, layer=layer, search=search,
             file_name=f"{summary['model']}.{function}.{stage}.txt")

st.subheader("Compiled vs eager")
step_time(ref, ctx, function)

st.subheader("Graph of a computation")
show_panel("xla_graph", ref, ctx, function=function, layer=layer,
           **graph_controls(ref, summary, function))
if layer:
    st.caption(f"Outlined: the instructions of {layer}, the layer picked above.")
