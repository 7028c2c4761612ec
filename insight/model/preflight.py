"""Static inspection of a model file before anything in it is deserialized.

`preflight(path)` reads a `.keras` archive, a legacy `.h5` file or a SavedModel directory as
*data*: zip members, JSON configs and HDF5 attributes, the SavedModel protobuf. No Keras
object is built and no code from the file runs, so it is safe on files from strangers and fast
(it does not import TensorFlow). It reports what the loader then enforces: Lambda layers at any
depth, custom or registered classes, references to modules that run commands or code,
references into Keras outside its modelling API, HDF5 links into other files, SavedModel ops
that touch files or run Python; and the true cause of a damaged file (Keras reports a
truncated `.keras` as "File not found"). A file no Keras save writes — a path-traversal or
symlink member, a zip bomb, a huge or ten-thousand-deep config, a layer declaring a weight of
10^12 elements — is refused here with what was found, whatever the safe mode.

The reading is done beside it: `insight.model.files` (the `.keras` archive, the `.h5` file),
`insight.model.savedmodel` (the SavedModel protobuf) and `insight.model.config_scan` (the
walk of the config for Lambda layers, custom classes and foreign references).

Example:

>>> from insight.model.preflight import preflight
>>> report = preflight("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> report.format, report.keras_version, report.lambda_layers
('keras', '3.15.1', [])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insight.errors import ModelLoadError, UnsupportedModelError, UsageError
from insight.model.config_scan import MAX_DIMENSION, ObjectRef, scan_config
from insight.model.fetched import fetched_from
from insight.model.files import read_h5_model, read_keras_archive
from insight.model.savedmodel import read_savedmodel
from insight.remote.urls import is_remote, redacted

__all__ = ["ObjectRef", "Preflight", "preflight", "resolve_model_path"]

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass
class Preflight:
    """What a model file holds, read without running any of it.

    Attributes:
        path: the path the user gave, resolved.
        model_file: the file (or SavedModel directory) that holds the model.
        format: `"keras"`, `"h5"` or `"savedmodel"`.
        keras_version: the Keras version that saved it, when recorded.
        saved_at: the save date (`.keras` only).
        model_class: the top-level class (`"Sequential"`, `"Functional"`, a subclass name).
        layer_count: number of layers in the config at every depth; `None` when the config
            does not list them (subclassed models).
        lambda_layers: layers holding Python bytecode: Lambda layers, and layers with a
            Python lambda as an argument (an activation, an initializer).
        custom_objects: classes that are neither built into Keras nor markers.
        foreign_functions: functions referenced from modules outside Keras (`builtins.print`).
        dangerous_references: names of modules that run commands or code (`os.system`,
            `subprocess.Popen`, `builtins.eval`) as a module, class, function or registered
            name, anywhere in the config.
        keras_internals: references into Keras outside its modelling API
            (`keras.config.enable_unsafe_deserialization`, `keras.utils.get_file`).
        code_loading_layers: layers that load code from elsewhere (`TFSMLayer`).
        external_files: files outside the model that loading would read: HDF5 external links
            and external or virtual datasets, vocabularies given as paths.
        members: archive members, HDF5 top-level keys, or SavedModel files.
        signatures: SavedModel signature names with their inputs and outputs.
        risky_ops: SavedModel ops that read or write files or run Python.
        notes: further findings in plain words.
        config: the parsed model config (`None` for SavedModels).
        source: the `s3://`/`gs://` URL this local copy was fetched from
            (`insight.model.fetched.fetch_model`), else `None`.
    """

    path: Path
    model_file: Path
    format: str
    keras_version: str | None = None
    saved_at: str | None = None
    model_class: str | None = None
    layer_count: int | None = None
    lambda_layers: list[str] = field(default_factory=list)
    custom_objects: list[ObjectRef] = field(default_factory=list)
    foreign_functions: list[ObjectRef] = field(default_factory=list)
    dangerous_references: list[ObjectRef] = field(default_factory=list)
    keras_internals: list[ObjectRef] = field(default_factory=list)
    code_loading_layers: list[str] = field(default_factory=list)
    external_files: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    signatures: dict[str, dict[str, Any]] = field(default_factory=dict)
    risky_ops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None
    source: str | None = None

    @property
    def shown(self) -> str:
        """What to call the file in a page or a report: its URL when fetched, else its path."""
        return self.source or str(self.model_file)

    @property
    def runs_code(self) -> bool:
        """Whether loading the model would run code stored in the file."""
        return bool(
            self.lambda_layers or self.foreign_functions or self.code_loading_layers
            or self.dangerous_references or self.keras_internals or self.external_files
            or self.format == "savedmodel"
        )

    def findings(self) -> list[str]:
        """Plain-language findings for the model card, most important first."""
        out: list[str] = []
        if self.dangerous_references:
            out.append("References modules that run commands or code: "
                       f"{_refs(self.dangerous_references)}.")
        if self.keras_internals:
            out.append("References Keras functions that are not model parts (layers, "
                       f"activations, losses...): {_refs(self.keras_internals)}.")
        if self.risky_ops:
            out.append(f"Graph ops that touch files or run Python: {', '.join(self.risky_ops)}.")
        if self.external_files:
            out.append(f"Reads files outside the model: {'; '.join(self.external_files)}.")
        if self.lambda_layers:
            out.append(f"Lambda layers hold Python code: {', '.join(self.lambda_layers)}.")
        if self.foreign_functions:
            names = ", ".join(sorted({r.qualified for r in self.foreign_functions}))
            out.append(f"References functions outside Keras: {names}.")
        if self.code_loading_layers:
            out.append(f"Layers that load other models: {', '.join(self.code_loading_layers)}.")
        if self.custom_objects:
            names = ", ".join(sorted({r.qualified for r in self.custom_objects}))
            out.append(f"Custom classes (their code is not in the file): {names}.")
        out.extend(self.notes)
        if not out:
            out.append("No Lambda layers, custom classes or foreign references.")
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no config)."""
        return {
            "path": str(self.path),
            "model_file": str(self.model_file),
            "source": self.source,
            "format": self.format,
            "keras_version": self.keras_version,
            "saved_at": self.saved_at,
            "model_class": self.model_class,
            "layer_count": self.layer_count,
            "lambda_layers": self.lambda_layers,
            "custom_objects": sorted({r.qualified for r in self.custom_objects}),
            "foreign_functions": sorted({r.qualified for r in self.foreign_functions}),
            "dangerous_references": sorted({r.dotted for r in self.dangerous_references}),
            "keras_internals": sorted({r.dotted for r in self.keras_internals}),
            "code_loading_layers": self.code_loading_layers,
            "external_files": self.external_files,
            "members": self.members,
            "signatures": self.signatures,
            "risky_ops": self.risky_ops,
            "findings": self.findings(),
        }


def _refs(refs: list[ObjectRef]) -> str:
    """`os.system (in d1), ...`: each name once, with the first place it is used."""
    first: dict[str, str] = {}
    for r in refs:
        first.setdefault(r.dotted, r.where)
    return ", ".join(f"{name} (in {where})" for name, where in first.items())


def resolve_model_path(path: str | Path) -> tuple[Path, Path, str]:
    """Find the model inside `path` and its format, refusing anything not local.

    Args:
        path: a `.keras` or `.h5`/`.hdf5` file, a SavedModel directory, or a directory
            holding exactly one of those.

    Returns:
        `(resolved_path, model_file, format)` with format `"keras"`, `"h5"` or `"savedmodel"`.

    Raises:
        UnsupportedModelError: a URL, a weights-only file, or an unknown extension.
        ModelLoadError: the path does not exist or the directory holds no model.
        UsageError: the directory holds several models.
    """
    text = str(path)
    if is_remote(text):
        # The static reader (and the sandbox child that runs it) reads local files only:
        # `insight.load_model` and the app fetch a remote model into the cache first.
        raise UnsupportedModelError(
            "The preflight reads local files only: a remote model is fetched into insight's "
            "cache first.",
            "Use insight.load_model(URL) or the CLI (they fetch it), or "
            "insight.model.fetched.fetch_model(URL) and preflight the local copy.",
            f"path={redacted(text)!r}",
        )
    if _URL.match(text) or text.startswith("hf:"):
        raise UnsupportedModelError(
            "insight opens local files and s3:// or gs:// URLs only; Keras would download "
            "this path itself.",
            "Download the file yourself, check where it comes from, and pass the local path.",
            f"path={redacted(text)!r}",
        )
    if not text.strip():
        raise UsageError("No model path given.", "Pass a .keras, .h5 or SavedModel path.",
                         f"path={text!r}")
    p = Path(text).expanduser().resolve()
    if not p.exists():
        raise ModelLoadError(
            "The model path does not exist.",
            "Check the spelling and the working directory.",
            f"path={text!r}",
        )
    if p.is_dir():
        if (p / "saved_model.pb").is_file():
            return p, p, "savedmodel"
        found = sorted(
            c for c in p.iterdir()
            if c.is_file() and c.suffix.lower() in MODEL_SUFFIXES
            and not c.name.lower().endswith(".weights.h5")
        )
        if not found:
            listing = ", ".join(sorted(c.name for c in p.iterdir())[:8]) or "nothing"
            hint = ""
            if (p / "config.json").is_file():
                hint = " An unzipped .keras folder is not supported: zip it back or save again."
            raise ModelLoadError(
                "The directory holds no model: no saved_model.pb and no .keras, .h5 or "
                f".hdf5 file (it holds {listing}).",
                "Pass the model file itself, or a SavedModel directory." + hint,
                f"path={text!r}",
            )
        if len(found) > 1:
            raise UsageError(
                f"The directory holds {len(found)} models: "
                f"{', '.join(c.name for c in found)}.",
                "Pass the one you want.",
                f"path={text!r}",
            )
        return p, found[0], _format_of(found[0], text)
    return p, p, _format_of(p, text)


def _format_of(file: Path, text: str) -> str:
    name = file.name.lower()
    if name.endswith(".weights.h5"):
        raise UnsupportedModelError(
            "This is a weights-only file: it holds no architecture to build the model from.",
            "Pass the full model saved with model.save('model.keras').",
            f"path={text!r}",
        )
    if name.endswith(".keras"):
        return "keras"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    raise UnsupportedModelError(
        "Unsupported model format: insight reads .keras files, legacy .h5/.hdf5 full models "
        "and TF SavedModel directories.",
        "Save the model with model.save('model.keras').",
        f"path={text!r}",
    )


def preflight(path: str | Path) -> Preflight:
    """Inspect a model file as data, without deserializing anything.

    Args:
        path: see `resolve_model_path`.

    Returns:
        A `Preflight` report.

    Raises:
        ModelLoadError: the file is empty, truncated, not a zip/HDF5 file, its config is
            not JSON; or a file no Keras save writes (see `files.check_archive`, a config
            deeper than `MAX_CONFIG_DEPTH`, a dimension over `MAX_DIMENSION`);
            `UnsupportedModelError` for a weights-only file or a URL.
    """
    resolved, model_file, fmt = resolve_model_path(path)
    report = Preflight(path=resolved, model_file=model_file, format=fmt,
                       source=fetched_from(resolved))
    if fmt == "savedmodel":
        saved = read_savedmodel(model_file, str(path))
        report.members = saved.members
        report.signatures = saved.signatures
        report.risky_ops = saved.risky_ops
        report.lambda_layers = [f"keras_metadata.pb: {n}" for n in saved.lambda_layers]
        report.external_files = [f"symlink {link}" for link in saved.links]
        report.model_class = "SavedModel"
        report.notes.extend(saved.notes)
        return report
    size = model_file.stat().st_size
    if size == 0:
        raise ModelLoadError(
            "The model file is empty (0 bytes).",
            "The save or the copy did not finish: save or download it again.",
            f"path={str(path)!r}",
        )
    read = read_keras_archive if fmt == "keras" else read_h5_model
    stored = read(model_file, str(path))
    report.config = stored.config
    report.members = stored.members
    report.keras_version = stored.keras_version
    report.saved_at = stored.saved_at
    report.notes.extend(stored.notes)
    scan = scan_config(stored.config, str(path))
    if scan.oversized:
        raise ModelLoadError(
            f"The model config declares a dimension over {MAX_DIMENSION:,} "
            f"({'; '.join(scan.oversized[:3])}): a weight that large cannot be inspected "
            "(a crafted file meant to exhaust memory, or a model far beyond insight's scope).",
            "Check where the file comes from; insight does not load it.",
            f"path={str(path)!r}",
        )
    report.model_class = scan.model_class
    report.layer_count = scan.layer_count
    report.lambda_layers = scan.lambda_layers
    report.custom_objects = scan.custom_objects
    report.foreign_functions = scan.foreign_functions
    report.dangerous_references = scan.dangerous_references
    report.keras_internals = scan.keras_internals
    report.code_loading_layers = scan.code_loading_layers
    report.external_files = stored.external_links + scan.file_references
    return report
