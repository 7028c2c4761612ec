"""insight: see what a Keras model does inside.

A library and a Streamlit dashboard for the "build a simple baseline, then visualize and debug
it" step. Every function here works in a notebook without Streamlit.

Example:

>>> import insight
>>> loaded = insight.load_model("model.keras")  # doctest: +SKIP
>>> insight.model_summary(loaded)["card"]["total_params"]  # doctest: +SKIP
19946
"""

from insight._version import __version__
from insight.errors import (
    CustomObjectError,
    InsightError,
    ModelLoadError,
    UnsafeModelError,
    UnsupportedModelError,
    UsageError,
)
from insight.loading import LoadedModel, load_model
from insight.preflight import Preflight, preflight
from insight.summary import layer_table, model_card, model_summary

__all__ = [
    "__version__",
    "CustomObjectError",
    "InsightError",
    "LoadedModel",
    "ModelLoadError",
    "Preflight",
    "UnsafeModelError",
    "UnsupportedModelError",
    "UsageError",
    "layer_table",
    "load_model",
    "model_card",
    "model_summary",
    "preflight",
]
