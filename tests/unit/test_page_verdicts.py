"""The pages' verdicts are the doctor's: the Gradients chart marks the layers the doctor finds
vanishing, the Activations flags are its dead-unit findings, the Training and Profiler pages
show its findings about the curves and the profile (`doctor_page_findings`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from insight import load_model
from insight.errors import UsageError
from insight.panels import PanelContext, build_panel
from insight.panels.doctor import PAGE_CHECKS, page_report


def _memo() -> Callable[[str, Callable[[], Any]], Any]:
    """A memo like the app's cache: the chart and the doctor share one gradient batch."""
    store: dict[str, Any] = {}
    return lambda key, compute: store[key] if key in store else store.setdefault(key, compute())


@pytest.fixture(scope="module")
def sick(samples_dir):
    def load(name: str):
        return PanelContext(load_model(samples_dir / "sick" / name / "model.keras"),
                            logdir=samples_dir / "sick" / name / "logs", memo=_memo())
    return load


def test_gradient_chart_marks_what_the_doctor_finds(sick):
    sick_ctx, fixed_ctx = sick("vanishing"), sick("vanishing_fixed")
    fig = build_panel("gradient_norms", sick_ctx)
    marked = fig.layout.meta["marked"]
    found = build_panel("doctor_page_findings", sick_ctx, page="gradients")
    vanishing = set(found.loc[found["check"] == "vanishing_gradient", "layer"])
    assert vanishing and marked == {layer: "vanishing" for layer in vanishing}
    assert [a.text for a in fig.layout.annotations] == ["vanishing"] * len(vanishing)
    assert build_panel("gradient_norms", fixed_ctx).layout.meta["marked"] == {}


def test_dead_relu_flags_and_training_boxes(sick):
    ctx = sick("dead_relu")
    table = build_panel("activation_table", ctx)
    flagged = table.loc[table["flag"].str.startswith("dead"), "layer"].tolist()
    found = build_panel("doctor_page_findings", ctx, page="activations")
    assert flagged and set(flagged) == set(found.loc[found["check"] == "dead_units", "layer"])
    training = build_panel("doctor_page_findings", sick("diverging"), page="training")
    assert {"loss_nan", "loss_diverging"} <= set(training["check"])
    assert (training["severity"] == "error").any()
    assert build_panel("doctor_page_findings", sick("diverging_fixed"), page="training").empty


def test_every_page_check_exists_and_unknown_pages_are_refused(load_sample):
    from insight.doctor import get_check

    for names in PAGE_CHECKS.values():
        for name in names:
            get_check(name)  # raises for a name the doctor does not have
    with pytest.raises(UsageError, match="must be one of activations, gradients"):
        build_panel("doctor_page_findings", PanelContext(load_sample("digits_cnn")),
                    page="overview")


def test_profiler_card_findings_are_the_doctors(samples_dir):
    ctx = PanelContext(logdir=samples_dir / "digits_cnn" / "logs")
    card = build_panel("profile_card", ctx)
    assert [f["check"] for f in card["findings"]] == ["profile_steps"]
    assert card["steps_note"] == card["findings"][0]["explanation"] + " " + \
        card["findings"][0]["suggestion"]
    # the card's findings are page_report's for the run it shows: one report, one memo entry
    from insight.panels.profiler import profile_findings, resolve_run

    memo_ctx = PanelContext(logdir=ctx.logdir, memo=_memo())
    run = resolve_run(memo_ctx, "")
    assert profile_findings(memo_ctx, run) is page_report(memo_ctx, "profiler", run).findings
    assert [f.to_dict() for f in page_report(ctx, "profiler", run).findings] == card["findings"]
    with pytest.raises(UsageError, match="only with page='profiler'"):
        page_report(ctx, "training", run)
