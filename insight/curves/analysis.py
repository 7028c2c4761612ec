"""Curve arithmetic: smoothing, extreme-keeping downsampling, best epoch, overfitting onset.

Smoothing methods (`SMOOTHING`):
- `"none"`.
- `"ema"`: TensorBoard's debiased exponential moving average, exactly as its scalar card
  computes it (`classicSmoothing`): `last = last * w + (1 - w) * y` over finite points,
  divided by `1 - w ** n` (n finite points so far); NaN/Inf points stay as they are and a
  constant series is returned unchanged.
- `"moving_average"`: the centred mean of `window` points (fewer at the ends).
- `"gaussian"`: a Gaussian kernel with standard deviation `window / 4` points (so the
  window spans +-2 sigma), truncated at 3 sigma and renormalised at the ends.
Moving average and Gaussian skip NaN/Inf points and leave them in place.

Example:

>>> import numpy as np
>>> smooth(np.array([1.0, 0.0, 0.0]), "ema", weight=0.5).round(4).tolist()
[1.0, 0.3333, 0.1429]
"""

from __future__ import annotations

import numpy as np

from insight.errors import UsageError

__all__ = ["SMOOTHING", "smooth", "downsample", "metric_direction", "best_step",
           "overfitting"]

SMOOTHING = ("none", "ema", "moving_average", "gaussian")


def smooth(values: np.ndarray, method: str = "ema", *, weight: float = 0.6,
           window: int = 9, at: np.ndarray | None = None) -> np.ndarray:
    """`values` smoothed with `method` (see the module docstring); a new float array.

    Args:
        values: the raw series, in step order.
        method: one of `SMOOTHING`. Defaults to `"ema"`.
        weight: the EMA weight in [0, 1). Defaults to `0.6` (TensorBoard's default).
        window: points spanned by the moving average / Gaussian. Defaults to `9`.
        at: indices to return the smoothed values at (e.g. the points a chart draws): the
            moving average and Gaussian are then computed there only. `None`: everywhere.
            Defaults to `None`.

    Raises:
        UsageError: an unknown method or a weight outside [0, 1].
    """
    y = np.asarray(values, np.float64)
    if method not in SMOOTHING:
        raise UsageError(f"Unknown smoothing method {method!r}.",
                         f"Use one of: {', '.join(SMOOTHING)}.", f"method={method!r}")
    if not 0.0 <= weight <= 1.0:
        raise UsageError("The smoothing weight must be between 0 and 1.", "",
                         f"weight={weight!r}")
    if method == "none" or len(y) < 2:
        return y.copy() if at is None else y[at]
    if method == "ema":
        out = _ema(y, weight)
        return out if at is None else out[at]
    return _kernel(y, method, max(1, int(window)), np.arange(len(y)) if at is None else
                   np.asarray(at, np.int64))


def _ema(y: np.ndarray, w: float) -> np.ndarray:
    out = y.copy()
    if np.all(y == y[0]):  # constant (TensorBoard #786); NaN never equals, as in JS
        return out
    finite = np.isfinite(y)
    x = y[finite]
    if not len(x):
        return out
    from scipy.signal import lfilter

    last = lfilter([1.0 - w], [1.0, -w], x)  # last_n = w * last_{n-1} + (1 - w) * x_n
    debias = 1.0 - w ** np.arange(1, len(x) + 1) if w != 1 else 1.0
    out[finite] = last / debias
    return out


def _kernel(y: np.ndarray, method: str, window: int, at: np.ndarray) -> np.ndarray:
    """Normalised kernel average over the finite points around each index of `at`."""
    if method == "moving_average":
        half = window // 2
        kernel = np.ones(2 * half + 1)
    else:
        sigma = max(window / 4.0, 1e-9)
        half = max(1, int(np.ceil(3 * sigma)))
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    finite = np.isfinite(y)
    pad = np.zeros(half)
    filled = np.concatenate([pad, np.where(finite, y, 0.0), pad])
    weights = np.concatenate([pad, finite.astype(np.float64), pad])
    view = np.lib.stride_tricks.sliding_window_view
    out = y[at].copy()
    for lo in range(0, len(at), 4096):  # bounded memory: (4096, kernel) at a time
        idx = at[lo:lo + 4096]
        num = view(filled, len(kernel))[idx] @ kernel
        den = view(weights, len(kernel))[idx] @ kernel
        ok = finite[idx] & (den > 0)
        out[lo:lo + 4096][ok] = num[ok] / den[ok]
    return out


def downsample(x: np.ndarray, y: np.ndarray, n_out: int = 2000) -> np.ndarray:
    """Indices of at most about `n_out` points that keep the shape and every extreme
    (tsdownsample's MinMaxLTTB: min/max preselection, then largest-triangle-three-buckets),
    plus every NaN/Inf point. All indices when there are `n_out` points or fewer.

    >>> downsample(np.arange(10), np.arange(10.0), 2000).tolist() == list(range(10))
    True
    """
    n = len(y)
    if n <= n_out:
        return np.arange(n)
    finite = np.isfinite(y)
    idx = np.flatnonzero(finite)
    keep = np.arange(0)
    if len(idx) > n_out:
        from tsdownsample import MinMaxLTTBDownsampler

        xs = np.asarray(x, np.float64)[idx]
        ys = np.ascontiguousarray(np.asarray(y, np.float64)[idx])
        if np.all(np.diff(xs) >= 0):
            sel = MinMaxLTTBDownsampler().downsample(np.ascontiguousarray(xs), ys,
                                                     n_out=max(n_out, 4))
        else:  # steps go back (a restarted run): downsample in file order
            sel = MinMaxLTTBDownsampler().downsample(ys, n_out=max(n_out, 4))
        keep = idx[np.asarray(sel, np.int64)]
    else:
        keep = idx
    return np.union1d(keep, np.flatnonzero(~finite))


_LOWER = ("loss", "error", "mse", "mae", "rmse", "crossentropy", "perplexity", "hinge",
          "divergence")
_HIGHER = ("acc", "auc", "precision", "recall", "f1", "iou", "dice", "r2", "top_k")


def metric_direction(metric: str) -> str:
    """`"min"` when lower is better (losses, errors), `"max"` when higher is (accuracy,
    AUC...), `""` when the name does not say.

    >>> metric_direction("epoch_loss"), metric_direction("val_accuracy"), metric_direction("lr")
    ('min', 'max', '')
    """
    name = metric.lower()
    if any(s in name for s in _LOWER):
        return "min"
    if any(s in name for s in _HIGHER):
        return "max"
    return ""


def best_step(step: np.ndarray, value: np.ndarray, direction: str) -> tuple[int, float] | None:
    """`(step, value)` of the best finite point (`direction` "min" or "max"), or `None`."""
    v = np.asarray(value, np.float64)
    finite = np.flatnonzero(np.isfinite(v))
    if not len(finite) or direction not in ("min", "max"):
        return None
    i = finite[np.argmin(v[finite]) if direction == "min" else np.argmax(v[finite])]
    return int(step[i]), float(v[i])


def overfitting(train_step: np.ndarray, train_loss: np.ndarray, val_step: np.ndarray,
                val_loss: np.ndarray, *, weight: float = 0.6, min_rise: float = 0.02
                ) -> dict | None:
    """Where validation loss starts rising while training loss keeps falling, or `None`.

    The validation loss is smoothed (TensorBoard EMA, `weight`); its minimum is the onset
    when, after it, (a) at least two more validation points exist, (b) the smoothed
    validation loss ends more than `min_rise` (relative to its drop from the start, at
    least 1% of its value) above the minimum, and (c) the training loss at the end is below
    its value at the onset.

    Returns:
        `{"step", "val_at_onset", "val_at_end", "rise"}` (rise relative to the minimum), or
        `None` when there is no such point.
    """
    vs, vl = np.asarray(val_step), np.asarray(val_loss, np.float64)
    ok = np.isfinite(vl)
    vs, vl = vs[ok], vl[ok]
    if len(vl) < 4:
        return None
    s = smooth(vl, "ema", weight=weight)
    i = int(np.argmin(s))
    if len(s) - 1 - i < 2:
        return None
    scale = max(abs(s[0] - s[i]), 0.01 * abs(s[i]), 1e-12)
    if (s[-1] - s[i]) / scale < min_rise or s[-1] - s[i] < 0.01 * abs(s[i]):
        return None
    ts, tl = np.asarray(train_step), np.asarray(train_loss, np.float64)
    ok = np.isfinite(tl)
    ts, tl = ts[ok], tl[ok]
    if len(tl):
        at = np.searchsorted(ts, vs[i], side="right") - 1
        if at >= 0 and not tl[-1] < tl[at]:
            return None
    return {"step": int(vs[i]), "val_at_onset": float(vl[i]), "val_at_end": float(vl[-1]),
            "rise": float((s[-1] - s[i]) / max(abs(s[i]), 1e-12))}
