"""`insight serve`'s cold start: the sandbox child that loads a stranger's model first starts
importing Keras as the server starts (not after the server's own TensorFlow import), and the
app notes each script run's end, which the optional warm-up waits for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from insight.model.samples import get_sample

from ._browser import free_port


def _children(pid: int) -> list[str]:
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "args="], capture_output=True,
                         text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def test_the_load_child_starts_with_the_server(tmp_path: Path):
    model = Path(shutil.copy(get_sample("digits_cnn").model, tmp_path / "model.keras"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHT_")}
    proc = subprocess.Popen([sys.executable, "-m", "insight.cli", "serve", str(model),
                             "--port", str(free_port())], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline, seen = time.monotonic() + 60, []
        while time.monotonic() < deadline and proc.poll() is None:
            seen = [c for c in _children(proc.pid) if "insight.model.sandbox_child" in c]
            if seen:
                break
            time.sleep(0.05)
        # The CLI's quick check of the file runs in a child too (no TensorFlow, under a
        # second). The waiting (`--spare`) child must already be there beside it; without
        # the early start, the first `--spare` child comes only after the model's load.
        assert any("--spare" in c for c in seen), f"the server's first children: {seen}"
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_script_run_notes_its_end():
    from streamlit.testing.v1 import AppTest

    from insight.ui import serve

    serve._PAGE_DRAWN.clear()
    app = AppTest.from_file(str(serve.ENTRY), default_timeout=60)
    app.query_params["panel"] = "no_such_panel"  # a bad deep link: one error, no model
    app.run()
    assert app.error, "the bad link shows its error"
    assert serve._PAGE_DRAWN.is_set()
