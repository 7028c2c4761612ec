"""Readers of a `.keras` archive and a legacy `.h5` model file, as data.

Each reader opens the file without building any Keras object: the zip directory and the
`config.json` and `metadata.json` members of a `.keras` archive; the top-level keys and the
`model_config` and `keras_version` attributes of an HDF5 file. A damaged file raises a
`ModelLoadError` that names the true cause (Keras reports a truncated `.keras` as "File not
found").

Example:

>>> from insight.model.files import read_keras_archive
>>> stored = read_keras_archive("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> stored.config["class_name"], "model.weights.h5" in stored.members  # doctest: +SKIP
('Sequential', True)
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insight.errors import ModelLoadError, UnsupportedModelError

__all__ = ["StoredModel", "read_h5_model", "read_keras_archive"]

_ZIP_MAX_UNCOMPRESSED = 4 * 1024**3


@dataclass
class StoredModel:
    """What a `.keras` archive or a legacy `.h5` file holds, read as data.

    Attributes:
        config: the parsed model config.
        members: archive members (`.keras`) or HDF5 top-level keys (`.h5`).
        keras_version: the Keras version that saved it, when recorded.
        saved_at: the save date (`.keras` only).
        notes: findings in plain words (unsafe member paths, no weights, legacy format).
    """

    config: dict[str, Any]
    members: list[str] = field(default_factory=list)
    keras_version: str | None = None
    saved_at: str | None = None
    notes: list[str] = field(default_factory=list)


def read_keras_archive(file: str | Path, shown: str | None = None) -> StoredModel:
    """Read a `.keras` zip archive's config, metadata and member list.

    Args:
        file: the `.keras` file.
        shown: the path as the user gave it, for error messages. Defaults to `file`.

    Returns:
        A `StoredModel`.

    Raises:
        ModelLoadError: not a zip archive (truncated, an HDF5 file renamed, another format),
            no `config.json`, over 4 GiB uncompressed, or a config that is not JSON.

    Example:

    >>> read_keras_archive("model.keras").keras_version  # doctest: +SKIP
    '3.15.1'
    """
    file = Path(file)
    shown = str(file) if shown is None else shown
    with open(file, "rb") as fh:
        head = fh.read(4)
    if not zipfile.is_zipfile(file):
        if head.startswith(b"PK"):
            what = ("The .keras archive is truncated: it starts like a zip file but its "
                    "directory at the end is missing.")
            fix = "The download or copy stopped early: fetch or save the file again."
        elif head.startswith(b"\x89HDF"):
            what = "This file is an HDF5 file named .keras, not a .keras zip archive."
            fix = "Rename it to .h5 if it is a legacy Keras model."
        else:
            what = f"This is not a .keras file: a .keras model is a zip archive, this file " \
                   f"starts with {head!r}."
            fix = "Check that you picked the model file, and save it with model.save('x.keras')."
        raise ModelLoadError(what, fix, f"path={shown!r}")
    notes: list[str] = []
    try:
        with zipfile.ZipFile(file) as zf:
            infos = zf.infolist()
            members = [i.filename for i in infos]
            if "config.json" not in members:
                raise ModelLoadError(
                    "The zip archive is not a Keras v3 model: it has no config.json "
                    f"(members: {', '.join(members[:8]) or 'none'}).",
                    "Save the model with model.save('model.keras').",
                    f"path={shown!r}",
                )
            unsafe_names = [n for n in members if n.startswith("/") or ".." in n]
            if unsafe_names:
                notes.append(f"Archive members with unsafe paths: {', '.join(unsafe_names)}.")
            total = sum(i.file_size for i in infos)
            if total > _ZIP_MAX_UNCOMPRESSED:
                raise ModelLoadError(
                    f"The archive would expand to {total / 1024**3:.1f} GiB, over the 4 GiB "
                    "insight allows (a zip bomb, or a model too large to inspect).",
                    "Check where the file comes from.",
                    f"path={shown!r}",
                )
            raw_config = zf.read("config.json")
            meta = _read_json_member(zf, "metadata.json")
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(
            f"The .keras archive is damaged: {exc}.",
            "Fetch or save the file again.",
            f"path={shown!r}",
        ) from exc
    stored = StoredModel(config=_parse_json(raw_config, "config.json", shown), members=members,
                         notes=notes)
    if isinstance(meta, dict):
        stored.keras_version = meta.get("keras_version")
        stored.saved_at = meta.get("date_saved")
    if "model.weights.h5" not in members and "model.weights.npz" not in members:
        stored.notes.append("The archive holds no weights file: the model will load untrained.")
    return stored


def read_h5_model(file: str | Path, shown: str | None = None) -> StoredModel:
    """Read a legacy HDF5 model's config, Keras version and top-level keys.

    Args:
        file: the `.h5` or `.hdf5` file.
        shown: the path as the user gave it, for error messages. Defaults to `file`.

    Returns:
        A `StoredModel` (no `saved_at`: HDF5 files do not record it).

    Raises:
        ModelLoadError: not an HDF5 file, unreadable, or a config that is not JSON.
        UnsupportedModelError: a weights-only file (no `model_config` attribute).

    Example:

    >>> read_h5_model("model.h5").config["class_name"]  # doctest: +SKIP
    'Sequential'
    """
    import h5py

    file = Path(file)
    shown = str(file) if shown is None else shown
    if not h5py.is_hdf5(file):
        raise ModelLoadError(
            "This is not an HDF5 file: a legacy .h5 model starts with the HDF5 signature, "
            "and this one does not (damaged, or another format renamed).",
            "Check that you picked the model file; save it again with model.save('x.keras').",
            f"path={shown!r}",
        )
    try:
        with h5py.File(file, "r") as f:
            attrs = {k: f.attrs[k] for k in f.attrs}
            members = sorted(f.keys())
    except OSError as exc:
        raise ModelLoadError(
            f"The HDF5 file cannot be read: {exc}.",
            "The file is damaged or truncated: fetch or save it again.",
            f"path={shown!r}",
        ) from exc
    raw = attrs.get("model_config")
    if raw is None:
        raise UnsupportedModelError(
            "This HDF5 file holds weights only (no model_config attribute): there is no "
            "architecture to build the model from.",
            "Pass the full model saved with model.save('model.keras').",
            f"path={shown!r}",
        )
    return StoredModel(
        config=_parse_json(_text(raw), "model_config attribute", shown),
        members=members,
        keras_version=_text(attrs["keras_version"]) if "keras_version" in attrs else None,
        notes=["Legacy HDF5 format: loaded through Keras' legacy path."],
    )


def _read_json_member(zf: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(zf.read(name))
    except (KeyError, ValueError):
        return None


def _parse_json(raw: bytes | str, what: str, shown: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(
            f"The model's {what} is not valid JSON ({exc}); the file is damaged or was not "
            "written by Keras.",
            "Save the model again with model.save().",
            f"path={shown!r}",
        ) from exc
    if not isinstance(value, dict):
        raise ModelLoadError(
            f"The model's {what} is JSON but not a model config (a {type(value).__name__}).",
            "Save the model again with model.save().",
            f"path={shown!r}",
        )
    return value


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
