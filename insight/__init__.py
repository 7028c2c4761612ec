"""insight: see what a Keras model does inside.

A library and a Streamlit dashboard for the "build a simple baseline, then visualize and debug
it" step. Every function here works in a notebook without Streamlit.

Example:

>>> import insight
>>> loaded = insight.load_model("model.keras")  # doctest: +SKIP
>>> insight.model_summary(loaded)["card"]["total_params"]  # doctest: +SKIP
19946
"""

from typing import TYPE_CHECKING

from insight._version import __version__

# Names resolve on first use (PEP 562), so `import insight` and the CLI start fast and
# TensorFlow is imported only when a model is loaded.
_LAZY = {
    "CompileError": "insight.errors",
    "CustomObjectError": "insight.errors",
    "DataError": "insight.errors",
    "InsightError": "insight.errors",
    "ModelLoadError": "insight.errors",
    "UnsafeModelError": "insight.errors",
    "UnsupportedModelError": "insight.errors",
    "UsageError": "insight.errors",
    "Dataset": "insight.data",
    "load_dataset": "insight.data",
    "dataset_for": "insight.data",
    "activations": "insight.probing",
    "activation_stats": "insight.stats",
    "gradients": "insight.backprop",
    "attributions": "insight.attribution",
    "project": "insight.projection",
    "read_scalars": "insight.curves",
    "neighbors": "insight.projection",
    "LoadedModel": "insight.loading",
    "load_model": "insight.loading",
    "Preflight": "insight.inspection",
    "preflight": "insight.inspection",
    "layer_table": "insight.summary",
    "model_card": "insight.summary",
    "model_summary": "insight.summary",
    "compile_model": "insight.xla",
    "capture_profile": "insight.traces",
    "find_profiles": "insight.traces",
    "export_panel": "insight.export",
    "snapshot_panels": "insight.snapshot",
}

__all__ = [
    "__version__",
    "Dataset",
    "activation_stats",
    "activations",
    "attributions",
    "capture_profile",
    "dataset_for",
    "export_panel",
    "find_profiles",
    "gradients",
    "load_dataset",
    "CustomObjectError",
    "DataError",
    "CompileError",
    "compile_model",
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
    "neighbors",
    "preflight",
    "project",
    "read_scalars",
    "snapshot_panels",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'insight' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    from insight.attribution import attributions
    from insight.backprop import gradients
    from insight.curves import read_scalars
    from insight.data import Dataset, dataset_for, load_dataset
    from insight.errors import (
        CompileError,
        CustomObjectError,
        DataError,
        InsightError,
        ModelLoadError,
        UnsafeModelError,
        UnsupportedModelError,
        UsageError,
    )
    from insight.export import export_panel
    from insight.inspection import Preflight, preflight
    from insight.loading import LoadedModel, load_model
    from insight.probing import activations
    from insight.projection import neighbors, project
    from insight.snapshot import snapshot_panels
    from insight.stats import activation_stats
    from insight.summary import layer_table, model_card, model_summary
    from insight.traces import capture_profile, find_profiles
    from insight.xla import compile_model
