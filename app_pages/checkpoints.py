"""Checkpoints: one model across its ModelCheckpoint files. Which layers learn when (weight
change per layer and epoch), which converge first (CKA against the final checkpoint), and how
a layer's representation settles (its projection per epoch, with a slider)."""

from dataclasses import replace
from pathlib import Path

import streamlit as st

from insight.model.fetched import fetched_from
from insight.panels.checkpoints import checkpoint_folder, followed_layers
from insight.ui.feedback import show_error
from insight.ui.widgets import param_of, require_model, require_ref, show_panel

st.title("Checkpoints")
ref = require_ref()
compare = st.session_state.get("insight_compare")
ctx = replace(require_model(ref), compare_path=Path(compare) if compare else None)
folder = checkpoint_folder(ctx)
if folder is None:
    st.info("**No checkpoints for this model.** Choose their folder under *Compare with…* in "
            "the sidebar (or `insight serve MODEL --compare CKPT_DIR`), or keep them in a "
            "`checkpoints/` folder beside the model file: what `ModelCheckpoint` writes, full "
            "`.keras` files or `.weights.h5` beside one model. The digits_cnn sample has some.",
            icon=":material/history:")
    st.stop()
# The path the user gave, or the folder's name beside the model: never a path the server
# found by itself (the server's layout is not the visitor's business).
# A remote folder (fetched into insight's cache) is named by its URL.
st.caption(f"`{fetched_from(compare) or compare}`" if compare else
           f"`{folder.name}/` beside the model")
value = param_of("checkpoint_weight_changes", "value")
choice = st.segmented_control("Colour", value.choices, default=value.default, key="ckpt_value",
                              format_func={"relative_change": "relative change",
                                           "cosine": "cosine"}.get) or value.default
show_panel("checkpoint_weight_changes", ref, ctx, value=choice)
with st.expander("Checkpoint files"):
    show_panel("checkpoint_list", ref, ctx)

inputs = param_of("checkpoint_cka", "inputs")
left, right = st.columns([1, 2], vertical_alignment="bottom")
n = left.select_slider("Inputs", (64, 128, 256, 512, 1024), inputs.default, key="ckpt_inputs",
                       help=inputs.help)
try:
    layers = followed_layers(ctx)
except Exception as exc:  # noqa: BLE001 - the heatmap above shows the same error
    show_error(exc)
    st.stop()
st.subheader("Which layers converge first")
show_panel("checkpoint_cka", ref, ctx, inputs=n)
st.subheader("A layer across epochs")
layer = right.selectbox("Layer to follow", layers, index=max(0, len(layers) - 2),
                        key=f"ckpt_layer|{folder}", help=param_of("checkpoint_projection",
                                                                  "layer").help)
show_panel("checkpoint_projection", ref, ctx, layer=layer or "", inputs=n)
