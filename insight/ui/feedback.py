"""How the app shows errors: the InsightError text in `st.error`, never a bare traceback."""

from __future__ import annotations

import streamlit as st

from insight.errors import (
    CustomObjectError,
    InsightError,
    UnsafeModelError,
    UnsupportedModelError,
    UsageError,
)

__all__ = ["show_error"]

_HEADLINES = [
    (UnsafeModelError, "Refused in safe mode"),
    (CustomObjectError, "Custom code needed"),
    (UnsupportedModelError, "Unsupported file"),
    (UsageError, "Invalid input"),
    (InsightError, "Cannot load the model"),
]


def show_error(exc: BaseException) -> None:
    """Show `exc` in the page. insight's own errors show their text; anything else is a bug,
    shown with its type and message, the traceback folded away."""
    if isinstance(exc, InsightError):
        headline = next(h for cls, h in _HEADLINES if isinstance(exc, cls))
        st.error(f"**{headline}.** {exc}", icon=":material/error:")
        return
    st.error(
        f"**Unexpected error** ({type(exc).__name__}: {exc}). This is a bug in insight: "
        "please report it with the details below.",
        icon=":material/bug_report:",
    )
    with st.expander("Details"):
        st.exception(exc)
