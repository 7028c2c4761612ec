"""What the Activations and Gradients panels share: their data, the example and layer they
are given, the model's inputs, tokens and class names.

The panels themselves are in `insight.panels.activations` and `insight.panels.gradients`.
Every one reads the model and its data (`insight.data.dataset_for`: the `--data` file, the
`data.npz` bundled beside the model, else synthetic inputs), so each declares
`uses=("model", "data")` (`USES`).

Example:

>>> from insight.panels import PanelContext
>>> from insight.panels.probe import example_label, probe_dataset
>>> ds = probe_dataset(PanelContext(loaded))  # doctest: +SKIP
>>> example_label(ds, 0)  # doctest: +SKIP
'label 0'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from insight.data import Dataset
from insight.errors import UsageError
from insight.model.layers import output_layer_paths as output_layers
from insight.model.layers import resolve_layers
from insight.panels.registry import PanelContext, Param

__all__ = ["USES", "EXAMPLE", "LAYER", "check_probing", "probe_dataset", "checked_example",
           "layer_path", "model_inputs", "input_kind", "main_input", "vocabulary",
           "token_labels", "token_text", "class_name", "example_label", "data_source",
           "output_layers"]

USES = ("model", "data")
EXAMPLE = Param("example", "int", 0, help="Row number of the example.")
LAYER = Param("layer", "str", "", help="Layer path (nested: outer/inner); empty: the first.")


def check_probing(ctx: PanelContext, what: str) -> None:
    """Raise when the model's format rules out `what` (`"activations"`, `"gradients"`).

    Raises:
        UsageError: e.g. a SavedModel, whose layers cannot be probed.
    """
    reason = ctx.loaded.limits.get(what)
    if reason:
        raise UsageError(f"No {what} for this model: {reason}.",
                         "Open the Keras file (.keras or .h5) it was exported from.",
                         f"format={ctx.loaded.format!r}")


def probe_dataset(ctx: PanelContext) -> Dataset:
    """The data every probe panel reads: `ctx.dataset()`, shared with the pages and the
    Embeddings panels."""
    return ctx.dataset()


def checked_example(ds: Dataset, example: int) -> int:
    """`example`, a row number of `ds`.

    Raises:
        UsageError: out of range (the valid range is said).
    """
    if not 0 <= example < len(ds):
        raise UsageError(f"The example must be a row number from 0 to {len(ds) - 1}.", "",
                         f"example={example}")
    return example


def layer_path(ctx: PanelContext, layer: str, default: str | None = None) -> str:
    """The layer path `layer` names (checked), or `default`, or the model's first layer."""
    if not layer:
        return default or resolve_layers(ctx.loaded.model, None)[0]
    return resolve_layers(ctx.loaded.model, [layer])[0]


def model_inputs(ctx: PanelContext, x: Any) -> list[tuple[str, np.ndarray]]:
    """`[(input name, array)]`: a single input is named after the model's input."""
    if isinstance(x, dict):
        return [(k, np.asarray(v)) for k, v in x.items()]
    try:
        name = ctx.loaded.model.inputs[0].name
    except (AttributeError, IndexError, TypeError, ValueError):
        name = "input"
    return [(str(name), np.asarray(x))]


def input_kind(arr: np.ndarray) -> str:
    """`"image"`, `"tokens"`, `"vector"` or `"other"` for an input array (first axis rows)."""
    if arr.dtype.kind == "f" and (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] in (1, 3, 4))):
        return "image"
    if arr.ndim == 2:
        return "tokens" if arr.dtype.kind in "iu" else "vector"
    return "other"


def main_input(ctx: PanelContext, x: Any) -> tuple[str, np.ndarray, str]:
    """The input to show: the first image input, else the first token input, else the first."""
    parts = [(n, a, input_kind(a)) for n, a in model_inputs(ctx, x)]
    for wanted in ("image", "tokens"):
        found = next((p for p in parts if p[2] == wanted), None)
        if found:
            return found
    return parts[0]


def vocabulary(ctx: PanelContext) -> list[str] | None:
    """Tokens from a `vocab.tsv` beside the model (line i: token i), or `None`."""
    folder = Path(ctx.loaded.path)
    folder = folder if folder.is_dir() else folder.parent
    vocab = folder / "vocab.tsv"
    if not vocab.is_file():
        return None
    return [line.split("\t")[0] for line in vocab.read_text(encoding="utf-8").splitlines()]


def token_labels(ids: np.ndarray, vocab: list[str] | None) -> list[str]:
    """Token labels (`"3·the"`), trailing padding (id 0) left out."""
    ids = np.asarray(ids).ravel()
    nonzero = np.flatnonzero(ids)
    ids = ids[: nonzero[-1] + 1] if nonzero.size else ids
    return [f"{i}·{vocab[t] if vocab and 0 <= t < len(vocab) else t}" for i, t in enumerate(ids)]


def token_text(ids: np.ndarray, vocab: list[str] | None, limit: int = 60) -> str:
    """The tokens as words, cut to `limit` characters."""
    words = [t.split("·", 1)[1] for t in token_labels(ids, vocab)]
    text = " ".join(words)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def class_name(ds: Dataset, value: Any) -> str:
    """A label or prediction as text: its class name when the data has them."""
    arr = np.asarray(value)
    if arr.size > 1:
        value = int(arr.argmax())
    else:
        value = arr.reshape(()).item()
    if isinstance(value, float) and value.is_integer() and ds.class_names:
        value = int(value)
    if isinstance(value, int) and ds.class_names and 0 <= value < len(ds.class_names):
        return ds.class_names[value]
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def example_label(ds: Dataset, i: int) -> str:
    """`"label <class>"` of example `i`, or `"no label"`."""
    if ds.y is None:
        return "no label"
    y = next(iter(ds.y.values())) if isinstance(ds.y, dict) else ds.y
    return f"label {class_name(ds, y[i])}"


def data_source(ds: Dataset) -> str:
    """What the examples are, in a few words: the data's name or "synthetic inputs"."""
    return "synthetic inputs" if ds.synthetic else (ds.name or "data")


