"""Checks of the data: class balance, input scale, constant inputs, NaN/Inf in the inputs.

They read the dataset only (the first `INPUT_ROWS` rows for the input statistics; the NaN
count covers every row). Synthetic inputs are no data: these checks are then skipped.

Example:

>>> [f.check for f in diagnose(loaded, "raw_pixels.npz").findings]  # doctest: +SKIP
['input_scale']
"""

from __future__ import annotations

import re

import numpy as np

from insight.doctor.evidence import Evidence
from insight.doctor.findings import Finding
from insight.doctor.registry import check

__all__ = ["IMBALANCE_WARNING", "IMBALANCE_INFO", "INPUT_SCALE_HIGH", "INPUT_SCALE_LOW",
           "CONSTANT_SHARE", "class_counts", "normalizes_inputs"]

IMBALANCE_WARNING = 10.0  # largest class / smallest class: a warning from here
IMBALANCE_INFO = 3.0  # ... worth knowing from here
INPUT_SCALE_HIGH = 10.0  # inputs with a std or |mean| above this are far from unit scale
INPUT_SCALE_LOW = 1e-2  # ... or with a std below this (and not constant)
CONSTANT_SHARE = 0.5  # tabular inputs: a warning when this share of the columns is constant
_NORMALIZING = re.compile(r"Rescaling|Normalization|BatchNormalization|LayerNormalization|"
                          r"GroupNormalization|UnitNormalization|CenterCrop|Resizing")


def class_counts(y: np.ndarray, units: int | None) -> np.ndarray | None:
    """Examples per class of classification labels (indices, one-hot rows or 0/1), or `None`
    when they are not class labels."""
    y = np.asarray(y)
    if y.dtype.kind not in "fiub" or not y.size or not np.isfinite(y.astype(float)).all():
        return None
    if y.ndim == 2 and y.shape[1] > 1:
        if not (np.isin(y, (0, 1)).all() and np.allclose(y.sum(1), 1)):
            return None
        return y.sum(0).astype(np.int64)
    flat = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or np.any(np.mod(flat, 1) != 0) or \
            flat.min() < 0:
        return None
    return np.bincount(flat.astype(np.int64), minlength=max(int(units or 0), 2 if units == 1
                                                               else 0))


def normalizes_inputs(ev: Evidence) -> bool:
    """Whether a layer before the first one with weights rescales or normalizes its inputs."""
    for _, layer in ev.layers:
        if _NORMALIZING.fullmatch(type(layer).__name__):
            return True
        if getattr(layer, "trainable_weights", None) and not getattr(layer, "layers", None):
            return False
    return False


@check("class_imbalance", "class_imbalance", needs=("labels",))
def class_imbalance(ev: Evidence) -> list[Finding]:
    """Some classes far more frequent than others."""
    out = []
    for h in ev.heads:
        y = ev.labels[h.index]
        if y is None or not (h.classifier or y.dtype.kind in "iu"):
            continue
        counts = class_counts(y, h.units if h.classifier else None)
        if counts is None or (counts > 0).sum() < 2:
            continue
        present = np.flatnonzero(counts)
        big, small = int(present[np.argmax(counts[present])]), \
            int(present[np.argmin(counts[present])])
        ratio = counts[big] / counts[small]
        missing = int((counts == 0).sum())
        severity = "warning" if ratio >= IMBALANCE_WARNING else \
            "info" if ratio >= IMBALANCE_INFO or missing else None
        if severity is None:
            continue
        names = ev.dataset.class_names or []
        label = _namer(names)

        out.append(Finding(
            "class_imbalance", "class_imbalance", severity, None,
            {"output": h.name, "largest_class": label(big), "largest_count": int(counts[big]),
             "smallest_class": label(small), "smallest_count": int(counts[small]),
             "ratio": float(ratio), "classes": int(len(present)), "missing_classes": missing},
            f"Class {label(big)!r} has {int(counts[big]):,} examples and class "
            f"{label(small)!r} {int(counts[small]):,} ({ratio:.1f}x fewer)"
            + (f"; {missing} of the output's classes have none" if missing else "")
            + ". A model can score well by mostly predicting the large classes, and accuracy "
            "hides it.",
            "Weight the classes (fit(class_weight=...)), resample the small ones, and judge the "
            "model per class (precision/recall) rather than by accuracy.",
            page="doctor", panel="doctor_figure"))
        ev.plot("class_imbalance", None, {
            "kind": "bars", "title": f"Examples per class ({h.name})",
            "labels": [label(i) for i in range(len(counts))],
            "values": [int(c) for c in counts], "highlight": [label(small)],
            "x_title": "class", "y_title": "examples"})
    return out


def _namer(names: list[str]):
    return lambda i: names[i] if i < len(names) else str(i)


def _float_inputs(ev: Evidence) -> list[tuple[str, np.ndarray]]:
    return [(n, a) for n, a in ev.inputs if a.dtype.kind == "f" and a.size]


@check("input_scale", "unnormalized_input", needs=("data",))
def input_scale(ev: Evidence) -> list[Finding]:
    """Inputs far from unit scale (raw 0-255 pixels, unscaled features)."""
    if normalizes_inputs(ev):
        return []
    out = []
    for name, arr in _float_inputs(ev):
        a = arr.astype(np.float64)
        a = a[np.isfinite(a)]
        if not a.size:
            continue
        mean, std, lo, hi = float(a.mean()), float(a.std()), float(a.min()), float(a.max())
        evidence = {"input": name, "mean": mean, "std": std, "min": lo, "max": hi}
        pixels = lo >= 0 and 100 < hi <= 255 and bool(np.all(np.mod(a[:100_000], 1) == 0))
        if std > INPUT_SCALE_HIGH or abs(mean) > INPUT_SCALE_HIGH:
            out.append(Finding(
                "input_scale", "unnormalized_input", "warning", None, evidence,
                f"The input {name!r} runs from {lo:.4g} to {hi:.4g} (mean {mean:.3g}, std "
                f"{std:.3g})" + (": these look like raw 0-255 pixels" if pixels else "")
                + ". Layers are initialised for inputs of about unit scale, so the first "
                "layer's outputs are far too large: units saturate or die and the gradients of "
                "the first weights are huge, as if the learning rate were much too high.",
                ("Divide the pixels by 255 (or put keras.layers.Rescaling(1/255) first)."
                 if pixels else "Standardize each feature to mean 0 and std 1 (fit the "
                 "statistics on the training data, or put keras.layers.Normalization first)."),
                page="activations", panel="activation_table"))
        elif INPUT_SCALE_LOW > std > 0:
            out.append(Finding(
                "input_scale", "unnormalized_input", "warning", None, evidence,
                f"The input {name!r} varies very little (std {std:.3g}): scaled twice, or in "
                "the wrong units? The first layer sees almost the same input for every "
                "example and learns slowly.",
                "Scale the inputs to about unit std (e.g. divide 0-255 pixels by 255 once).",
                page="activations", panel="activation_table"))
        elif arr.ndim == 2 and arr.shape[1] > 1:
            cols = arr.astype(np.float64)
            spread = np.maximum(np.nanstd(cols, 0), np.abs(np.nanmean(cols, 0)))
            wide = np.flatnonzero(spread > INPUT_SCALE_HIGH)
            if wide.size:
                shown = ", ".join(map(str, wide[:5])) + ("…" if wide.size > 5 else "")
                out.append(Finding(
                    "input_scale", "unnormalized_input", "warning", None,
                    {**evidence, "wide_columns": int(wide.size), "columns": int(arr.shape[1]),
                     "largest_scale": float(spread.max())},
                    f"{wide.size} of the {arr.shape[1]} columns of {name!r} (columns {shown}) "
                    f"have a scale above {INPUT_SCALE_HIGH:g} (up to {spread.max():.3g}) while "
                    "the rest are small: those features dominate the first layer and its "
                    "gradients.",
                    "Standardize each column to mean 0 and std 1 (or put "
                    "keras.layers.Normalization first).",
                    page="activations", panel="activation_table"))
    return out


@check("constant_features", "unnormalized_input", needs=("data",))
def constant_features(ev: Evidence) -> list[Finding]:
    """Inputs, or tabular columns, that are the same for every example."""
    out = []
    for name, arr in _float_inputs(ev):
        if len(arr) < 2:
            continue
        flat = arr.reshape(len(arr), -1).astype(np.float64)
        if np.nanmax(flat) == np.nanmin(flat):
            out.append(Finding(
                "constant_features", "unnormalized_input", "error", None,
                {"input": name, "value": float(np.nanmax(flat)), "examples": int(len(arr))},
                f"The input {name!r} holds the same value ({np.nanmax(flat):g}) for every "
                "example: the model cannot tell the examples apart.",
                "Check the data loading (an empty image folder, a column of zeros, a failed "
                "decode).", page="activations", panel="example_input"))
            continue
        if arr.ndim != 2:
            continue  # images: constant border pixels are normal
        const = np.flatnonzero(np.nanmax(flat, 0) == np.nanmin(flat, 0))
        if not const.size:
            continue
        share = const.size / flat.shape[1]
        shown = ", ".join(map(str, const[:8])) + ("…" if const.size > 8 else "")
        out.append(Finding(
            "constant_features", "unnormalized_input",
            "warning" if share >= CONSTANT_SHARE else "info", None,
            {"input": name, "constant_columns": int(const.size), "columns": int(flat.shape[1]),
             "share": float(share)},
            f"{const.size} of the {flat.shape[1]} columns of {name!r} (columns {shown}) are "
            "the same for every example: they carry no information"
            + (", and they are most of the input." if share >= CONSTANT_SHARE else "."),
            "Drop the constant columns (and check how the data was built).",
            page="activations", panel="activation_table"))
    return out


@check("input_nan", "nan_inf", needs=("data",))
def input_nan(ev: Evidence) -> list[Finding]:
    """NaN or infinite values in the inputs."""
    counts = dict(ev.data().nonfinite)
    if not counts:
        counts = {n: int((~np.isfinite(a)).sum()) for n, a in _float_inputs(ev)}
    return [Finding(
        "input_nan", "nan_inf", "error", None, {"input": name, "nonfinite_values": int(n)},
        f"The input {name!r} holds {n:,} NaN or infinite values: every activation, loss and "
        "gradient they touch is NaN, and one NaN update spreads to every weight.",
        "Impute or drop them before training (np.nan_to_num, or a mask), and check the "
        "loading of the data.", page="activations", panel="example_input")
        for name, n in counts.items() if n]
