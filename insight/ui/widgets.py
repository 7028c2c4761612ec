"""Rendering helpers shared by pages: the current model, panels by kind, the model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from insight.panels import PanelContext, get_panel
from insight.ui.cache import ModelRef, get_model, panel
from insight.ui.feedback import show_error

__all__ = ["require_model", "show_panel", "model_card"]


def require_model() -> tuple[ModelRef, PanelContext]:
    """The chosen model and a panel context, or an empty/error state and `st.stop()`."""
    ref: ModelRef | None = st.session_state.get("insight_ref")
    if ref is None:
        st.info("No model selected: choose one in the sidebar, or type a path.",
                icon=":material/arrow_back:")
        st.stop()
    try:
        with st.spinner(f"Loading {Path(ref.path).name}…"):
            loaded = get_model(ref)
    except Exception as exc:
        show_error(exc)
        st.stop()
    data = st.session_state.get("insight_data")
    logdir = st.session_state.get("insight_logdir")
    return ref, PanelContext(loaded, Path(data) if data else None,
                             Path(logdir) if logdir else None)


def show_panel(name: str, ref: ModelRef, ctx: PanelContext, **params: Any) -> Any:
    """Build (cached) and place a registered panel according to its kind."""
    spec = get_panel(name)
    try:
        result = panel(name, ref, ctx, **params)
    except Exception as exc:
        show_error(exc)
        return None
    if spec.kind == "figure":
        st.plotly_chart(result, theme=None, key=f"panel-{name}",
                        config={"displaylogo": False})
    elif spec.kind == "table":
        _table(result)
    elif spec.kind == "dot":
        if result:
            st.graphviz_chart(result, width="content")
    return result


def _table(frame: pd.DataFrame) -> None:
    config = {
        "params": st.column_config.NumberColumn("params", format="localized"),
        "trainable": st.column_config.CheckboxColumn("trainable"),
        "output_shape": st.column_config.TextColumn("output shape"),
    }
    order = [c for c in frame.columns if c != "depth"]
    st.dataframe(frame, hide_index=True, column_config=config, column_order=order)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def model_card(card: dict[str, Any]) -> None:
    """The model card: identity line, counts, inputs/outputs, file check, limits."""
    st.title(card["name"])
    st.caption(
        f"{card['format']} · {card['model_class']} ({card['kind']}) · saved with Keras "
        f"{card['keras_version']} · {_size(card['file_size'])} · `{card['file']}`")
    cols = st.columns(4)
    cols[0].metric("Parameters", f"{card['total_params']:,}")
    cols[1].metric("Trainable", f"{card['trainable_params']:,}")
    cols[2].metric("Non-trainable", f"{card['non_trainable_params']:,}")
    cols[3].metric("Layers", card["layer_count"])
    left, right = st.columns(2)
    for col, key, title in ((left, "inputs", "Inputs"), (right, "outputs", "Outputs")):
        col.markdown(f"**{title}**")
        if card[key]:
            col.dataframe(pd.DataFrame(card[key]), hide_index=True)
        elif not card["built"]:
            col.caption("Unknown until the model is built.")
        else:
            col.caption("Not stored for a subclassed model: its call() computes them.")
    if card["limits"]:
        st.warning("**What this format rules out.** " + " ".join(
            f"No {k}: {v}." for k, v in card["limits"].items()), icon=":material/block:")
    with st.expander("File check (read before loading, no code run)", expanded=True):
        for line in card["findings"]:
            st.markdown(f"- {line}")
        if not card["safe_mode"]:
            st.markdown("- Loaded with safe mode **off** (`--unsafe`).")
