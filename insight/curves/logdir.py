"""Training curves from any log as one tidy frame: `run, tag, step, wall_time, value`.

Sources: a TensorBoard logdir (event files found recursively; each folder holding event
files is a run, named by its path from the logdir, `.` for the logdir itself), one event
file, a Keras `CSVLogger` CSV, or a Keras `History.history` saved as JSON. NaN and Inf
values are kept, never dropped.

`Logdir` reads incrementally: `refresh()` reads only bytes appended to event files since
the last call (and new files), which is what the Training page's live mode uses.
The CSV and JSON readers (`insight.curves.files`), the train/validation naming
(`insight.curves.splits`) and smoothing, downsampling and the best-epoch / overfitting checks
(`insight.curves.analysis`) are re-exported here.

Example:

>>> import insight
>>> df = insight.read_scalars("sample_models/digits_cnn/logs")  # doctest: +SKIP
>>> sorted(df.run.unique())  # doctest: +SKIP
['train', 'validation']
>>> insight.read_scalars("sample_models/digits_cnn/history.csv").tag.unique()[:2]  # doctest: +SKIP
array(['accuracy', 'loss'], dtype=object)
"""

from __future__ import annotations

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
    train_val_verdict,
)
from insight.curves.files import read_csv_log, read_history_json
from insight.curves.splits import label_series, split_of, train_val_pairs
from insight.curves.tfevents import EventFileReader, Histogram, Series
from insight.errors import DataError

__all__ = ["COLUMNS", "HIST_COLUMNS", "Logdir", "read_scalars", "read_histograms",
           "read_csv_log", "read_history_json", "split_of", "label_series", "train_val_pairs",
           "logdir_stamp", "smooth", "SMOOTHING", "downsample", "best_step", "overfitting",
           "metric_direction", "train_val_verdict"]

COLUMNS = ["run", "tag", "step", "wall_time", "value"]
HIST_COLUMNS = ["run", "tag", "step", "wall_time", "left", "right", "count"]


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
        self._runs: dict[Path, str] = {}
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
        run = self._runs.get(file)
        if run is None:  # asked per file on every read of the series: paths are slow
            if self.kind == "events":
                run = file.parent.name or "."
            else:
                run = file.parent.relative_to(self.path).as_posix() or "."
            self._runs[file] = run
        return run

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

    def table_runs(self) -> set[str]:
        """The runs read from CSVLogger CSVs and history JSONs, whose steps are epochs."""
        with self._lock:
            return {str(r) for _, df in self._tables.values() for r in df["run"].unique()}

    def scalars(self) -> pd.DataFrame:
        """Every scalar point as the tidy frame `run, tag, step, wall_time, value`."""
        series = self.series()
        if not series:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
                COLUMNS, (str, str, np.int64, np.float64, np.float64), strict=True)}
            ).astype({"run": "category", "tag": "category"})
        keys = list(series)
        sizes = np.array([len(series[k]) for k in keys])
        runs = sorted({r for r, _ in keys})
        tags = sorted({t for _, t in keys})
        run_codes = np.repeat(np.array([runs.index(r) for r, _ in keys], _codes(runs)), sizes)
        tag_codes = np.repeat(np.array([tags.index(t) for _, t in keys], _codes(tags)), sizes)
        return pd.DataFrame({
            "run": pd.Categorical.from_codes(run_codes, runs),
            "tag": pd.Categorical.from_codes(tag_codes, tags),
            "step": np.concatenate([series[k].step for k in keys]),
            "wall_time": np.concatenate([series[k].wall_time for k in keys]),
            "value": np.concatenate([series[k].value for k in keys]),
        }, copy=False)  # fresh arrays: no second copy into one consolidated float block

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


def _codes(categories: list) -> type:
    """The integer type pandas keeps a categorical's codes in (no conversion copy)."""
    return np.int8 if len(categories) < 128 else np.int16 if len(categories) < 32768 \
        else np.int32


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
