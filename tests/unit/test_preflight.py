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
