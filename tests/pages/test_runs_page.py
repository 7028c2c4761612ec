"""The Runs page under AppTest: the digits_cnn sample's sweep (found beside the model when
the logdir records no hyperparameters), its controls, the link to a run's curves, and the
empty state."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from insight.model.samples import get_sample
from insight.ui.cache import ModelRef
from insight.ui.shell import PAGE_DIR, PAGES

SAMPLE = get_sample("digits_cnn")
SWEEP = SAMPLE.model.parent / "sweep"


def _page(model, logdir) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / "runs.py"), default_timeout=120)
    at.session_state["insight_ref"] = None if model is None else ModelRef(str(model), True,
                                                                           None, "m")
    at.session_state["insight_logdir"] = None if logdir is None else str(logdir)
    return at.run()


def test_in_the_navigation_after_training():
    files = [f for f, _, _ in PAGES]
    assert files.index("runs.py") == files.index("training.py") + 1


def test_sample_sweep_table_plot_filter_and_link():
    at = _page(SAMPLE.model, SAMPLE.logdir)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "`sweep/` beside the model" in at.caption[0].value
    assert str(SWEEP.parent) not in at.caption[0].value  # not the server's own path
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["meta"]["insight_panel"] == "runs_parallel"
    assert spec["data"][0]["type"] == "parcoords"
    table = at.dataframe[0].value
    col = "validation/epoch_accuracy (best)"
    assert list(table.run) == list(table.sort_values(col, ascending=False).run)
    assert len(table) == 4
    assert any("embed=true&panel=" in c.value for c in at.code)  # each chart's Share link

    at.text_input(key="runs_filter").set_value("optimizer=sgd").run()
    assert list(at.dataframe[0].value.run) == ["run-4"]
    picker = at.selectbox(key=f"runs_pick|{SWEEP}")
    assert picker.options == ["run-4"]

    at.button(key="runs_open").click().run()
    assert at.session_state["train_runs"] == "^run\\-4(/|$)"
    assert at.session_state["insight_logdir_path"] == str(SWEEP)


def test_a_logdir_with_hparams_is_used_as_it_is():
    at = _page(None, SWEEP)
    assert not at.exception
    assert at.caption[0].value == f"`{SWEEP}`"
    assert len(at.dataframe[0].value) == 4


def test_no_runs_says_how_to_log_them():
    at = _page(get_sample("multi_io").model, SAMPLE.logdir)
    assert not at.exception and not at.get("plotly_chart")
    assert "No runs with hyperparameters" in at.info[0].value
