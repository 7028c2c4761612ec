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
from insight.curves.remote import Listing, as_url, fetch_ranges, listing, remote_stamp
from insight.curves.sources import RemoteFile
from insight.curves.splits import label_series, split_of, train_val_pairs
from insight.curves.tfevents import READ_CHUNK, EventFileReader, Histogram, Series
from insight.errors import DataError, InsightError, StorageError
from insight.remote import basename, fetch, filesystem

__all__ = ["COLUMNS", "HIST_COLUMNS", "Logdir", "read_scalars", "read_histograms",
           "read_csv_log", "read_history_json", "split_of", "label_series", "train_val_pairs",
           "logdir_stamp", "smooth", "SMOOTHING", "downsample", "best_step", "overfitting",
           "metric_direction", "train_val_verdict"]

COLUMNS = ["run", "tag", "step", "wall_time", "value"]
HIST_COLUMNS = ["run", "tag", "step", "wall_time", "left", "right", "count"]


def _kind(path: Path, folder: bool) -> str:
    if folder:
        return "dir"
    if "tfevents" in path.name:
        return "events"
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() == ".json":
        return "json"
    return "unknown"


class Logdir:
    """An incrementally read training log: a logdir, one event file, a CSV or a JSON, on
    disk or in object storage (`s3://`, `gs://`: `insight.curves.remote`).

    `refresh()` picks up new event files and reads only what was appended to known ones
    (CSV/JSON files are read again when they change). A remote logdir is read from its kept
    listing (`LISTING_TTL`; `refresh(relist=True)` lists it again), the appended ranges of
    every grown file fetched concurrently. Thread-safe.

    Example:

    >>> logs = Logdir("runs/")  # doctest: +SKIP
    >>> logs.refresh()  # points read  # doctest: +SKIP
    1500000
    >>> logs.series()[("run_0", "loss")].value  # doctest: +SKIP

    Raises:
        DataError: the path does not exist or is not a log insight reads.
        StorageError: a remote path is missing, refused or unreachable.
    """

    def __init__(self, path: str | Path) -> None:
        self.url = as_url(path)
        self._listing: Listing | None = None
        if self.url is not None:
            self._listing = listing(self.url)
            self._fs = filesystem(self.url)[0]
            self.path: Path | str = self.url
            self.kind = _kind(Path(basename(self.url)), not self._listing.single)
        else:
            self.path = Path(path).expanduser()
            if not self.path.exists():
                raise DataError("No such log file or folder.",
                                "Give a TensorBoard logdir, an event file, a CSVLogger .csv or "
                                "a Keras history .json.", f"path={str(path)!r}")
            self.kind = _kind(self.path, self.path.is_dir())
        if self.kind == "unknown":
            raise DataError(f"{self.path.name} is not a training log insight reads.",
                            "Give a TensorBoard logdir, an event file (events.out.tfevents.*), "
                            "a CSVLogger .csv or a Keras history .json.",
                            f"path={str(path)!r}")
        self._files: dict[Path | str, EventFileReader] = {}
        self._runs: dict[Path | str, str] = {}
        self._tables: dict[Path | str, tuple[tuple, pd.DataFrame]] = {}
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

    def _table_files(self) -> list[tuple[Path | str, tuple]]:
        """`(file, stamp)` of the CSV and JSON logs to read (a folder's, when it holds no
        event files): local paths with size and mtime, remote keys with size and ETag."""
        if self._listing is not None:
            keys = [k for k in self._listing.files if self.kind in ("csv", "json") or (
                self.kind == "dir" and not self._files and "/" not in self._listing.relative(k)
                and k.lower().endswith((".csv", ".json")))]
            return [(k, self._listing.files[k]) for k in keys]
        files = [self.path] if self.kind in ("csv", "json") else sorted(
            p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in (".csv",
                                                                                 ".json")
        ) if self.kind == "dir" and not self._files else []
        out = []
        for file in files:
            try:
                st = file.stat()
            except OSError:
                continue
            out.append((file, (st.st_size, st.st_mtime_ns)))
        return out

    def _run(self, file: Path | str) -> str:
        run = self._runs.get(file)
        if run is None:  # asked per file on every read of the series: paths are slow
            if self._listing is not None:  # keys: `bucket/prefix/run/events...`
                rel = file if self.kind == "events" else self._listing.relative(file)
                parent = rel.rsplit("/", 1)[0] if "/" in rel else "."
                run = parent.rsplit("/", 1)[-1] if self.kind == "events" else parent
            elif self.kind == "events":
                run = file.parent.name or "."
            else:
                run = file.parent.relative_to(self.path).as_posix() or "."
            self._runs[file] = run
        return run

    def refresh(self, relist: bool = False) -> int:
        """Read new files and appended bytes; returns the number of new points.

        Args:
            relist: list a remote logdir again now, instead of reusing a listing taken less
                than `LISTING_TTL` seconds ago. Defaults to `False`.

        Raises:
            StorageError: a remote file could not be read. What the other files gave is
                kept, and the next refresh resumes each file where its last complete
                record ended.
        """
        with self._lock:
            new = 0
            error = None
            if self._listing is not None:
                new, error = self._read_remote(relist)
            else:
                for file in self._event_files():
                    reader = self._files.get(file)
                    if reader is None:
                        reader = self._files[file] = EventFileReader(file)
                    new += reader.read()
            for file, stamp in self._table_files():
                if file in self._tables and self._tables[file][0] == stamp:
                    continue
                try:
                    local = file if isinstance(file, Path) else fetch(
                        f"{self.url.split('://', 1)[0]}://{file}")
                    df = (read_csv_log if local.suffix.lower() == ".csv" else
                          read_history_json)(local)
                except StorageError as exc:
                    error = error or exc
                    continue
                except DataError:
                    if self.kind in ("csv", "json"):
                        raise
                    continue  # a stray file beside the logs
                self._tables[file] = (stamp, df)
                new += len(df)
            if error is not None:
                raise error
            return new

    def _read_remote(self, relist: bool) -> tuple[int, StorageError | None]:
        """Fetch the appended range of every remote event file that grew (concurrently),
        then parse each with its reader; returns the new points and the first failure."""
        self._listing = lst = listing(self.url, fresh=relist)
        kind = self.url.split("://", 1)[0]
        wanted = []
        for key, (size, _) in lst.files.items():
            if self.kind not in ("dir", "events") or "tfevents" not in key.rsplit("/", 1)[-1]:
                continue
            reader = self._files.get(key)
            if reader is None:
                source = RemoteFile(self._fs, key, f"{kind}://{key}", size)
                reader = self._files[key] = EventFileReader(source)
            reader.source.known_size = size
            start = reader.offset if size >= reader.offset else 0  # shrank: read it again
            if size > start:
                wanted.append((reader, start, min(size, start + READ_CHUNK)))
        new, error = 0, None
        for i, data in fetch_ranges(self._fs, self.url,
                                    [(r.source.key, s, e) for r, s, e in wanted]):
            reader, start, _ = wanted[i]
            if isinstance(data, StorageError):
                error = error or data
                continue
            reader.source.preload(start, data)
            try:
                new += reader.read()
            except StorageError as exc:
                error = error or exc
        return new, error

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
            name = (self._listing.relative(file) if self._listing is not None else
                    file.relative_to(self.path).as_posix() if self.kind == "dir" else file.name)
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
    mtimes, no reading), for caches that must follow a live run. A remote logdir's is its
    kept listing's (names, sizes, ETags; listed at most `LISTING_TTL` seconds ago), so a
    rerun does not list the bucket again."""
    if path is None:
        return ""
    try:
        url = as_url(path)
    except InsightError:
        return "invalid"
    if url is not None:
        return remote_stamp(url)
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
            a Keras history JSON, on disk or as an `s3://` / `gs://` URL (credentials from the
            environment, profiles or instance metadata). A folder without event files is
            searched for CSV and JSON logs instead.

    Returns:
        One row per point, in file order within each series; `run` and `tag` are categorical.
        Empty (with these columns) when the folder holds no logs yet.

    Raises:
        DataError: the path does not exist or is not a log insight reads.
        StorageError: a remote bucket or prefix is missing, the credentials were refused,
            or the connection failed.

    Example:

    >>> read_scalars("logs/").groupby(["run", "tag"]).size()  # doctest: +SKIP
    >>> read_scalars("s3://bucket/runs").run.unique()  # doctest: +SKIP
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
