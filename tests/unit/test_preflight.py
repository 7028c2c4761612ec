"""The static preflight: reads model files as data, without TensorFlow."""

from __future__ import annotations

import json
import re

import pytest

from insight.model.preflight import ObjectRef, Preflight, preflight, resolve_model_path

VERSION = re.compile(r"^\d+\.\d+\.\d+")

NO_TF_SCRIPT = """
import json, sys
import insight.model.preflight
reports = {path: insight.model.preflight.preflight(path).to_dict() for path in sys.argv[1:]}
import insight
assert insight.preflight is insight.model.preflight.preflight
heavy = sorted(m for m in ("tensorflow", "keras", "streamlit") if m in sys.modules)
print(json.dumps({"heavy": heavy, "reports": reports}))
"""


def test_preflight_does_not_import_tensorflow(run_python, sample_path, model_files):
    paths = [str(sample_path("digits_cnn")), str(sample_path("digits_cnn_h5")),
             str(sample_path("subclassed")), str(model_files.lambda_keras),
             str(model_files.savedmodel)]
    proc = run_python("-c", NO_TF_SCRIPT, *paths, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["heavy"] == []
    reports = result["reports"]
    assert [reports[p]["format"] for p in paths] == ["keras", "h5", "keras", "keras",
                                                   "savedmodel"]
    assert VERSION.match(reports[paths[0]]["keras_version"])
    assert reports[paths[3]]["lambda_layers"] == ["double"]
    assert reports[paths[2]]["custom_objects"] == ["insight_samples>DigitsMLP"]


def test_sample_reports(sample_name, sample_models, sample_path):
    _, fmt, _ = sample_models[sample_name]
    report = preflight(sample_path(sample_name))
    assert isinstance(report, Preflight)
    assert report.format == fmt
    assert report.path == sample_path(sample_name).resolve()
    assert report.model_file == sample_path(sample_name).resolve()
    assert VERSION.match(report.keras_version)
    assert report.lambda_layers == []
    assert report.foreign_functions == []
    assert report.code_loading_layers == []
    assert not report.runs_code
    assert report.config is not None
    assert report.members
    if fmt == "keras":
        assert report.saved_at
        assert {"config.json", "metadata.json", "model.weights.h5"} <= set(report.members)
    json.dumps(report.to_dict())


def test_model_class_and_layer_count(sample_path):
    assert preflight(sample_path("digits_cnn")).model_class == "Sequential"
    assert preflight(sample_path("multi_io")).model_class == "Functional"
    sub = preflight(sample_path("subclassed"))
    assert sub.model_class == "DigitsMLP"
    assert sub.layer_count is None  # a subclassed config does not list layers
    assert preflight(sample_path("multi_io")).layer_count == 10
    # nested: the backbone's layers count too
    assert preflight(sample_path("nested")).layer_count > 4


def test_keras_version_of_fresh_files(model_files):
    import keras

    assert preflight(model_files.tiny_keras).keras_version == keras.__version__
    assert preflight(model_files.tiny_h5).keras_version == keras.__version__
    assert preflight(model_files.tiny_h5).saved_at is None


@pytest.mark.parametrize("attr", ["lambda_keras", "lambda_h5"])
def test_reports_lambda_layers(model_files, attr):
    report = preflight(getattr(model_files, attr))
    assert report.lambda_layers == ["double"]
    assert report.runs_code
    assert report.findings()[0] == "Lambda layers hold Python code: double."
    assert report.to_dict()["lambda_layers"] == ["double"]


def test_reports_lambda_inside_nested_model_with_its_path(model_files):
    report = preflight(model_files.nested_lambda_keras)
    assert report.lambda_layers == ["inner/plus_one"]
    assert report.runs_code


def test_reports_python_lambda_function_as_code(model_files):
    """A marshalled `__lambda__` (here a Dense activation) is bytecode that runs on load."""
    report = preflight(model_files.lambda_fn_keras)
    assert report.runs_code
    assert any("d1" in line for line in report.findings())


def test_reports_custom_objects(sample_path, fresh_custom):
    sub = preflight(sample_path("subclassed"))
    assert sub.custom_objects == [ObjectRef("(model)", "DigitsMLP", sub.custom_objects[0].module,
                                            "insight_samples>DigitsMLP")]
    assert sub.custom_objects[0].qualified == "insight_samples>DigitsMLP"
    assert not sub.runs_code  # a custom class's code is not in the file
    assert "insight_samples>DigitsMLP" in sub.findings()[0]

    fresh = preflight(fresh_custom.registered)
    assert [(r.where, r.qualified) for r in fresh.custom_objects] == [
        ("scale", f"{fresh_custom.package}>FreshScale")]
    unregistered = preflight(fresh_custom.unregistered)
    assert [(r.where, r.qualified) for r in unregistered.custom_objects] == [
        ("shift", f"{fresh_custom.module}.FreshShift")]


def test_reports_foreign_functions(model_files):
    report = preflight(model_files.print_keras)
    assert [(r.where, r.qualified) for r in report.foreign_functions] == [
        ("d1", "builtins.print")]
    assert report.runs_code
    assert report.custom_objects == []
    assert report.to_dict()["foreign_functions"] == ["builtins.print"]


def test_savedmodel_report(model_files):
    report = preflight(model_files.savedmodel)
    assert report.format == "savedmodel"
    assert report.model_class == "SavedModel"
    assert report.config is None
    assert report.runs_code
    assert "saved_model.pb" in report.members
    serve = report.signatures["serve"]
    assert serve["inputs"] == {"x": {"dtype": "float32", "shape": [None, 3]}}
    assert [v["shape"] for v in serve["outputs"].values()] == [[None, 2]]
    assert report.risky_ops == []


def test_clean_file_findings(model_files):
    report = preflight(model_files.tiny_keras)
    assert report.findings() == ["No Lambda layers, custom classes or foreign references."]
    assert report.layer_count == 2


def test_resolve_model_path(model_files):
    resolved, model_file, fmt = resolve_model_path(model_files.dir_one_model)
    assert (resolved, model_file.name, fmt) == (model_files.dir_one_model, "only.keras", "keras")
    assert resolve_model_path(model_files.savedmodel)[2] == "savedmodel"
    assert resolve_model_path(str(model_files.tiny_h5))[2] == "h5"


# --- hostile configs and archives, built by hand (no Keras) ------------------------------

def _dense(name="d1", **config):
    return {"module": "keras.layers", "class_name": "Dense", "name": name,
            "config": {"name": name, "units": 2, **config}, "registered_name": None,
            "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {
                "shape": [None, 3], "dtype": "float32", "keras_history": ["x", 0, 0]}}],
                "kwargs": {}}]}


def _functional(*layers):
    return {"module": "keras", "class_name": "Functional",
            "config": {"name": "m", "layers": list(layers)}, "registered_name": "Functional"}


def _archive(path, config, *extra, infos=()):
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", json.dumps(config))
        for name, data in extra:
            zf.writestr(name, data)
        for info, data in infos:
            zf.writestr(info, data)
    return path


OS_SYSTEM = {"module": "os", "class_name": "function", "config": "system",
             "registered_name": None}


@pytest.mark.parametrize("ref, dotted", [
    (OS_SYSTEM, "os.system"),
    ({"module": "subprocess", "class_name": "Popen", "config": {}}, "subprocess.Popen"),
    ({"module": "builtins", "class_name": "function", "config": "eval"}, "builtins.eval"),
    ({"module": "keras.layers", "class_name": "Dense", "registered_name": "posix>system",
      "config": {}}, "posix>system"),
    ({"class_name": "importlib.import_module", "config": {}}, "importlib.import_module"),
    ({"module": "keras", "class_name": "function", "config": "shutil.rmtree"},
     "keras.shutil.rmtree"),
])
def test_dangerous_references_anywhere(ref, dotted):
    from insight.model.config_scan import scan_config

    for config in (_functional(_dense(activation=ref)),       # an argument
                   _functional(dict(_dense(), **{"inbound_nodes": [  # a call argument
                       {"args": [], "kwargs": {"fn": ref}}]}))):
        scan = scan_config(config)
        assert [r.dotted for r in scan.dangerous_references] == [dotted]


@pytest.mark.parametrize("module, name", [
    ("keras.config", "enable_unsafe_deserialization"), ("keras.utils", "get_file"),
    ("keras.src.saving.saving_lib", "load_model"), ("keras.applications", "MobileNetV2"),
    ("keras.callbacks", "CSVLogger"), ("keras", "function"),
])
def test_keras_outside_its_modelling_api_is_reported(module, name):
    from insight.model.config_scan import scan_config

    ref = ({"module": module, "class_name": "function", "config": name} if name != "CSVLogger"
           else {"module": module, "class_name": name, "config": {}})
    scan = scan_config(_functional(_dense(activation=ref)))
    assert [r.dotted for r in scan.keras_internals] == [f"{module}.{name}"]


def test_keras_modelling_api_and_builtin_losses_are_clean():
    """What real saves hold (MobileNetV2 compiled with a function loss, ops layers, schedules):
    no finding; `builtins.categorical_crossentropy` is how Keras saves its own loss."""
    from insight.model.config_scan import scan_config

    refs = [
        {"module": "keras.src.ops.numpy", "class_name": "Multiply", "config": {}},
        {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay"},
        {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}},
        {"module": "keras.src.models.functional", "class_name": "Functional"},
        {"module": "keras.activations", "class_name": "function", "config": "gelu"},
        {"module": "builtins", "class_name": "function", "config": "categorical_crossentropy"},
    ]
    scan = scan_config(_functional(*[_dense(f"d{i}", activation=r) for i, r in enumerate(refs)]))
    assert (scan.dangerous_references, scan.keras_internals, scan.foreign_functions,
            scan.custom_objects, scan.lambda_layers) == ([], [], [], [], [])
    assert scan.layer_count == len(refs)


def test_lambda_in_call_arguments_is_bytecode():
    from insight.model.config_scan import scan_config

    layer = dict(_dense(), inbound_nodes=[{"args": [], "kwargs": {
        "fn": {"class_name": "__lambda__", "config": {"code": "AAAA"}}}}])
    assert scan_config(_functional(layer)).lambda_layers == ["d1 (call arguments)"]


def test_deep_config_refused_without_recursion_error():
    from insight.errors import ModelLoadError
    from insight.model.config_scan import MAX_CONFIG_DEPTH, scan_config

    node: dict = {}
    for _ in range(50_000):  # far deeper than Python's recursion limit
        node = {"x": node}
    with pytest.raises(ModelLoadError, match=f"more than {MAX_CONFIG_DEPTH} levels"):
        scan_config({"class_name": "Sequential", "config": node}, "m.keras")
    assert scan_config({"config": _nest_ok(40)}).model_class is None


def _nest_ok(depth):
    node: dict = {}
    for _ in range(depth):
        node = {"x": node}
    return node


@pytest.mark.parametrize("value", [10**12, 1e12, float("inf"), float("nan"), [None, 10**9]])
def test_oversized_dimensions_refused(tmp_path, value):
    from insight.errors import ModelLoadError

    key = "batch_shape" if isinstance(value, list) else "units"
    path = _archive(tmp_path / "big.keras", _functional(_dense(**{key: value})))
    with pytest.raises(ModelLoadError, match="dimension over 100,000,000"):
        preflight(path)


def test_vocabulary_path_is_a_file_read(tmp_path):
    lookup = {"module": "keras.layers", "class_name": "StringLookup", "name": "lk",
              "config": {"name": "lk", "vocabulary": "/etc/passwd"}}
    report = preflight(_archive(tmp_path / "v.keras", _functional(lookup)))
    assert report.external_files == ["lk reads the vocabulary file '/etc/passwd'"]
    assert report.runs_code


@pytest.mark.parametrize("member, fragment", [
    ("../../etc/cron.d/job", "leaves the archive"), ("/etc/cron.d/job", "leaves the archive"),
    ("a/../../b", "leaves the archive"), ("C:\\evil", "leaves the archive"),
])
def test_unsafe_member_paths_refused(tmp_path, member, fragment):
    from insight.errors import ModelLoadError

    path = _archive(tmp_path / "t.keras", _functional(_dense()), (member, b"x"))
    with pytest.raises(ModelLoadError, match=fragment):
        preflight(path)


def test_symlink_and_member_count_refused(tmp_path):
    import stat
    import zipfile

    from insight.errors import ModelLoadError

    link = zipfile.ZipInfo("model.weights.h5")
    link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    path = _archive(tmp_path / "l.keras", _functional(_dense()), infos=[(link, "/etc/passwd")])
    with pytest.raises(ModelLoadError, match="symbolic link"):
        preflight(path)
    many = _archive(tmp_path / "m.keras", _functional(_dense()),
                    *[(f"w{i}", b"") for i in range(10_001)])
    with pytest.raises(ModelLoadError, match="10,003 members"):
        preflight(many)


def test_compressible_small_members_are_not_bombs(tmp_path):
    """A config of zeros compresses 1,000:1 too: below 16 MB, ratios are not judged."""
    import zipfile

    path = tmp_path / "zeros.keras"
    config = json.dumps(_functional(_dense(pad=" " * 4_000_000)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", config)
    assert preflight(path).layer_count == 1


def test_h5_external_links_and_datasets(tmp_path):
    import h5py

    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_functional(_dense()))
        g = f.create_group("model_weights")
        g["ext"] = h5py.ExternalLink("/etc/passwd", "/")
        g["soft"] = h5py.SoftLink("/model_weights")  # a loop, not followed
        g["hard"] = g  # a hard-link loop, visited once
        g.create_dataset("raw", shape=(2,), dtype="f4", external=[("/etc/shadow", 0, 8)])
    report = preflight(path)
    assert report.external_files == [
        "model_weights/ext -> /etc/passwd:/ (external link)",
        "model_weights/raw -> /etc/shadow (external dataset)"]
    assert report.runs_code


def test_savedmodel_keras_metadata_lambda(tmp_path, model_files):
    """A Keras 2 export's keras_metadata.pb naming a Lambda (what ModelScan reads)."""
    import shutil

    def field(number, payload):
        size, out = len(payload), bytearray()
        while True:
            out.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
            size >>= 7
            if not size:
                break
        return bytes([number << 3 | 2]) + bytes(out) + payload

    exported = tmp_path / "exported"
    shutil.copytree(model_files.savedmodel, exported)
    layer = json.dumps({"class_name": "Lambda", "name": "evil"}).encode()
    (exported / "keras_metadata.pb").write_bytes(field(1, field(5, layer)))
    report = preflight(exported)
    assert report.lambda_layers == ["keras_metadata.pb: evil"]
    assert "Lambda layers hold Python code: keras_metadata.pb: evil." in report.findings()


def test_new_report_fields_in_dict(tmp_path):
    path = _archive(tmp_path / "d.keras", _functional(_dense(activation=OS_SYSTEM)))
    data = preflight(path).to_dict()
    assert data["dangerous_references"] == ["os.system"]
    assert data["keras_internals"] == [] and data["external_files"] == []
    assert data["findings"][0] == "References modules that run commands or code: os.system " \
                                  "(in d1)."


def test_external_link_inside_the_archive_weights(tmp_path, sample_path):
    """The `.keras` archive's own model.weights.h5 is an HDF5 file too."""
    import zipfile

    import h5py

    weights = tmp_path / "w.h5"
    with zipfile.ZipFile(sample_path("digits_cnn")) as zf:
        weights.write_bytes(zf.read("model.weights.h5"))
    with h5py.File(weights, "r+") as f:
        f["leak"] = h5py.ExternalLink("/etc/passwd", "/")
    path = tmp_path / "linked.keras"
    with zipfile.ZipFile(sample_path("digits_cnn")) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            data = weights.read_bytes() if info.filename == "model.weights.h5" else zin.read(info)
            zout.writestr(info, data)
    report = preflight(path)
    assert report.external_files == ["model.weights.h5: leak -> /etc/passwd:/ (external link)"]
    assert preflight(sample_path("digits_cnn")).external_files == []


def _savedmodel_with_saver(directory, *, serving_calls_saver=False, writefile_in_saver=False):
    """A hand-made SavedModel: TF's saver (`saver_def` -> a node calling `_traced_save`) and a
    serving function, which may call the saver's function itself."""
    from tensorboard.compat.proto import meta_graph_pb2

    mg = meta_graph_pb2.MetaGraphDef()
    mg.saver_def.save_tensor_name = "saver_call:0"
    mg.saver_def.restore_op_name = "saver_call"
    call = mg.graph_def.node.add(name="saver_call", op="StatefulPartitionedCall")
    call.attr["f"].func.name = "__inference__traced_save_1"
    save = mg.graph_def.library.function.add()
    save.signature.name = "__inference__traced_save_1"
    save.node_def.add(name="s", op="SaveV2")
    save.node_def.add(name="m", op="MergeV2Checkpoints")
    if writefile_in_saver:
        save.node_def.add(name="w", op="WriteFile")
    serve = mg.graph_def.library.function.add()
    serve.signature.name = "__inference_serve_2"
    serve.node_def.add(name="mm", op="MatMul")
    if serving_calls_saver:
        inner = serve.node_def.add(name="sneaky", op="PartitionedCall")
        inner.attr["f"].func.name = "__inference__traced_save_1"
    body = mg.SerializeToString()
    size, varint = len(body), bytearray()
    while True:
        varint.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    directory.mkdir()
    (directory / "saved_model.pb").write_bytes(b"\x12" + bytes(varint) + body)
    return directory


def test_savedmodel_checkpoint_ops_only_outside_tf_saver(tmp_path):
    assert preflight(_savedmodel_with_saver(tmp_path / "plain")).risky_ops == []
    assert preflight(_savedmodel_with_saver(tmp_path / "sneaky", serving_calls_saver=True)
                     ).risky_ops == ["MergeV2Checkpoints", "SaveV2"]
    assert preflight(_savedmodel_with_saver(tmp_path / "writes", writefile_in_saver=True)
                     ).risky_ops == ["WriteFile"]
