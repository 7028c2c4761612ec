"""What the doctor reports: `Finding`s, and the `Report` that holds them with what was checked.

A finding is one problem in plain words, with the numbers it rests on and where insight shows
them: `{check, category, severity, layer, evidence, explanation, suggestion, page, panel}`.
`category` is one of `CATEGORIES`, `severity` one of `SEVERITIES` (`"error"`: training
cannot work as set up; `"warning"`: it likely hurts; `"info"`: worth knowing, not a problem).

Example:

>>> f = Finding("input_scale", "unnormalized_input", "warning", None, {"std": 96.2},
...             "Inputs are far from unit scale.", "Divide the pixels by 255.", "activations",
...             "activation_table")
>>> Report([f], checked=["input_scale"]).worst()
'warning'
>>> Report([], checked=["input_scale"]).worst() is None
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CATEGORIES", "SEVERITIES", "PAGES", "Finding", "Report", "severity_rank"]

CATEGORIES = (
    "loss_activation_mismatch", "label_problem", "class_imbalance", "unnormalized_input",
    "bad_init", "dead_units", "saturated_units", "vanishing_gradient", "exploding_gradient",
    "activation_scale", "nan_inf", "learning_rate_high", "learning_rate_low", "not_learning",
    "overfitting", "underfitting", "compute",
)
SEVERITIES = ("error", "warning", "info")  # worst first
# The app's pages a finding can point to (their URL paths).
PAGES = ("doctor", "overview", "activations", "gradients", "embeddings", "training",
         "profiler", "compiler")


def severity_rank(severity: str | None) -> int:
    """0 for `"error"`, 1 for `"warning"`, 2 for `"info"`, 3 for `None` (nothing found)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _plain(value: Any) -> float | int | str:
    """An evidence value as JSON-ready `float`, `int` or `str` (numpy scalars unwrapped)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | str):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _plain(value.item())
    if isinstance(value, float):
        return value
    return str(value)


@dataclass(frozen=True)
class Finding:
    """One problem, in plain words, with its numbers and where insight shows them.

    Attributes:
        check: the name of the check that found it (`"dead_units"`).
        category: one of `CATEGORIES`.
        severity: `"error"`, `"warning"` or `"info"`.
        layer: the layer path it is about, or `None`.
        evidence: the numbers (and short strings) it rests on.
        explanation: what is wrong and why it matters, in plain words.
        suggestion: the fix.
        page: the app page that shows the evidence (`"gradients"`: the URL `/gradients`).
        panel: the registered panel on that page (`"gradient_norms"`), or `""`.

    Raises:
        ValueError: an unknown category, severity or page.
    """

    check: str
    category: str
    severity: str
    layer: str | None
    evidence: dict[str, float | int | str]
    explanation: str
    suggestion: str
    page: str
    panel: str

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"Unknown finding category {self.category!r}; it is one of "
                             f"{', '.join(CATEGORIES)}. Received: category={self.category!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"A finding's severity is one of {', '.join(SEVERITIES)}. "
                             f"Received: severity={self.severity!r}")
        if self.page not in PAGES:
            raise ValueError(f"A finding points to one of the pages {', '.join(PAGES)}. "
                             f"Received: page={self.page!r}")
        object.__setattr__(self, "evidence", {str(k): _plain(v)
                                              for k, v in self.evidence.items()})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become the strings `"nan"`, `"inf"`)."""
        out = asdict(self)
        out["evidence"] = {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
                           for k, v in self.evidence.items()}
        return out

    def evidence_text(self) -> str:
        """The evidence as `name=value · ...`, numbers to 4 significant digits."""
        def shown(v: Any) -> str:
            return f"{v:.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) \
                else str(v)

        return " · ".join(f"{k}={shown(v)}" for k, v in self.evidence.items())

    @property
    def key(self) -> tuple[str, str | None]:
        """`(check, layer)`: what makes two findings the same problem."""
        return self.check, self.layer


@dataclass
class Report:
    """The doctor's answer: its findings, worst first, and what it could and could not check.

    Attributes:
        findings: sorted error, warning, info; within one severity in the order the checks
            run (`order`: the setup and data before the symptoms in the curves), else by
            check name, then as found (a check's layers in depth order).
        checked: the names of the checks that ran.
        skipped: `{"check": name, "reason": why}` for each check that could not run.
        seconds: how long the diagnosis took.
        plots: the plain data of the findings' figures, keyed `"check|layer"`
            (`insight.figures.doctor.finding_figure` draws them); not part of `to_dict()`.
        order: `{check: position}` for sorting findings of one severity.
    """

    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    plots: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    order: dict[str, int] = field(default_factory=dict, repr=False)

    def plot(self, finding: Finding) -> dict[str, Any] | None:
        """The figure data for `finding` (its own, else its check's), or `None`."""
        return self.plots.get(f"{finding.check}|{finding.layer or ''}") or \
            self.plots.get(f"{finding.check}|")

    def __post_init__(self) -> None:
        ranked = sorted(enumerate(self.findings), key=lambda item: (
            severity_rank(item[1].severity), self.order.get(item[1].check, len(self.order)),
            item[1].check, item[0]))
        self.findings = [f for _, f in ranked]

    def worst(self) -> str | None:
        """The worst severity found: `"error"`, `"warning"`, `"info"`, or `None`."""
        return self.findings[0].severity if self.findings else None

    def counts(self) -> dict[str, int]:
        """How many findings of each severity: `{"error": n, "warning": n, "info": n}`."""
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def verdict(self) -> str:
        """The report in one sentence ("No problem found: ..." when nothing reaches a
        warning)."""
        counts = self.counts()
        if not counts["error"] and not counts["warning"]:
            notes = counts["info"]
            return (f"No problem found: {len(self.checked)} checks ran"
                    + (f", {notes} note{'s' if notes != 1 else ''} worth knowing" if notes
                       else "")
                    + (f"; {len(self.skipped)} could not run." if self.skipped else "."))
        parts = [f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
        return f"Found {', '.join(parts)} in {len(self.checked)} checks."

    def at_least(self, severity: str) -> list[Finding]:
        """The findings at `severity` or worse."""
        return [f for f in self.findings if severity_rank(f.severity) <= severity_rank(severity)]

    def to_dict(self) -> dict[str, Any]:
        """`{"findings": [...], "checked": [...], "skipped": [...]}`, JSON-ready."""
        return {"findings": [f.to_dict() for f in self.findings], "checked": list(self.checked),
                "skipped": [dict(s) for s in self.skipped]}

    def __repr__(self) -> str:
        counts = self.counts()
        return (f"Report(errors={counts['error']}, warnings={counts['warning']}, "
                f"info={counts['info']}, checked={len(self.checked)}, "
                f"skipped={len(self.skipped)})")
