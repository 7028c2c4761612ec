"""The Doctor page's panels: the findings, what was checked, and each finding's evidence.

All three read one report (`doctor_report`, memoised through `ctx.cached`), computed by
`insight.doctor` on evidence that shares the Activations and Gradients panels' memo keys,
so the doctor and those pages run one statistics pass and one gradient batch between them.
With `active=True` the report also runs the active checks (they train a copy of the model).
`doctor_history` lists what `insight.callbacks.DoctorCallback` wrote to the logdir during
training. Importing this module registers the panels (`insight.panels` does it on first use).

Example:

>>> from insight.panels import PanelContext, build_panel
>>> table = build_panel("doctor_findings", PanelContext(loaded))  # doctest: +SKIP
>>> table[["severity", "check", "layer"]].head(1)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from insight.doctor import Evidence, Report, check_title, get_check, run_checks
from insight.errors import InsightError, UsageError
from insight.figures.activations import message_figure
from insight.figures.doctor import finding_figure
from insight.panels.registry import Panel, PanelContext, Param, register

if TYPE_CHECKING:
    from insight.profiler.capture import ProfileRun

__all__ = ["USES", "ACTIVE", "FINDING_COLUMNS", "HISTORY_COLUMNS", "PAGE_CHECKS",
           "doctor_report", "page_report"]

USES = ("model", "data", "logdir")
ACTIVE = Param("active", "bool", False, help="Also run the active checks: train a copy of the "
               "model on one batch, sweep its learning rate, and time XLA against "
               "tf.function.")
HISTORY_COLUMNS = ["step", "severity", "check", "category", "layer", "explanation", "evidence"]
FINDING_COLUMNS = ["severity", "check", "category", "layer", "explanation", "suggestion",
                   "evidence", "page", "panel", "figure"]


def doctor_report(ctx: PanelContext, active: bool = False) -> Report:
    """The doctor's report on the context's model, data and logdir (memoised; the log's
    size and time in the key, so a live run is re-read)."""
    from insight.curves.logdir import logdir_stamp

    def compute() -> Report:
        try:
            dataset, why = ctx.dataset(), None
            if dataset.synthetic:
                dataset, why = None, ("synthetic inputs: no data given, so nothing about "
                                      "your data can be checked")
        except InsightError as exc:
            dataset, why = None, f"the data cannot be used ({exc.what})"
        ev = Evidence(ctx.loaded, dataset, ctx.logdir, data_error=why, memo=ctx.cached,
                      xla=active)
        return run_checks(ev, train_probe=active)

    return ctx.cached(f"doctor:report:{active}:{logdir_stamp(ctx.logdir)}", compute)


# The doctor's checks each page runs to show their findings where it shows the numbers.
PAGE_CHECKS = {
    "activations": ("dead_units", "saturated_units", "activation_scale", "activation_nan"),
    "gradients": ("vanishing_gradient", "exploding_gradient", "gradient_nan"),
    "training": ("loss_nan", "loss_diverging", "loss_oscillating", "loss_not_decreasing",
                 "loss_creeping", "accuracy_at_chance", "overfitting", "generalization_gap",
                 "underfitting"),
    "profiler": ("profile_steps", "input_bound"),
}
PAGE_COLUMNS = ["severity", "check", "layer", "explanation", "suggestion", "evidence"]


def page_report(ctx: PanelContext, page: str, run: ProfileRun | None = None) -> Report:
    """The findings of the doctor's checks for one page (`PAGE_CHECKS`) whose findings point
    to that page: the page's verdicts, read from the doctor, the one place that builds the
    doctor's evidence for a page. Evidence is shared with the page's own panels (the same
    memo keys), so no pass over the data runs twice; a synthetic dataset is kept (the page
    measures it too).

    Args:
        ctx: the page's context (model, data, logdir, memo).
        page: a key of `PAGE_CHECKS`.
        run: for the Profiler, the profile run its panels show (read whatever its size);
            `None` reads the newest run under the logdir if it is small enough to convert
            unasked (`insight.doctor.evidence.PROFILE_BYTES`). Defaults to `None`.

    Returns:
        The report, memoised per page, log version and profile run version.

    Raises:
        UsageError: `page` has no checks, or a `run` is given for another page than the
            Profiler.

    Example:

    >>> [f.layer for f in page_report(ctx, "activations").findings]  # doctest: +SKIP
    ['conv2']
    >>> run = get_profile(ctx.logdir, "")  # doctest: +SKIP
    >>> [f.check for f in page_report(ctx, "profiler", run).findings]  # doctest: +SKIP
    ['profile_steps']
    """
    from insight.curves.logdir import logdir_stamp

    if page not in PAGE_CHECKS:
        raise UsageError(f"The doctor has no checks for the page {page!r}; pages with "
                         f"checks are {', '.join(PAGE_CHECKS)}.", "", f"page={page!r}")
    if run is not None and page != "profiler":
        raise UsageError(f"A profile run selects what the Profiler page's checks read; the "
                         f"{page!r} page has none.", "Give `run` only with page='profiler'.",
                         f"page={page!r}, run={run.label!r}")

    def compute() -> Report:
        try:  # the profile's checks read no data: none is loaded for them
            dataset = ctx.dataset() if ctx.loaded is not None and page != "profiler" else None
        except InsightError:
            dataset = None
        ev = Evidence(ctx.loaded, dataset, ctx.logdir, memo=ctx.cached, synthetic_ok=True,
                      profile=None if run is None else run.label)
        report = run_checks(ev, checks=[get_check(name) for name in PAGE_CHECKS[page]])
        return replace(report, findings=[f for f in report.findings if f.page == page])

    which = "" if run is None else f"|{run.folder}|{run.stamp}"
    return ctx.cached(f"doctor:page:{page}:{logdir_stamp(ctx.logdir)}{which}", compute)


def _page_findings(ctx: PanelContext, page: str = "activations") -> pd.DataFrame:
    rows = [{"severity": f.severity, "check": f.check, "layer": f.layer or "",
             "explanation": f.explanation, "suggestion": f.suggestion,
             "evidence": f.evidence_text()} for f in page_report(ctx, page).findings]
    return pd.DataFrame(rows, columns=PAGE_COLUMNS)


def _findings(ctx: PanelContext, active: bool = False) -> pd.DataFrame:
    report = doctor_report(ctx, active)
    rows = [{**{k: f.to_dict()[k] for k in FINDING_COLUMNS[:6]}, "evidence": f.evidence_text(),
             "page": f.page, "panel": f.panel, "figure": report.plot(f) is not None}
            for f in report.findings]
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    frame["layer"] = frame["layer"].fillna("")
    return frame


def _summary(ctx: PanelContext, active: bool = False) -> dict:
    report = doctor_report(ctx, active)
    counts = report.counts()
    return {"verdict": report.verdict(), "worst": report.worst() or "none",
            "errors": counts["error"], "warnings": counts["warning"], "info": counts["info"],
            "checks_run": len(report.checked), "checks_skipped": len(report.skipped),
            "seconds": round(report.seconds, 2), "checked": list(report.checked),
            "skipped": [dict(s) for s in report.skipped]}


def _figure(ctx: PanelContext, check: str = "", layer: str = "", active: bool = False):
    report = doctor_report(ctx, active)
    found = [f for f in report.findings if report.plot(f) is not None
             and (not check or f.check == check) and (not layer or (f.layer or "") == layer)]
    if not found:
        what = f"the check {check!r}" + (f" at {layer!r}" if layer else "") if check else \
            "any finding"
        return message_figure(f"No figure for {what}: the doctor draws one for findings about "
                              "gradients, curves, classes, dead units and the active checks.",
                              title="Doctor: evidence")
    f = found[0]
    name = check_title(f.check) + (f" at {f.layer}" if f.layer else "")
    return finding_figure(report.plot(f), title=name)


def _history(ctx: PanelContext) -> pd.DataFrame:
    from insight.doctor.log import read_findings

    rows = [{"step": step, "severity": f.severity, "check": f.check, "category": f.category,
             "layer": f.layer or "", "explanation": f.explanation,
             "evidence": f.evidence_text()} for step, f in read_findings(ctx.logdir)]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


register(Panel("doctor_findings", "Doctor: findings", "table", _findings, params=(ACTIVE,),
               description="What may keep the model from learning or generalising: one row "
                           "per finding, worst first, with its evidence, explanation and fix.",
               uses=USES))
register(Panel("doctor_summary", "Doctor: summary", "card", _summary, params=(ACTIVE,),
               description="The doctor's verdict, with the checks that ran and those that "
                           "could not (and why).", uses=USES))
register(Panel("doctor_figure", "Doctor: evidence", "figure", _figure,
               params=(Param("check", "str", "", help="The finding's check; empty: the first "
                             "finding with a figure."),
                       Param("layer", "str", "", help="The finding's layer, if it has one."),
                       ACTIVE),
               description="The evidence of one finding: gradient norms with the vanishing "
                           "layers marked, a curve with its divergence step, class counts.",
               uses=USES))
register(Panel("doctor_page_findings", "Doctor: this page", "table", _page_findings,
               params=(Param("page", "str", "activations", tuple(PAGE_CHECKS),
                             help="The page whose checks run: activations, "
                                  "gradients, training or profiler."),),
               description="The doctor's findings about what one page shows (dead units on "
                           "Activations, vanishing gradients on Gradients, overfitting on "
                           "Training, unmarked steps on Profiler), worst first.",
               needs_model=False, uses=("data", "logdir")))  # a model when there is one
register(Panel("doctor_history", "Doctor: during training", "table", _history,
               needs_model=False, uses=("logdir",),
               description="What insight.callbacks.DoctorCallback found while the model "
                           "trained (the doctor.jsonl files under the logdir), in order."))
