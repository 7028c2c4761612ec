"""One table per model: activation statistics over a dataset joined with gradient norms.

What `insight stats` prints and the Activations/Gradients pages summarise.

Example:

>>> report = layer_report(loaded, dataset)  # doctest: +SKIP
>>> report[["layer", "mean", "dead_fraction", "grad_norm"]].head(2)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insight.data import Dataset
from insight.probe.backprop import gradients
from insight.probe.stats import Progress, activation_stats

__all__ = ["layer_report", "report_records", "REPORT_COLUMNS"]

REPORT_COLUMNS = ["layer", "class", "shape", "units", "mean", "std", "min", "max",
                  "zero_fraction", "dead_units", "dead_fraction", "saturated_fraction",
                  "grad_norm", "activation_grad_norm", "weight_norm"]


def layer_report(model: Any, dataset: Dataset, *, batch_size: int = 64,
                 gradient_rows: int = 64, max_examples: int | None = None,
                 progress: Progress | None = None) -> pd.DataFrame:
    """Per-layer activation statistics over all of `dataset`, with gradient norms.

    Args:
        model: a `keras.Model` or a `LoadedModel`.
        dataset: the inputs (labels, if any, give the loss for the gradients).
        batch_size: rows per forward pass for the statistics. Defaults to `64`.
        gradient_rows: rows of the one batch the gradients are computed on. Defaults to `64`.
        max_examples: the statistics read at most this many examples (a streamed dataset
            is read to its end otherwise). Defaults to `None`.
        progress: `progress(fraction, message)` after each batch of the statistics.
            Defaults to `None`.

    Returns:
        A frame with `REPORT_COLUMNS`: `grad_norm` is the L2 norm of the loss gradient w.r.t.
        the layer's own weights (NaN for layers without weights), `activation_grad_norm` the
        mean per-example L2 norm of the gradient w.r.t. the layer's output. `attrs["target"]`
        says what was differentiated (each output's loss and weight), `attrs["rows"]` how
        many rows the statistics cover.
    """
    stats = activation_stats(model, dataset, batch_size=batch_size, max_examples=max_examples,
                             progress=progress)
    head = dataset.take(slice(0, gradient_rows))
    grads = gradients(model, head.x, head.y)  # every output's labels: every output's loss
    table = stats.table.merge(
        grads.table[["layer", "weight_grad_norm", "activation_grad_norm", "weight_norm"]],
        on="layer", how="left").rename(columns={"weight_grad_norm": "grad_norm"})
    table = table[REPORT_COLUMNS]
    table.attrs["target"] = grads.target
    table.attrs["rows"] = stats.n_examples
    return table


def report_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN becomes `None`."""
    clean = table.astype(object).where(pd.notna(table), None)
    return [{k: (float(v) if isinstance(v, np.floating) else
                 int(v) if isinstance(v, np.integer) else v) for k, v in row.items()}
            for row in clean.to_dict(orient="records")]
