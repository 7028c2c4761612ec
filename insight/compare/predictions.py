"""Two models' predictions on the same inputs: where they agree, and where they part ways.

Predictions are read as classes: the argmax of a last axis wider than 1, else a single
probability (or logit) thresholded at 0.5 (or 0). The "distance" between the two predictions
of one input is the total variation distance between their probability vectors (softmax
applied first when a row does not already sum to 1), so the inputs they disagree about most
are those where both are confident, in different classes.

Example:

>>> import numpy as np
>>> p_a = np.array([[0.9, 0.1], [0.2, 0.8]])
>>> p_b = np.array([[0.8, 0.2], [0.7, 0.3]])
>>> agreement(p_a, p_b)
0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from insight.errors import DataError

__all__ = ["classes_of", "probabilities", "agreement", "confusion_between", "disagreements",
           "per_class_accuracy", "DISAGREEMENT_COLUMNS"]

DISAGREEMENT_COLUMNS = ["index", "class_a", "class_b", "confidence_a", "confidence_b",
                        "label", "distance"]


def _rows(pred: Any) -> np.ndarray:
    p = np.asarray(pred, dtype=np.float64)
    return p.reshape(len(p), -1) if p.ndim != 1 else p.reshape(-1, 1)


def probabilities(pred: Any) -> np.ndarray:
    """`[n, classes]` probabilities of predictions: rows that already are distributions stay;
    others go through softmax (several columns) or sigmoid (one column, as two classes).

    >>> probabilities(np.array([[0.0], [10.0]])).round(3).tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    """
    p = _rows(pred)
    if p.shape[1] == 1:
        col = p[:, 0]
        if col.min() < 0 or col.max() > 1:
            col = 1.0 / (1.0 + np.exp(-col))
        return np.stack([1 - col, col], 1)
    if p.min() >= 0 and np.allclose(p.sum(1), 1.0, atol=1e-3):
        return p
    e = np.exp(p - p.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def classes_of(pred: Any) -> np.ndarray:
    """Predicted class per row (argmax, or a thresholded single column).

    >>> classes_of(np.array([[0.2, 0.8], [0.9, 0.1]])).tolist()
    [1, 0]
    """
    return probabilities(pred).argmax(1)


def _labels(y: Any, n: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim > 1 and arr.shape[-1] > 1:
        arr = arr.argmax(-1)
    arr = arr.reshape(len(arr), -1)[:, 0] if arr.ndim > 1 else arr
    if len(arr) != n:
        raise DataError("Labels and predictions have different lengths.",
                        "Pass one label per input.", f"{len(arr)} labels, {n} inputs")
    return np.rint(arr.astype(np.float64)).astype(np.int64)


def agreement(pred_a: Any, pred_b: Any) -> float:
    """Fraction of inputs both models put in the same class."""
    ca, cb = classes_of(pred_a), classes_of(pred_b)
    if len(ca) != len(cb):
        raise DataError("The two models' predictions cover different inputs.", "",
                        f"{len(ca)} and {len(cb)} rows")
    return float(np.mean(ca == cb)) if len(ca) else float("nan")


def confusion_between(pred_a: Any, pred_b: Any, class_names: list[str] | None = None
                      ) -> pd.DataFrame:
    """Counts of (A's class, B's class): rows are A's predictions, columns B's.

    >>> confusion_between(np.eye(2), np.eye(2)[::-1]).to_numpy().tolist()
    [[0, 1], [1, 0]]
    """
    pa, pb = probabilities(pred_a), probabilities(pred_b)
    k = max(pa.shape[1], pb.shape[1])
    ca, cb = pa.argmax(1), pb.argmax(1)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (ca, cb), 1)
    names = [str(c) for c in (class_names or [])][:k]
    names += [str(i) for i in range(len(names), k)]
    return pd.DataFrame(counts, index=pd.Index(names, name="A"),
                        columns=pd.Index(names, name="B"))


def disagreements(pred_a: Any, pred_b: Any, y: Any = None, *, top: int = 20) -> pd.DataFrame:
    """The inputs the two models classify differently, most confident disagreement first.

    Args:
        pred_a: A's predictions, `[n, classes]` (or `[n]`/`[n, 1]` for one probability).
        pred_b: B's predictions of the same inputs.
        y: labels (class indices or one-hot), or `None`. Defaults to `None`.
        top: rows to keep. Defaults to `20`.

    Returns:
        Columns `DISAGREEMENT_COLUMNS` (`label` is -1 without labels).

    Example:

    >>> disagreements(np.eye(3), np.eye(3)[[0, 2, 1]])["index"].tolist()
    [1, 2]
    """
    pa, pb = probabilities(pred_a), probabilities(pred_b)
    if pa.shape != pb.shape:
        k = max(pa.shape[1], pb.shape[1])
        pa = np.pad(pa, ((0, 0), (0, k - pa.shape[1])))
        pb = np.pad(pb, ((0, 0), (0, k - pb.shape[1])))
    ca, cb = pa.argmax(1), pb.argmax(1)
    distance = 0.5 * np.abs(pa - pb).sum(1)
    labels = _labels(y, len(pa)) if y is not None else np.full(len(pa), -1)
    idx = np.flatnonzero(ca != cb)
    idx = idx[np.argsort(-distance[idx], kind="stable")][:top]
    return pd.DataFrame({
        "index": idx, "class_a": ca[idx], "class_b": cb[idx],
        "confidence_a": pa[idx, ca[idx]], "confidence_b": pb[idx, cb[idx]],
        "label": labels[idx], "distance": distance[idx],
    }, columns=DISAGREEMENT_COLUMNS)


def per_class_accuracy(pred_a: Any, pred_b: Any, y: Any,
                       class_names: list[str] | None = None) -> pd.DataFrame:
    """Accuracy of each model per true class, and overall (the last row, class `"all"`).

    >>> per_class_accuracy(np.eye(2), np.eye(2)[::-1], [0, 1])["accuracy_a"].tolist()
    [1.0, 1.0, 1.0]
    """
    ca, cb = classes_of(pred_a), classes_of(pred_b)
    labels = _labels(y, len(ca))
    rows = []
    for c in np.unique(labels):
        mask = labels == c
        name = class_names[c] if class_names and 0 <= c < len(class_names) else str(c)
        rows.append({"class": str(name), "count": int(mask.sum()),
                     "accuracy_a": float(np.mean(ca[mask] == c)),
                     "accuracy_b": float(np.mean(cb[mask] == c))})
    rows.append({"class": "all", "count": len(labels),
                 "accuracy_a": float(np.mean(ca == labels)) if len(labels) else float("nan"),
                 "accuracy_b": float(np.mean(cb == labels)) if len(labels) else float("nan")})
    return pd.DataFrame(rows, columns=["class", "count", "accuracy_a", "accuracy_b"])
