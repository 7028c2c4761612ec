"""A TF SavedModel directory read as data: its signatures and graph ops, without TensorFlow.

`read_savedmodel(directory)` parses `saved_model.pb` with the `MetaGraphDef` proto that
tensorboard ships, unwrapping the two-field `SavedModel` message by hand (tensorboard does not
ship it, and importing TensorFlow's copy would cost seconds). It lists the signatures with
their inputs and outputs, and the ops that read or write files or run Python.

Example:

>>> from insight.model.savedmodel import read_savedmodel
>>> saved = read_savedmodel("exported/")  # doctest: +SKIP
>>> saved.signatures["serving_default"]["inputs"]  # doctest: +SKIP
{'inputs': {'dtype': 'float32', 'shape': [None, 28, 28, 1]}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insight.errors import ModelLoadError

__all__ = ["RISKY_OPS", "SavedModelContents", "read_savedmodel"]

# SavedModel ops that touch the file system or run Python.
RISKY_OPS = frozenset({
    "ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "ImmutableConst", "DeleteFile", "CreateSummaryFileWriter", "PrintV2", "Print",
})
_DTYPES = {"float": "float32", "double": "float64", "half": "float16"}


@dataclass
class SavedModelContents:
    """What a SavedModel directory holds.

    Attributes:
        members: the directory's files, relative to it (the first 50, sorted).
        signatures: signature names with their `inputs` and `outputs`, each
            `{name: {"dtype": ..., "shape": [...]}}`; TensorFlow's own (`__saved_model_init_op`)
            left out.
        risky_ops: ops of `RISKY_OPS` found in the graphs and their functions, sorted.
        notes: findings in plain words (the TensorFlow version it was exported with, and
            what insight can and cannot do with a SavedModel).
    """

    members: list[str] = field(default_factory=list)
    signatures: dict[str, dict[str, Any]] = field(default_factory=dict)
    risky_ops: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_savedmodel(directory: str | Path, shown: str | None = None) -> SavedModelContents:
    """Read a SavedModel directory's `saved_model.pb` without importing TensorFlow.

    Args:
        directory: the SavedModel directory (it holds `saved_model.pb`).
        shown: the path as the user gave it, for error messages. Defaults to `directory`.

    Returns:
        A `SavedModelContents`.

    Raises:
        ModelLoadError: `saved_model.pb` cannot be read or parsed.

    Example:

    >>> read_savedmodel("exported/").risky_ops  # doctest: +SKIP
    []
    """
    from tensorboard.compat.proto import meta_graph_pb2

    directory = Path(directory)
    shown = str(directory) if shown is None else shown
    out = SavedModelContents()
    out.members = sorted(
        str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()
    )[:50]
    try:
        raw = (directory / "saved_model.pb").read_bytes()
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
            out.signatures[name] = {
                "inputs": {k: _tensor_info(v) for k, v in sig.inputs.items()},
                "outputs": {k: _tensor_info(v) for k, v in sig.outputs.items()},
            }
        if mg.meta_info_def.tensorflow_version:
            out.notes.append(f"Exported with TensorFlow {mg.meta_info_def.tensorflow_version}.")
    out.risky_ops = sorted(ops & RISKY_OPS)
    out.notes.append(
        "A SavedModel is a TensorFlow program, not a Keras config: its layers are gone, so "
        "insight can run it (inference) but not look inside it.")
    return out


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
