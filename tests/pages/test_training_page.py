"""The Training page under AppTest: the sample's logdir (curves, verdicts, histograms), its
controls, CSV/JSON logs, NaN values, empty and error states, live mode."""

from __future__ import annotations

import json
import math

import pytest
from streamlit.testing.v1 import AppTest

from insight.model.samples import get_sample
from insight.ui.shell import PAGE_DIR, PAGES

LOGS = get_sample("digits_cnn").logdir


def _page(logdir, **state) -> AppTest:
    at = AppTest.from_file(str(PAGE_DIR / "training.py"), default_timeout=120)
    at.session_state["insight_ref"] = None
    at.session_state["insight_logdir"] = None if logdir is None else str(logdir)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def _charts(at: AppTest) -> dict[str, dict]:
    specs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    return {s["layout"]["title"]["text"].split("<br>")[0]: s for s in specs}


def _clean(at: AppTest) -> None:
    """No exception, and no error but the doctor's findings about the curves."""
    assert not at.exception, at.exception
    assert not [e for e in at.error if not e.value.startswith("**Doctor")], \
        [e.value for e in at.error]


def test_page_is_in_the_navigation():
    files = [f for f, _, _ in PAGES]
    assert files.index("training.py") == files.index("embeddings.py") + 1


def test_sample_logdir_curves_verdicts_and_histograms():
    at = _page(LOGS)
    _clean(at)
    charts = _charts(at)
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(charts)
    loss = charts["epoch_loss"]
    assert loss["layout"]["meta"]["insight_panel"] == "training_curves"
    names = [t["name"] for t in loss["data"]]
    assert {"train", "validation"} <= set(names) and any(n.startswith("best val") for n in names)
    assert "showing 20 of 20 points" in loss["layout"]["title"]["text"]
    assert any("7 series · 70 points" in c.value for c in at.caption)
    verdicts = at.dataframe[0].value
    assert verdicts.set_index("metric").loc["epoch_loss", "verdict"] == "no sign of overfitting"
    heat = [s for t, s in charts.items() if t.endswith("over training")]
    assert len(heat) == 1 and heat[0]["data"][0]["type"] == "heatmap"


def test_controls_change_the_charts():
    at = _page(LOGS)
    at.text_input(key="train_tags").set_value("loss").run()
    _clean(at)
    curves = {t for t in _charts(at) if not t.endswith("over training")}
    assert curves == {"epoch_loss", "evaluation_loss_vs_iterations"}
    at.selectbox(key="train_smoothing").set_value("none").run()
    loss = _charts(at)["epoch_loss"]
    assert [t["name"] for t in loss["data"]].count("train") == 1  # no raw/smoothed pair
    at.toggle(key="train_log").set_value(True).run()
    assert _charts(at)["epoch_loss"]["layout"]["yaxis"]["type"] == "log"
    at.segmented_control(key="train_hist_mode").set_value("ridge").run()
    _clean(at)
    ridge = [s for t, s in _charts(at).items() if t.endswith("over training")][0]
    assert ridge["data"][0]["type"] == "scatter"


def test_bad_regex_is_an_error_not_a_traceback():
    at = _page(LOGS)
    at.text_input(key="train_runs").set_value("(").run()
    assert not at.exception
    assert any("not a valid regular expression" in e.value for e in at.error)


def test_csv_log_and_nonfinite_values(tmp_path):
    (tmp_path / "log.csv").write_text(
        "epoch,loss,val_loss\n" + "".join(
            f"{i},{math.exp(-i / 3)},{'nan' if i == 4 else math.exp(-i / 3) + 0.1}\n"
            for i in range(12)))
    at = _page(tmp_path / "log.csv")
    _clean(at)
    assert any("1 NaN/Inf value**" in w.value for w in at.warning)
    assert not any("Overfitting" in w.value for w in at.warning)
    (nan,) = [e.value for e in at.error]  # the doctor's loss_nan, with its epoch
    assert "validation loss is NaN or infinite from epoch 4" in nan
    loss = _charts(at)["loss"]
    assert any(t["name"] == "NaN/Inf" for t in loss["data"])
    assert "no wall times" not in loss["layout"]["title"]["text"]  # x is step by default


@pytest.mark.parametrize("logdir", [None, "empty"])
def test_empty_states(tmp_path, logdir):
    if logdir == "empty":
        (tmp_path / "empty").mkdir()
    at = _page(None if logdir is None else tmp_path / logdir)
    _clean(at)
    text = " ".join(i.value for i in at.info)
    assert ("No logdir" in text) if logdir is None else ("No scalars here yet" in text)


def test_live_mode_runs():
    at = _page(LOGS, train_live=True)
    _clean(at)
    assert any("**live**" in c.value for c in at.caption)


def test_overfitting_is_flagged(tmp_path):
    from tensorboardX import SummaryWriter

    for split in ("train", "validation"):
        with SummaryWriter(str(tmp_path / split)) as w:
            for s in range(40):
                rise = 0.01 * max(s - 15, 0) ** 1.3 if split == "validation" else 0.0
                w.add_scalar("epoch_loss", math.exp(-s / 6) + rise, s)
    at = _page(tmp_path)
    _clean(at)
    warnings = [w.value for w in at.warning if "Overfitting" in w.value]  # the doctor's
    assert len(warnings) == 1 and warnings[0].startswith("**Doctor:** Overfitting from epoch")
    spec = _charts(at)["epoch_loss"]
    assert any("overfitting from epoch" in a.get("text", "")
               for a in spec["layout"]["annotations"])


def test_a_three_epoch_overfitting_run_is_called_so(tmp_path):
    """Issue 12's run (training loss 0.23, validation 1.41 and rising for the last 2 epochs,
    validation accuracy 0.72 -> 0.44) was called "no sign of overfitting"."""
    (tmp_path / "log.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n"
                                      "0,0.80,0.61,0.72,0.95\n1,0.89,0.34,0.60,1.12\n"
                                      "2,0.93,0.23,0.44,1.41\n")
    at = _page(tmp_path / "log.csv")
    _clean(at)
    warnings = [w.value for w in at.warning if "Overfitting" in w.value]  # the doctor's
    assert len(warnings) == 1 and "Overfitting from epoch 0" in warnings[0]
    verdicts = at.dataframe[0].value.set_index("metric").verdict
    assert verdicts["loss"] == "overfitting from epoch 0; large gap (val 6.1× train)"
    assert verdicts["accuracy"].startswith("overfitting from epoch 0")
    charts = _charts(at)
    assert list(charts)[:2] == ["loss", "accuracy"]
    for spec in charts.values():
        assert spec["layout"]["xaxis"]["title"]["text"] == "epoch"
        assert spec["layout"]["xaxis"]["dtick"] == 1  # no ticks at 0.5
        assert any("overfitting from epoch 0" in a["text"] for a in spec["layout"]["annotations"])


def _chart_keys(at: AppTest) -> list[str]:
    return [el.proto.id.rsplit("-", 1)[-1] for el in at.get("plotly_chart")]


def test_losses_first_two_columns_one_key_each():
    """Charts in `metric_order` (losses, then accuracies, then the rest), filled into two
    columns, each chart and its share control under its own key (`show_panel(key=...)`)."""
    at = _page(LOGS)
    _clean(at)
    left = ["epoch_loss", "epoch_accuracy", "epoch_learning_rate"]
    right = ["evaluation_loss_vs_iterations", "evaluation_accuracy_vs_iterations"]
    assert _chart_keys(at)[:5] == [f"curve|{m}" for m in left + right]
    shares = [b.proto.id for b in at.get("download_button")]
    for metric in left + right:
        assert sum(i.endswith(f"share_html|share|curve|{metric}") for i in shares) == 1


def test_widgets_take_defaults_range_and_help_from_the_schema():
    from insight.ui.widgets import param_of

    at = _page(LOGS)
    _clean(at)
    weight = param_of("training_curves", "weight")
    slider = at.slider(key="train_weight")
    assert (slider.value, slider.min, slider.max, slider.step) == (0.6, 0.0, 0.99, 0.01)
    assert slider.help == weight.help and "debiased EMA" in slider.help
    points = at.select_slider(key="train_points")
    assert points.value == 2000 and list(points.options) == ["500", "1000", "2000", "5000",
                                                             "10000"]
    assert at.selectbox(key="train_smoothing").value == "ema"
    at.selectbox(key="train_smoothing").set_value("gaussian").run()
    window = at.slider(key="train_window")
    assert (window.value, window.min, window.max, window.step) == (9, 3, 201, 2)
    assert "Gaussian 9 pts" in _charts(at)["epoch_loss"]["layout"]["title"]["text"]
