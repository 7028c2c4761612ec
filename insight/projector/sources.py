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

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.data.npy import read_npy
from insight.errors import DataError, UsageError
from insight.projector.layers import REDUCTIONS, layer_vectors
from insight.projector.vectors import Vectors

__all__ = ["Vectors", "REDUCTIONS", "layer_vectors", "embedding_vectors", "file_vectors",
           "read_metadata", "projector_vectors", "fetch_projector"]

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
