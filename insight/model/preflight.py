"""Static inspection of a model file before anything in it is deserialized.

`preflight(path)` reads a `.keras` archive, a legacy `.h5` file or a SavedModel directory as
*data*: zip members, JSON configs and HDF5 attributes, the SavedModel protobuf. No Keras
object is built and no code from the file runs, so it is safe on files from strangers and fast
(it does not import TensorFlow). It reports what the loader then enforces: Lambda layers,
custom or registered classes, references to modules outside Keras, and the true cause of a
damaged file (Keras reports a truncated `.keras` as "File not found").

Example:

>>> from insight.model.preflight import preflight
>>> report = preflight("sample_models/digits_cnn/model.keras")  # doctest: +SKIP
>>> report.format, report.keras_version, report.lambda_layers
('keras', '3.15.1', [])
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insight.errors import ModelLoadError, UnsupportedModelError, UsageError

__all__ = ["ObjectRef", "Preflight", "preflight", "resolve_model_path"]

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Keras' own serialization markers, not classes.
_MARKERS = {
    "__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__typespec__", "__tuple__",
    "__ellipsis__", "__slice__", "__list__", "__dict__", "__dtype__",
}
# Classes that load code or files from elsewhere even in safe mode.
_CODE_LOADING_CLASSES = {"TFSMLayer"}
# SavedModel ops that touch the file system or run Python.
_RISKY_OPS = {
    "ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "ImmutableConst", "DeleteFile", "CreateSummaryFileWriter", "PrintV2", "Print",
}
_ZIP_MAX_UNCOMPRESSED = 4 * 1024**3


@dataclass(frozen=True)
class ObjectRef:
    """One class or function the model config refers to.

    Attributes:
        where: the layer it belongs to (a path such as `"backbone/conv1"`).
        class_name: the config's `class_name`.
        module: the config's `module`, or `None` (legacy `.h5` files have none).
        registered_name: e.g. `"my_package>Scale"` for a registered custom class.
    """

    where: str
    class_name: str
    module: str | None = None
    registered_name: str | None = None

    @property
    def qualified(self) -> str:
        """The name a user would search their code for."""
        if self.registered_name and ">" in self.registered_name:
            return self.registered_name
        if self.module and not _is_keras_module(self.module):
            return f"{self.module}.{self.class_name}"
        return self.class_name


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
        code_loading_layers: layers that load code from elsewhere (`TFSMLayer`).
        members: archive members, HDF5 top-level keys, or SavedModel files.
        signatures: SavedModel signature names with their inputs and outputs.
        risky_ops: SavedModel ops that read or write files or run Python.
        notes: further findings in plain words.
        config: the parsed model config (`None` for SavedModels).
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
    code_loading_layers: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    signatures: dict[str, dict[str, Any]] = field(default_factory=dict)
    risky_ops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None

    @property
    def runs_code(self) -> bool:
        """Whether loading the model would run code stored in the file."""
        return bool(
            self.lambda_layers or self.foreign_functions or self.code_loading_layers
            or self.format == "savedmodel"
        )

    def findings(self) -> list[str]:
        """Plain-language findings for the model card, most important first."""
        out: list[str] = []
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
        if self.risky_ops:
            out.append(f"Graph ops that touch files or run Python: {', '.join(self.risky_ops)}.")
        out.extend(self.notes)
        if not out:
            out.append("No Lambda layers, custom classes or foreign references.")
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no config)."""
        return {
            "path": str(self.path),
            "model_file": str(self.model_file),
            "format": self.format,
            "keras_version": self.keras_version,
            "saved_at": self.saved_at,
            "model_class": self.model_class,
            "layer_count": self.layer_count,
            "lambda_layers": self.lambda_layers,
            "custom_objects": sorted({r.qualified for r in self.custom_objects}),
            "foreign_functions": sorted({r.qualified for r in self.foreign_functions}),
            "code_loading_layers": self.code_loading_layers,
            "members": self.members,
            "signatures": self.signatures,
            "risky_ops": self.risky_ops,
            "findings": self.findings(),
        }


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
    if _URL.match(text) or text.startswith("hf:"):
        raise UnsupportedModelError(
            "insight opens local files only; Keras would download this path.",
            "Download the file yourself, check where it comes from, and pass the local path.",
            f"path={text!r}",
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
        ModelLoadError: the file is empty, truncated, not a zip/HDF5 file, or its config is
            not JSON; `UnsupportedModelError` for a weights-only file or a URL.
    """
    resolved, model_file, fmt = resolve_model_path(path)
    report = Preflight(path=resolved, model_file=model_file, format=fmt)
    if fmt == "savedmodel":
        _inspect_savedmodel(report, str(path))
        return report
    size = model_file.stat().st_size
    if size == 0:
        raise ModelLoadError(
            "The model file is empty (0 bytes).",
            "The save or the copy did not finish: save or download it again.",
            f"path={str(path)!r}",
        )
    if fmt == "keras":
        _inspect_keras(report, str(path))
    else:
        _inspect_h5(report, str(path))
    if report.config is not None:
        _scan_config(report, report.config)
    return report


def _inspect_keras(report: Preflight, shown: str) -> None:
    file = report.model_file
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
            report.members = [i.filename for i in infos]
            if "config.json" not in report.members:
                raise ModelLoadError(
                    "The zip archive is not a Keras v3 model: it has no config.json "
                    f"(members: {', '.join(report.members[:8]) or 'none'}).",
                    "Save the model with model.save('model.keras').",
                    f"path={shown!r}",
                )
            unsafe_names = [n for n in report.members if n.startswith("/") or ".." in n]
            if unsafe_names:
                report.notes.append(
                    f"Archive members with unsafe paths: {', '.join(unsafe_names)}.")
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
    report.config = _parse_json(raw_config, "config.json", shown)
    if isinstance(meta, dict):
        report.keras_version = meta.get("keras_version")
        report.saved_at = meta.get("date_saved")
    if "model.weights.h5" not in report.members and "model.weights.npz" not in report.members:
        report.notes.append("The archive holds no weights file: the model will load untrained.")


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


def _inspect_h5(report: Preflight, shown: str) -> None:
    import h5py

    file = report.model_file
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
            report.members = sorted(f.keys())
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
    report.config = _parse_json(_text(raw), "model_config attribute", shown)
    report.keras_version = _text(attrs["keras_version"]) if "keras_version" in attrs else None
    report.notes.append("Legacy HDF5 format: loaded through Keras' legacy path.")


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _inspect_savedmodel(report: Preflight, shown: str) -> None:
    from tensorboard.compat.proto import meta_graph_pb2

    report.members = sorted(
        str(p.relative_to(report.model_file)) for p in report.model_file.rglob("*") if p.is_file()
    )[:50]
    try:
        raw = (report.model_file / "saved_model.pb").read_bytes()
        meta_graphs = [meta_graph_pb2.MetaGraphDef.FromString(b) for b in _saved_model_graphs(raw)]
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ModelLoadError(
            f"saved_model.pb cannot be parsed: {exc}.",
            "The SavedModel is damaged: export it again.",
            f"path={shown!r}",
        ) from exc
    ops: set[str] = set()
    for mg in meta_graphs:
        ops.update(n.op for n in mg.graph_def.node)
        for fn in mg.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
        for name, sig in mg.signature_def.items():
            if name.startswith("__"):
                continue
            report.signatures[name] = {
                "inputs": {k: _tensor_info(v) for k, v in sig.inputs.items()},
                "outputs": {k: _tensor_info(v) for k, v in sig.outputs.items()},
            }
        if mg.meta_info_def.tensorflow_version:
            report.notes.append(
                f"Exported with TensorFlow {mg.meta_info_def.tensorflow_version}.")
    report.risky_ops = sorted(ops & _RISKY_OPS)
    report.model_class = "SavedModel"
    report.notes.append(
        "A SavedModel is a TensorFlow program, not a Keras config: its layers are gone, so "
        "insight can run it (inference) but not look inside it.")


def _saved_model_graphs(raw: bytes) -> list[bytes]:
    """The serialized MetaGraphDefs of a SavedModel proto (field 2), read from the wire format.

    tensorboard ships the MetaGraphDef proto but not the two-field SavedModel wrapper, and
    importing TensorFlow's copy would cost seconds.
    """
    out, pos = [], 0
    while pos < len(raw):
        key, pos = _varint(raw, pos)
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(raw, pos)
        elif wire == 2:
            size, pos = _varint(raw, pos)
            if pos + size > len(raw):
                raise ValueError("truncated field")
            if field_no == 2:
                out.append(raw[pos:pos + size])
            pos += size
        else:
            raise ValueError(f"unexpected wire type {wire}")
    if not out:
        raise ValueError("no meta graph in the file")
    return out


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(raw):
            raise ValueError("truncated varint")
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _tensor_info(info: Any) -> dict[str, Any]:
    from tensorboard.compat.proto import types_pb2

    dims = None
    if not info.tensor_shape.unknown_rank:
        dims = [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]
    name = types_pb2.DataType.Name(info.dtype).replace("DT_", "").lower()
    return {"dtype": _DTYPES.get(name, name), "shape": dims}


_DTYPES = {"float": "float32", "double": "float64", "half": "float16"}


def _is_keras_module(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def _scan_config(report: Preflight, config: dict[str, Any]) -> None:
    report.model_class = config.get("class_name")
    counter = [0]
    saw_layers = _walk(config, "", report, counter)
    report.layer_count = counter[0] if saw_layers else None


def _walk(node: Any, where: str, report: Preflight, counter: list[int]) -> bool:
    """Visit every object reference in a config; returns whether a layer list was seen."""
    saw_layers = False
    if isinstance(node, list):
        for item in node:
            saw_layers |= _walk(item, where, report, counter)
        return saw_layers
    if not isinstance(node, dict):
        return False
    class_name = node.get("class_name")
    if isinstance(class_name, str):
        _classify(node, class_name, where, report)
    for key, value in node.items():
        if key == "layers" and isinstance(value, list):
            saw_layers = True
            for layer in value:
                if not isinstance(layer, dict):
                    continue
                counter[0] += 1
                name = layer.get("name") or (layer.get("config") or {}).get("name") or "?"
                saw_layers |= _walk(layer, f"{where}/{name}" if where else str(name),
                                    report, counter)
        elif key != "inbound_nodes":
            saw_layers |= _walk(value, where, report, counter)
    return saw_layers


def _classify(node: dict[str, Any], class_name: str, where: str, report: Preflight) -> None:
    if class_name in _MARKERS:
        return
    module = node.get("module")
    registered = node.get("registered_name")
    ref = ObjectRef(where or "(model)", class_name, module, registered)
    if class_name == "Lambda":
        report.lambda_layers.append(where or "(model)")
        return
    if class_name == "__lambda__":  # a Python lambda anywhere: an activation, a loss, ...
        if (where or "(model)") not in report.lambda_layers:
            report.lambda_layers.append(where or "(model)")
        return
    if class_name in _CODE_LOADING_CLASSES:
        report.code_loading_layers.append(where or "(model)")
        return
    if isinstance(module, str) and not _is_keras_module(module):
        if class_name == "function":
            report.foreign_functions.append(
                ObjectRef(where or "(model)", str(node.get("config")), module, registered))
        else:
            report.custom_objects.append(ref)
        return
    if (isinstance(registered, str) and ">" in registered) or ">" in class_name:
        report.custom_objects.append(ref)
        return
    if module is None and "module" in node and registered not in (None, class_name):
        report.custom_objects.append(ref)
