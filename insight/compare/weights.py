"""How much each layer's weights moved between two models (or two checkpoints of one).

Per matched layer (see `insight.compare.architecture.match_layers`), all of its weights are
flattened into one vector on each side: the relative change ||B - A|| / ||A|| and the cosine
between A and B. Layers whose weight shapes differ (two widths) have no such number: `nan`.

Example:

>>> import numpy as np
>>> weight_change([np.ones((2, 2))], [np.ones((2, 2)) * 1.5])
(0.5, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insight.errors import UsageError

__all__ = ["weight_change", "weight_changes", "WEIGHT_COLUMNS"]

WEIGHT_COLUMNS = ["layer", "depth", "params", "relative_change", "cosine"]


def weight_change(w_a: list[np.ndarray], w_b: list[np.ndarray]) -> tuple[float, float]:
    """Relative change ||B - A|| / ||A|| and cosine of one layer's weights, all taken together.

    Args:
        w_a: the layer's weight arrays in A (`layer.get_weights()`).
        w_b: the same arrays in B, same shapes.

    Returns:
        `(relative_change, cosine)`; the change is `inf` when A is all zeros and B is not
        (0 when both are), the cosine `nan` when either side is all zeros.

    Raises:
        UsageError: the two sides hold different numbers or shapes of arrays.

    Example:

    >>> weight_change([np.array([1.0, 0.0])], [np.array([0.0, 1.0])])
    (1.4142135623730951, 0.0)
    """
    shapes_a = [np.shape(w) for w in w_a]
    shapes_b = [np.shape(w) for w in w_b]
    if shapes_a != shapes_b:
        raise UsageError("Weight change compares weights of the same shapes.",
                         "Compare layers of the same width (a changed layer has no change "
                         "ratio).", f"shapes {shapes_a} and {shapes_b}")
    if not w_a:
        return float("nan"), float("nan")
    a = np.concatenate([np.asarray(w, np.float64).ravel() for w in w_a])
    b = np.concatenate([np.asarray(w, np.float64).ravel() for w in w_b])
    norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    diff = float(np.linalg.norm(b - a))
    if norm_a > 0:
        rel = diff / norm_a
    else:
        rel = 0.0 if diff == 0 else float("inf")
    cos = float(a @ b / (norm_a * norm_b)) if norm_a > 0 and norm_b > 0 else float("nan")
    return rel, cos


def weight_changes(model_a: Any, model_b: Any) -> pd.DataFrame:
    """Weight change and cosine of every matched layer that has weights.

    Args:
        model_a: a `keras.Model` or `LoadedModel` (the "before").
        model_b: another one (the "after"), matched layer by layer as `architecture_diff` does.

    Returns:
        Columns `WEIGHT_COLUMNS`: `layer` (A's path), `depth` (the layer's position in A, 0
        first), `params` (in A), `relative_change`, `cosine` (`nan` where shapes differ).

    Example:

    >>> weight_changes(loaded, loaded).relative_change.max()  # doctest: +SKIP
    0.0
    """
    from insight.compare.architecture import layer_infos, match_layers

    infos_a, infos_b = layer_infos(model_a), layer_infos(model_b)
    rows = []
    for i, j in match_layers(infos_a, infos_b):
        if i is None or j is None:
            continue
        a, b = infos_a[i], infos_b[j]
        if getattr(a.layer, "layers", None):
            continue  # a nested model: its inner layers have rows of their own
        w_a = [np.asarray(w) for w in a.layer.get_weights()]
        if not w_a:
            continue
        w_b = [np.asarray(w) for w in b.layer.get_weights()]
        try:
            rel, cos = weight_change(w_a, w_b)
        except UsageError:
            rel, cos = float("nan"), float("nan")
        rows.append({"layer": a.path, "depth": i, "params": a.params,
                     "relative_change": rel, "cosine": cos})
    return pd.DataFrame(rows, columns=WEIGHT_COLUMNS)
