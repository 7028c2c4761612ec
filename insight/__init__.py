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
    "activations": "insight.probe.capture",
    "activation_stats": "insight.probe.stats",
    "gradients": "insight.probe.backprop",
    "attributions": "insight.probe.attribution",
    "diagnose": "insight.doctor.diagnose",
    "compare": "insight.compare.comparison",
    "Comparison": "insight.compare.comparison",
    "cka": "insight.compare.cka",
    "project": "insight.projector.projection",
    "read_scalars": "insight.curves.logdir",
    "neighbors": "insight.projector.projection",
    "LoadedModel": "insight.model.loading",
    "load_model": "insight.model.loading",
    "Preflight": "insight.model.preflight",
    "preflight": "insight.model.preflight",
    "layer_table": "insight.model.summary",
    "model_card": "insight.model.summary",
    "model_summary": "insight.model.summary",
    "compile_model": "insight.compiler.xla",
    "capture_profile": "insight.profiler.capture",
    "find_profiles": "insight.profiler.capture",
    "export_panel": "insight.export.files",
    "snapshot_panels": "insight.export.snapshot",
}

__all__ = [
    "__version__",
    "Dataset",
    "activation_stats",
    "activations",
    "attributions",
    "capture_profile",
    "cka",
    "compare",
    "Comparison",
    "dataset_for",
    "diagnose",
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
    from insight.compare.cka import cka
    from insight.compare.comparison import Comparison, compare
    from insight.compiler.xla import compile_model
    from insight.curves.logdir import read_scalars
    from insight.data import Dataset, dataset_for, load_dataset
    from insight.doctor.diagnose import diagnose
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
    from insight.export.files import export_panel
    from insight.export.snapshot import snapshot_panels
    from insight.model.loading import LoadedModel, load_model
    from insight.model.preflight import Preflight, preflight
    from insight.model.summary import layer_table, model_card, model_summary
    from insight.probe.attribution import attributions
    from insight.probe.backprop import gradients
    from insight.probe.capture import activations
    from insight.probe.stats import activation_stats
    from insight.profiler.capture import capture_profile, find_profiles
    from insight.projector.projection import neighbors, project
