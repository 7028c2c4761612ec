"""XLA compiler: the model's forward pass (or a train step) compiled by XLA for one batch: the
HLO before and after optimisation, what fusion did, each layer's instructions, the graph of
one computation, and the step time compiled vs eager."""

import streamlit as st

from insight.panels.compiler import BATCH
from insight.ui.cache import panel
from insight.ui.compiler import function_picker, hlo_view, stage_picker, step_time, summary_metrics
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
    show_panel("xla_fusions", ref, ctx, function=function)

st.subheader("From a layer to its HLO")
layer_col, stage_col, search_col = st.columns([2, 2, 3])
layer = layer_col.selectbox("Layer", ["", *summary["layers"]], key=f"xla_layer|{ref.path}",
                            format_func=lambda v: v or "(all layers)")
with stage_col:
    stage = stage_picker("Stage", key="xla_stage")
search = search_col.text_input("Search the instructions", key="xla_search",
                               placeholder="e.g. convolution, fusion, Relu")
if not layer and not search:
    with st.expander("Instructions per layer", expanded=True):
        show_panel("xla_layers", ref, ctx, function=function)
        st.caption("A layer with no instruction after optimisation computes nothing there "
                   "(Dropout at inference) or was folded into a neighbour (Flatten becomes a "
                   "bitcast, ZeroPadding2D the convolution's padding).")
show_panel("xla_instructions", ref, ctx, function=function, stage=stage, layer=layer,
           search=search)
hlo = card("xla_hlo", function=function, stage=stage, layer=layer, search=search)
if hlo is not None:
    hlo_view(hlo, layer=layer, search=search,
             file_name=f"{summary['model']}.{function}.{stage}.txt")

st.subheader("Compiled vs eager")
step_time(ref, ctx, function)

st.subheader("Graph of a computation")
graph_stage_col, comp_col, detail_col = st.columns([2, 3, 2])
with graph_stage_col:
    graph_stage = stage_picker("Stage ", key="xla_graph_stage")
computation = comp_col.selectbox(
    "Computation", summary["computations"][graph_stage],
    key=f"xla_computation|{ref.path}|{function}|{graph_stage}",
    format_func=lambda n: f"{n} (entry)" if n == summary["entry"][graph_stage] else n,
    help="The entry computation, then control flow, then each fusion's body.")
detail = detail_col.toggle("Show parameters, constants, bitcasts", key="xla_detail")
show_panel("xla_graph", ref, ctx, function=function, stage=graph_stage,
           computation=computation, detail=detail, layer=layer)
if layer:
    st.caption(f"Outlined: the instructions of {layer}, the layer picked above.")
