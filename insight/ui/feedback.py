"""How the app shows errors: the InsightError text in `st.error`, never a bare traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from insight.errors import (
    CompileError,
    CustomObjectError,
    DataError,
    InsightError,
    StorageError,
    UnsafeModelError,
    UnsupportedModelError,
    UsageError,
)

__all__ = ["show_error", "progress_bar", "headline", "STORAGE_HEADLINES"]

# A bucket problem is no problem of the model's: what happened, then what to do (the error's
# own text names the URL and the detail).
STORAGE_HEADLINES = {
    "missing": "Not found in the storage (check the URL)",
    "denied": "Access denied by the storage (check the credentials)",
    "connection": "Storage unreachable (check the network, then reload)",
    "package": "No support for this storage installed (install its package)",
    "other": "Cannot read from the storage (check the URL and the storage)",
}

_HEADLINES = [
    (StorageError, ""),  # by reason: STORAGE_HEADLINES
    (UnsafeModelError, "Refused in safe mode"),
    (CustomObjectError, "Custom code needed"),
    (UnsupportedModelError, "Unsupported file"),
    (DataError, "Cannot use the data"),  # the model is fine: its pages that need no data work
    (UsageError, "Invalid input"),
    (CompileError, "No HLO for this model"),
    (InsightError, "Cannot load the model"),
]


def show_error(exc: BaseException) -> None:
    """Show `exc` in the page. insight's own errors show their text; anything else is a bug,
    shown with its type and message, the traceback folded away."""
    if isinstance(exc, InsightError):
        icon = ":material/cloud_off:" if isinstance(exc, StorageError) else ":material/error:"
        st.error(f"**{headline(exc)}.** {exc}", icon=icon)
        return
    st.error(
        f"**Unexpected error** ({type(exc).__name__}: {exc}). This is a bug in insight: "
        "please report it with the details below.",
        icon=":material/bug_report:",
    )
    with st.expander("Details"):
        st.exception(exc)


def headline(exc: InsightError) -> str:
    """The bold first words `show_error` puts before an insight error's text.

    >>> headline(StorageError("No such bucket.", "", "", reason="denied"))
    'Access denied by the storage (check the credentials)'
    """
    if isinstance(exc, StorageError):
        return STORAGE_HEADLINES.get(exc.reason, STORAGE_HEADLINES["other"])
    return next(h for cls, h in _HEADLINES if isinstance(exc, cls))


@contextmanager
def progress_bar() -> Iterator[Callable[[float, str], None]]:
    """A `progress(fraction, message)` callback drawing a progress bar, removed on exit.

    Long steps (a UMAP) call it from inside cached builders; the update is not recorded for
    cache replay (the bar belongs to this run only, and a replay could not find it).
    """
    slot = st.empty()

    def update(fraction: float, message: str) -> None:
        try:
            from streamlit.runtime.scriptrunner_utils.script_run_context import (
                in_cached_function,
            )
        except ImportError:  # a Streamlit without it: no bar rather than a failed replay
            return
        token = in_cached_function.set(False)
        try:
            slot.progress(min(max(float(fraction), 0.0), 1.0), text=message)
        finally:
            in_cached_function.reset(token)

    try:
        yield update
    finally:
        slot.empty()
