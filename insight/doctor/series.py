"""The training curves as the doctor reads them: per run group, the training and validation
loss and accuracy and the learning rate, each `(steps, values)`.

Keras and TensorBoard name the sides of a metric in three ways (`insight.curves.splits`);
epoch-level TensorBoard tags (`epoch_loss`) read as their Keras names (`loss`).

Example:

>>> import pandas as pd
>>> frame = pd.DataFrame({"run": ["h", "h"], "tag": ["loss", "val_loss"], "step": [0, 0],
...                       "value": [1.0, 1.2]})
>>> sorted(training_series(frame)[0])
['group', 'loss', 'val_loss']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insight.curves.splits import split_of

__all__ = ["training_series", "last_finite", "finite"]

_ACCURACY = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy",
             "binary_accuracy")
_RATE = ("learning_rate", "lr")


def _metric(run: str, tag: str) -> tuple[str, str, str]:
    group, split, metric = split_of(run, tag)
    metric = metric.removeprefix("epoch_")
    return group, "validation" if split == "validation" else "train", metric


def training_series(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per run group, its curves: `{"group", "loss", "val_loss", "accuracy",
    "val_accuracy", "learning_rate"}` each `(steps, values)` sorted by step (the last value
    of a repeated step kept); groups with a training loss first, longest first."""
    groups: dict[str, dict[str, Any]] = {}
    for (run, tag), part in frame.groupby(["run", "tag"], observed=True, sort=False):
        group, split, metric = _metric(str(run), str(tag))
        name = "loss" if metric == "loss" else "accuracy" if metric in _ACCURACY else \
            "learning_rate" if metric in _RATE else None
        if name is None:
            continue
        key = name if split == "train" or name == "learning_rate" else f"val_{name}"
        part = part.drop_duplicates("step", keep="last").sort_values("step")
        series = (part["step"].to_numpy(np.int64), part["value"].to_numpy(np.float64))
        groups.setdefault(group, {"group": group}).setdefault(key, series)
    return sorted(groups.values(), key=lambda g: ("loss" not in g, -len(g.get("loss", ((),))[0])))


def last_finite(series: tuple[np.ndarray, np.ndarray] | None) -> float | None:
    """The last finite value of `(steps, values)`, or `None`."""
    if series is None:
        return None
    v = series[1][np.isfinite(series[1])]
    return float(v[-1]) if v.size else None


def finite(series: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The finite points of `(steps, values)`."""
    steps, values = series
    ok = np.isfinite(values)
    return steps[ok], values[ok]
