"""The Doctor page's widgets: the verdict, one card per finding (evidence, explanation, fix,
a link to where it shows, a small figure), what was checked and what could not be, and the
button that runs the active checks.

The findings come from the registered panels (`doctor_summary`, `doctor_findings`,
`doctor_figure`), cached like every panel.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from insight.panels.registry import PanelContext
from insight.ui.cache import ModelRef, panel
from insight.ui.feedback import show_error
from insight.ui.widgets import show_panel

__all__ = ["active_checks", "doctor_panels", "verdict_box", "finding_card", "checks_lists",
           "training_findings", "finding_boxes", "page_findings", "PAGE_TITLES"]

PAGE_TITLES = {"doctor": "Doctor", "overview": "Overview", "activations": "Activations",
               "gradients": "Gradients", "embeddings": "Embeddings", "training": "Training",
               "profiler": "Profiler", "compiler": "XLA compiler"}
_LOOK = {"error": ("error", ":material/error:", "red"),  # (word, icon, badge colour)
         "warning": ("warning", ":material/warning:", "orange"),
         "info": ("note", ":material/info:", "blue")}


def active_checks(ref: ModelRef) -> bool:
    """The "Run active checks" button; once pressed, the page keeps showing their results
    for this model."""
    key = f"doctor_active|{ref.path}"
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption("Static and measured checks run on the file, its data and its log. The "
                 "active checks also train a copy of the model (the loaded one is never "
                 "changed): can it overfit one batch, and which learning rates work; and they "
                 "time XLA against tf.function.")
    right.button("Run active checks", key=f"{key}|button", disabled=bool(
        st.session_state.get(key)), help="Trains a copy of the model for ~200 steps.",
        on_click=st.session_state.__setitem__, args=(key, True))
    return bool(st.session_state.get(key))


def doctor_panels(ref: ModelRef, ctx: PanelContext, active: bool
                  ) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """The summary card and the findings table, or the error shown and `None`."""
    try:
        with st.spinner("Examining the model, its data and its training log…"):
            return (panel("doctor_summary", ref, ctx, active=active),
                    panel("doctor_findings", ref, ctx, active=active))
    except Exception as exc:
        show_error(exc)
        return None


def verdict_box(summary: dict[str, Any]) -> None:
    """The verdict: green when nothing reaches a warning."""
    text = f"**{summary['verdict']}**"
    if summary["errors"]:
        st.error(text, icon=":material/error:")
    elif summary["warnings"]:
        st.warning(text, icon=":material/warning:")
    else:
        st.success(text + " A healthy setup: nothing here keeps the model from learning.",
                   icon=":material/check_circle:")


_BOXES = {"error": st.error, "warning": st.warning, "info": st.info}


def finding_boxes(findings: list[dict[str, Any]] | pd.DataFrame, *, info: bool = True) -> None:
    """The doctor's findings as boxes on the page that shows their numbers (`info=False`:
    warnings and errors only), each with its fix and a link to the Doctor page."""
    rows = findings.to_dict("records") if isinstance(findings, pd.DataFrame) else findings
    for row in rows:
        if row["severity"] == "info" and not info:
            continue
        where = f" · `{row['layer']}`" if row.get("layer") else ""
        _BOXES[row["severity"]](
            f"**Doctor{where}:** {row['explanation']} **Fix.** {row['suggestion']} "
            "[All findings →](./doctor)", icon=_LOOK[row["severity"]][1])


def page_findings(page: str, ref: ModelRef, ctx: PanelContext, *, info: bool = True) -> None:
    """The doctor's findings about what `page` shows (`doctor_page_findings`), as boxes;
    an error is shown and the page goes on."""
    try:
        findings = panel("doctor_page_findings", ref, ctx, page=page)
    except Exception as exc:  # noqa: BLE001  shown; the page's own panels still draw
        show_error(exc)
        return
    finding_boxes(findings, info=info)


def _title(row: Any) -> str:
    from insight.doctor import check_title

    return check_title(str(row["check"])) + (f" · `{row['layer']}`" if row["layer"] else "")


def finding_card(row: Any, ref: ModelRef, ctx: PanelContext, active: bool, i: int) -> None:
    """One finding: its severity, explanation, evidence numbers, fix, where it shows, and its
    figure beside it when it has one."""
    word, icon, color = _LOOK[row["severity"]]
    with st.container(border=True):
        text_col, fig_col = st.columns([3, 2] if row["figure"] else [1, 0.001], gap="medium")
        with text_col:
            st.markdown(f"#### {_title(row)}")
            st.markdown(f":{color}-badge[{icon} {word}] "
                        f":gray-badge[{row['category'].replace('_', ' ')}]")
            st.markdown(row["explanation"])
            st.markdown(f"**Fix.** {row['suggestion']}")
            st.caption(f"Evidence: {row['evidence']}")
            page = row["page"]
            if page != "doctor":
                st.markdown(f"[Open {PAGE_TITLES.get(page, page)} →](./{page}) "
                            f"· panel `{row['panel']}`"
                            + (f" · layer `{row['layer']}`" if row["layer"] else ""))
        if row["figure"]:
            with fig_col:
                show_panel("doctor_figure", ref, ctx, key=f"doctor_figure|{i}", share=False,
                           check=row["check"], layer=row["layer"], active=active)


def checks_lists(summary: dict[str, Any]) -> None:
    """What was checked, and what could not be, with the reasons grouped."""
    from insight.doctor import get_check

    checked, skipped = summary["checked"], summary["skipped"]
    stages: dict[str, list[str]] = {}
    for name in checked:
        stages.setdefault(get_check(name).stage, []).append(name)
    with st.expander(f"Checked ({len(checked)})", expanded=not summary["errors"]
                     and not summary["warnings"]):
        for stage, names in stages.items():
            st.markdown(f"- **{stage[0].upper()}{stage[1:]}**: "
                        + ", ".join(f"`{n}`" for n in names))
        if not checked:
            st.markdown("Nothing could be checked.")
    if skipped:
        reasons: dict[str, list[str]] = {}
        for s in skipped:
            reasons.setdefault(s["reason"], []).append(s["check"])
        with st.expander(f"Could not check ({len(skipped)})", expanded=not summary["errors"]
                         and not summary["warnings"]):
            for reason, names in reasons.items():
                st.markdown(f"- {reason[0].upper()}{reason[1:]}: "
                            + ", ".join(f"`{n}`" for n in names))


def training_findings(ref: ModelRef, ctx: PanelContext) -> None:
    """What `DoctorCallback` found during training (the logdir's doctor.jsonl), if any."""
    if ctx.logdir is None:
        return
    try:
        history = panel("doctor_history", ref, ctx)
    except Exception as exc:
        show_error(exc)
        return
    if len(history):
        st.subheader("During training")
        st.caption(f"{len(history)} finding(s) that insight.callbacks.DoctorCallback wrote to "
                   "doctor.jsonl in the logdir while the model trained, at the step each "
                   "first appeared.")
        show_panel("doctor_history", ref, ctx)
