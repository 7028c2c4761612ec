"""The package surface, the error tree and the bundled samples."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

import pytest

import insight
from insight.errors import (
    CustomObjectError,
    InsightError,
    ModelLoadError,
    UnsafeModelError,
    UnsupportedModelError,
    UsageError,
)

# every module of the library (scripts that run on import left out: they have no names)
SCRIPTS = {"insight.__main__", "insight.cli.__main__", "insight.ui.entry"}
MODULES = ["insight"] + sorted(
    m.name for m in pkgutil.walk_packages(insight.__path__, "insight.")
    if m.name not in SCRIPTS
    and not m.name.startswith(("insight.sample_models", "insight.app_pages")))
MAX_SAMPLES_BYTES = 10 * 1024 * 1024


def test_import_insight_does_not_import_streamlit(run_python):
    code = ("import json, sys, insight; "
            "print(json.dumps(sorted(m for m in ('streamlit', 'tensorflow') if m in sys.modules)))")
    proc = run_python("-c", code, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "streamlit" not in json.loads(proc.stdout)


@pytest.mark.parametrize("module_name", MODULES)
def test_all_names_exist(module_name):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module_name} has no __all__"
    assert len(names) == len(set(names)), "no duplicates"
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


TOP_LEVEL_PREFLIGHT = """
import sys
import insight
insight.load_model  # imports insight.model.loading, and with it the static inspection module
report = insight.preflight(sys.argv[1])
print(type(report).__name__, report.format)
"""


def test_top_level_preflight_stays_the_function(run_python, sample_path):
    """`insight.preflight` is the function in `__all__`, whatever was used before it.

    The submodule of the same name must not replace it once another module imports it.
    """
    proc = run_python("-c", TOP_LEVEL_PREFLIGHT, str(sample_path("digits_cnn")), timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["Preflight", "keras"]


def test_top_level_api():
    assert isinstance(insight.__version__, str) and insight.__version__
    assert callable(insight.load_model) and callable(insight.model_summary)
    assert "preflight" in dir(insight)
    assert {"load_model", "model_card", "layer_table", "model_summary", "preflight",
            "InsightError"} <= set(insight.__all__)


def test_error_tree():
    for cls in (UnsupportedModelError, UnsafeModelError, CustomObjectError):
        assert issubclass(cls, ModelLoadError)
    assert issubclass(ModelLoadError, InsightError)
    assert issubclass(UsageError, InsightError)
    assert not issubclass(UsageError, ModelLoadError)
    assert issubclass(InsightError, Exception)


def test_error_message_format():
    err = ModelLoadError("The file is empty.", fix="Save it again.", received="path='m.keras'")
    assert str(err) == "The file is empty. Save it again. Received: path='m.keras'"
    assert (err.what, err.fix, err.received) == ("The file is empty.", "Save it again.",
                                                 "path='m.keras'")
    assert str(UsageError("Bad.")) == "Bad."
    assert str(UsageError("Bad.", received="x=1")) == "Bad. Received: x=1"
    unsafe = UnsafeModelError("Code.", "Opt in.", "p", names=("a", "b"))
    assert unsafe.names == ["a", "b"]
    assert CustomObjectError("Missing.").names == []


def test_samples_are_small(samples_dir):
    total = sum(p.stat().st_size for p in samples_dir.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts)
    assert 0 < total < MAX_SAMPLES_BYTES, f"samples take {total / 1024**2:.1f} MB"


def _sample_folders(samples_dir):
    """The sidebar's samples: `sick/` holds the doctor's sick models, opened by path."""
    return sorted(p for p in samples_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")) and p.name != "sick")


def test_each_sample_folder_has_a_one_line_readme(samples_dir, sample_models):
    folders = _sample_folders(samples_dir)
    assert [p.name for p in folders] == sorted(sample_models)
    for folder in folders:
        readme = folder / "README.md"
        assert readme.is_file(), folder.name
        lines = readme.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1, f"{folder.name}/README.md has {len(lines)} lines"
        assert lines[0].strip(), f"{folder.name}/README.md is empty"


def test_every_sample_model_exists(sample_name, sample_path):
    assert sample_path(sample_name).is_file()
    assert sample_path(sample_name).stat().st_size > 0


def test_list_samples(monkeypatch, sample_models):
    from insight.model.samples import DEFAULT_SAMPLE, get_sample, list_samples

    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # importing the samples package
    samples = list_samples()
    assert samples[0].name == DEFAULT_SAMPLE
    assert sorted(s.name for s in samples) == sorted(sample_models)
    for sample in samples:
        # the installed copy of the samples, or this checkout's
        rel = sample_models[sample.name][0]
        assert sample.model.as_posix().endswith(rel) and sample.model.is_file()
        assert sample.description and "\n" not in sample.description
    assert get_sample("subclassed").custom_objects.name == "custom_objects.py"
    assert get_sample("digits_cnn").data is not None
    with pytest.raises(UsageError) as excinfo:
        get_sample("nope")
    assert "digits_cnn" in str(excinfo.value) and "Received:" in str(excinfo.value)


def test_samples_found_from_a_source_checkout_without_the_mapped_package(monkeypatch):
    """`python -m insight.cli` or `streamlit run app.py` from a checkout's root import the
    checkout's `insight/` (first on sys.path), where `insight.sample_models` does not exist
    when the package was installed non-editable."""
    from importlib import resources

    import insight.model.samples as samples
    import insight.shipped as shipped

    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    checkout = Path(__file__).resolve().parents[2]  # this test's own checkout
    monkeypatch.setattr(resources, "files", missing)
    monkeypatch.setattr(shipped, "CHECKOUT", checkout)
    root = samples.sample_root()
    assert root == checkout / "sample_models"
    assert (root / "digits_cnn" / "model.keras").is_file()
    assert (shipped.shipped_folder("app_pages") / "overview.py").is_file()
    monkeypatch.setattr(shipped, "CHECKOUT", checkout / "nowhere")
    with pytest.raises(ModuleNotFoundError):
        shipped.shipped_folder("app_pages")


@pytest.mark.parametrize(("folder", "inside"), [("app_pages", "overview.py"),
                                                ("sample_models", "digits_cnn")])
def test_shipped_folders_are_real_folders(folder, inside):
    """Installed or in a checkout, the folder is a directory Streamlit can run pages from
    (a package without `__init__.py` would come back as a namespace's MultiplexedPath)."""
    from insight.shipped import shipped_folder

    found = shipped_folder(folder)
    assert found.is_dir() and (found / inside).exists()
    assert (Path(__file__).resolve().parents[2] / folder / "__init__.py").is_file()
