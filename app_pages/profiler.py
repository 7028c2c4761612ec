"""Profiler: capture a profile with step markers, or open one from the logdir; step-time
breakdown, timeline, top ops and memory, all drawn here (offline, no XProf server)."""

from pathlib import Path

import streamlit as st

from insight.panels import PanelContext
from insight.panels.profiler import NO_MEMORY
from insight.ui.cache import panel
from insight.ui.profiler import (
    OP_COLUMNS,
    capture_form,
    pick_profile,
    profile_choices,
    profile_error,
    timeline_controls,
)
from insight.ui.widgets import require_preflight, require_ref, show_panel

ref = require_ref()
pf = require_preflight(ref)
st.title("Profiler")
logdir, data = st.session_state.get("insight_logdir"), st.session_state.get("insight_data")
capture_form(ref, logdir, data)
if done := st.session_state.pop("prof_captured", None):
    st.success(f"**Captured.**\n```\n{done}\n```", icon=":material/check_circle:")
choices, problems = profile_choices(ref, logdir)
for problem in problems:
    st.warning(problem, icon=":material/warning:")
if not choices:
    st.info("**No profile yet.** " + (f"Nothing under `{logdir}` matches "
            "`plugins/profile/<run>/*.xplane.pb`. " if logdir else "No logdir in the sidebar. ")
            + "Capture one above, or run `insight profile MODEL --logdir DIR`.",
            icon=":material/timer_off:")
    st.stop()
choice = pick_profile(choices)
ctx = PanelContext(preflight=pf, logdir=Path(choice.logdir))
try:
    with st.spinner("Converting the profile with xprof…"):
        card = panel("profile_card", ref, ctx, run=choice.run)
except Exception as exc:  # noqa: BLE001  shown, the page stops
    profile_error(exc)
    st.stop()

cols = st.columns(5)
cols[0].metric("Steps (xprof)", card["steps"])
cols[1].metric("Mean step", f"{card['step_ms_mean']:.2f} ms" if card["steps"] else "–")
cols[2].metric("Events", f"{card['events']:,}")
cols[3].metric("Threads", card["threads"])
cols[4].metric("Span", f"{card['span_ms']:.1f} ms")
with st.expander("Open in XProf (the full tool; its charts need Internet)"):
    st.code(card["xprof_command"], language="bash")
    st.caption(f"or `{card['tensorboard_command']}` (Profile tab). The file: "
               f"`{card['folder']}`")
    for line in card["diagnostics"]:
        st.caption(f"xprof: {line}")

st.subheader("Step-time breakdown")
if card["no_step_markers"]:
    st.info(card["no_steps_reason"], icon=":material/flag:")
else:
    show_panel("step_breakdown", ref, ctx, run=choice.run)


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
level = st.segmented_control("Level", ["framework", "hlo"], default="framework",
                             key="prof_level", format_func={"framework": "TensorFlow ops",
                                                            "hlo": "XLA (HLO) ops"}.get)
left, right = st.columns([1.5, 1], gap="medium")
with left:
    try:
        ops = panel("top_ops", ref, ctx, run=choice.run, level=level or "framework", top=25)
        st.dataframe(ops, hide_index=True, height=420, column_config=OP_COLUMNS)
    except Exception as exc:  # noqa: BLE001
        profile_error(exc)
        ops = None
    if ops is not None and ops.empty:
        st.caption("No XLA ops ran in this profile: capture with **XLA** on to see them."
                   if level == "hlo" else "No TensorFlow ops in this profile.")
    elif ops is not None and level != "hlo" and len(ops) and \
            str(ops["type"].iloc[0]).startswith("__inference"):
        st.caption("The step ran as one XLA-compiled function: choose **XLA (HLO) ops** to "
                   "see inside it.")
    elif ops is not None and ops.attrs.get("source") == "timeline":
        st.caption("xprof has no HLO statistics for CPU: these are summed from the timeline's "
                   "XLA events.")
with right:
    show_panel("top_ops_treemap", ref, ctx, run=choice.run, level=level or "framework",
               top=25)

st.subheader("Memory over time")
if card["memory_events"]:
    show_panel("memory_profile", ref, ctx, run=choice.run)
else:
    st.info(NO_MEMORY, icon=":material/memory:")
