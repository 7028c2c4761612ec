"""A TF SavedModel directory read as data: its signatures and graph ops, without TensorFlow.

`read_savedmodel(directory)` parses `saved_model.pb` with the `MetaGraphDef` proto that
tensorboard ships, unwrapping the two-field `SavedModel` message by hand (tensorboard does not
ship it, and importing TensorFlow's copy would cost seconds). It lists the signatures with
their inputs and outputs, the ops that read or write files, reach the network or run Python
(ModelScan's `ReadFile`/`WriteFile` and the rest of that family), and the Lambda layers a
Keras 2 export records in `keras_metadata.pb`. Files are read with a size bound and the
directory walk is bounded and does not follow symlinks.

Example:

>>> from insight.model.savedmodel import read_savedmodel
>>> saved = read_savedmodel("exported/")  # doctest: +SKIP
>>> saved.signatures["serving_default"]["inputs"]  # doctest: +SKIP
{'inputs': {'dtype': 'float32', 'shape': [None, 28, 28, 1]}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insight.errors import ModelLoadError

__all__ = ["RISKY_OPS", "SavedModelContents", "read_savedmodel"]

# SavedModel ops that touch the file system or the network, or run Python. ModelScan lists
# ReadFile and WriteFile; the rest do the same through another door (checkpoints, readers,
# datasets, summaries, debug dumps, memory-mapped constants, lookup tables from text files).
RISKY_OPS = frozenset({
    "ReadFile", "WriteFile", "MatchingFiles", "DeleteFile",
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
    "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec",
    "ImmutableConst", "PrintV2", "Print",
    "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
    "DebugNumericSummary", "DebugNumericSummaryV2", "Copy", "CopyHost",
    "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary", "WriteScalarSummary",
    "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
    "WriteRawProtoSummary", "ImportEvent", "FlushSummaryWriter",
    "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2",
    "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "TFRecordReader",
    "TFRecordReaderV2", "LMDBReader", "IdentityReader", "IdentityReaderV2",
    "ReaderReadV2", "ReaderReadUpToV2", "ReaderRestoreStateV2",
    "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset",
    "LMDBDataset", "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset",
    "SaveDataset", "SaveDatasetV2", "LoadDataset", "ExperimentalDatasetToTFRecord",
    "DatasetToTFRecord", "SnapshotDataset", "SnapshotDatasetV2", "DataServiceDataset",
    "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4",
    "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
    "GenerateVocabRemapping", "LoadAndRemapMatrix", "DecodeProtoV2", "EncodeProto",
    "FileSystemSetConfiguration", "Send", "Recv", "_Send", "_Recv", "_HostSend", "_HostRecv",
})
_CHECKPOINT_OPS = frozenset({
    "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
    "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec",
})
MAX_PB_BYTES = 1024**3  # protobuf itself refuses messages over 2 GiB
_MAX_FILES = 10_000
_MAX_METADATA_BYTES = 64 * 1024**2
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
        lambda_layers: Lambda layers recorded in `keras_metadata.pb` (Keras 2 exports).
        links: symlinks inside the directory (`"variables -> /etc"`).
        notes: findings in plain words (the TensorFlow version it was exported with, and
            what insight can and cannot do with a SavedModel).
    """

    members: list[str] = field(default_factory=list)
    signatures: dict[str, dict[str, Any]] = field(default_factory=dict)
    risky_ops: list[str] = field(default_factory=list)
    lambda_layers: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_savedmodel(directory: str | Path, shown: str | None = None) -> SavedModelContents:
    """Read a SavedModel directory's `saved_model.pb` without importing TensorFlow.

    Args:
        directory: the SavedModel directory (it holds `saved_model.pb`).
        shown: the path as the user gave it, for error messages. Defaults to `directory`.

    Returns:
        A `SavedModelContents`.

    Raises:
        ModelLoadError: `saved_model.pb` cannot be read or parsed, or is over
            `MAX_PB_BYTES`.

    Example:

    >>> read_savedmodel("exported/").risky_ops  # doctest: +SKIP
    []
    """
    from tensorboard.compat.proto import meta_graph_pb2

    directory = Path(directory)
    shown = str(directory) if shown is None else shown
    out = SavedModelContents()
    out.members, out.links = _walk_files(directory)
    pb = directory / "saved_model.pb"
    if pb.stat().st_size > MAX_PB_BYTES:
        raise ModelLoadError(
            f"saved_model.pb holds {pb.stat().st_size / 1024**3:.1f} GiB; a graph is megabytes "
            f"(refused over {MAX_PB_BYTES // 1024**3} GiB).",
            "Check where the directory comes from; insight does not load it.",
            f"path={shown!r}",
        )
    try:
        raw = pb.read_bytes()
        meta_graphs = [meta_graph_pb2.MetaGraphDef.FromString(b) for b in _saved_model_graphs(raw)]
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ModelLoadError(
            f"saved_model.pb cannot be parsed: {exc}.",
            "The SavedModel is damaged: export it again.",
            f"path={shown!r}",
        ) from exc
    ops: set[str] = set()
    for mg in meta_graphs:
        ops |= _graph_ops(mg)
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
    out.lambda_layers = _metadata_lambdas(directory / "keras_metadata.pb")
    out.notes.append(
        "A SavedModel is a TensorFlow program, not a Keras config: its layers are gone, so "
        "insight can run it (inference) but not look inside it.")
    return out


def _graph_ops(mg: Any) -> set[str]:
    """The ops of a MetaGraphDef, TensorFlow's own checkpoint saver left out.

    Every export carries `_traced_save`/`_traced_restore` functions (SaveV2, RestoreV2...)
    that the saver (`saver_def`) calls: their checkpoint ops are not reported. They are when
    anything else calls those functions (a model function, a signature's tensors), and any
    other risky op in them always is.
    """
    graph = mg.graph_def
    saver = mg.saver_def
    saver_nodes = {t.split(":")[0].lstrip("^") for t in (saver.save_tensor_name,
                                                         saver.restore_op_name) if t}
    saver_fns = {f for n in graph.node if n.name in saver_nodes for f in _called(n)}
    called_inside = {f for fn in graph.library.function for n in fn.node_def
                     for f in _called(n)}
    sig_nodes = {t.name.split(":")[0] for sig in mg.signature_def.values()
                 for t in list(sig.inputs.values()) + list(sig.outputs.values())}
    exempt = set() if sig_nodes & saver_nodes else saver_fns - called_inside
    scope = next(iter(saver_nodes), "").partition("/")[0] + "/"  # TF1 savers: "save/..."
    ops = {n.op for n in graph.node
           if not (n.op in _CHECKPOINT_OPS and scope != "/" and n.name.startswith(scope))}
    for fn in graph.library.function:
        skip = _CHECKPOINT_OPS if fn.signature.name in exempt else frozenset()
        ops.update(n.op for n in fn.node_def if n.op not in skip)
    return ops


def _called(node: Any) -> set[str]:
    """Names of the functions a node calls (its `func` and `list(func)` attributes)."""
    names = set()
    for attr in node.attr.values():
        if attr.func.name:
            names.add(attr.func.name)
        names.update(f.name for f in attr.list.func)
    return names


def _walk_files(directory: Path) -> tuple[list[str], list[str]]:
    """The first 50 files (sorted) and the symlinks of a directory, without following links."""
    files: list[str] = []
    links: list[str] = []
    for root, dirs, names in os.walk(directory):
        base = Path(root)
        for name in dirs + names:
            path = base / name
            if path.is_symlink():
                links.append(f"{path.relative_to(directory)} -> {os.readlink(path)}")
            elif name in names:
                files.append(str(path.relative_to(directory)))
        if len(files) + len(links) > _MAX_FILES:
            break
    return sorted(files)[:50], links[:20]


def _metadata_lambdas(path: Path) -> list[str]:
    """Lambda layers named in a Keras 2 `keras_metadata.pb` (ModelScan reads it too).

    The file is a `SavedMetadata` message: repeated `nodes` (field 1), each a `SavedObject`
    whose `metadata` (field 5) is a layer's JSON; read from the wire format by hand, as
    tensorboard does not ship the proto.
    """
    if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_METADATA_BYTES:
        return []
    found: list[str] = []
    try:
        for node in _fields(path.read_bytes(), 1):
            for meta in _fields(node, 5):
                layer = json.loads(meta)
                if isinstance(layer, dict) and layer.get("class_name") == "Lambda":
                    found.append(str(layer.get("name") or "?"))
    except (ValueError, RecursionError):
        return found
    return found


def _fields(raw: bytes, wanted: int) -> list[bytes]:
    """The length-delimited fields numbered `wanted` of one protobuf message."""
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
            if field_no == wanted:
                out.append(raw[pos:pos + size])
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def _saved_model_graphs(raw: bytes) -> list[bytes]:
    """The serialized MetaGraphDefs of a SavedModel proto (field 2), read from the wire format.

    tensorboard ships the MetaGraphDef proto but not the two-field SavedModel wrapper, and
    importing TensorFlow's copy would cost seconds.
    """
    out = _fields(raw, 2)
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
