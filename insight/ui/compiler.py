"""Widgets of the XLA compiler page: the function and stage pickers, the summary metrics, the
HLO text, the step-time button.

Defaults, choices and help come from the panels' `Param` schemas (`insight.panels.compiler`).
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from insight.compiler.xla import STAGE_TITLES
from insight.data import Dataset
from insight.panels.compiler import FUNCTION_TITLES
from insight.panels.registry import PanelContext
from insight.ui.cache import ModelRef, panel
from insight.ui.feedback import show_error
from insight.ui.widgets import param_of, show_panel

__all__ = ["function_picker", "stage_picker", "summary_metrics", "hlo_filters", "hlo_view",
           "step_time", "graph_controls", "hlo_table", "HLO_COLUMNS"]

_TEXT = st.column_config.TextColumn
# The HLO tables' columns, sized so that the page shows them without scrolling sideways at a
# 1280 px window (the fusions beside the op counts: about 370 px; the instructions across the
# page: about 800 px); long cells end in "…".
# `None`: hidden at first, listed under the table's "Show/hide columns".
HLO_COLUMNS: dict[str, dict[str, Any]] = {
    "xla_fusions": {
        "fusion": _TEXT("fusion", width=125, help="The fusion instruction (one kernel)."),
        "layers": _TEXT("layers", width=80, help="The Keras layers its ops come from."),
        "ops": st.column_config.NumberColumn("ops", width=40, help="Ops fused into it."),
        "members": _TEXT("members", width=120, help="The ops fused into it, most frequent "
                         "first."),
        "kind": None, "shape": None, "computation": None},
    "xla_instructions": {
        "instruction": _TEXT("instruction", width=130),
        "opcode": _TEXT("opcode", width=95),
        "layer": _TEXT("layer", width=85, help="The Keras layer it comes from."),
        "pass": _TEXT("pass", width=75, help="forward, backward, or both (a fusion of both)."),
        "shape": _TEXT("shape", width=150),
        "fused_ops": _TEXT("fused ops", width=130, help="A fusion's member ops."),
        "op_type": _TEXT("TF op", width=80, help="The TensorFlow op it was lowered from."),
        "op_name": None, "computation": None},
}


def function_picker(ref: ModelRef, ds: Dataset) -> str:
    """The function to compile: the forward pass, or a train step when the data has labels."""
    function = param_of("xla_summary", "function")
    offered = [f for f in function.choices if f != "train" or ds.y is not None]
    return st.segmented_control("Function", offered, default=function.default,
                                format_func=FUNCTION_TITLES.get, key=f"xla_function|{ref.path}",
                                required=True, help=function.help)


def stage_picker(label: str, *, key: str) -> str:
    """Before or after XLA's optimisation passes (after, by default)."""
    stage = param_of("xla_instructions", "stage")
    return st.radio(label, stage.choices, index=stage.choices.index(stage.default),
                    format_func=STAGE_TITLES.get, key=key, horizontal=True)


def summary_metrics(summary: dict[str, Any]) -> None:
    """The `xla_summary` card as metrics: instructions before and after, fusions, time."""
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


def hlo_filters(ref: ModelRef, summary: dict[str, Any]) -> dict[str, str]:
    """Which instructions to list: one layer's (or all), at which stage, matching a search;
    returns the `xla_instructions` parameters but `function`."""
    layer_col, stage_col, search_col = st.columns([2, 2, 3])
    layer = layer_col.selectbox("Layer", ["", *summary["layers"]], key=f"xla_layer|{ref.path}",
                                format_func=lambda v: v or "(all layers)")
    with stage_col:
        stage = stage_picker("Stage", key="xla_stage")
    search = search_col.text_input("Search the instructions", key="xla_search",
                                   placeholder="e.g. convolution, fusion, Relu")
    return {"layer": layer, "stage": stage, "search": search}


def graph_controls(ref: ModelRef, summary: dict[str, Any], function: str) -> dict[str, Any]:
    """Which computation to draw, at which stage, in how much detail; returns those
    `xla_graph` parameters."""
    stage_col, comp_col, detail_col = st.columns([2, 3, 2])
    with stage_col:
        stage = stage_picker("Stage ", key="xla_graph_stage")
    entry = summary["entry"][stage]
    computation = comp_col.selectbox(
        "Computation", summary["computations"][stage],
        key=f"xla_computation|{ref.path}|{function}|{stage}",
        format_func=lambda n: f"{n} (entry)" if n == entry else n,
        help="The entry computation, then control flow, then each fusion's body.")
    detail = detail_col.toggle("Show parameters, constants, bitcasts", key="xla_detail")
    return {"stage": stage, "computation": computation, "detail": detail}


def hlo_view(hlo: dict[str, Any], *, layer: str, search: str, file_name: str) -> None:
    """The `xla_hlo` card: what it holds in a line, the text (the first `MAX_LINES` lines,
    without TensorFlow's source_file metadata) and a download of all of it."""
    shown_lines = hlo["shown"].count("\n") + 1
    what = f"{hlo['lines']:,} lines of HLO {STAGE_TITLES[hlo['stage']]}" + (
        f", first {shown_lines:,} shown" if hlo["truncated"] else "")
    st.caption(what + (f" for layer {layer}" if layer else "") +
               (f" matching “{search}”" if search else "") +
               ". TensorFlow's source_file metadata is left out here; the download keeps it.")
    if not hlo["lines"]:
        st.info("No instruction matches.", icon=":material/search_off:")
        return
    st.code(hlo["shown"], language="llvm", height=420 if shown_lines > 19 else "content")
    st.download_button("Download this HLO", hlo["text"], icon=":material/download:",
                       file_name=file_name, mime="text/plain", key="xla_download")


def step_time(ref: ModelRef, ctx: PanelContext, function: str) -> None:
    """Compiled vs eager: timing waits for its button (it runs the model dozens of times);
    then the `xla_step_time` chart, and why XLA is slower when it is."""
    timed = f"xla_timed|{ref.path}|{function}"
    if st.button("Measure step time", icon=":material/timer:",
                 key=f"xla_time_button|{function}",
                 help="Runs the same batch eagerly, as a tf.function and compiled by XLA, each "
                      "about half a second or at least 4 times (the first call, which "
                      "compiles, is timed apart)."):
        st.session_state[timed] = True
    if not st.session_state.get(timed):
        st.caption("Runs the model dozens of times, so it waits for the button.")
        return
    with st.spinner("Timing eager, tf.function and XLA on the same batch…"):
        timing = show_panel("xla_step_time", ref, ctx, function=function)
    if timing is not None and timing.layout.meta.get("verdict"):
        st.info(timing.layout.meta["verdict"], icon=":material/info:")


def hlo_table(name: str, ref: ModelRef, ctx: PanelContext, **params: Any) -> Any:
    """A table panel of HLO (`xla_fusions`, `xla_instructions`) with the columns of
    `HLO_COLUMNS` (widths that fit the page; the rest hidden until shown from the table's
    toolbar), and its Share control, as `show_panel` places other panels."""
    try:
        table = panel(name, ref, ctx, **params)
    except Exception as exc:  # noqa: BLE001  shown, the page goes on
        show_error(exc)
        return None
    config = HLO_COLUMNS.get(name, {})
    st.dataframe(table, hide_index=True, column_config=config)
    hidden = [c for c in table.columns if c in config and config[c] is None]
    if hidden:
        st.caption(f"More columns ({', '.join(hidden)}): the table's *Show/hide columns*.")
    from insight.ui.share import share_control

    share_control(name, ref, ctx, params, table, key=f"{name}|loaded|"
                  f"{json.dumps(params, sort_keys=True, default=str)}")
    return table
