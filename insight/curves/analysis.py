"""Curve arithmetic: smoothing, extreme-keeping downsampling, best epoch, overfitting onset and
the train/validation verdict (overfitting, a large gap, no sign, or too few epochs to tell).

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

from dataclasses import dataclass

import numpy as np

from insight.errors import UsageError

__all__ = ["SMOOTHING", "smooth", "downsample", "metric_direction", "best_step",
           "overfitting", "Verdict", "train_val_verdict", "SHORT_RUN"]

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


SHORT_RUN = 8
"""Validation points below which the overfitting check reads the raw curve: over a few
epochs an EMA lags so far behind that a rise in the last epochs does not show in it."""
RAW_RISE = 0.05  # how much worse than its best a raw curve must end (of the best's size)
TAIL = 2  # epochs in a row that must get worse for the last-epochs check of long runs
VERDICTS = ("overfitting", "gap", "none", "too_short", "")


def _finite(step, value) -> tuple[np.ndarray, np.ndarray]:
    s, v = np.asarray(step), np.asarray(value, np.float64)
    ok = np.isfinite(v)
    return s[ok], v[ok]


def _sign(direction: str) -> float:
    if direction not in ("min", "max"):
        raise UsageError("The direction must be 'min' (lower is better, a loss) or 'max' "
                         "(higher is better, an accuracy).",
                         "Use metric_direction(name) to find it.", f"direction={direction!r}")
    return 1.0 if direction == "min" else -1.0


def _noise(y: np.ndarray) -> float:
    """The standard deviation of a curve's point-to-point noise, robustly, from the second
    differences of its second half (white noise's have variance 6 sigma^2; a smooth trend
    adds little, least where a training curve has flattened out)."""
    d2 = np.diff(y[len(y) // 2 - 1:] if len(y) >= 8 else y, 2)
    return 1.4826 * float(np.median(np.abs(d2))) / np.sqrt(6.0) if len(d2) else 0.0


def overfitting(train_step: np.ndarray, train_value: np.ndarray, val_step: np.ndarray,
                val_value: np.ndarray, *, direction: str = "min", weight: float = 0.6,
                min_rise: float = 0.02, short: int = SHORT_RUN) -> dict | None:
    """Where the validation curve turns worse while the training curve keeps improving.

    "Worse" is higher for a loss (`direction="min"`) and lower for an accuracy (`"max"`).
    Three checks, the first that applies decides:

    - Short runs (fewer than `short` finite validation points): the raw curve. Its best
      point is the onset when at least two points follow it and the last one is worse than
      the best by more than `RAW_RISE` (5%) of the best's size.
    - Longer runs: the curve smoothed with TensorBoard's EMA (`weight`). Its best point is
      the onset when at least two points follow it and it ends worse than that by more than
      `min_rise` of its improvement from the start, by 1% of its value, and by more than
      noise alone would (the curve's noise, estimated from its second differences, times
      what the lowest of n smoothed noisy points falls below their level, plus margin).
    - Longer runs whose smoothed curve has not turned yet: the last `TAIL` (2) raw points,
      each worse than the one before, together by more than 5% of the value before them and
      by more than four times the noise. The onset is the point before them.

    In every case the training curve must be better at its end than at the onset.

    Args:
        train_step: the training curve's steps.
        train_value: its values (NaN/Inf are left out).
        val_step: the validation curve's steps.
        val_value: its values (NaN/Inf are left out).
        direction: `"min"` or `"max"` (see `metric_direction`). Defaults to `"min"`.
        weight: the EMA weight for long runs. Defaults to `0.6`.
        min_rise: the smoothed check's threshold. Defaults to `0.02`.
        short: validation points below which the raw curve is read. Defaults to `SHORT_RUN`.

    Returns:
        `{"step", "val_at_onset", "val_at_end", "rise", "how"}`: `rise` is how much worse
        the end is, relative to the onset's size (positive); `how` is `"raw"`, `"smoothed"`
        or `"tail"`. `None` when validation is not getting worse.

    Raises:
        UsageError: a direction other than "min" or "max".

    Example:

    >>> overfitting([0, 1, 2], [0.61, 0.34, 0.23], [0, 1, 2], [0.95, 1.12, 1.41])["step"]
    0
    """
    sign = _sign(direction)
    vs, vl = _finite(val_step, val_value)
    n = len(vl)
    if n < 3:
        return None
    bad = sign * vl  # higher is worse, for both directions
    onset = None
    if n < short:
        i = int(np.argmin(bad))
        if n - 1 - i >= 2 and bad[-1] - bad[i] > RAW_RISE * max(abs(vl[i]), 1e-12):
            onset, how, rise = i, "raw", (bad[-1] - bad[i]) / max(abs(vl[i]), 1e-12)
    else:
        s = smooth(bad, "ema", weight=weight)
        i = int(np.argmin(s))
        scale = max(abs(s[0] - s[i]), 0.01 * abs(s[i]), 1e-12)
        sigma = _noise(bad)
        # how far a smoothed noise-only curve ends above its lowest point, with margin
        noise_rise = sigma * np.sqrt((1 - weight) / (1 + weight)) * (np.sqrt(2 * np.log(n)) + 2)
        if n - 1 - i >= 2 and (s[-1] - s[i]) / scale >= min_rise and \
                s[-1] - s[i] >= 0.01 * abs(s[i]) and s[-1] - s[i] > noise_rise:
            onset, how, rise = i, "smoothed", (s[-1] - s[i]) / max(abs(s[i]), 1e-12)
        else:
            j = n - 1 - TAIL
            total = bad[-1] - bad[j]
            if (np.diff(bad[j:]) > 0).all() and total > RAW_RISE * max(abs(vl[j]), 1e-12) \
                    and total > 4 * sigma:
                onset, how, rise = j, "tail", total / max(abs(vl[j]), 1e-12)
    if onset is None:
        return None
    ts, tl = _finite(train_step, train_value)
    if len(tl):
        at = np.searchsorted(ts, vs[onset], side="right") - 1
        if at >= 0 and not sign * tl[-1] < sign * tl[at]:
            return None
    return {"step": int(vs[onset]), "val_at_onset": float(vl[onset]),
            "val_at_end": float(vl[-1]), "rise": float(rise), "how": how}


@dataclass(frozen=True)
class Verdict:
    """What one metric's training and validation curves say.

    Attributes:
        kind: `"overfitting"` (validation getting worse while training improves),
            `"gap"` (validation far worse than training, not getting worse), `"none"` (no
            sign of overfitting), `"too_short"` (not enough epochs to tell) or `""` (the
            metric's name does not say whether higher is better).
        text: the verdict in a few words, for a table ("overfitting from epoch 2; large
            gap (val 6.1× train)").
        detail: the same in a sentence, with the values it rests on.
        onset: the step from which validation gets worse (`kind == "overfitting"`).
        train_last: training's value at (or last before) validation's last step.
        val_last: validation's last finite value.
        gap: how far validation trails training: `val / train` for a loss (1.5 and more is
            large), `train - val` for an accuracy (0.1 and more is large); `None` when it
            cannot be computed.
        points: the finite validation points.
    """

    kind: str
    text: str
    detail: str = ""
    onset: int | None = None
    train_last: float | None = None
    val_last: float | None = None
    gap: float | None = None
    points: int = 0


def train_val_verdict(train_step: np.ndarray, train_value: np.ndarray, val_step: np.ndarray,
                      val_value: np.ndarray, direction: str, *, unit: str = "step",
                      weight: float = 0.6, gap_ratio: float = 1.5, gap_points: float = 0.1
                      ) -> Verdict:
    """Overfitting, a large gap, no sign, or not enough epochs to tell, for one metric.

    In that order: `overfitting` finds an onset (on the raw curve for short runs); else a
    large train/validation gap at validation's last step (validation loss at least
    `gap_ratio` times training's; validation accuracy at least `gap_points` below); else,
    with fewer than 3 validation points, not enough epochs to tell; else no sign. One
    validation point is always too few.

    Args:
        train_step: the training curve's steps.
        train_value: its values.
        val_step: the validation curve's steps.
        val_value: its values.
        direction: `"min"`, `"max"`, or `""` for a metric whose better side is unknown (the
            verdict is then empty).
        unit: what a step is, for the text (`"epoch"`, `"step"`). Defaults to `"step"`.
        weight: the EMA weight of the long-run check. Defaults to `0.6`.
        gap_ratio: a large gap for losses. Defaults to `1.5`.
        gap_points: a large gap for accuracies. Defaults to `0.1`.

    Returns:
        A `Verdict`.

    Example:

    >>> v = train_val_verdict([0, 1, 2], [0.61, 0.34, 0.23], [0, 1, 2], [0.95, 1.12, 1.41],
    ...                       "min", unit="epoch")
    >>> v.kind, v.onset
    ('overfitting', 0)
    """
    vs, vl = _finite(val_step, val_value)
    ts, tl = _finite(train_step, train_value)
    if direction not in ("min", "max"):
        return Verdict("", "", points=len(vl))
    train_last = val_last = gap = None
    if len(vl):
        val_last = float(vl[-1])
        at = np.searchsorted(ts, vs[-1], side="right") - 1
        train_last = float(tl[at]) if at >= 0 else (float(tl[-1]) if len(tl) else None)
    if train_last is not None:
        if direction == "max":
            gap = train_last - val_last
        elif train_last > 0 and val_last > 0:
            gap = val_last / train_last
    large = gap is not None and (gap >= gap_ratio if direction == "min" else gap >= gap_points)
    facts = dict(train_last=train_last, val_last=val_last, gap=gap, points=len(vl))
    few = f"{len(vl)} validation point{'s' if len(vl) != 1 else ''}"
    short = f"not enough epochs to tell ({few})"
    why = f"Not enough epochs to tell ({few}): a trend needs at least 3."
    if len(vl) < 2:
        return Verdict("too_short", short, why, **facts)
    onset = overfitting(train_step, train_value, val_step, val_value, direction=direction,
                        weight=weight)
    if gap is None:
        gap_short = gap_long = ""
    else:
        gap_short = f"large gap (val {gap:.2g}" + ("× train)" if direction == "min" else
                                                   " below train)")
        gap_long = f"large gap: validation {gap:.2g}" + (
            "× training" if direction == "min" else " below training") + \
            f" ({val_last:.3g} vs {train_last:.3g})"
    if onset is not None:
        worse, better = ("rose", "fell") if direction == "min" else ("fell", "rose")
        at = np.searchsorted(ts, onset["step"], side="right") - 1
        train_then = f"{tl[at]:.3g} → " if at >= 0 else ""
        text = f"overfitting from {unit} {onset['step']}" + (f"; {gap_short}" if large else "")
        detail = (f"Overfitting from {unit} {onset['step']}: validation {worse} "
                  f"{onset['val_at_onset']:.3g} → {onset['val_at_end']:.3g} while training "
                  f"{better}" + (f" {train_then}{tl[-1]:.3g}" if len(tl) else "")
                  + (f"; {gap_long}." if large else "."))
        return Verdict("overfitting", text, detail, onset=onset["step"], **facts)
    if large:
        trend = "validation is not clearly getting worse" if len(vl) >= 3 else \
            f"{few} are too few to see a trend"
        return Verdict("gap", gap_short, f"A {gap_long}; {trend}.", **facts)
    if len(vl) < 3:
        return Verdict("too_short", short, why, **facts)
    return Verdict("none", "no sign of overfitting", "No sign of overfitting: validation is "
                   "not clearly getting worse and stays close to training.", **facts)
