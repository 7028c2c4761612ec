"""Process-level adjustments of the app (insight/ui/runtime.py)."""

from __future__ import annotations

import subprocess
import sys

from streamlit.runtime.scriptrunner import script_runner

from insight.ui.runtime import keep_keras_session, streamlit_hook


def test_streamlit_no_longer_resets_keras_after_each_run(monkeypatch):
    import keras

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(1))
    assert keep_keras_session() is True
    streamlit_hook()()
    assert calls == [1]  # Streamlit's own hook: clear_session (and a gc.collect) per rerun
    script_runner._clean_problem_modules()  # insight's replacement, run after each script run
    assert calls == [1]


def test_defaults_switch_keeps_streamlit_behaviour(monkeypatch):
    monkeypatch.setenv("INSIGHT_STREAMLIT_DEFAULTS", "1")
    monkeypatch.setattr(script_runner, "_clean_problem_modules",
                        script_runner._clean_problem_modules)
    before = script_runner._clean_problem_modules
    assert keep_keras_session() is False
    assert script_runner._clean_problem_modules is before


def test_import_keras_freezes_tensorflow_heap():
    code = ("import gc, sys\nfrom insight.ui.runtime import import_keras\n"
            "import_keras()\nassert 'tensorflow' in sys.modules\nassert gc.isenabled()\n"
            "print(gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""})
    assert int(out.stdout.strip().splitlines()[-1]) > 100_000
