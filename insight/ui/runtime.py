"""Process-level Streamlit adjustments insight needs.

Streamlit calls `keras.backend.clear_session()` after *every* script run once Keras is
imported (`_clean_problem_modules` in `streamlit/runtime/scriptrunner/script_runner.py`, a
leftover from TF1 graphs that grew with each rerun). In Keras 3 that runs `gc.collect()` over
TensorFlow's heap and clears TensorFlow's kernel cache: measured here, it makes every rerun
~0.24 s slower (0.28 s vs 0.04 s for a two-widget app) whatever `runner.postScriptGC` says.
insight never builds models in the script (they are cached resources), so it keeps
Streamlit's matplotlib clean-up and drops the Keras one.

`INSIGHT_STREAMLIT_DEFAULTS=1` turns both adjustments here off (the baseline of
`benchmarks/bench_serve.py`).
"""

from __future__ import annotations

import gc
import os
import sys

__all__ = ["keep_keras_session", "import_keras", "streamlit_hook"]

_STREAMLIT_HOOK: list = []


def _defaults() -> bool:
    return os.environ.get("INSIGHT_STREAMLIT_DEFAULTS") == "1"


def _clean_problem_modules_without_keras() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: BLE001  as Streamlit does: never fail the app here
            pass


def keep_keras_session() -> bool:
    """Stop Streamlit from resetting Keras after each run; returns whether it was patched
    (`False` if a future Streamlit no longer has the hook)."""
    from streamlit.runtime.scriptrunner import script_runner

    if _defaults():
        return False
    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        return False
    if current is not _clean_problem_modules_without_keras:
        _STREAMLIT_HOOK.append(current)
        script_runner._clean_problem_modules = _clean_problem_modules_without_keras
    return True


def streamlit_hook():
    """Streamlit's own post-run clean-up that `keep_keras_session` replaced, or `None`."""
    return _STREAMLIT_HOOK[0] if _STREAMLIT_HOOK else None


def import_keras() -> None:
    """Import Keras and TensorFlow with Python's cyclic GC paused, then freeze the result.

    TensorFlow's import creates ~350k objects, and the collections they trigger while it runs
    cost ~0.7 s of its ~3.6 s here. `gc.freeze()` then moves those long-lived module objects out
    of every later collection, so TensorFlow's heap no longer slows each full collection.
    """
    if "keras" in sys.modules:
        return
    if _defaults():
        import keras  # noqa: F401
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        import keras  # noqa: F401
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
