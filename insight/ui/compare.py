"""The Compare page's plumbing: the second model, loaded through the app's model cache.

The compare panels read B as `ctx.cached("compare_model", ...)`; here that key is answered
by `insight.ui.cache.get_model`, so B is loaded like A (an isolated child first, safe mode as
A's, once per file version, shared by sessions), and every other memoised step of those
panels runs holding B's model lock (the panel cache already holds A's: a Keras model is not
safe for concurrent use, see `insight.ui.cache.model_lock`).

Example:

>>> ctx_b = compare_context(ref, ctx)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from insight.errors import InsightError
from insight.model.loading import LoadedModel
from insight.panels.compare import is_checkpoint_folder
from insight.panels.registry import PanelContext
from insight.ui.cache import ModelRef, get_model, memo, model_lock
from insight.ui.feedback import show_error

__all__ = ["compare_context", "compare_ref", "LOCK_TIMEOUT"]

# Two sessions comparing the same two models in opposite directions would each hold one
# model's lock and wait for the other's: waiting this long ends it with an error instead.
LOCK_TIMEOUT = 600.0


def compare_ref(ref: ModelRef, path: str) -> ModelRef:
    """B's cache reference: A's trust settings (safe mode, custom objects) for B's file."""
    return ModelRef(path, ref.safe_mode, ref.custom_objects, Path(path).name)


def _memo_for(b: LoadedModel):
    lock = model_lock(b)

    def memo_b(key: str, compute: Any) -> Any:
        if key.endswith("|compare_model"):
            return b

        def locked() -> Any:
            if not lock.acquire(timeout=LOCK_TIMEOUT):
                raise InsightError("The second model is busy in another session.",
                                   "Reload the page in a moment.", f"model={b.name!r}")
            try:
                return compute()
            finally:
                lock.release()
        return memo(key, locked)
    return memo_b


def compare_context(ref: ModelRef, ctx: PanelContext) -> PanelContext:
    """`ctx` with the second model chosen in the sidebar (or `--compare`), loaded; an empty
    state, or B's load error, and `st.stop()` otherwise."""
    path = st.session_state.get("insight_compare")
    if not path:
        st.info("**No second model.** Choose one under “Compare with…” in the sidebar, or "
                "start with `insight serve A.keras --compare B.keras`.",
                icon=":material/arrow_back:")
        st.stop()
    if is_checkpoint_folder(Path(path)):
        st.info(f"**`{Path(path).name}` is a folder of checkpoints.** Its timeline (weight "
                "change per epoch, CKA against the final checkpoint) is on the checkpoint "
                "timeline view; give one model file here to compare two models.",
                icon=":material/timeline:")
        st.stop()
    try:
        with st.spinner(f"Loading {Path(path).name}…"):
            b = get_model(compare_ref(ref, path))
    except Exception as exc:
        show_error(exc)
        st.stop()
    return replace(ctx, compare_path=Path(path), memo=_memo_for(b))
