"""`compare(a, b, x, y)`: two models on the same inputs, every comparison computed on demand.

A `Comparison` holds the two models and the inputs; each table is computed the first time it
is asked for and kept: `architecture_diff()`, `weight_changes()`, `cka()`, `agreement`,
`confusion()`, `disagreements()`, `per_class_accuracy()` (with labels) and
`activation_changes()` (dead units that appeared or disappeared, saturation before and after,
per matched layer, from `insight.probe.stats.activation_stats`, whose thresholds the doctor
and the Activations page share).

Example:

>>> import insight
>>> cmp = insight.compare("a.keras", "b.keras", x, y)  # doctest: +SKIP
>>> round(cmp.agreement, 3)  # doctest: +SKIP
0.962
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.compare import predictions as preds
from insight.compare.architecture import architecture_diff, layer_infos, match_layers
from insight.compare.cka import cka_matrix
from insight.compare.weights import weight_changes
from insight.errors import UsageError

__all__ = ["Comparison", "compare", "ACTIVATION_CHANGE_COLUMNS"]

ACTIVATION_CHANGE_COLUMNS = ["layer_a", "layer_b", "units_a", "units_b", "dead_a", "dead_b",
                             "appeared", "disappeared", "saturated_fraction_a",
                             "saturated_fraction_b"]


def _loaded(model: Any) -> Any:
    if isinstance(model, str | Path):
        from insight.model.loading import load_model

        return load_model(model)
    return model


def _keras(model: Any) -> Any:
    from insight.model.layers import as_model

    return as_model(model)


class Comparison:
    """Two models compared on the same inputs (see `compare`).

    Attributes:
        a: the first model (a `LoadedModel` or `keras.Model`), the "before".
        b: the second one, the "after".
        x: the inputs (an array, `{input_name: array}` or a `Dataset`), or `None`.
        y: labels, or `None`.
        class_names: names of the classes, when known.
        batch_size: rows per forward pass.
    """

    def __init__(self, a: Any, b: Any, x: Any = None, y: Any = None, *,
                 class_names: list[str] | None = None, batch_size: int = 128) -> None:
        self.a, self.b = a, b
        if x is not None and hasattr(x, "batches"):  # a Dataset carries its labels
            y = x.y if y is None else y
            class_names = class_names or x.class_names
            x = x.x
        if isinstance(y, dict):
            y = next(iter(y.values()))
        self.x, self.y = x, y
        self.class_names = class_names
        self.batch_size = int(batch_size)
        self._cache: dict[Any, Any] = {}

    def _memo(self, key: Any, compute: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _need_x(self, what: str) -> Any:
        if self.x is None:
            raise UsageError(f"{what} needs inputs to run both models on.",
                             "Pass x (and y for accuracies) to compare().", "x=None")
        return self.x

    def architecture_diff(self) -> pd.DataFrame:
        """Layers added, removed, changed or the same (see `architecture.architecture_diff`)."""
        return self._memo("arch", lambda: architecture_diff(self.a, self.b))

    def weight_changes(self) -> pd.DataFrame:
        """Relative change and cosine per matched layer (see `weights.weight_changes`)."""
        return self._memo("weights", lambda: weight_changes(self.a, self.b))

    def cka(self, layers_a: list[str] | None = None, layers_b: list[str] | None = None
            ) -> pd.DataFrame:
        """Minibatch linear CKA of every layer of A (rows) against every layer of B (columns).

        Raises:
            UsageError: no inputs were given, or an unknown layer.
        """
        key = ("cka", tuple(layers_a or ()), tuple(layers_b or ()))
        return self._memo(key, lambda: cka_matrix(
            self.a, self.b, self._need_x("CKA"), layers_a=layers_a, layers_b=layers_b,
            batch_size=self.batch_size))

    def predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """Both models' (first) outputs on `x`, as arrays."""
        def run() -> tuple[np.ndarray, np.ndarray]:
            from insight.probe.capture import as_inputs, first_output

            x = self._need_x("Comparing predictions")
            out = []
            for m in (self.a, self.b):
                km = _keras(m)
                p = km.predict(as_inputs(x, km), batch_size=self.batch_size, verbose=0)
                out.append(np.asarray(first_output(p)))
            return out[0], out[1]
        return self._memo("pred", run)

    @property
    def agreement(self) -> float:
        """Fraction of inputs both models put in the same class."""
        return preds.agreement(*self.predictions())

    def confusion(self) -> pd.DataFrame:
        """Counts of (A's class, B's class): rows A, columns B."""
        return preds.confusion_between(*self.predictions(), self.class_names)

    def disagreements(self, top: int = 20) -> pd.DataFrame:
        """The inputs classified differently, most confident disagreement first."""
        return preds.disagreements(*self.predictions(), self.y, top=top)

    def per_class_accuracy(self) -> pd.DataFrame | None:
        """Each model's accuracy per true class (and `"all"`); `None` without labels."""
        if self.y is None:
            return None
        return preds.per_class_accuracy(*self.predictions(), self.y, self.class_names)

    def activation_changes(self) -> pd.DataFrame:
        """Dead units that appeared (dead in B, alive in A) or disappeared, per matched layer.

        Unit by unit where both layers have as many units; else the difference of the counts
        (`appeared` = max(0, dead_b - dead_a)). Columns `ACTIVATION_CHANGE_COLUMNS`.
        """
        return self._memo("acts", self._activation_changes)

    def _activation_changes(self) -> pd.DataFrame:
        from insight.probe.stats import activation_stats

        x = self._need_x("Activation statistics")
        sa = activation_stats(self.a, x, batch_size=self.batch_size)
        sb = activation_stats(self.b, x, batch_size=self.batch_size)
        ta, tb = sa.table.set_index("layer"), sb.table.set_index("layer")
        infos_a, infos_b = layer_infos(self.a), layer_infos(self.b)
        rows = []
        for i, j in match_layers(infos_a, infos_b):
            if i is None or j is None:
                continue
            pa, pb = infos_a[i].path, infos_b[j].path
            if pa not in ta.index or pb not in tb.index:
                continue
            dead_a = sa.units[pa]["dead"].to_numpy()
            dead_b = sb.units[pb]["dead"].to_numpy()
            if dead_a.shape == dead_b.shape:
                appeared = int(np.sum(dead_b & ~dead_a))
                disappeared = int(np.sum(dead_a & ~dead_b))
            else:
                appeared = max(0, int(dead_b.sum() - dead_a.sum()))
                disappeared = max(0, int(dead_a.sum() - dead_b.sum()))
            rows.append({"layer_a": pa, "layer_b": pb, "units_a": dead_a.size,
                         "units_b": dead_b.size, "dead_a": int(dead_a.sum()),
                         "dead_b": int(dead_b.sum()), "appeared": appeared,
                         "disappeared": disappeared,
                         "saturated_fraction_a": float(ta.loc[pa, "saturated_fraction"]),
                         "saturated_fraction_b": float(tb.loc[pb, "saturated_fraction"])})
        return pd.DataFrame(rows, columns=ACTIVATION_CHANGE_COLUMNS)

    def summary(self) -> dict[str, Any]:
        """Counts for a headline: diff statuses, layers with weights, agreement (with `x`)."""
        diff = self.architecture_diff()
        out: dict[str, Any] = {s: int((diff.status == s).sum())
                               for s in ("same", "changed", "added", "removed")}
        out["compared_layers"] = int(len(self.weight_changes()))
        if self.x is not None:
            out["agreement"] = self.agreement
        return out


def compare(a: Any, b: Any, x: Any = None, y: Any = None, *,
            class_names: list[str] | None = None, batch_size: int = 128) -> Comparison:
    """Compare two models (or two checkpoints of one) layer by layer.

    Args:
        a: the "before": a model file (loaded in safe mode), a `LoadedModel` or a
            `keras.Model`.
        b: the "after", the same kinds.
        x: inputs both models take: an array, `{input_name: array}`, a list in
            `model.inputs` order or an `insight.data.Dataset` (its labels are used). Without
            it only the architecture diff and the weight changes are available.
            Defaults to `None`.
        y: labels for per-class accuracies. Defaults to `None`.
        class_names: the classes' names. Defaults to `None`.
        batch_size: rows per forward pass and per CKA minibatch. Defaults to `128`.

    Returns:
        A `Comparison`; its tables are computed when first asked for.

    Raises:
        ModelLoadError: a file that cannot be loaded safely.

    Example:

    >>> cmp = compare(loaded, loaded, x)  # doctest: +SKIP
    >>> cmp.architecture_diff().status.eq("same").all(), cmp.agreement  # doctest: +SKIP
    (True, 1.0)
    """
    return Comparison(_loaded(a), _loaded(b), x, y, class_names=class_names,
                      batch_size=batch_size)
