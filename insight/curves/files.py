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
    try:
        raw = pd.read_csv(path)
    except Exception as exc:
        raise DataError(f"Cannot read {path.name} as a CSV training log ({exc}).",
                        "Give a CSVLogger file: a header row, then one row per epoch.",
                        f"path={str(path)!r}") from None
    steps = raw["epoch"].to_numpy(np.int64) if "epoch" in raw else np.arange(len(raw))
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
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path.name} as JSON ({exc}).",
                        "Save `history.history` with json.dump.", f"path={str(path)!r}") from None
    if isinstance(data, dict) and isinstance(data.get("history"), dict):
        epochs = data.get("epoch")
        data = data["history"]
    else:
        epochs = data.pop("epoch", None) if isinstance(data, dict) else None
    ok = isinstance(data, dict) and data and all(
        isinstance(v, list) and all(x is None or isinstance(x, int | float) for x in v)
        for v in data.values())
    if not ok:
        raise DataError(f"{path.name} is not a Keras history: expected a mapping of metric "
                        "names to lists of numbers.",
                        'Save it with json.dump(model.fit(...).history, f).',
                        f"path={str(path)!r}")
    n = max(len(v) for v in data.values())
    steps = np.asarray(epochs, np.int64) if isinstance(epochs, list) and len(epochs) == n \
        else np.arange(n)
    cols = {k: [math.nan if x is None else float(x) for x in v] + [math.nan] * (n - len(v))
            for k, v in data.items()}
    return _frame_from_columns(run or path.stem, steps, cols)


def _frame_from_columns(run: str, steps: np.ndarray, cols: dict) -> pd.DataFrame:
    parts = [pd.DataFrame({"run": run, "tag": name, "step": steps,
                           "wall_time": np.nan, "value": np.asarray(v, np.float64)})
             for name, v in cols.items()]
    return _categorical(pd.concat(parts, ignore_index=True))


def _categorical(df: pd.DataFrame) -> pd.DataFrame:
    df["run"] = df["run"].astype("category")
    df["tag"] = df["tag"].astype("category")
    return df
