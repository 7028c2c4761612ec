"""Overview: the file check and layer graph first (no code run), then the loaded model's
card, layer table and parameters; big graphs open collapsed into blocks; pick a layer to see
its config and weights."""

import streamlit as st

from insight.panels import PanelContext
from insight.panels.model import graph_choices
from insight.ui.cache import model_ready, panel
from insight.ui.overview import graph_controls, layer_picker, on_graph_click
from insight.ui.widgets import (
    file_header,
    model_card,
    require_model,
    require_preflight,
    require_ref,
    show_panel,
)

ref = require_ref()
pf = require_preflight(ref)
file_header(pf)
card_box, table_box = st.container(), st.container()
graph_col, params_col = st.columns(2, gap="large")
blocks, layers = graph_choices(PanelContext(preflight=pf))
with graph_col:
    graph_params = graph_controls(blocks, layers)
graph_slot = graph_col.empty()
if not model_ready(ref):  # drawn from the file while TensorFlow starts and the model loads
    show_panel("layer_graph", ref, PanelContext(preflight=pf), slot=graph_slot,
               on_select=on_graph_click, **graph_params)

with card_box:
    ctx = require_model(ref)  # on failure: the error here, the graph below stays
    card = panel("model_card", ref, ctx)
    model_card(card)
with table_box:
    st.subheader("Layers")
    show_panel("layer_table", ref, ctx)
    if card["kind"] == "subclassed":
        st.caption("Output shapes are not recorded for a subclassed model's layers: they "
                   "exist only while its call() runs.")
show_panel("layer_graph", ref, ctx, slot=graph_slot, on_select=on_graph_click, **graph_params)
with params_col:
    show_panel("param_chart", ref, ctx)

st.subheader("Layer")
layer = layer_picker(layers or list(panel("layer_table", ref, ctx)["layer"]))
if layer is not None:
    details_col, weights_col = st.columns(2, gap="large")
    with details_col:
        show_panel("layer_details", ref, ctx, layer=layer)
    with weights_col:
        show_panel("layer_weights_histogram", ref, ctx, layer=layer)
