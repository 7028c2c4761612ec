"""Readers of a `.keras` archive and a legacy `.h5` model file, as data.

Each reader opens the file without building any Keras object: the zip directory and the
`config.json` and `metadata.json` members of a `.keras` archive; the top-level keys and the
`model_config` and `keras_version` attributes of an HDF5 file, and the links of HDF5 files (the
legacy file itself, the archive's `model.weights.h5`) that point into other files. A damaged
file raises a `ModelLoadError` that names the true cause (Keras reports a truncated `.keras` as
"File not found"); a hostile one (path traversal, symlinks, a zip bomb, a huge config) is
refused with what was found, before anything large is read.

Example:

>>> from insight.model.files import read_keras_archive
>>> stored = read_keras_archive("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> stored.config["class_name"], "model.weights.h5" in stored.members  # doctest: +SKIP
('Sequential', True)
"""

from __future__ import annotations

import json
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insight.errors import ModelLoadError, UnsupportedModelError
from insight.model.hdf5 import (
    MAX_ATTR_BYTES,
    archive_weights_links,
    h5_external_links,
    read_bounded_attr,
)

__all__ = ["MAX_CONFIG_BYTES", "MAX_JSON_CONTAINERS", "MAX_MEMBERS", "MAX_RATIO",
           "StoredModel", "check_archive", "read_h5_model", "read_keras_archive"]

_ZIP_MAX_UNCOMPRESSED = 4 * 1024**3
MAX_CONFIG_BYTES = MAX_ATTR_BYTES  # 64 MB; MobileNetV2's config is 200 kB
MAX_MEMBERS = 10_000
MAX_JSON_CONTAINERS = 1_000_000  # MobileNetV2's config holds ~3,000
MAX_RATIO = 200  # deflate peaks near 1,000:1 on zeros; saved weights barely compress
_BOMB_MIN_BYTES = 16 * 1024**2  # small members may compress well (a config of zeros)
_MAX_META_BYTES = 1024**2


@dataclass
class StoredModel:
    """What a `.keras` archive or a legacy `.h5` file holds, read as data.

    Attributes:
        config: the parsed model config.
        members: archive members (`.keras`) or HDF5 top-level keys (`.h5`).
        keras_version: the Keras version that saved it, when recorded.
        saved_at: the save date (`.keras` only).
        external_links: HDF5 links and datasets that point into other files
            (`"model_weights/x -> /etc/passwd:/ (external link)"`).
        notes: findings in plain words (no weights, legacy format).
    """

    config: dict[str, Any]
    members: list[str] = field(default_factory=list)
    keras_version: str | None = None
    saved_at: str | None = None
    external_links: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_keras_archive(file: str | Path, shown: str | None = None) -> StoredModel:
    """Read a `.keras` zip archive's config, metadata and member list, refusing hostile ones.

    Everything is checked from the zip directory before any member is read: member paths
    (`..`, absolute), symlinks, the number of members, the declared sizes (a `config.json`
    over `MAX_CONFIG_BYTES`, over 4 GiB in all) and compression ratios of a zip bomb. Members
    are then read with a bound, so a directory that lies about sizes costs no more.

    Args:
        file: the `.keras` file.
        shown: the path as the user gave it, for error messages. Defaults to `file`.

    Returns:
        A `StoredModel`; `external_links` lists HDF5 links and datasets of the weights file
        that point to other files.

    Raises:
        ModelLoadError: not a zip archive (truncated, an HDF5 file renamed, another format),
            no `config.json`, a hostile archive (see above), or a config that is not JSON.

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
    try:
        with zipfile.ZipFile(file) as zf:
            infos = zf.infolist()
            members = [i.filename for i in infos]
            check_archive(infos, shown)
            if "config.json" not in members:
                raise ModelLoadError(
                    "The zip archive is not a Keras v3 model: it has no config.json "
                    f"(members: {', '.join(members[:8]) or 'none'}).",
                    "Save the model with model.save('model.keras').",
                    f"path={shown!r}",
                )
            raw_config = _read_member(zf, "config.json", MAX_CONFIG_BYTES, shown)
            meta = _read_json_member(zf, "metadata.json")
            links = archive_weights_links(zf)
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(
            f"The .keras archive is damaged: {exc}.",
            "Fetch or save the file again.",
            f"path={shown!r}",
        ) from exc
    stored = StoredModel(config=_parse_json(raw_config, "config.json", shown), members=members,
                         external_links=links)
    if isinstance(meta, dict):
        version, saved = meta.get("keras_version"), meta.get("date_saved")
        stored.keras_version = version if isinstance(version, str) else None
        stored.saved_at = saved if isinstance(saved, str) else None
    if "model.weights.h5" not in members and "model.weights.npz" not in members:
        stored.notes.append("The archive holds no weights file: the model will load untrained.")
    return stored


def check_archive(infos: list[zipfile.ZipInfo], shown: str) -> None:
    """Refuse a zip directory that no Keras save writes: it is hostile, not damaged.

    Args:
        infos: the archive's `ZipFile.infolist()`.
        shown: the path as the user gave it, for the error message.

    Raises:
        ModelLoadError: naming what was found: a member path with `..` or an absolute path, a
            symlink, more than `MAX_MEMBERS` members, a `config.json` over `MAX_CONFIG_BYTES`,
            a member that expands over `MAX_RATIO` times its compressed size (a zip bomb), or
            over 4 GiB in all.

    Example:

    >>> import zipfile
    >>> check_archive([zipfile.ZipInfo("../../etc/cron.d/x")], "m.keras")
    Traceback (most recent call last):
    ...
    insight.errors.ModelLoadError: The archive holds a member whose path leaves the archive ...
    """
    received = f"path={shown!r}"
    fix = "Check where the file comes from; insight does not load it."
    if len(infos) > MAX_MEMBERS:
        raise ModelLoadError(f"The archive holds {len(infos):,} members; a Keras save writes "
                             f"three (refused over {MAX_MEMBERS:,}).", fix, received)
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise ModelLoadError(
                f"The archive holds a member whose path leaves the archive ({name!r}): a "
                "path-traversal attack that writes outside the folder it is unpacked into.",
                fix, received)
        if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
            raise ModelLoadError(
                f"The archive holds a symbolic link ({name!r}): unpacked, it would point "
                "outside the archive.", fix, received)
        if name == "config.json" and info.file_size > MAX_CONFIG_BYTES:
            raise ModelLoadError(
                f"The archive's config.json declares {info.file_size / 1024**2:,.0f} MB; a "
                f"model config is kilobytes (refused over {MAX_CONFIG_BYTES // 1024**2} MB).",
                fix, received)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _BOMB_MIN_BYTES and ratio > MAX_RATIO:
            raise ModelLoadError(
                f"The archive member {name!r} expands {ratio:,.0f} times "
                f"({info.compress_size:,} bytes to {info.file_size:,}): a zip bomb.",
                fix, received)
    total = sum(i.file_size for i in infos)
    if total > _ZIP_MAX_UNCOMPRESSED:
        raise ModelLoadError(
            f"The archive would expand to {total / 1024**3:.1f} GiB, over the 4 GiB "
            "insight allows (a zip bomb, or a model too large to inspect).",
            fix, received)


def read_h5_model(file: str | Path, shown: str | None = None) -> StoredModel:
    """Read a legacy HDF5 model's config, Keras version, top-level keys and external links.

    Args:
        file: the `.h5` or `.hdf5` file.
        shown: the path as the user gave it, for error messages. Defaults to `file`.

    Returns:
        A `StoredModel` (no `saved_at`: HDF5 files do not record it).

    Raises:
        ModelLoadError: not an HDF5 file, unreadable, a config over `MAX_CONFIG_BYTES`, or a
            config that is not JSON.
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
            raw = read_bounded_attr(f, "model_config", shown)
            version = read_bounded_attr(f, "keras_version", shown)
            members = sorted(f.keys())[:200]
            links = h5_external_links(f)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise ModelLoadError(
            f"The HDF5 file cannot be read: {exc}.",
            "The file is damaged or truncated: fetch or save it again.",
            f"path={shown!r}",
        ) from exc
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
        keras_version=_text(version) if version is not None else None,
        external_links=links,
        notes=["Legacy HDF5 format: loaded through Keras' legacy path."],
    )


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, shown: str) -> bytes:
    """A member's bytes, reading at most `limit` (the directory's sizes may lie)."""
    with zf.open(name) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ModelLoadError(
            f"The archive's {name} expands beyond {limit // 1024**2} MB although its header "
            "says less: a crafted archive.",
            "Check where the file comes from; insight does not load it.",
            f"path={shown!r}",
        )
    return data


def _read_json_member(zf: zipfile.ZipFile, name: str) -> Any:
    try:
        with zf.open(name) as fh:
            return json.loads(fh.read(_MAX_META_BYTES))
    except (KeyError, ValueError, RecursionError):
        return None


def _parse_json(raw: bytes | str, what: str, shown: str) -> dict[str, Any]:
    data = raw.encode("utf-8", errors="replace") if isinstance(raw, str) else raw
    containers = data.count(b"{") + data.count(b"[")  # counted in C, before any parsing
    if containers > MAX_JSON_CONTAINERS:
        raise ModelLoadError(
            f"The model's {what} holds {containers:,} JSON objects and lists; a model config "
            f"holds thousands (refused over {MAX_JSON_CONTAINERS:,}: parsed, they would take "
            "gigabytes of memory).",
            "Check where the file comes from; insight does not load it.",
            f"path={shown!r}",
        )
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise ModelLoadError(
            f"The model's {what} is nested thousands of levels deep; no Keras model is (a "
            "crafted file meant to exhaust the loader's recursion).",
            "Check where the file comes from; insight does not load it.",
            f"path={shown!r}",
        ) from exc
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
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tobytes") and getattr(value, "dtype", None) is not None \
            and value.dtype.kind == "S":
        return value.tobytes().decode("utf-8", errors="replace")
    return str(value)
