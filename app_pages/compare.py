"""Compare: the sidebar's model (A) against a second one (B): architecture diff, weight
change, representation similarity (CKA), predictions, dead and saturated units."""

import streamlit as st

from insight.ui.compare import compare_context
from insight.ui.widgets import param_of, require_dataset, require_model, require_ref, show_panel

ref = require_ref()
st.title("Compare")
ctx = compare_context(ref, require_model(ref))
data = require_dataset(ctx)
show_panel("compare_summary", ref, ctx)

arch, weights, reps, preds, units = st.tabs(
    ["Architecture", "Weights", "Representations", "Predictions", "Dead and saturated units"])
with arch:
    show_panel("compare_architecture", ref, ctx)
    show = st.radio("Outline", param_of("compare_graph", "show").choices, horizontal=True,
                    key=f"cmp_show|{ref.path}", help=param_of("compare_graph", "show").help)
    show_panel("compare_graph", ref, ctx, show=show)
with weights:
    show_panel("compare_weights", ref, ctx)
    show_panel("compare_weights_table", ref, ctx)
with reps:
    left, right = st.columns(2)
    examples = param_of("compare_cka", "examples")
    n = left.number_input("Inputs", examples.min_value, examples.max_value, examples.default,
                          step=256, key=f"cmp_examples|{ref.path}", help=examples.help)
    layers = param_of("compare_cka", "layers")
    which = right.radio("Layers", layers.choices, horizontal=True, key=f"cmp_layers|{ref.path}",
                        help=layers.help)
    show_panel("compare_cka", ref, ctx, examples=int(n), layers=which)
with preds:
    show_panel("compare_confusion", ref, ctx)
    if data.y is None:
        st.info("**Per-class accuracy needs labels**, and this data has none: give an `.npz` "
                "with `x` and `y` (sidebar, or `--data`).", icon=":material/label_off:")
    else:
        show_panel("compare_accuracy", ref, ctx)
    show_panel("compare_disagreements", ref, ctx)
    show_panel("compare_disagreement_table", ref, ctx)
with units:
    show_panel("compare_activations", ref, ctx)
