"""A folder of checkpoints of one model: found, ordered by epoch, and read as weights.

`keras.callbacks.ModelCheckpoint` writes either full models (`epoch_03.keras`) or weights
only (`ckpt-07.weights.h5`, saved beside one model file that holds the architecture). The
epoch comes from each file's name (`epoch_03`, `ckpt-07`, `model.03-0.45` as
`model.{epoch:02d}-{val_loss:.2f}` writes it); when the names do not give distinct epochs,
the files are taken in name order and numbered 1, 2, ...

Weights are read straight from the HDF5 data with h5py (a `.weights.h5`, the
`model.weights.h5` inside a `.keras` archive, or a legacy `.h5`): no model is built and no
Keras code runs per checkpoint. Every file is checked first as the model loader checks
one: a `.keras` or `.h5` checkpoint gets the static preflight and, in safe mode, the same
refusals as `insight.load_model`; every HDF5 file is refused when it links into other files
(external links, external or virtual datasets) or declares more data than `MAX_WEIGHT_BYTES`.

Example:

>>> from insight.compare.checkpoints import find_checkpoints, read_weights
>>> folder = find_checkpoints("sample_models/digits_cnn/checkpoints")  # doctest: +SKIP
>>> [c.epoch for c in folder.checkpoints][:3]  # doctest: +SKIP
[1, 2, 3]
>>> sorted(read_weights(folder.checkpoints[0]))[:2]  # doctest: +SKIP
['conv1', 'conv2']
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from insight.errors import DataError, UnsafeModelError

__all__ = ["Checkpoint", "CheckpointFolder", "find_checkpoints", "parse_epoch", "read_weights",
           "layer_order", "MAX_WEIGHT_BYTES", "MODEL_SUFFIXES"]

MAX_WEIGHT_BYTES = 8 * 1024**3  # one checkpoint's declared weights; a bigger one is refused
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
WEIGHTS_SUFFIX = ".weights.h5"
_KEYWORD = re.compile(r"(?:epoch|ep|ckpt|checkpoint|step|iter)[_\-.]?(\d+)", re.IGNORECASE)
_FLOAT = re.compile(r"\d+\.\d+(?:e[-+]?\d+)?", re.IGNORECASE)
_INT = re.compile(r"\d+")


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint file.

    Attributes:
        path: the file.
        epoch: its epoch (from the name, else its place in name order, from 1).
        kind: `"weights"` (a `.weights.h5`) or `"model"` (a full `.keras`/`.h5`).
    """

    path: Path
    epoch: int
    kind: str

    @property
    def label(self) -> str:
        """`"epoch 3"`."""
        return f"epoch {self.epoch}"


@dataclass
class CheckpointFolder:
    """The checkpoints of one model, in epoch order.

    Attributes:
        folder: the folder.
        checkpoints: the checkpoint files, in epoch order.
        model_file: the file holding the architecture (the model beside weights files, or the
            last full checkpoint); `None` when weights files have no model beside them.
        epochs_from: `"names"` when the epochs were parsed from the file names, `"order"`
            when the files were numbered in name order.
        layers: layer paths in the model's order (from the model file's config); empty when
            there is no model file.
    """

    folder: Path
    checkpoints: list[Checkpoint]
    model_file: Path | None
    epochs_from: str
    layers: list[str] = field(default_factory=list)

    @property
    def epochs(self) -> list[int]:
        """The epochs, in order."""
        return [c.epoch for c in self.checkpoints]

    def stamp(self) -> str:
        """A plain string that changes when a checkpoint or the model file changes."""
        files = [c.path for c in self.checkpoints] + ([self.model_file] if self.model_file
                                                      else [])
        return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def parse_epoch(name: str) -> int | None:
    """The epoch in a checkpoint's file name, or `None`.

    A number after `epoch`, `ep`, `ckpt`, `checkpoint`, `step` or `iter` wins; otherwise the
    first whole number that is not part of a decimal (a metric in the name).

    Example:

    >>> [parse_epoch(n) for n in ("epoch_03.keras", "ckpt-07.weights.h5",
    ...                            "model.12-0.45.keras", "best.keras")]
    [3, 7, 12, None]
    """
    stem = _stem(name)
    found = _KEYWORD.search(stem)
    if found:
        return int(found.group(1))
    found = _INT.search(_FLOAT.sub(" ", stem))
    return int(found.group(0)) if found else None


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in (WEIGHTS_SUFFIX, *MODEL_SUFFIXES):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _natural(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def find_checkpoints(folder: str | Path, model: str | Path | None = None, *,
                     safe_mode: bool = True) -> CheckpointFolder:
    """The checkpoints in `folder`, in epoch order, each checked before anything reads it.

    Weights files (`*.weights.h5`) are the checkpoints when there are any; the model that
    holds their architecture is `model`, else the one `.keras`/`.h5` in the folder (or the
    one named `model.keras`), else `model.keras`/`model.h5` in the folder above. Otherwise
    every `.keras`/`.h5` file is a full checkpoint and the last one holds the architecture.

    Args:
        folder: the `ModelCheckpoint` folder; an `s3://`/`gs://` URL of one is fetched whole
            into insight's content-addressed cache first (and, for weights-only
            checkpoints with no model beside them, `model.keras`/`model.h5` above it).
        model: the model file of weights-only checkpoints. Defaults to `None` (looked for).
        safe_mode: refuse model files whose loading would run code, as `insight.load_model`
            does. Defaults to `True`.

    Returns:
        A `CheckpointFolder`.

    Raises:
        DataError: not a folder, or fewer than two checkpoints in it.
        StorageError: a remote folder that cannot be listed or read.
        UnsafeModelError: a file links into other files, or would run code in safe mode.
        ModelLoadError: a model file is damaged or not a model.

    Example:

    >>> find_checkpoints("runs/ckpts").epochs  # doctest: +SKIP
    [1, 2, 3, 4, 5]
    >>> find_checkpoints("s3://runs/exp1/ckpts").folder  # doctest: +SKIP
    PosixPath('/home/me/.cache/insight/remote/trees/5f1c.../')
    """
    from insight.remote import is_remote

    if is_remote(folder):
        return _remote_checkpoints(str(folder), model, safe_mode)
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError("A checkpoint folder must be a folder.",
                        "Give the folder ModelCheckpoint writes into.",
                        f"folder={str(folder)!r}")
    files = sorted((p for p in root.iterdir() if p.is_file()), key=_natural)
    weights = [p for p in files if p.name.lower().endswith(WEIGHTS_SUFFIX)]
    models = [p for p in files if p not in weights and p.suffix.lower() in MODEL_SUFFIXES]
    if weights:
        kind, found = "weights", weights
        model_file = Path(model).expanduser() if model else _model_beside(root, models)
    else:
        kind, found = "model", models
        model_file = Path(model).expanduser() if model else (models[-1] if models else None)
    if len(found) < 2:
        raise DataError(f"A timeline needs at least two checkpoints; {root.name} holds "
                        f"{len(found)}.",
                        "Give the folder of ModelCheckpoint(filepath='ckpts/epoch_{epoch:02d}"
                        ".keras') (or '.weights.h5' beside one model file), saved every epoch.",
                        f"folder={str(root)!r}, files={[p.name for p in files][:8]!r}")
    parsed = [parse_epoch(p.name) for p in found]
    by_name = None not in parsed and len(set(parsed)) == len(parsed)
    epochs = parsed if by_name else list(range(1, len(found) + 1))
    checkpoints = sorted((Checkpoint(p, int(e), kind) for p, e in zip(found, epochs,
                                                                     strict=True)),
                         key=lambda c: c.epoch)
    layers: list[str] = []
    if model_file is not None:
        layers = layer_order(_check_model_file(model_file, safe_mode).config or {})
    if kind == "model":
        for c in checkpoints[:-1] if model_file == checkpoints[-1].path else checkpoints:
            _check_model_file(c.path, safe_mode)
    return CheckpointFolder(root, checkpoints, model_file, "names" if by_name else "order",
                            layers)


def _remote_checkpoints(url: str, model: str | Path | None, safe_mode: bool
                        ) -> CheckpointFolder:
    """`find_checkpoints` of a remote folder: fetched, then read as a local one; errors name
    the URL, not the cache."""
    from insight.errors import InsightError
    from insight.model.fetched import fetch_model, named_as

    local = fetch_model(url)  # weights-only: with the model above it linked beside
    try:
        return find_checkpoints(local, model, safe_mode=safe_mode)
    except InsightError as exc:
        named_as(exc, str(local), url)
        raise


def _model_beside(root: Path, models: list[Path]) -> Path | None:
    if len(models) == 1:
        return models[0]
    named = [p for p in models if p.name in ("model.keras", "model.h5")]
    if named:
        return named[0]
    if models:
        raise DataError("Weights checkpoints sit beside several model files; which one holds "
                        "their architecture is unclear.",
                        "Keep one model file beside them, name it model.keras, or pass it "
                        "(model=...).", f"models={[p.name for p in models]!r}")
    for name in ("model.keras", "model.h5"):
        if (root.parent / name).is_file():
            return root.parent / name
    return None


def _check_model_file(path: Path, safe_mode: bool):
    """The static preflight and, in safe mode, the loader's refusals (nothing runs)."""
    from insight.model.loading import check_safety
    from insight.model.preflight import preflight

    report = preflight(path)
    check_safety(report, safe_mode=safe_mode)
    return report


def layer_order(config: dict[str, Any], prefix: str = "") -> list[str]:
    """Layer paths of a model config, in the config's order, nested models as `outer/inner`.

    Example:

    >>> layer_order({"config": {"layers": [{"config": {"name": "a"}},
    ...                                    {"config": {"name": "b"}}]}})
    ['a', 'b']
    """
    out: list[str] = []
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    for layer in layers if isinstance(layers, list) else []:
        conf = layer.get("config") if isinstance(layer, dict) else None
        name = conf.get("name") if isinstance(conf, dict) else None
        if not isinstance(name, str) or layer.get("class_name") == "InputLayer":
            continue
        out.append(prefix + name)
        out += layer_order(layer, f"{prefix}{name}/")
    return out


def read_weights(checkpoint: Checkpoint | str | Path) -> dict[str, list[np.ndarray]]:
    """Every layer's weights in one checkpoint file, read as data (no model is built).

    Args:
        checkpoint: a `Checkpoint`, or the path of a `.weights.h5`, `.keras` or `.h5` file.

    Returns:
        `{layer_path: [arrays]}`, nested layers as `outer/inner`; layers without weights are
        left out. The optimizer's variables are not read.

    Raises:
        UnsafeModelError: the HDF5 data links into other files.
        DataError: the file declares more than `MAX_WEIGHT_BYTES` of weights, or holds no
            weights insight recognises.

    Example:

    >>> w = read_weights("ckpts/epoch_03.weights.h5")  # doctest: +SKIP
    >>> [a.shape for a in w["dense1"]]  # doctest: +SKIP
    [(64, 32), (32,)]
    """
    import h5py

    path = Path(checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint)
    source: Any = path
    if path.suffix.lower() == ".keras":
        source = io.BytesIO(_archive_weights(path))
    try:
        with h5py.File(source, "r") as f:
            _refuse_links(f, path)
            out = _legacy_layers(f) if "layer_names" in f.attrs or "model_weights" in f \
                else _keras3_layers(f, f.get("layers"), "")
            _check_size(out, path)
            return {k: [np.asarray(d[()]) for d in v] for k, v in out.items()}
    except (OSError, KeyError) as exc:
        raise DataError(f"{path.name} is not a weights file insight reads ({exc}).",
                        "Give the files ModelCheckpoint wrote (.keras, or .weights.h5).",
                        f"path={str(path)!r}") from None


def _archive_weights(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("model.weights.h5")
            if info.file_size > MAX_WEIGHT_BYTES:
                raise DataError(f"{path.name} holds {info.file_size / 1024**3:.1f} GB of "
                                "weights.", "insight refuses checkpoints over "
                                f"{MAX_WEIGHT_BYTES // 1024**3} GB.", f"path={str(path)!r}")
            return zf.read(info)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DataError(f"{path.name} is not a .keras archive with weights ({exc}).",
                        "Give the files ModelCheckpoint wrote.", f"path={str(path)!r}") \
            from None


def _refuse_links(f: Any, path: Path) -> None:
    from insight.model.hdf5 import h5_external_links

    links = h5_external_links(f)
    if links:
        raise UnsafeModelError(f"{path.name} points into other files: {', '.join(links[:3])}.",
                               "insight reads no file the user did not choose; check where "
                               "the checkpoint comes from.", f"path={str(path)!r}")


def _check_size(layers: dict[str, list[Any]], path: Path) -> None:
    total = sum(int(d.size) * d.dtype.itemsize for ds in layers.values() for d in ds)
    if total > MAX_WEIGHT_BYTES:
        raise DataError(f"{path.name} declares {total / 1024**3:.1f} GB of weights.",
                        f"insight refuses checkpoints over {MAX_WEIGHT_BYTES // 1024**3} GB.",
                        f"path={str(path)!r}")
    if not layers:
        raise DataError(f"{path.name} holds no layer weights insight recognises.",
                        "Give the files ModelCheckpoint wrote (Keras 3 .keras or "
                        ".weights.h5, or a legacy .h5).", f"path={str(path)!r}")


def _datasets(group: Any) -> list[Any]:
    import h5py

    items = [(k, v) for k, v in group.items() if isinstance(v, h5py.Dataset)
             and v.dtype.kind in "fiub"]
    return [v for _, v in sorted(items, key=lambda kv: (not kv[0].isdigit(),
                                                       int(kv[0]) if kv[0].isdigit() else 0,
                                                       kv[0]))]


def _own_vars(group: Any) -> list[Any]:
    """A layer's variables: its `vars` and those of sublayers it keeps as attributes."""
    import h5py

    out = _datasets(group["vars"]) if isinstance(group.get("vars"), h5py.Group) else []
    for key in sorted(group):
        child = group.get(key)
        if key not in ("vars", "layers") and isinstance(child, h5py.Group):
            out += _own_vars(child)
    return out


def _keras3_layers(f: Any, layers: Any, prefix: str) -> dict[str, list[Any]]:
    """Keras 3's layout: `layers/<key>/vars/<i>`, the layer's name in `vars.attrs['name']`,
    a nested model's layers under its own `layers` group."""
    import h5py

    out: dict[str, list[Any]] = {}
    if not isinstance(layers, h5py.Group):
        return out
    for key in layers:
        group = layers.get(key)
        if not isinstance(group, h5py.Group):
            continue
        vars_ = group.get("vars")
        name = vars_.attrs.get("name", key) if isinstance(vars_, h5py.Group) else key
        name = name.decode() if isinstance(name, bytes) else str(name)
        own = _own_vars(group)
        if own:
            out[prefix + name] = own
        out.update(_keras3_layers(f, group.get("layers"), f"{prefix}{name}/"))
    return out


def _legacy_layers(f: Any) -> dict[str, list[Any]]:
    """The legacy `.h5` layout: `layer_names`, each layer's `weight_names` (Keras 2)."""
    from insight.model.hdf5 import read_bounded_attr

    root = f["model_weights"] if "model_weights" in f else f
    out: dict[str, list[Any]] = {}
    def names(obj: Any, attr: str) -> list[str]:
        try:
            value = read_bounded_attr(obj, attr, "")
        except RuntimeError:  # an empty attribute (a layer without weights) has no storage
            return []
        return [n.decode() if isinstance(n, bytes) else str(n)
                for n in ([] if value is None else list(value))]

    for name in names(root, "layer_names"):
        group = root.get(name)
        if group is None:
            continue
        found = [group.get(n) for n in names(group, "weight_names")]
        found = [d for d in found if d is not None and getattr(d, "dtype", None) is not None]
        if found:
            out[name] = found
    return out
