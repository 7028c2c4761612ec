"""The doctor: a plain-language diagnosis of a model that does not learn, or not generalise.

`diagnose(loaded, data, logdir)` runs every registered check on evidence gathered once (the
file's compile config, the data, the weights, activations and gradients at the file's
weights, the predictions, the training curves) and returns a `Report` of `Finding`s, worst
first, with what was checked and what could not be.

Modules: `findings` (`Finding`, `Report`, `CATEGORIES`), `registry` (the checks by name),
`heads` (what each output is and how it is trained), `evidence` (the shared, lazily gathered
evidence), `series` (the curves as the checks read them), `diagnose`, `log` (the callback's
`doctor.jsonl`), `runtime` (what the callback needs during `fit`), and the checks:
`checks_output` (loss vs output, labels, learning rate), `checks_data`, `checks_weights`
(initial state), `checks_probe` (activations and predictions), `checks_gradients`,
`checks_curves`, `checks_compute` (profile, XLA), `active` (train a copy: overfit one
batch, learning-rate range test).
Importing the package registers every check.

Example:

>>> from insight.doctor import CATEGORIES, check_names
>>> "vanishing_gradient" in CATEGORIES and "vanishing_gradient" in check_names()
True
"""

from insight.doctor import (  # noqa: F401  each registers its checks
    active,
    checks_compute,
    checks_curves,
    checks_data,
    checks_gradients,
    checks_output,
    checks_probe,
    checks_weights,
)
from insight.doctor.diagnose import diagnose, doctor_dataset, run_checks
from insight.doctor.evidence import Evidence, Unavailable
from insight.doctor.findings import CATEGORIES, SEVERITIES, Finding, Report, severity_rank
from insight.doctor.registry import Check, all_checks, check_names, check_title, get_check

__all__ = ["diagnose", "Finding", "Report", "CATEGORIES", "SEVERITIES", "Check", "Evidence",
           "Unavailable", "all_checks", "check_names", "check_title", "get_check", "run_checks",
           "doctor_dataset", "severity_rank"]
