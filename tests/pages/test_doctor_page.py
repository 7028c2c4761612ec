"""The Doctor page under AppTest: a healthy sample says so and lists what was checked and
what could not be; a sick tiny model shows its finding with the fix and a link."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from insight.model.samples import get_sample
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR, PAGES


def _page(ref: ModelRef, data: str | None = None, logdir: str | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / "doctor.py"), default_timeout=180)
    at.session_state["insight_ref"] = ref
    at.session_state["insight_data"] = data
    at.session_state["insight_logdir"] = logdir
    return at.run()


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in (*at.success, *at.warning, *at.error, *at.info)]
    return "\n".join(str(p) for p in parts)


@pytest.fixture(scope="module")
def sick_model(tmp_path_factory):
    """A 4-way softmax classifier compiled with binary cross-entropy, with its data beside."""
    import keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("doctor_page")
    model = keras.Sequential([keras.Input((6,), name="x"),
                              keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(4, activation="softmax", name="probs")],
                             name="sick")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.save(folder / "model.keras")
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.normal(size=(64, 6)).astype("float32"),
             y=np.eye(4, dtype="float32")[rng.integers(0, 4, 64)])
    return folder / "model.keras"


def test_doctor_comes_right_after_overview():
    assert [f for f, _, _ in PAGES][:2] == ["overview.py", "doctor.py"]


def test_a_healthy_sample_says_no_problem_and_what_was_checked():
    sample = get_sample("digits_cnn")
    at = _page(ModelRef(str(sample.model)), str(sample.data), str(sample.logdir))
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]
    text = _text(at)
    assert "No problem found" in text
    assert "`dead_units`" in text and "`vanishing_gradient`" in text and "`overfitting`" in text
    assert "Could not check" in [e.label.split(" (")[0] for e in at.expander]
    assert "active check" in text  # why the active checks did not run
    assert [b.label for b in at.button] == ["Run active checks"]


def test_without_a_logdir_the_curve_checks_are_said_to_be_skipped():
    sample = get_sample("digits_cnn")
    at = _page(ModelRef(str(sample.model)), str(sample.data), None)
    assert not at.exception, at.exception
    line = next(m for m in _text(at).splitlines() if m.startswith("- No logdir"))
    assert "`loss_nan`" in line and "`overfitting`" in line


def test_a_sick_model_shows_its_finding_with_the_fix(sick_model):
    at = _page(ModelRef(str(sick_model)))
    assert not at.exception, at.exception
    text = _text(at)
    assert "Found 1 error" in text
    assert "Softmax binary crossentropy · `probs`" in text
    assert "sparse_categorical_crossentropy" in text  # the fix
    assert "[Open Overview →](./overview)" in text


def test_the_active_checks_run_on_the_button(sick_model):
    at = _page(ModelRef(str(sick_model)))
    assert "Overfit one batch" not in _text(at)
    at.button[0].click().run()
    assert not at.exception, at.exception
    text = _text(at)
    assert "Overfit one batch" in text and "LR range test" in text
    assert at.button[0].disabled  # they ran: the page keeps showing them
