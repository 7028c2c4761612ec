"""Where vectors to project come from: a layer's outputs, an Embedding's weights, files, and
TensorBoard projector logdirs.

Every source returns `Vectors`: an `(n, d)` float32 array, a metadata frame with one row per
vector (labels, predictions, vocabulary, user columns) and, for image inputs, the images for
thumbnails.

Example:

>>> v = layer_vectors(loaded, dataset, "dense1")  # doctest: +SKIP
>>> v.vectors.shape, list(v.metadata.columns)  # doctest: +SKIP
((1797, 32), ['label', 'predicted', 'correct', 'confidence'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.data.npy import read_npy
from insight.errors import DataError, UsageError

__all__ = ["Vectors", "REDUCTIONS", "layer_vectors", "embedding_vectors", "file_vectors",
           "read_metadata", "projector_vectors", "fetch_projector"]

REDUCTIONS = ("flatten", "mean", "max")


@dataclass
class Vectors:
    """Vectors to project, with one metadata row per vector.

    Attributes:
        vectors: `(n, d)` float32.
        metadata: a frame with `n` rows (may have no columns).
        name: what the vectors are, for titles.
        images: `(n, H, W)` or `(n, H, W, C)` inputs for thumbnails, when they are images.
        total: how many points the full set has (more than `n` for a sample); 0: `n`.
    """

    vectors: np.ndarray
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = ""
    images: np.ndarray | None = None
    total: int = 0

    def __post_init__(self) -> None:
        self.total = self.total or len(self.vectors)


def _reduce(a: np.ndarray, how: str) -> np.ndarray:
    if a.ndim <= 2:
        return a.reshape(len(a), -1)
    if how == "flatten":
        return a.reshape(len(a), -1)
    axes = tuple(range(1, a.ndim - 1))  # spatial axes; the last is channels
    return a.mean(axis=axes) if how == "mean" else a.max(axis=axes)


def layer_vectors(loaded: Any, dataset: Any, layer: str, *, reduce: str = "flatten",
                  batch_size: int = 256) -> Vectors:
    """The output of `layer` for every example of `dataset`, one vector per example.

    Args:
        loaded: a `LoadedModel` or `keras.Model`.
        dataset: an `insight.data.Dataset`.
        layer: a layer path (see `insight.model.layers.layer_paths`).
        reduce: for outputs with spatial axes: `"flatten"`, or global `"mean"`/`"max"` pooling
            over them (one value per channel). Defaults to `"flatten"`.
        batch_size: rows per forward pass. Defaults to `256`.

    Returns:
        `Vectors` whose metadata has `label` (class names when known), `predicted`, `correct`
        and `confidence` (from the model's first output, computed in the same pass).
    """
    from insight.model.layers import resolve_layers
    from insight.probe.capture import capture_function, count_rows, first_output, slice_rows

    if reduce not in REDUCTIONS:
        raise UsageError(f"Unknown reduction {reduce!r}. Reductions are: "
                         f"{', '.join(REDUCTIONS)}.", "", f"reduce={reduce!r}")
    model = getattr(loaded, "model", loaded)
    [path] = resolve_layers(model, [layer])
    x = dataset.x
    fn = capture_function(model, [path], x)
    parts, outs, rank = [], [], 2
    n = count_rows(x)
    for start in range(0, n, batch_size):
        out, acts = fn(slice_rows(x, start, min(n, start + batch_size)))
        raw = np.asarray(first_output(acts[path]))
        rank = raw.ndim
        parts.append(_reduce(raw, reduce))
        outs.append(np.asarray(first_output(out)))
    vectors = np.concatenate(parts).astype(np.float32)
    meta = _prediction_metadata(np.concatenate(outs), dataset)
    images = _images(x)
    how = f", {reduce}" if rank > 2 and reduce != "flatten" else ""
    return Vectors(vectors, meta, f"layer {path}{how} ({dataset.name})", images)




def _prediction_metadata(outputs: np.ndarray, dataset: Any) -> pd.DataFrame:
    names = list(dataset.class_names or [])
    meta = pd.DataFrame(index=range(len(outputs)))
    y = dataset.y
    if isinstance(y, Mapping):
        y = next(iter(y.values()), None)
    flat = outputs.reshape(len(outputs), -1)

    def label(i: np.ndarray) -> Any:
        return [names[k] if 0 <= k < len(names) else str(k) for k in i]

    if flat.shape[1] > 1:
        predicted = flat.argmax(axis=1)
        meta["predicted"] = label(predicted)
        meta["confidence"] = flat.max(axis=1).astype(float)
    else:
        predicted = (flat[:, 0] > 0.5).astype(int)
        meta["predicted"] = predicted.astype(str)
        meta["confidence"] = np.where(predicted == 1, flat[:, 0], 1 - flat[:, 0]).astype(float)
    if y is not None:
        y = np.asarray(y).reshape(len(y), -1)[:, 0] if np.ndim(y) > 1 else np.asarray(y)
        if np.issubdtype(y.dtype, np.integer):
            meta.insert(0, "label", label(y))
            meta["correct"] = np.asarray(y) == predicted
    return meta


def _images(x: Any) -> np.ndarray | None:
    arr = None if isinstance(x, Mapping) else np.asarray(x)
    if arr is not None and arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] >= 4:
        return arr[..., 0] if arr.shape[-1] == 1 else arr
    return None


def embedding_vectors(loaded: Any, layer: str | None = None,
                      vocabulary: str | Path | None = None) -> Vectors:
    """An `Embedding` layer's weight matrix, one row per token, with its vocabulary.

    Args:
        loaded: a `LoadedModel` (its folder is searched for `vocab.tsv`) or `keras.Model`.
        layer: the Embedding's path; `None` for the first one. Defaults to `None`.
        vocabulary: a one-token-per-line file (TensorBoard's metadata format); `None` looks for
            `vocab.tsv` or `metadata.tsv` beside the model. Defaults to `None`.

    Raises:
        UsageError: no Embedding layer, or `layer` is not one.
        DataError: a vocabulary whose line count differs from the matrix's rows.
    """
    from insight.model.layers import iter_layers

    model = getattr(loaded, "model", loaded)
    found = [(p, lyr) for p, lyr, _ in iter_layers(model) if type(lyr).__name__ == "Embedding"]
    if not found:
        raise UsageError("The model has no Embedding layer.", "Project a layer's outputs.",
                         f"model={model.name!r}")
    names = [p for p, _ in found]
    if layer is not None and layer not in names:
        raise UsageError(f"{layer!r} is not an Embedding layer. Embedding layers are: "
                         f"{', '.join(names)}.", "", f"layer={layer!r}")
    path, emb = found[names.index(layer)] if layer else found[0]
    matrix = np.asarray(emb.embeddings).astype(np.float32)
    if vocabulary is None and hasattr(loaded, "path"):
        folder = Path(loaded.path).parent if Path(loaded.path).is_file() else Path(loaded.path)
        vocabulary = next((folder / n for n in ("vocab.tsv", "metadata.tsv")
                           if (folder / n).is_file()), None)
    meta = pd.DataFrame({"token": [str(i) for i in range(len(matrix))]})
    if vocabulary is not None:
        meta = read_metadata(vocabulary, len(matrix))
        if list(meta.columns) == ["label"]:
            meta = meta.rename(columns={"label": "token"})
    return Vectors(matrix, meta, f"{path} weights ({len(matrix):,} tokens)")


def file_vectors(path: str | Path, metadata: str | Path | None = None) -> Vectors:
    """Vectors from a `.npy` file or a TSV of numbers, with an optional metadata TSV.

    Raises:
        DataError: a missing or malformed file, NaN values are left to `project` to report.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError("The vectors file does not exist.", "Check the path.",
                        f"path={str(path)!r}")
    if p.suffix == ".npy":
        # the header is checked against the file size and a limit before anything is read
        arr = read_npy(p, f"path={str(path)!r}", max_bytes=MAX_FILE_BYTES)
        if arr.dtype.kind not in "biuf":
            raise DataError(f"The .npy file holds {arr.dtype} values, not numbers.",
                            "Save the vectors as a float array.",
                            f"path={str(path)!r}, dtype={arr.dtype}")
    elif p.suffix in (".tsv", ".txt"):
        _check_file_size(p, "vectors")
        try:
            arr = np.loadtxt(p, delimiter="\t", dtype=np.float32, ndmin=2)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"The TSV holds something other than numbers: "
                            f"{str(exc).splitlines()[0][:200]}.",
                            "One vector per line, values separated by tabs.",
                            f"path={str(path)!r}") from None
    else:
        raise DataError("Vectors must be a .npy file or a .tsv of numbers.", "",
                        f"path={str(path)!r}")
    if arr.ndim != 2:
        arr = arr.reshape(len(arr), -1) if arr.ndim > 2 else arr.reshape(-1, 1)
    arr = np.asarray(arr, dtype=np.float32)
    meta = read_metadata(metadata, len(arr)) if metadata is not None else pd.DataFrame(
        index=range(len(arr)))
    return Vectors(arr, meta, p.name)


def read_metadata(path: str | Path, rows: int) -> pd.DataFrame:
    """A TensorBoard metadata TSV: one column without header, or a header row then columns.

    Raises:
        DataError: the file is missing or has a different number of rows than the vectors.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError("The metadata file does not exist.", "Check the path.",
                        f"path={str(path)!r}")
    _check_file_size(p, "metadata")
    try:
        lines = p.read_text(encoding="utf-8").rstrip("\n").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"The metadata file is not UTF-8 text ({type(exc).__name__}).",
                        "Save it as a UTF-8 TSV, one line per vector.",
                        f"path={str(path)!r}") from None
    if "\t" in lines[0]:
        header, body = lines[0].split("\t"), [ln.split("\t") for ln in lines[1:]]
        ragged = next((i for i, row in enumerate(body, 2) if len(row) != len(header)), None)
        if ragged is not None:
            raise DataError(f"Line {ragged} of the metadata has a different number of columns "
                            f"than its header ({len(header)}).",
                            "Give every line the header's columns, separated by tabs.",
                            f"path={str(path)!r}")
        frame = pd.DataFrame(body, columns=header)
    else:
        frame = pd.DataFrame({"label": lines})
    if len(frame) != rows:
        raise DataError(
            f"The metadata has {len(frame):,} rows but there are {rows:,} vectors.",
            "Give one metadata line per vector (plus one header line when there are several "
            "columns, as TensorBoard expects).", f"path={str(path)!r}")
    return frame


MAX_FILE_BYTES = 1 << 30  # vectors and metadata files: 1 GiB (a million 256-d float32: 1 GB)


def _check_file_size(p: Path, what: str) -> None:
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(f"The {what} file is {size / 2**30:.3g} GiB; insight reads up to "
                        f"{MAX_FILE_BYTES / 2**30:.3g} GiB.", "Give a sample of the vectors.",
                        f"path={str(p)!r}, size={size}")


def _inside(root: Path, rel: str, what: str) -> Path:
    try:
        target = (root / rel).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop
        raise DataError(f"The projector config's {what} is not a usable path "
                        f"({type(exc).__name__}).", "Give a path inside the logdir.",
                        f"{what}={rel!r}") from None
    if not target.is_relative_to(root):
        raise DataError(f"The projector config points {what} outside its logdir.",
                        "Keep the files inside the logdir (insight refuses other paths).",
                        f"{what}={rel!r}")
    return target


def projector_vectors(logdir: str | Path) -> list[Vectors]:
    """Every embedding of a TensorBoard projector logdir (`projector_config.pbtxt`).

    Tensors are read from `tensor_path` TSV files (checkpoint tensors are not read); metadata
    from `metadata_path`. Every path must stay inside `logdir`. A remote logdir
    (`s3://`, `gs://`) is read through `fetch_projector` (the config and the files it names).

    Raises:
        DataError: no config, a bad config, a path outside the logdir, a missing tensor file.
        StorageError: a remote logdir that cannot be read.
    """
    from insight.remote import is_remote

    if is_remote(logdir):
        local = fetch_projector(str(logdir))
        if local is None:
            raise DataError("No projector_config.pbtxt in this logdir.",
                            "Point at the folder where the projector config was written.",
                            f"logdir={str(logdir)!r}")
        logdir = local
    root = Path(logdir).expanduser().resolve()
    config_file = root / "projector_config.pbtxt"
    if not config_file.is_file():
        raise DataError("No projector_config.pbtxt in this logdir.",
                        "Point at the folder where the projector config was written.",
                        f"logdir={str(logdir)!r}")
    config = _parse_config(config_file, logdir)
    out = []
    for emb in config.embeddings:
        if not emb.tensor_path:
            raise DataError(f"Embedding {emb.tensor_name!r} has no tensor_path: its values are "
                            "in a checkpoint, which insight does not read.",
                            "Write the vectors as a TSV and set tensor_path.",
                            f"tensor_name={emb.tensor_name!r}")
        tensor = _inside(root, emb.tensor_path, "tensor_path")
        meta = _inside(root, emb.metadata_path, "metadata_path") if emb.metadata_path else None
        vectors = file_vectors(tensor, meta)
        vectors.name = emb.tensor_name or tensor.name
        out.append(vectors)
    return out


def fetch_projector(url: str) -> Path | None:
    """A local copy of the remote projector logdir `url`: its `projector_config.pbtxt` and
    the tensor and metadata files it names (nothing else of the logdir), fetched into
    insight's content-addressed cache and laid out at their places; `None` when the logdir
    has no config (it may hold only training curves).

    The names in the config follow the rules of a local logdir's: a name leading outside
    `url` (`..`, an absolute path, another URL) is refused before anything is fetched, and
    the local copy is checked again by `projector_vectors`.

    Raises:
        DataError: a config that cannot be parsed, or a name outside the logdir.
        StorageError: the bucket is missing, the credentials are refused, the connection
            dropped (nothing half-written is kept).

    Example:

    >>> local = fetch_projector("s3://runs/exp1/projector")  # doctest: +SKIP
    >>> sorted(p.name for p in local.iterdir())  # doctest: +SKIP
    ['metadata.tsv', 'projector_config.pbtxt', 'vectors.tsv']
    """
    import posixpath

    from insight.errors import StorageError
    from insight.remote import check_url, fetch, join, link_view

    url = check_url(url)
    try:
        config_file = fetch(join(url, "projector_config.pbtxt"), max_bytes=1 << 20)
    except StorageError as exc:
        if exc.reason == "missing" and "bucket" not in exc.what:
            return None  # a logdir without a projector config (a missing bucket is said)
        raise
    names = []
    for emb in _parse_config(config_file, url).embeddings:
        for what, rel in (("tensor_path", emb.tensor_path), ("metadata_path", emb.metadata_path)):
            if not rel:
                continue
            clean = posixpath.normpath(rel.replace("\\", "/"))
            if "://" in rel or clean.startswith(("/", "..")) or "\0" in rel:
                raise DataError(f"The projector config points {what} outside its logdir.",
                                "Keep the files inside the logdir (insight refuses other "
                                "paths).", f"{what}={rel!r}")
            names.append(clean)
    files = {name: fetch(join(url, name), max_bytes=MAX_FILE_BYTES) for name in names}
    files["projector_config.pbtxt"] = config_file
    return link_view("projectors", files, salt=url)


def _parse_config(config_file: Path, logdir: str | Path) -> Any:
    """The `ProjectorConfig` in `config_file`, or a `DataError` saying where it failed."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    config = ProjectorConfig()
    try:
        if config_file.stat().st_size > 1 << 20:  # a config names a few files: 1 MiB is ample
            raise ValueError("larger than 1 MiB")
        text_format.Parse(config_file.read_text(encoding="utf-8"), config)
    except (text_format.ParseError, ValueError, OSError, RecursionError) as exc:
        # ValueError: not UTF-8 (UnicodeDecodeError) or too large. The parser's message
        # quotes the file, so only where it failed is said (a config may be any file).
        where = f"line {exc.GetLine()}" if isinstance(exc, text_format.ParseError) and \
            exc.GetLine() else type(exc).__name__
        raise DataError(f"projector_config.pbtxt cannot be parsed ({where}).",
                        "Write it with tensorboard.plugins.projector.visualize_embeddings.",
                        f"logdir={str(logdir)!r}") from None
    return config
