"""Training curves from any log as one tidy frame: `run, tag, step, wall_time, value`.

Sources: a TensorBoard logdir (event files found recursively; each folder holding event
files is a run, named by its path from the logdir, `.` for the logdir itself), one event
file, a Keras `CSVLogger` CSV, or a Keras `History.history` saved as JSON. NaN and Inf
values are kept, never dropped.

`Logdir` reads incrementally: `refresh()` reads only bytes appended to event files since
the last call (and new files), which is what the Training page's live mode uses.
Smoothing, downsampling and the best-epoch / overfitting checks live in
`insight.curves.analysis` and are re-exported here.

Example:

>>> import insight
>>> df = insight.read_scalars("sample_models/digits_cnn/logs")  # doctest: +SKIP
>>> sorted(df.run.unique())  # doctest: +SKIP
['train', 'validation']
>>> insight.read_scalars("sample_models/digits_cnn/history.csv").tag.unique()[:2]  # doctest: +SKIP
array(['accuracy', 'loss'], dtype=object)
"""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from insight.curves.analysis import (
    SMOOTHING,
    best_step,
    downsample,
    metric_direction,
    overfitting,
    smooth,
)
from insight.curves.tfevents import EventFileReader, Histogram, Series
from insight.errors import DataError

__all__ = ["COLUMNS", "HIST_COLUMNS", "Logdir", "read_scalars", "read_histograms",
           "read_csv_log", "read_history_json", "split_of", "label_series", "train_val_pairs",
           "logdir_stamp", "smooth", "SMOOTHING", "downsample", "best_step", "overfitting",
           "metric_direction"]

COLUMNS = ["run", "tag", "step", "wall_time", "value"]
HIST_COLUMNS = ["run", "tag", "step", "wall_time", "left", "right", "count"]
TRAIN_NAMES = {"train", "training"}
VAL_NAMES = {"validation", "val", "valid", "eval", "evaluation"}


def _kind(path: Path) -> str:
    if path.is_dir():
        return "dir"
    if "tfevents" in path.name:
        return "events"
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() == ".json":
        return "json"
    return "unknown"


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


class Logdir:
    """An incrementally read training log: a logdir, one event file, a CSV or a JSON.

    `refresh()` picks up new event files and reads only what was appended to known ones
    (CSV/JSON files are read again when they change). Thread-safe.

    Example:

    >>> logs = Logdir("runs/")  # doctest: +SKIP
    >>> logs.refresh()  # points read  # doctest: +SKIP
    1500000
    >>> logs.series()[("run_0", "loss")].value  # doctest: +SKIP

    Raises:
        DataError: the path does not exist or is not a log insight reads.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise DataError("No such log file or folder.",
                            "Give a TensorBoard logdir, an event file, a CSVLogger .csv or a "
                            "Keras history .json.", f"path={str(path)!r}")
        self.kind = _kind(self.path)
        if self.kind == "unknown":
            raise DataError(f"{self.path.name} is not a training log insight reads.",
                            "Give a TensorBoard logdir, an event file (events.out.tfevents.*), "
                            "a CSVLogger .csv or a Keras history .json.",
                            f"path={str(path)!r}")
        self._files: dict[Path, EventFileReader] = {}
        self._tables: dict[Path, tuple[tuple, pd.DataFrame]] = {}
        self._lock = threading.Lock()

    def _event_files(self) -> list[Path]:
        if self.kind == "events":
            return [self.path]
        if self.kind != "dir":
            return []
        found = []
        for folder, dirs, files in os.walk(self.path):
            dirs.sort()
            found += [Path(folder) / f for f in sorted(files) if "tfevents" in f]
        return found

    def _table_files(self) -> list[Path]:
        if self.kind in ("csv", "json"):
            return [self.path]
        if self.kind == "dir" and not self._files:
            return sorted(p for p in self.path.iterdir()
                          if p.is_file() and p.suffix.lower() in (".csv", ".json"))
        return []

    def _run(self, file: Path) -> str:
        if self.kind == "events":
            return file.parent.name or "."
        rel = file.parent.relative_to(self.path).as_posix()
        return rel if rel else "."

    def refresh(self) -> int:
        """Read new files and appended bytes; returns the number of new points."""
        with self._lock:
            new = 0
            for file in self._event_files():
                reader = self._files.get(file)
                if reader is None:
                    reader = self._files[file] = EventFileReader(file)
                new += reader.read()
            for file in self._table_files():
                try:
                    st = file.stat()
                except OSError:
                    continue
                stamp = (st.st_size, st.st_mtime_ns)
                if file in self._tables and self._tables[file][0] == stamp:
                    continue
                try:
                    df = (read_csv_log if file.suffix.lower() == ".csv" else
                          read_history_json)(file)
                except DataError:
                    if self.kind in ("csv", "json"):
                        raise
                    continue  # a stray file beside the logs
                self._tables[file] = (stamp, df)
                new += len(df)
            return new

    def series(self) -> dict[tuple[str, str], Series]:
        """`{(run, tag): Series}` of every scalar series read so far (runs in path order)."""
        with self._lock:
            return self._series()

    def _series(self) -> dict[tuple[str, str], Series]:
        out: dict[tuple[str, str], Series] = {}
        parts: dict[tuple[str, str], list[Series]] = {}
        for file, reader in self._files.items():
            for tag, s in reader.scalars().items():
                parts.setdefault((self._run(file), tag), []).append(s)
        for key, ss in parts.items():
            out[key] = ss[0] if len(ss) == 1 else Series(
                *(np.concatenate([getattr(s, f) for s in ss]) for f in ("step", "wall_time",
                                                                         "value")))
        for _, df in self._tables.values():
            for (run, tag), g in df.groupby(["run", "tag"], observed=True, sort=False):
                out[(str(run), str(tag))] = Series(g["step"].to_numpy(), g["wall_time"].to_numpy(),
                                                   g["value"].to_numpy())
        return out

    def scalars(self) -> pd.DataFrame:
        """Every scalar point as the tidy frame `run, tag, step, wall_time, value`."""
        series = self.series()
        if not series:
            return _categorical(pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
                COLUMNS, (str, str, np.int64, np.float64, np.float64), strict=True)}))
        keys = list(series)
        sizes = np.array([len(series[k]) for k in keys])
        runs = sorted({r for r, _ in keys})
        tags = sorted({t for _, t in keys})
        run_codes = np.repeat([runs.index(r) for r, _ in keys], sizes)
        tag_codes = np.repeat([tags.index(t) for _, t in keys], sizes)
        return pd.DataFrame({
            "run": pd.Categorical.from_codes(run_codes, runs),
            "tag": pd.Categorical.from_codes(tag_codes, tags),
            "step": np.concatenate([series[k].step for k in keys]),
            "wall_time": np.concatenate([series[k].wall_time for k in keys]),
            "value": np.concatenate([series[k].value for k in keys]),
        })

    def histogram_index(self) -> list[tuple[str, str, int]]:
        """`(run, tag, events)` of every histogram series."""
        with self._lock:
            out: dict[tuple[str, str], int] = {}
            for file, reader in self._files.items():
                for tag, hs in reader.histograms().items():
                    key = (self._run(file), tag)
                    out[key] = out.get(key, 0) + len(hs)
            return [(r, t, n) for (r, t), n in out.items()]

    def histogram_series(self, run: str, tag: str) -> list[Histogram]:
        """The histogram events of one run and tag, in file order."""
        with self._lock:
            return [h for file, reader in self._files.items() if self._run(file) == run
                    for h in reader.histograms().get(tag, [])]

    def histograms(self) -> pd.DataFrame:
        """Every histogram bucket: `run, tag, step, wall_time, left, right, count`."""
        rows = []
        for file, reader in self._files.items():
            run = self._run(file)
            for tag, hs in reader.histograms().items():
                for h in hs:
                    b = h.buckets
                    rows.append(pd.DataFrame({"run": run, "tag": tag, "step": h.step,
                                              "wall_time": h.wall_time, "left": b[:, 0],
                                              "right": b[:, 1], "count": b[:, 2]}))
        if not rows:
            return pd.DataFrame({c: [] for c in HIST_COLUMNS})
        return pd.concat(rows, ignore_index=True)

    def problems(self) -> list[str]:
        """One line per file with damaged records or an incomplete tail."""
        out = []
        for file, r in self._files.items():
            name = file.relative_to(self.path).as_posix() if self.kind == "dir" else file.name
            if r.damaged:
                out.append(f"{name}: {r.damaged} damaged record(s) skipped ("
                           + "; ".join(r.notes[:3]) + ")")
            if r.pending:
                out.append(f"{name}: last {r.pending} bytes are an incomplete record (still "
                           "being written?); read once complete")
        return out

    def files(self) -> int:
        """Event, CSV and JSON files read."""
        return len(self._files) + len(self._tables)


def logdir_stamp(path: str | Path | None) -> str:
    """A cheap key that changes when any file under `path` grows or changes (sizes and
    mtimes, no reading), for caches that must follow a live run."""
    if path is None:
        return ""
    p = Path(path)
    try:
        if p.is_file():
            st = p.stat()
            return f"{st.st_size}:{st.st_mtime_ns}"
        total, latest, count = 0, 0, 0
        for folder, _, files in os.walk(p):
            for f in files:
                try:
                    st = os.stat(os.path.join(folder, f))
                except OSError:
                    continue
                total += st.st_size
                latest = max(latest, st.st_mtime_ns)
                count += 1
        return f"{count}:{total}:{latest}"
    except OSError:
        return "missing"


def read_scalars(path: str | Path) -> pd.DataFrame:
    """Every scalar of a training log as one tidy frame `run, tag, step, wall_time, value`.

    Args:
        path: a TensorBoard logdir (read recursively), one event file, a `CSVLogger` CSV, or
            a Keras history JSON. A folder without event files is searched for CSV and JSON
            logs instead.

    Returns:
        One row per point, in file order within each series; `run` and `tag` are categorical.
        Empty (with these columns) when the folder holds no logs yet.

    Raises:
        DataError: the path does not exist or is not a log insight reads.

    Example:

    >>> read_scalars("logs/").groupby(["run", "tag"]).size()  # doctest: +SKIP
    """
    logs = Logdir(path)
    logs.refresh()
    return logs.scalars()


def read_histograms(path: str | Path) -> pd.DataFrame:
    """Every histogram of a logdir or event file: `run, tag, step, wall_time, left, right,
    count` (one row per bucket; TF2 tensor histograms and legacy `HistogramProto`).

    Raises:
        DataError: the path does not exist or is not a log insight reads.
    """
    logs = Logdir(path)
    logs.refresh()
    return logs.histograms()


def split_of(run: str, tag: str) -> tuple[str, str, str]:
    """`(group, split, metric)` of a series: `split` is `"train"`, `"validation"` or `""`.

    Recognised: Keras' `val_` prefix (`loss` / `val_loss`), run folders named like
    `train` / `validation` (the TensorBoard callback), and tag prefixes
    (`train/epoch_loss` / `validation/epoch_loss`).

    >>> split_of("history", "val_loss")
    ('history', 'validation', 'loss')
    >>> split_of("exp1/train", "epoch_loss")
    ('exp1', 'train', 'epoch_loss')
    >>> split_of(".", "validation/epoch_loss")
    ('.', 'validation', 'epoch_loss')
    """
    parts = run.split("/")
    if tag.startswith("val_"):
        return run, "validation", tag[4:]
    head, _, rest = tag.partition("/")
    if rest and head.lower() in TRAIN_NAMES | VAL_NAMES:
        return run, "train" if head.lower() in TRAIN_NAMES else "validation", rest
    last = parts[-1].lower()
    if last in TRAIN_NAMES | VAL_NAMES:
        group = "/".join(parts[:-1]) or "."
        return group, "train" if last in TRAIN_NAMES else "validation", tag
    return run, "", tag


def label_series(keys) -> pd.DataFrame:
    """`run, tag, group, split, metric` for each `(run, tag)` key."""
    rows = [(r, t, *split_of(r, t)) for r, t in keys]
    return pd.DataFrame(rows, columns=["run", "tag", "group", "split", "metric"])


def train_val_pairs(keys) -> pd.DataFrame:
    """The train/validation pairs among `(run, tag)` keys (or a scalars frame): one row per
    `group, metric` with `train_run, train_tag, val_run, val_tag`.

    >>> train_val_pairs([("history", "loss"), ("history", "val_loss")]).iloc[0].tolist()
    ['history', 'loss', 'history', 'loss', 'history', 'val_loss']
    """
    if isinstance(keys, pd.DataFrame):
        keys = keys[["run", "tag"]].drop_duplicates().itertuples(index=False, name=None)
    found: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    for run, tag in keys:
        group, split, metric = split_of(run, tag)
        side = "validation" if split == "validation" else "train"
        found.setdefault((group, metric), {}).setdefault(side, (run, tag))
    out = [(g, m, *sides["train"], *sides["validation"])
           for (g, m), sides in sorted(found.items()) if len(sides) == 2]
    return pd.DataFrame(out, columns=["group", "metric", "train_run", "train_tag", "val_run",
                                      "val_tag"])

