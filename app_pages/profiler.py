"""Profiler: capture a profile with step markers, or open one from the logdir (local, or
s3://... fetched into insight's cache); step-time breakdown, timeline, top ops and memory, all
drawn here (offline, no XProf server)."""

from pathlib import Path

import streamlit as st

from insight.panels import PanelContext
from insight.panels.profiler import NO_MEMORY
from insight.ui.cache import panel
from insight.ui.doctor import finding_boxes
from insight.ui.profiler import (
    capture_form,
    convert_profile,
    level_picker,
    local_choice,
    ops_table,
    profile_error,
    profile_summary,
    require_profile,
    timeline_controls,
)
from insight.ui.widgets import param_of, require_preflight, require_ref, show_panel

ref = require_ref()
pf = require_preflight(ref)
st.title("Profiler")
logdir, data = st.session_state.get("insight_logdir"), st.session_state.get("insight_data")
capture_form(ref, logdir, data)
choice = require_profile(ref, logdir)
try:
    choice = local_choice(choice)  # a remote profile: its files fetched into the cache first
    ctx = PanelContext(preflight=pf, logdir=Path(choice.logdir))
    convert_profile(choice)  # a progress bar the first time; nothing once cached
    with st.spinner("Reading the profile…"):  # Streamlit shows it only past 0.5 s
        card = panel("profile_card", ref, ctx, run=choice.run)
except Exception as exc:  # noqa: BLE001  shown, the page stops
    profile_error(exc)
    st.stop()
profile_summary(card)

st.subheader("Step-time breakdown")
if not card["steps"]:
    st.info(card["no_steps_reason"], icon=":material/flag:")
else:
    show_panel("step_breakdown", ref, ctx, run=choice.run)
    if card["steps_note"]:
        st.caption(card["steps_note"])
finding_boxes([f for f in card["findings"] if f["check"] != "profile_steps"])


@st.fragment
def timeline() -> None:
    st.subheader("Timeline")
    params = timeline_controls(card, card["step_markers"])
    show_panel("trace_timeline", ref, ctx, run=choice.run, **params)
    st.caption("Threads are rows (one lane per nesting depth), bars are ops coloured by the "
               "Keras layer they ran in (from their name scopes). Drag to zoom, double-click "
               "to reset; hover for the op, its layer and duration.")


timeline()

st.subheader("Top ops by self time")
level = level_picker()
left, right = st.columns([1.5, 1], gap="medium")
with left:
    ops_table(ref, ctx, choice.run, level)
with right:
    show_panel("top_ops_treemap", ref, ctx, run=choice.run, level=level,
               top=param_of("top_ops_treemap", "top").default)

st.subheader("Memory over time")
if card["memory_events"]:
    show_panel("memory_profile", ref, ctx, run=choice.run)
else:
    st.info(NO_MEMORY, icon=":material/memory:")
