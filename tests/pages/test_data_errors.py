"""Errors in the app that must point at the right thing.

- Data that cannot be used is a data error on the pages that read data, never "Cannot load
  the model"; the Overview keeps showing the model.
- A data path that does not exist is warned about in the sidebar and refused by the data
  pages: never silently replaced by the sample's bundled data or synthetic inputs.
- Images of another size are resized, and the page's data line says so.
- Share -> PNG says why it cannot render (no Chromium, no kaleido) instead of failing with a
  traceback when clicked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from insight.model.samples import list_samples
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
DIGITS = next(s for s in list_samples() if s.name == "digits_cnn")


def _page(page: str, data: str | None) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / f"{page}.py"), default_timeout=180)
    at.session_state["insight_ref"] = ModelRef(str(DIGITS.model), True, None,
                                               "Sample: digits_cnn")
    at.session_state["insight_data"] = data
    at.session_state["insight_logdir"] = None
    return at.run()


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_data")
    np.savez(root / "wrong.npz", x=np.zeros((5, 4, 5, 3), "float32"))  # RGB for a gray input
    (root / "notes.txt").write_text("1 2 3\n")
    np.savez(root / "small.npz", x=np.random.default_rng(0).random((6, 4, 4, 1), "float32"),
             y=np.arange(6) % 2)
    return {"wrong": root / "wrong.npz", "txt": root / "notes.txt",
            "small": root / "small.npz", "missing": root / "missing.npz"}


@pytest.mark.parametrize("kind, fragment", [
    ("wrong", "expects shape (None, 8, 8, 1)"),
    ("txt", "does not read .txt files"),
    ("missing", "no file or folder at this data path"),
])
@pytest.mark.parametrize("page", ["activations", "gradients", "embeddings"])
def test_data_errors_are_data_errors(bad_data, page, kind, fragment):
    at = _page(page, str(bad_data[kind]))
    assert not at.exception, at.exception
    errors = _errors(at)
    assert errors, f"{page} used other data for {kind}"
    assert errors[0].startswith("**Cannot use the data.**"), errors
    assert fragment in errors[0]
    assert not any("Cannot load the model" in e for e in errors)
    assert not any("Synthetic inputs" in w.value for w in at.warning)
    assert not at.get("plotly_chart"), "no chart drawn from other data"


def test_overview_keeps_working_with_bad_data(bad_data):
    at = _page("overview", str(bad_data["wrong"]))
    assert not at.exception and not _errors(at)
    assert at.title[0].value == "digits_cnn"
    assert [m.value for m in at.metric][:1] == ["3,658"]


def test_mistyped_data_path_is_an_error_not_other_data(bad_data):
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    at.text_input(key="insight_data_path").input(str(bad_data["missing"])).run()
    assert not at.exception
    warning = " ".join(w.value for w in at.sidebar.warning)
    assert "Data: path not found" in warning and "missing.npz" in warning
    assert "the `data.npz` beside the model" in warning  # what clearing the field would use
    assert at.session_state["insight_data"] == str(bad_data["missing"])
    assert at.title[0].value == "digits_cnn" and not _errors(at)  # the Overview still works
    at.switch_page(str(PAGE_DIR / "activations.py")).run()
    assert not at.exception
    assert _errors(at) and _errors(at)[0].startswith("**Cannot use the data.**")
    assert not any(c.value.startswith("Data: data.npz") for c in at.caption)


def test_unreadable_data_file_warns_in_sidebar(bad_data):
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    at.text_input(key="insight_data_path").input(str(bad_data["txt"])).run()
    assert not at.exception
    warning = " ".join(w.value for w in at.sidebar.warning)
    assert "Data: cannot be used" in warning and ".txt files" in warning


def test_images_of_another_size_are_resized_and_said_so(bad_data):
    at = _page("activations", str(bad_data["small"]))
    assert not at.exception and not _errors(at), _errors(at)
    assert any(c.value.startswith("Data: small.npz (images resized from 4x4 to 8x8): 6 "
                                  "examples") for c in at.caption), [c.value for c in at.caption]
    assert at.dataframe[0].value["layer"].tolist()[0] == "conv1"


def _png_notes(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if "No PNG download" in w.value]


def test_share_png_without_chromium_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("INSIGHT_BROWSER", str(tmp_path / "no-chromium"))
    at = _page("overview", None)
    assert not at.exception and not _errors(at)
    notes = _png_notes(at)
    assert notes and "INSIGHT_BROWSER" in notes[0] and "apt-get install chromium" in notes[0]


def test_share_png_without_kaleido_says_why(monkeypatch):
    # kaleido is installed (a dependency): its absence can only be simulated.
    monkeypatch.setitem(sys.modules, "kaleido", None)
    at = _page("overview", None)
    assert not at.exception and not _errors(at)
    notes = _png_notes(at)
    assert notes and "kaleido" in notes[0] and "pip install" in notes[0]
