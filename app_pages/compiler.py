"""XLA compiler: the model's forward pass (or a train step) compiled by XLA for one batch: the
HLO before and after optimisation, what fusion did, each layer's instructions, the graph of
one computation, and the step time compiled vs eager."""

import streamlit as st

from insight.compiler.xla import STAGE_TITLES, STAGES
from insight.panels.compiler import BATCH, FUNCTION_TITLES
from insight.ui.cache import panel
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
functions = ["forward", "train"] if ds.y is not None else ["forward"]
function = st.segmented_control(
    "Function", functions, default="forward", format_func=FUNCTION_TITLES.get,
    key=f"xla_function|{ref.path}", required=True,
    help="The train step is forward (training=True), loss, gradients and an SGD update that "
         "is computed but not applied: the model's weights do not change.")
st.caption(f"Compiled with `jit_compile=True` for one batch of {min(len(ds), BATCH)} examples"
           + ("" if ds.y is not None else "; no labels, so no train step")
           + ". *Before optimisation* is the HLO TensorFlow hands to XLA; *after* is what XLA "
           "runs, its elementwise ops fused into kernels.")
with st.spinner("Compiling with XLA…"):
    summary = card("xla_summary", function=function)
if summary is None:
    st.stop()
cols = st.columns(4)
cols[0].metric("HLO instructions before", f"{summary['before']:,}")
cols[1].metric("After optimisation", f"{summary['after']:,}",
               delta=f"{summary['after'] - summary['before']:,}", delta_color="off")
cols[2].metric("Fusions", summary["fusions"])
took = summary["seconds"]
cols[3].metric("Optimised HLO took", f"{took['optimized_hlo']:.2f} s",
               help=f"Time to run XLA's passes once (the HLO before them took "
                    f"{took['hlo']:.2f} s, tracing {took['trace']:.2f} s).")
if summary["loss"]:
    st.caption(f"Train step loss: {summary['loss']}.")

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
stage = stage_col.radio("Stage", STAGES, index=1, format_func=STAGE_TITLES.get,
                        key="xla_stage", horizontal=True)
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
    what = f"{hlo['lines']:,} lines of HLO {STAGE_TITLES[stage]}" + (
        f", first {hlo['shown'].count(chr(10)) + 1:,} shown" if hlo["truncated"] else "")
    st.caption(what + (f" for layer {layer}" if layer else "") +
               (f" matching “{search}”" if search else "") +
               ". TensorFlow's source_file metadata is left out here; the download keeps it.")
    if hlo["lines"]:
        st.code(hlo["shown"], language="llvm",
                height=420 if hlo["shown"].count("\n") > 18 else "content")
        st.download_button("Download this HLO", hlo["text"], icon=":material/download:",
                           file_name=f"{summary['model']}.{function}.{stage}.txt",
                           mime="text/plain", key="xla_download")
    else:
        st.info("No instruction matches.", icon=":material/search_off:")

st.subheader("Compiled vs eager")
timed = f"xla_timed|{ref.path}|{function}"
if st.button("Measure step time", icon=":material/timer:", key=f"xla_time_button|{function}",
             help="Runs the same batch eagerly, as a tf.function and compiled by XLA, each "
                  "about half a second or at least 4 times (the first call, which compiles, "
                  "is timed apart)."):
    st.session_state[timed] = True
if st.session_state.get(timed):
    with st.spinner("Timing eager, tf.function and XLA on the same batch…"):
        timing = show_panel("xla_step_time", ref, ctx, function=function)
    median = ((timing.layout.meta or {}) if timing is not None else {}).get("median_ms", {})
    if median and median["xla"] > median["graph"]:
        grouped = {"DepthwiseConv2D", "SeparableConv2D"} & set(summary["classes"])
        st.info(f"**XLA is {median['xla'] / median['graph']:.1f}× slower than tf.function "
                "here.** Compiling does not speed up every model on every machine"
                + (f" (this one has {' and '.join(sorted(grouped))} layers: on CPU, XLA's "
                   "depthwise convolutions run far slower than TensorFlow's own kernels)"
                   if grouped else "") + ". A profile captured with XLA (Profiler page, or "
                "`insight profile MODEL --xla --logdir DIR`) shows which ops take the time.",
                icon=":material/info:")
else:
    st.caption("Runs the model dozens of times, so it waits for the button.")

st.subheader("Graph of a computation")
graph_stage_col, comp_col, detail_col = st.columns([2, 3, 2])
graph_stage = graph_stage_col.radio("Stage ", STAGES, index=1, format_func=STAGE_TITLES.get,
                                    key="xla_graph_stage", horizontal=True)
names = summary["computations"][graph_stage]
computation = comp_col.selectbox(
    "Computation", names, key=f"xla_computation|{ref.path}|{function}|{graph_stage}",
    format_func=lambda n: f"{n} (entry)" if n == summary["entry"][graph_stage] else n,
    help="The entry computation, then control flow, then each fusion's body.")
detail = detail_col.toggle("Show parameters, constants, bitcasts", key="xla_detail")
show_panel("xla_graph", ref, ctx, function=function, stage=graph_stage,
           computation=computation, detail=detail, layer=layer)
if layer:
    st.caption(f"Outlined: the instructions of {layer}, the layer picked above.")
