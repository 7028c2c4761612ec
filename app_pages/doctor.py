"""Doctor: why the model may not learn, or not generalise, in plain words. Findings worst
first, each with its evidence, the fix and where it shows; what DoctorCallback found during
training; what was checked and what could not be; a button for the active checks (they
train a copy of the model)."""

import streamlit as st

from insight.ui.doctor import (
    active_checks,
    checks_lists,
    doctor_panels,
    finding_card,
    training_findings,
    verdict_box,
)
from insight.ui.widgets import require_model, require_ref, show_panel

ref = require_ref()
ctx = require_model(ref)
st.title("Doctor")
active = active_checks(ref)
found = doctor_panels(ref, ctx, active)
if found is None:
    st.stop()
summary, findings = found
verdict_box(summary)
for i, row in findings.iterrows():
    finding_card(row, ref, ctx, active, i)
training_findings(ref, ctx)
checks_lists(summary)
if len(findings):
    with st.expander("All findings as a table"):
        show_panel("doctor_findings", ref, ctx, active=active)
