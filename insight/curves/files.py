"""Training logs that are tables: a Keras `CSVLogger` CSV and a Keras `History` as JSON.

Each reader returns the tidy frame of `insight.curves.logdir` (`run, tag, step, wall_time,
value`, with `run` and `tag` categorical): one series per metric column, `wall_time` NaN (the
files do not record it). NaN and Inf values are kept, never dropped. `Logdir` and
`read_scalars` call them for `.csv` and `.json` files.

Example:

>>> from insight.curves.files import read_csv_log
>>> sorted(read_csv_log("sample_models/digits_cnn/history.csv").tag.unique())[:2]  # doctest: +SKIP
['accuracy', 'loss']
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from insight.errors import DataError

__all__ = ["read_csv_log", "read_history_json"]


def read_csv_log(path: str | Path, run: str | None = None) -> pd.DataFrame:
    """A Keras `CSVLogger` file (`epoch,loss,...,val_loss`) as the tidy frame; `run` defaults
    to the file's stem. Without an `epoch` column the row number is the step.

    Raises:
        DataError: the file cannot be read or has no numeric columns.
    """
    path = Path(path)
    _check_size(path)
    _check_columns(path)
    try:
        raw = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"Cannot read {path.name} as a CSV training log "
                        f"({_first_line(exc)}).",
                        "Give a CSVLogger file: a header row, then one row per epoch.",
                        f"path={str(path)!r}") from None
    steps = _epochs(raw["epoch"], path) if "epoch" in raw else np.arange(len(raw))
    cols = {c: pd.to_numeric(raw[c], errors="coerce") for c in raw.columns if c != "epoch"}
    cols = {c: v for c, v in cols.items() if v.notna().any() or raw[c].isna().all()}
    if not cols:
        raise DataError(f"{path.name} has no numeric metric columns.",
                        "Give a CSVLogger file (epoch, loss, val_loss, ...).",
                        f"columns={list(raw.columns)}")
    return _frame_from_columns(run or path.stem, steps, cols)


def read_history_json(path: str | Path, run: str | None = None) -> pd.DataFrame:
    """A Keras `History.history` dict saved as JSON (`{"loss": [...], "val_loss": [...]}`,
    optionally under a `"history"` key, with `"epoch"` steps) as the tidy frame.

    Raises:
        DataError: not JSON, or not a mapping of metric names to lists of numbers.
    """
    path = Path(path)
    _check_size(path)
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: [[[[...]]]] deep
        raise DataError(f"Cannot read {path.name} as JSON ({_first_line(exc)}).",
                        "Save `history.history` with json.dump.", f"path={str(path)!r}") from None
    if isinstance(data, dict) and isinstance(data.get("history"), dict):
        epochs = data.get("epoch")
        data = data["history"]
    else:
        epochs = data.pop("epoch", None) if isinstance(data, dict) else None
    ok = isinstance(data, dict) and data and len(data) <= MAX_METRICS and all(
        isinstance(v, list) and all(x is None or _json_number(x) for x in v)
        for v in data.values())
    if not ok:
        raise DataError(f"{path.name} is not a Keras history: expected a mapping of metric "
                        "names to lists of numbers.",
                        'Save it with json.dump(model.fit(...).history, f).',
                        f"path={str(path)!r}")
    n = max(len(v) for v in data.values())
    steps = np.asarray(epochs, np.int64) if isinstance(epochs, list) and len(epochs) == n \
        and all(type(e) is int and abs(e) < 2**63 for e in epochs) else np.arange(n)
    cols = {k: [math.nan if x is None else float(x) for x in v] + [math.nan] * (n - len(v))
            for k, v in data.items()}
    return _frame_from_columns(run or path.stem, steps, cols)


MAX_LOG_BYTES = 256 << 20  # a CSVLogger of a million epochs and ten metrics is ~100 MB
MAX_METRICS = 10_000  # metric columns (a real log has a handful)


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):  # its message quotes a byte of the file
        return "not UTF-8 text"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"Cannot read {path.name} ({exc.strerror or exc}).",
                        "Check the path.", f"path={str(path)!r}") from None
    if size > MAX_LOG_BYTES:
        raise DataError(f"{path.name} is {size / 2**20:,.0f} MiB; insight reads training logs "
                        f"of up to {MAX_LOG_BYTES >> 20} MiB.",
                        "Log to TensorBoard event files instead (read incrementally), or "
                        "keep every n-th epoch.", f"path={str(path)!r}, size={size}")


def _check_columns(path: Path) -> None:
    """Count the header's columns before pandas builds a frame of a million of them."""
    try:
        with path.open("rb") as fh:
            header = fh.readline(64 << 20)
    except OSError as exc:
        raise DataError(f"Cannot read {path.name} ({exc.strerror or exc}).",
                        "Check the path.", f"path={str(path)!r}") from None
    columns = header.count(b",") + 1
    if columns > MAX_METRICS:
        raise DataError(f"{path.name} has {columns:,} columns; a training log has a few "
                        f"metrics (insight reads up to {MAX_METRICS:,}).",
                        "Give a CSVLogger file: epoch, loss, val_loss, ...",
                        f"path={str(path)!r}, columns={columns}")


def _epochs(column: pd.Series, path: Path) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    if values.isna().any() or not np.isfinite(values).all() or (values.abs() >= 2**63).any():
        raise DataError(f"The epoch column of {path.name} holds values that are not whole "
                        "numbers.", "Give a CSVLogger file, whose epoch column counts 0, 1, 2...",
                        f"path={str(path)!r}, epoch_dtype={column.dtype}")
    return values.to_numpy(np.float64).astype(np.int64)


def _json_number(x: object) -> bool:
    """A number that a float holds too (JSON allows the int 10**400; NaN is kept)."""
    if isinstance(x, bool):
        return True
    if isinstance(x, int):
        return abs(x) < 2**1000
    return isinstance(x, float)


def _frame_from_columns(run: str, steps: np.ndarray, cols: dict) -> pd.DataFrame:
    parts = [pd.DataFrame({"run": run, "tag": name, "step": steps,
                           "wall_time": np.nan, "value": np.asarray(v, np.float64)})
             for name, v in cols.items()]
    return _categorical(pd.concat(parts, ignore_index=True))


def _categorical(df: pd.DataFrame) -> pd.DataFrame:
    df["run"] = df["run"].astype("category")
    df["tag"] = df["tag"].astype("category")
    return df
