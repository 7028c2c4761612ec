"""One model across its checkpoints: which layers learn when, which converge first, and how a
layer's representation moves from epoch to epoch.

- `weight_timeline`: per layer, the relative change ‖W_t − W_{t−1}‖ / ‖W_{t−1}‖ (and the
  cosine) between consecutive checkpoints, read straight from the files (no model built);
- `cka_timeline`: linear CKA of each layer at every checkpoint against the final one, on the
  same inputs (one model, its weights swapped checkpoint by checkpoint);
- `projection_timeline`: a layer's 2D PCA layout at every checkpoint, each aligned to the
  previous one by orthogonal Procrustes so points move smoothly instead of flipping;
- `timeline_report`: all of it for `insight compare CHECKPOINT_DIR`.

Example:

>>> from insight.compare.timeline import weight_timeline
>>> df = weight_timeline("sample_models/digits_cnn/checkpoints")  # doctest: +SKIP
>>> list(df.columns)  # doctest: +SKIP
['layer', 'depth', 'epoch', 'from_epoch', 'relative_change', 'cosine', 'params']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.compare.checkpoints import CheckpointFolder, find_checkpoints, read_weights
from insight.errors import DataError, UsageError

__all__ = ["weight_timeline", "cka_timeline", "projection_timeline", "procrustes_align",
           "timeline_model", "apply_weights", "projection_frame", "timeline_report",
           "TimelineReport", "WEIGHT_COLUMNS", "CKA_COLUMNS", "PROJECTION_COLUMNS"]

WEIGHT_COLUMNS = ["layer", "depth", "epoch", "from_epoch", "relative_change", "cosine", "params"]
CKA_COLUMNS = ["layer", "depth", "epoch", "cka"]
PROJECTION_COLUMNS = ["epoch", "row", "x", "y"]
Progress = Callable[[float, str], None] | None


def _folder(folder: CheckpointFolder | str | Path) -> CheckpointFolder:
    return folder if isinstance(folder, CheckpointFolder) else find_checkpoints(folder)


def _ordered(names: Iterable[str], order: list[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(order)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def weight_timeline(folder: CheckpointFolder | str | Path, *,
                    progress: Progress = None) -> pd.DataFrame:
    """Per layer and checkpoint, how much its weights moved since the previous checkpoint.

    Args:
        folder: a checkpoint folder, or a `CheckpointFolder`.
        progress: `progress(fraction, message)` per file read. Defaults to `None`.

    Returns:
        A long frame (`WEIGHT_COLUMNS`): one row per layer with weights and per checkpoint but
        the first; `epoch` is the later checkpoint's, `from_epoch` the earlier's, `depth` the
        layer's place in the model (0 first). A layer whose shapes change between two files
        gets NaN there.

    Example:

    >>> weight_timeline("ckpts/").pivot(index="layer", columns="epoch",
    ...                                 values="relative_change")  # doctest: +SKIP
    """
    from insight.compare.weights import weight_change

    ckpts = _folder(folder)
    rows: list[tuple] = []
    previous = None
    for i, c in enumerate(ckpts.checkpoints):
        current = read_weights(c)
        if progress is not None:
            progress((i + 1) / len(ckpts.checkpoints), f"Read {c.path.name}")
        if previous is not None:
            before, prev_epoch = previous
            for name in set(before) | set(current):
                a, b = before.get(name), current.get(name)
                same = (a is not None and b is not None and len(a) == len(b)
                        and all(x.shape == y.shape for x, y in zip(a, b, strict=True)))
                rel, cos = weight_change(a, b) if same else (np.nan, np.nan)
                params = sum(int(x.size) for x in (b or a or []))
                rows.append((name, c.epoch, prev_epoch, rel, cos, params))
        previous = (current, c.epoch)
    order = _ordered({r[0] for r in rows}, ckpts.layers)
    depth = {n: i for i, n in enumerate(order)}
    df = pd.DataFrame(rows, columns=["layer", "epoch", "from_epoch", "relative_change",
                                     "cosine", "params"])
    df.insert(1, "depth", df["layer"].map(depth).astype("int64"))
    return df.sort_values(["depth", "epoch"], kind="stable").reset_index(drop=True)[
        WEIGHT_COLUMNS]


def timeline_model(folder: CheckpointFolder | str | Path, *, safe_mode: bool = True,
                   isolate: Any = False):
    """A fresh copy of the folder's model to swap checkpoints into (never a shared, cached
    model: `apply_weights` changes its variables).

    Args:
        folder: a checkpoint folder, or a `CheckpointFolder`.
        safe_mode: as `insight.load_model`. Defaults to `True`.
        isolate: as `insight.load_model` (`True` for a stranger's files). Defaults to `False`.

    Returns:
        A `LoadedModel`.

    Raises:
        DataError: weights checkpoints with no model file to hold their architecture.
    """
    from insight.model.loading import load_model

    ckpts = _folder(folder)
    if ckpts.model_file is None:
        raise DataError("These weights checkpoints have no model file beside them, so there "
                        "is no architecture to run them in.",
                        "Save the model once beside them (model.save('ckpts/model.keras')) or "
                        "in the folder above, or pass it (model=...).",
                        f"folder={str(ckpts.folder)!r}")
    return load_model(ckpts.model_file, safe_mode=safe_mode, isolate=isolate)


def apply_weights(model: Any, weights: dict[str, list[np.ndarray]]) -> None:
    """Set each layer's weights from `read_weights`' result (layer paths as keys).

    Raises:
        DataError: a layer of the checkpoint is missing from the model, or its shapes differ.
    """
    from insight.model.layers import as_model, iter_layers

    layers = {p: layer for p, layer, _ in iter_layers(as_model(model))}
    for path, arrays in weights.items():
        layer = layers.get(path)
        if layer is None:
            raise DataError(f"The checkpoint has weights for {path!r}, a layer the model "
                            "does not have.", "Give the model these checkpoints were saved "
                            "from.", f"layers={sorted(layers)[:12]!r}")
        current = layer.get_weights()
        if [a.shape for a in current] != [a.shape for a in arrays]:
            raise DataError(f"The checkpoint's weights for {path!r} do not fit the model's.",
                            "Give the model these checkpoints were saved from.",
                            f"shapes={[a.shape for a in arrays]!r}, model's="
                            f"{[a.shape for a in current]!r}")
        layer.set_weights(arrays)


def _capture_all(model: Any, ckpts: CheckpointFolder, x: Any, layers: list[str],
                 progress: Progress) -> dict[int, dict[str, np.ndarray]]:
    from insight.probe.capture import activations

    out = {}
    for i, c in enumerate(ckpts.checkpoints):
        apply_weights(model, read_weights(c))
        acts = activations(model, x, layers)
        out[c.epoch] = {p: a.reshape(len(a), -1).astype(np.float64) for p, a in acts.items()}
        if progress is not None:
            progress((i + 1) / len(ckpts.checkpoints), f"Ran {c.label}")
    return out


def cka_timeline(folder: CheckpointFolder | str | Path, model: Any, x: Any, *,
                 layers: Iterable[str] | None = None, progress: Progress = None
                 ) -> pd.DataFrame:
    """Linear CKA of each layer at every checkpoint against the same layer at the last one.

    Args:
        folder: a checkpoint folder, or a `CheckpointFolder`.
        model: a model of the checkpoints' architecture (`timeline_model`): its weights are
            replaced, checkpoint by checkpoint.
        x: the inputs (a few hundred are plenty).
        layers: layer paths; `None` for every layer with weights. Defaults to `None`.
        progress: `progress(fraction, message)` per checkpoint. Defaults to `None`.

    Returns:
        A long frame (`CKA_COLUMNS`); the last epoch's CKA is 1 by definition.

    Example:

    >>> cka_timeline("ckpts/", timeline_model("ckpts/"), x[:256])  # doctest: +SKIP
    """
    from insight.compare.cka import linear_cka
    from insight.model.layers import resolve_layers

    ckpts = _folder(folder)
    paths = _layers_with_weights(model, ckpts) if layers is None else \
        resolve_layers(model, layers)
    acts = _capture_all(model, ckpts, x, paths, progress)
    final = acts[ckpts.epochs[-1]]
    rows = [(p, d, e, float(linear_cka(acts[e][p], final[p])))
            for d, p in enumerate(paths) for e in ckpts.epochs]
    return pd.DataFrame(rows, columns=CKA_COLUMNS)


def _layers_with_weights(model: Any, ckpts: CheckpointFolder) -> list[str]:
    from insight.model.layers import layer_paths

    stored = set(read_weights(ckpts.checkpoints[-1]))
    return [p for p in layer_paths(model) if p in stored]


def procrustes_align(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """`current` (`[n, d]`) moved onto `previous`: centred, rotated (or reflected) by
    orthogonal Procrustes to best match the centred `previous`, then put at its centre. The
    scale of `current` is kept (how much a layer spreads is part of what changed).

    Example:

    >>> a = np.random.default_rng(0).normal(size=(50, 2))
    >>> turn = np.array([[0.0, -1.0], [1.0, 0.0]])
    >>> bool(np.allclose(procrustes_align(a, a @ turn), a))
    True
    """
    from scipy.linalg import orthogonal_procrustes

    prev = np.asarray(previous, np.float64)
    cur = np.asarray(current, np.float64)
    if prev.shape != cur.shape:
        raise UsageError("Procrustes alignment needs two layouts of the same points.",
                         "Pass the same rows at both epochs.",
                         f"shapes={prev.shape} and {cur.shape}")
    mu_p, mu_c = prev.mean(0), cur.mean(0)
    rotation, _ = orthogonal_procrustes(cur - mu_c, prev - mu_p)
    return (cur - mu_c) @ rotation + mu_p


def _pca2(a: np.ndarray) -> np.ndarray:
    centred = a - a.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:2].T
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    rms = np.sqrt((out ** 2).sum(1).mean())
    return out / rms if rms > 0 else out


def projection_timeline(folder: CheckpointFolder | str | Path, model: Any, x: Any,
                        layer: str, *, progress: Progress = None) -> pd.DataFrame:
    """A layer's 2D PCA layout at every checkpoint, each aligned to the previous epoch's.

    Each epoch's layout is scaled to unit root-mean-square radius (the axes stay put across
    the slider) and rotated by orthogonal Procrustes onto the previous one.

    Args:
        folder: a checkpoint folder, or a `CheckpointFolder`.
        model: a model of the checkpoints' architecture (`timeline_model`).
        x: the inputs (one point each).
        layer: the layer path.
        progress: `progress(fraction, message)` per checkpoint. Defaults to `None`.

    Returns:
        A long frame (`PROJECTION_COLUMNS`): one row per epoch and input.

    Example:

    >>> projection_timeline("ckpts/", timeline_model("ckpts/"), x[:500], "dense1")  # doctest: +SKIP
    """
    from insight.model.layers import resolve_layers

    ckpts = _folder(folder)
    path = resolve_layers(model, layer)[0]
    acts = _capture_all(model, ckpts, x, [path], progress)
    return projection_frame({e: acts[e][path] for e in ckpts.epochs})


def projection_frame(acts_by_epoch: dict[int, np.ndarray]) -> pd.DataFrame:
    """The aligned 2D layouts (`PROJECTION_COLUMNS`) of one layer's outputs per epoch
    (`{epoch: [n, ...]}`, the same `n` rows each time), in epoch order.

    Example:

    >>> a = np.random.default_rng(0).normal(size=(20, 3))
    >>> projection_frame({1: a, 2: 2 * a}).groupby("epoch").size().tolist()
    [20, 20]
    """
    frames, previous = [], None
    for epoch in sorted(acts_by_epoch):
        a = np.asarray(acts_by_epoch[epoch], np.float64)
        xy = _pca2(a.reshape(len(a), -1))
        if previous is not None:
            xy = procrustes_align(previous, xy)
        previous = xy
        frames.append(pd.DataFrame({"epoch": epoch, "row": np.arange(len(xy)),
                                    "x": xy[:, 0], "y": xy[:, 1]}))
    return pd.concat(frames, ignore_index=True)[PROJECTION_COLUMNS]


@dataclass
class TimelineReport:
    """What `insight compare CHECKPOINT_DIR` shows.

    Attributes:
        folder: the checkpoint folder.
        checkpoints: one row per checkpoint (`epoch`, `file`, `kind`).
        weights: `weight_timeline`'s frame.
        cka: `cka_timeline`'s frame, or `None` without inputs or a model file.
        note: why `cka` is missing, when it is.
    """

    folder: CheckpointFolder
    checkpoints: pd.DataFrame
    weights: pd.DataFrame
    cka: pd.DataFrame | None = None
    note: str = ""

    def summary(self) -> pd.DataFrame:
        """Per layer: total change over all checkpoints, the epoch it moved most, its last
        change, and (with `cka`) its first epoch with CKA ≥ 0.9 against the final one."""
        w = self.weights
        rows = []
        for layer, g in w.groupby("layer", sort=False):
            moved = g.dropna(subset=["relative_change"])
            row = {"layer": layer, "params": int(g["params"].iloc[-1]),
                   "largest_change": float(moved["relative_change"].max()) if len(moved)
                   else np.nan,
                   "at_epoch": int(moved.loc[moved["relative_change"].idxmax(), "epoch"])
                   if len(moved) else None,
                   "last_change": float(g["relative_change"].iloc[-1])}
            if self.cka is not None:
                c = self.cka[(self.cka.layer == layer) & (self.cka.cka >= 0.9)]
                row["cka_0.9_from"] = int(c["epoch"].min()) if len(c) else None
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for `--json`."""
        return {"folder": str(self.folder.folder),
                "model_file": str(self.folder.model_file) if self.folder.model_file else None,
                "epochs_from": self.folder.epochs_from,
                "checkpoints": self.checkpoints.to_dict("records"),
                "weights": self.weights.replace({np.nan: None}).to_dict("records"),
                "cka": None if self.cka is None else self.cka.to_dict("records"),
                "summary": self.summary().replace({np.nan: None}).to_dict("records"),
                "note": self.note}

    def text(self) -> str:
        """The terminal report: the checkpoints, then the per-layer summary."""
        head = (f"{len(self.checkpoints)} checkpoints in {self.folder.folder} (epochs "
                f"{self.folder.epochs[0]}-{self.folder.epochs[-1]}, from the "
                f"{'file names' if self.folder.epochs_from == 'names' else 'file order'})")
        lines = [head, "", self.summary().to_string(index=False, float_format="{:.4g}".format)]
        return "\n".join(lines + (["", self.note] if self.note else []))


def timeline_report(folder: str | Path, data: Any = None, *, model: str | Path | None = None,
                    safe_mode: bool = True, isolate: Any = True, max_inputs: int = 512,
                    progress: Progress = None) -> TimelineReport:
    """The checkpoint timeline of `folder`: weight changes always, CKA against the final
    checkpoint when there are inputs (`data`, else the `data.npz` beside the model file).

    Args:
        folder: the `ModelCheckpoint` folder.
        data: a data path (as `--data`), an array, or `None`. Defaults to `None`.
        model: the model file of weights-only checkpoints. Defaults to `None` (looked for).
        safe_mode: as `insight.load_model`. Defaults to `True`.
        isolate: load the model file in a checked child first. Defaults to `True`.
        max_inputs: inputs used for CKA. Defaults to `512`.
        progress: `progress(fraction, message)`. Defaults to `None`.

    Returns:
        A `TimelineReport`.

    Example:

    >>> print(timeline_report("sample_models/digits_cnn/checkpoints").text())  # doctest: +SKIP
    """
    from insight.data.conform import bundled_data

    ckpts = find_checkpoints(folder, model, safe_mode=safe_mode)
    table = pd.DataFrame({"epoch": ckpts.epochs,
                          "file": [c.path.name for c in ckpts.checkpoints],
                          "kind": [c.kind for c in ckpts.checkpoints]})
    weights = weight_timeline(ckpts, progress=progress)
    if ckpts.model_file is None:
        return TimelineReport(ckpts, table, weights, None, "No model file beside the weights: "
                              "no CKA (it runs the model).")
    if data is None and bundled_data(ckpts.model_file) is None:
        return TimelineReport(ckpts, table, weights, None, "No inputs (--data): no CKA.")
    loaded = timeline_model(ckpts, safe_mode=safe_mode, isolate=isolate)
    x = _inputs(loaded, data, max_inputs)
    cka = cka_timeline(ckpts, loaded, x, progress=progress)
    return TimelineReport(ckpts, table, weights, cka)


def _inputs(loaded: Any, data: Any, limit: int) -> Any:
    from insight.data.conform import dataset_for
    from insight.probe.capture import as_inputs, count_rows, slice_rows

    if isinstance(data, np.ndarray):
        x = data
    else:
        x = dataset_for(loaded, data).x
    x = as_inputs(x, loaded.model)
    return slice_rows(x, 0, min(limit, count_rows(x)))
