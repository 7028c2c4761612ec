"""Every hostile model file is refused, with a message naming what was found, and runs nothing.

The library is checked on the whole corpus (in process: the refusals come from the preflight,
before Keras); the real CLI (`python -m insight.cli summary`, one process each, run side by
side) on a few files of each kind; the app on one file. The corpus fixture asserts at the end
of the session that no payload wrote its marker file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile.models import CASE_NAMES
from insight.errors import ModelLoadError, UnsafeModelError
from insight.model.loading import check_safety, load_model
from insight.model.preflight import preflight

REPO = Path(__file__).resolve().parents[2]


def _case(corpus, name):
    cases, _ = corpus
    return next(c for c in cases if c.name == name)


def test_corpus_is_complete(model_corpus):
    cases, markers = model_corpus
    assert [c.name for c in cases] == list(CASE_NAMES)
    assert all(c.path.exists() and c.kind == "model" and c.expect for c in cases)
    assert all(c.marker is None or c.marker.parent == markers for c in cases)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_library_refuses(model_corpus, name):
    case = _case(model_corpus, name)
    with pytest.raises(ModelLoadError) as info:
        load_model(case.path)
    message = str(info.value)
    for fragment in case.expect:
        assert fragment in message, (fragment, message)
    assert "damaged or need a newer Keras" not in message
    assert case.marker is None or not case.marker.exists()


# One of each kind: bytecode, Keras internals, a hostile archive, a SavedModel (each CLI run
# is a fresh Python: ~2 s; the library test covers every file).
CLI_CASES = ["lambda_nested3", "enable_unsafe_deserialization", "zip_bomb",
             "savedmodel_writefile"]


def test_cli_refuses_without_tensorflow(model_corpus, tmp_path):
    """`insight summary FILE`: exit 2, one `error:` line naming what was found, no traceback,
    fast (the refusal comes before TensorFlow is imported)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHT_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    procs = {}
    start = time.perf_counter()
    for name in CLI_CASES:  # side by side: each is a fresh Python
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "insight.cli", "summary", str(_case(model_corpus, name).path)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        case = _case(model_corpus, name)
        lines = [line for line in err.splitlines() if line.strip()]
        assert proc.returncode == 2, (name, err[-2000:])
        assert out == ""
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, lines)
        for fragment in case.expect:
            assert fragment in lines[0], (name, fragment, lines[0])
        assert not case.marker.exists()
    # Four Pythons on two cores; TensorFlow alone would take ~5 s to import in each.
    assert time.perf_counter() - start < 30


def test_preflight_refusals_do_not_import_tensorflow(run_python, model_corpus):
    cases, _ = model_corpus
    script = (
        "import sys\n"
        "from insight.errors import InsightError\n"
        "from insight.model.loading import load_model\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        load_model(path)\n"
        "    except InsightError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(f'loaded {path}')\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    proc = run_python("-c", script, *[str(c.path) for c in cases], timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"


def test_savedmodel_op_named_even_unsafe(model_corpus):
    """With --unsafe the SavedModel loads (inference only), and its report still names the
    op; loading it does not run the op."""
    case = _case(model_corpus, "savedmodel_writefile")
    report = preflight(case.path)
    assert report.risky_ops == ["WriteFile"]
    check_safety(report, safe_mode=False)  # not refused when the user trusts the file
    loaded = load_model(case.path, safe_mode=False)
    from insight.model.summary import model_summary

    findings = model_summary(loaded)["card"]["findings"]
    assert any("WriteFile" in line for line in findings), findings
    assert not case.marker.exists()


@pytest.mark.parametrize("name, fragment", [
    ("enable_unsafe_deserialization", "keras.config.enable_unsafe_deserialization"),
    ("keras_get_file", "keras.utils.get_file"),
    ("os_system_class", "os.system"),
    ("subprocess_popen_class", "subprocess.Popen"),
])
def test_keras_refusals_name_what_was_found(model_corpus, monkeypatch, name, fragment):
    """Had the preflight missed it (its verdict switched off here: the one blind spot that
    cannot be made for real, since the corpus shows none), Keras' safe mode refuses the file,
    and insight says what Keras refused instead of "the file may be damaged"."""
    import insight.model.loading as loading

    case = _case(model_corpus, name)
    monkeypatch.setattr(loading, "check_safety", lambda *args, **kwargs: None)
    with pytest.raises(ModelLoadError) as info:
        loading.load_model(case.path)
    message = str(info.value)
    assert isinstance(info.value, UnsafeModelError) or "What insight found" in message, message
    assert fragment in message
    assert "damaged or need a newer Keras" not in message
    assert not case.marker.exists()


@pytest.mark.slow
def test_app_shows_refusal_and_keeps_working(model_corpus, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    for var in ("INSIGHT_DATA", "INSIGHT_LOGDIR", "INSIGHT_UNSAFE", "INSIGHT_CUSTOM_OBJECTS",
                "INSIGHT_LOCKED"):
        monkeypatch.delenv(var, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    case = _case(model_corpus, "os_system_in_call_args")
    monkeypatch.setenv("INSIGHT_MODEL", str(case.path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "os.system" in errors and "Received: path=" in errors
    at.selectbox(key="insight_model_choice").set_value("Sample: digits_cnn").run()
    assert not at.exception and not at.error
    assert at.title[0].value == "digits_cnn"
    assert not case.marker.exists()
