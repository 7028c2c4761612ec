"""Fuzzing the preflight with Hypothesis: random and mutated archives, configs, HDF5 files and
SavedModel protobufs. Whatever the bytes, `preflight()` returns a report or raises one of
insight's own errors, within a deadline: never a `RecursionError`, a `zipfile` or `h5py`
exception, a `KeyError` or a hang.

A short bounded pass here (a few seconds); `benchmarks/fuzz_preflight.py` runs the same
properties with thousands of examples.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insight.errors import InsightError
from insight.model.config_scan import scan_config
from insight.model.preflight import Preflight, preflight

# The short pass of the suite; benchmarks/fuzz_preflight.py sets these for a long random one.
FUZZ = settings(max_examples=int(os.environ.get("INSIGHT_FUZZ_EXAMPLES", "40")),
                deadline=int(os.environ.get("INSIGHT_FUZZ_DEADLINE_MS", "3000")),
                derandomize=not os.environ.get("INSIGHT_FUZZ_RANDOM"), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_KEYS = ["class_name", "module", "config", "registered_name", "layers", "inbound_nodes",
         "name", "units", "batch_shape", "function", "activation", "args", "kwargs",
         "vocabulary", "value", "code"]
_STRINGS = ["Lambda", "__lambda__", "function", "Dense", "Sequential", "Functional",
            "TFSMLayer", "StringLookup", "os", "system", "builtins", "eval", "keras.layers",
            "keras.config", "enable_unsafe_deserialization", "os>system", "a>b", "",
            "__keras_tensor__", "keras.src.ops.numpy", "subprocess.Popen", "/etc/passwd"]
_SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(_STRINGS)
            | st.text(max_size=8))
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=40)


_SCRATCH: list[Path] = []


def _scratch() -> Path:
    """One scratch folder for the whole run (each example overwrites its files)."""
    if not _SCRATCH:
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="insight_fuzz_")))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return _SCRATCH[0]


def check(path: Path) -> Preflight | None:
    """Preflight `path`: a report or an InsightError, nothing else (re-raised as is)."""
    try:
        return preflight(path)
    except InsightError:
        return None


def _archive(config_bytes: bytes, extra: list[tuple[zipfile.ZipInfo, bytes]] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", config_bytes)
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


_VALID = _archive(json.dumps({"module": "keras", "class_name": "Functional", "config": {
    "name": "m", "layers": [{"module": "keras.layers", "class_name": "Dense", "name": "d",
                             "config": {"name": "d", "units": 2}, "inbound_nodes": []}]}}
                             ).encode())


def _write(data: bytes, suffix: str = ".keras") -> Path:
    path = _scratch() / f"fuzz{suffix}"
    path.write_bytes(data)
    return path


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from([".keras", ".h5"]))
def test_random_bytes(data, suffix):
    check(_write(data, suffix))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)),
                min_size=1, max_size=12),
       st.integers(0, len(_VALID)))
def test_mutated_archive(flips, cut):
    data = bytearray(_VALID)
    for pos, value in flips:
        data[pos] = value
    check(_write(bytes(data[:max(cut, 22)])))


@FUZZ
@given(JSON_VALUES)
def test_random_config_json(config):
    text = json.dumps(config, allow_nan=True).encode()
    report = check(_write(_archive(text)))
    if isinstance(config, dict):
        scan_config(config)  # the walk itself never fails on a dict (only refuses depth)
    assert report is None or report.format == "keras"


@pytest.mark.filterwarnings("ignore:Duplicate name")
@FUZZ
@given(st.lists(st.tuples(
    st.text(st.sampled_from("ab./\\:.."), min_size=1, max_size=12),
    st.integers(0, 0xFFFF), st.sampled_from([0, 3]), st.binary(max_size=64)), max_size=6))
def test_random_zip_directory(members):
    extra = []
    for name, mode, system, data in members:
        info = zipfile.ZipInfo(name)
        info.create_system = system
        info.external_attr = mode << 16
        extra.append((info, data))
    report = check(_write(_archive(b'{"class_name": "Sequential", "config": {}}', extra)))
    names = [info.filename for info, _ in extra]
    links = [i for i, _ in extra if i.create_system == 3 and stat.S_ISLNK(i.external_attr >> 16)]
    if report is not None:  # accepted: nothing hostile was in the directory
        assert not links
        assert not any(n.startswith(("/", "\\")) or ".." in n.replace("\\", "/").split("/")
                       for n in names)


@FUZZ
@given(st.binary(max_size=2048), st.lists(st.tuples(st.integers(0, 4095),
                                                    st.integers(0, 255)), max_size=8))
def test_random_savedmodel(data, flips):
    directory = _scratch() / "saved"
    directory.mkdir(exist_ok=True)
    base = bytearray(_SAVEDMODEL_PB() + data)
    for pos, value in flips:
        if pos < len(base):
            base[pos] = value
    (directory / "saved_model.pb").write_bytes(bytes(base))
    (directory / "keras_metadata.pb").write_bytes(data)
    report = check(directory)
    assert report is None or report.format == "savedmodel"


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 8191), st.integers(0, 255)), min_size=1,
                max_size=6))
def test_mutated_h5(flips):
    data = bytearray(_H5())
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    check(_write(bytes(data), ".h5"))


_CACHE: dict[str, bytes] = {}


def _SAVEDMODEL_PB() -> bytes:  # noqa: N802  a lazily built constant
    """A small valid SavedModel proto: one MetaGraphDef (field 2) with a WriteFile node."""
    if "pb" not in _CACHE:
        from tensorboard.compat.proto import meta_graph_pb2

        mg = meta_graph_pb2.MetaGraphDef()
        mg.graph_def.node.add(name="w", op="WriteFile")
        fn = mg.graph_def.library.function.add()
        fn.signature.name = "f"
        fn.node_def.add(name="r", op="ReadFile")
        body = mg.SerializeToString()
        _CACHE["pb"] = b"\x08\x01" + b"\x12" + _varint(len(body)) + body
    return _CACHE["pb"]


def _H5() -> bytes:  # noqa: N802
    """A small legacy .h5 model file with an external link."""
    if "h5" not in _CACHE:
        import h5py

        path = _scratch() / "seed.h5"
        with h5py.File(path, "w") as f:
            f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {
                "layers": [{"class_name": "Dense", "config": {"name": "d", "units": 2}}]}})
            f.attrs["keras_version"] = "2.15.0"
            f.create_group("model_weights")["x"] = h5py.ExternalLink("other.h5", "/")
        _CACHE["h5"] = path.read_bytes()
    return _CACHE["h5"]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_seeds_are_what_they_claim():
    """The fuzzers start from files that pass and that report what they hold."""
    assert check(_write(_VALID)).layer_count == 1
    directory = _scratch() / "seed_saved"
    directory.mkdir(exist_ok=True)
    (directory / "saved_model.pb").write_bytes(_SAVEDMODEL_PB())
    assert check(directory).risky_ops == ["ReadFile", "WriteFile"]
    assert check(_write(_H5(), ".h5")).external_files == [
        "model_weights/x -> other.h5:/ (external link)"]
