"""Overview: the model card, the layer graph, the layer table, parameters per layer."""

import streamlit as st

from insight.ui.cache import panel
from insight.ui.widgets import model_card, require_model, show_panel

ref, ctx = require_model()
card = panel("model_card", ref, ctx)
model_card(card)

st.subheader("Layers")
show_panel("layer_table", ref, ctx)

graph_col, params_col = st.columns(2, gap="large")
with graph_col:
    st.subheader("Layer graph")
    if card["graph_note"]:
        st.info(f"Graph unknown. {card['graph_note']}", icon=":material/help:")
    else:
        show_panel("layer_graph", ref, ctx)
with params_col:
    show_panel("param_chart", ref, ctx)
if card["kind"] == "subclassed":
    st.caption("Output shapes are not recorded for a subclassed model's layers: they exist "
               "only while its call() runs.")
