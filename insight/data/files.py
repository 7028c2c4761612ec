"""Reading a `Dataset` from the files users bring: `.npz`, `.npy`, `.csv`, image folders.

`insight.data.load_dataset` is the public name; this module holds the readers.

Example:

>>> ds = load_dataset("sample_models/digits_cnn/data.npz")  # doctest: +SKIP
>>> len(ds), ds.class_names[:3]  # doctest: +SKIP
(1797, ['0', '1', '2'])
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from insight.data.dataset import (
    DATA_FORMATS,
    IMAGE_SUFFIXES,
    LABEL_COLUMNS,
    Arrays,
    Dataset,
    array_items,
)
from insight.data.npy import read_npy, read_npz
from insight.data.stream import is_stream_path, list_shards
from insight.errors import DataError

__all__ = ["load_dataset", "check_data_path", "DATA_SUFFIXES"]

_NPY_MAGIC = b"\x93NUMPY"
DATA_SUFFIXES = (".npz", ".npy", ".csv")  # files read as data; folders hold images


def check_data_path(path: str | Path) -> Path:
    """The checks a data path gets before anything is read (cheap: no file is opened).

    Args:
        path: the file or folder.

    Returns:
        The path, `~` expanded and resolved.

    Raises:
        DataError: nothing at the path (or no TFRecord shard matches a glob), a file of a
            kind insight does not read as data (`.txt`), or an empty file.

    Example:

    >>> check_data_path("notes.txt")  # doctest: +SKIP
    Traceback (most recent call last):
    DataError: insight does not read .txt files as data. ...
    """
    given = Path(path).expanduser()
    shown = f"path={str(path)!r}"
    if is_stream_path(path) and not given.exists():  # a glob of TFRecord shards
        list_shards(given)  # DataError when nothing matches
        return given.parent.resolve() / given.name
    if not given.exists():
        raise DataError("There is no file or folder at this data path.",
                        f"Check the path; insight reads {DATA_FORMATS}.", shown)
    p = given.resolve()
    if p.is_dir():
        return p
    if p.suffix.lower() not in DATA_SUFFIXES and not is_stream_path(p):
        raise DataError(
            f"insight does not read {p.suffix or 'extensionless'} files as data.",
            f"Give {DATA_FORMATS}; e.g. np.savez('data.npz', x=x, y=y).", shown)
    if p.stat().st_size == 0:
        raise DataError("The data file is empty.", "Save the data again.", shown)
    return p


def load_dataset(path: str | Path) -> Dataset:
    """Read inputs (and labels, when present) from a file or a folder of images.

    - `.npz`: the key `x` (with optional `y` and `class_names`), or one key per model input
      (e.g. `image`, `stats`) with labels under `y`, or under `y_<output>` per output.
      Read with `allow_pickle=False`: pickled (object) arrays are refused.
    - `.npy`: `x` only.
    - `.csv`: numeric columns are features; a column named `label`, `y`, `target` or
      `class` holds the labels (text labels become class indices and names).
    - a folder of PNG/JPEG images: one subfolder per class (the ImageFolder convention) or
      a flat folder (no labels); images become float32 in [0, 1], shape (N, H, W, C),
      resized to the first image's size.

    An `s3://`/`gs://` URL of an `.npz`, `.npy` or `.csv` is fetched into insight's cache
    (once per version of the object) and read as the local file is.

    Args:
        path: the file or folder, or the URL of a file in a bucket.

    Returns:
        A `Dataset` with `source="file"`.

    Raises:
        DataError: a missing path, an empty or corrupt file, an unknown format, pickled
            arrays, non-numeric CSV features, a folder without images.
        StorageError: a URL whose object is missing, denied or unreachable.

    Example:

    >>> ds = load_dataset("sample_models/digits_cnn/data.npz")  # doctest: +SKIP
    >>> ds.describe()  # doctest: +SKIP
    'data.npz: 1,797 examples, x (8, 8, 1) float32, labels 10 classes'
    """
    from insight.remote import is_remote

    shown = f"path={str(path)!r}"
    if is_remote(str(path)) and not is_stream_path(path):
        return _load_remote(str(path), shown)
    p = check_data_path(path)
    if is_stream_path(p):
        raise DataError("TFRecord shards are streamed, not read into memory as a whole.",
                        "Read them with insight.data.dataset_for(loaded, pattern, "
                        "features='spec.json') (--data with --features).", shown)
    if p.is_dir():
        dataset = _load_image_folder(p, shown)
    else:
        loaders = {".npz": _load_npz, ".npy": _load_npy, ".csv": _load_csv}
        dataset = loaders[p.suffix.lower()](p, shown)
    if len(dataset) == 0:
        raise DataError("The data holds no examples (zero rows).",
                        "Give a file with at least one example.", shown)
    return dataset


def _load_remote(url: str, shown: str) -> Dataset:
    """A `.npz`, `.npy` or `.csv` in a bucket: fetched into insight's cache once per version
    (`insight.remote.fetch`), then read as the local file is; named by the URL's file name
    (the cache's copy is never shown)."""
    from dataclasses import replace

    from insight.remote import fetch

    name = url.rstrip("/").rsplit("/", 1)[-1]
    suffix = Path(name).suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise DataError(f"insight reads {', '.join(DATA_SUFFIXES)} files from a bucket, not "
                        f"{suffix or 'extensionless'} files or folders of images.",
                        "Give the URL of an .npz (np.savez('data.npz', x=x, y=y)), or "
                        "TFRecord shards with --features.", shown)
    local = fetch(url)  # StorageError: missing, denied, unreachable, too large
    if local.stat().st_size == 0:
        raise DataError("The data file is empty.", "Save the data again.", shown)
    loaders = {".npz": _load_npz, ".npy": _load_npy, ".csv": _load_csv}
    dataset = loaders[suffix](local, shown)  # errors name the URL, not the cache's copy
    if len(dataset) == 0:
        raise DataError("The data holds no examples (zero rows).",
                        "Give a file with at least one example.", shown)
    return replace(dataset, name=name, path=None)


def _corrupt(kind: str, exc: BaseException | None, shown: str) -> DataError:
    detail = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})" \
        if exc is not None and str(exc) else ""
    return DataError(f"The file is not a readable {kind}; it may be truncated or in another "
                     f"format{detail}.",
                     "Save it again with np.savez('data.npz', x=x, y=y) or np.save.", shown)


def _load_npz(p: Path, shown: str) -> Dataset:
    if not zipfile.is_zipfile(p):
        raise _corrupt("NumPy .npz archive", None, shown)
    # headers first: a lying shape or a compressed bomb is refused before it is inflated
    arrays = read_npz(p, shown)
    if not arrays:
        raise DataError("The .npz file holds no arrays.",
                        "Save the inputs with np.savez('data.npz', x=x, y=y).", shown)
    keys = list(arrays)
    class_names = _class_names(arrays.pop("class_names", None), shown)
    y_one = arrays.pop("y", None)
    y_many = {k[2:]: arrays.pop(k) for k in list(arrays) if k.startswith("y_")}
    if y_one is not None and y_many:
        raise DataError(
            "The .npz file has both a 'y' key and per-output 'y_<output>' keys for labels.",
            "Keep one: 'y' for a single-output model, 'y_<output name>' for several outputs.",
            f"{shown}, keys={keys}")
    if "x" in arrays:
        x: Arrays = arrays["x"]
    elif arrays:
        x = arrays
    else:
        raise DataError(
            "The .npz file holds no inputs: only labels or class names.",
            "Save the inputs under 'x', or one key per model input named after the input.",
            f"{shown}, keys={keys}")
    y = y_many or y_one
    if isinstance(y, np.ndarray):
        y, class_names = _encode_labels(y, class_names)
    return Dataset(x=_numeric(x, shown), y=y, class_names=class_names, path=p, name=p.name)


def _load_npy(p: Path, shown: str) -> Dataset:
    with p.open("rb") as fh:
        if fh.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise _corrupt("NumPy .npy file", None, shown)
    x = read_npy(p, shown)  # the header checked against the file size before reading
    if x.ndim == 0:
        raise DataError("The .npy file holds a single value, not an array of examples.",
                        "Save an array whose first axis indexes examples.", shown)
    return Dataset(x=_numeric(x, shown), path=p, name=p.name)


def _numeric(x: Arrays, shown: str) -> Arrays:
    for key, arr in array_items(x):
        if arr.dtype.kind not in "biuf":
            raise DataError(
                f"The input {key!r} holds {arr.dtype} values, not numbers.",
                "Convert it to numbers first (token ids, pixel values, features).",
                f"{shown}, dtype={arr.dtype}")
    return x


def _class_names(arr: np.ndarray | None, shown: str) -> list[str] | None:
    if arr is None:
        return None
    if arr.ndim != 1:
        raise DataError("'class_names' must be a 1-D array of names.",
                        "Save it as np.array(names, dtype=str).",
                        f"{shown}, class_names_shape={arr.shape}")
    return [c.decode() if isinstance(c, bytes) else str(c) for c in arr.tolist()]


def _encode_labels(y: np.ndarray,
                   class_names: list[str] | None) -> tuple[np.ndarray, list[str] | None]:
    """Text labels become class indices, their sorted names the class names."""
    if y.dtype.kind not in "USO":
        return y, class_names
    names, codes = np.unique(y.astype(str), return_inverse=True)
    return codes.reshape(y.shape).astype(np.int64), class_names or [str(n) for n in names]


MAX_CSV_COLUMNS = 100_000  # features of one example (a 300x300 RGB image has 270,000: .npz)
MAX_CSV_BYTES = 1 << 30


def _check_csv_shape(p: Path, shown: str) -> None:
    """Size and header width before pandas parses the file: a million columns is a million
    Series objects (minutes and gigabytes) before any check."""
    size = p.stat().st_size
    if size > MAX_CSV_BYTES:
        raise DataError(f"The CSV file is {size / 2**30:.3g} GiB; insight reads CSV data of up "
                        f"to {MAX_CSV_BYTES >> 30} GiB.",
                        "Give a sample, or save the arrays with np.savez.", shown)
    with p.open("rb") as fh:
        columns = fh.readline(64 << 20).count(b",") + 1
    if columns > MAX_CSV_COLUMNS:
        raise DataError(f"The CSV file has {columns:,} columns; insight reads CSV data of up to "
                        f"{MAX_CSV_COLUMNS:,} columns.",
                        "Save wide inputs (images, long vectors) with np.savez('data.npz', x=x).",
                        f"{shown}, columns={columns}")


def _load_csv(p: Path, shown: str) -> Dataset:
    import pandas as pd

    _check_csv_shape(p, shown)
    try:
        df = pd.read_csv(p)
    except pd.errors.EmptyDataError as exc:
        raise DataError("The CSV file has no columns.", "Save the data again.", shown) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise DataError(f"pandas could not parse the CSV file: {str(exc).splitlines()[0]}.",
                        "Save it as a plain comma-separated file with a header row.",
                        shown) from exc
    if df.empty:
        raise DataError("The CSV file has a header but no rows: it holds no examples.",
                        "Give a file with at least one example.", shown)
    labels = [c for c in df.columns if str(c).strip().lower() in LABEL_COLUMNS]
    if len(labels) > 1:
        raise DataError(f"The CSV has several label columns: {', '.join(map(str, labels))}.",
                        f"Keep one column named {' or '.join(LABEL_COLUMNS)}.",
                        f"{shown}, columns={list(map(str, df.columns))}")
    y = df.pop(labels[0]).to_numpy() if labels else None
    if df.shape[1] == 0:
        raise DataError("The CSV has a label column but no feature columns.",
                        "Add the numeric feature columns.", shown)
    text = [str(c) for c in df.columns if not (pd.api.types.is_numeric_dtype(df[c])
                                               or pd.api.types.is_bool_dtype(df[c]))]
    if text:
        raise DataError(
            f"The CSV has non-numeric feature columns: {', '.join(text)}. insight uses every "
            f"column except the label ({'/'.join(LABEL_COLUMNS)}) as a number.",
            "Encode or drop these columns before saving the CSV.",
            f"{shown}, non_numeric_columns={text}")
    x = df.to_numpy()
    if x.dtype == np.float64:
        x = x.astype(np.float32)
    class_names = None
    if y is not None:
        y, class_names = _encode_labels(y, None)
    return Dataset(x=x, y=y, class_names=class_names, path=p, name=p.name)


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                  and not f.name.startswith("."))


def _load_image_folder(folder: Path, shown: str) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    subfolders = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = [(d.name, files) for d in subfolders if (files := _image_files(d))]
    if classes:
        files = [f for _, fs in classes for f in fs]
        y = np.concatenate([np.full(len(fs), i, np.int64) for i, (_, fs) in enumerate(classes)])
        class_names: list[str] | None = [name for name, _ in classes]
    else:
        files, y, class_names = _image_files(folder), None, None
    if not files:
        raise DataError(
            "The folder holds no PNG or JPEG images, neither directly nor in class subfolders.",
            "Put the images in one subfolder per class (data/cat/1.png, data/dog/2.png), or "
            f"give {DATA_FORMATS}.", shown)
    mode, size, images = "", (0, 0), []
    for f in files:
        try:
            with Image.open(f) as img:
                if not mode:
                    mode = "L" if img.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
                    size = img.size
                img = img.convert(mode)
                if img.size != size:
                    img = img.resize(size, Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"Cannot read the image {f.name}: {exc}.",
                            "Remove the file or save it again as PNG or JPEG.",
                            f"path={str(f)!r}") from exc
        images.append(arr[..., None] if arr.ndim == 2 else arr)
    return Dataset(x=np.stack(images), y=y, class_names=class_names, path=folder,
                   name=folder.name + "/")
