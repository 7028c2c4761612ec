"""The check registry: every check is a small function from shared evidence to findings.

A check declares the evidence it needs (`NEEDS`: `"model"`, `"compile"`, `"data"`,
`"labels"`, `"activations"`, `"gradients"`, `"predictions"`, `"curves"`, `"profile"`, `"xla"`,
`"train_probe"`);
`insight.doctor.diagnose` runs it only when all of it is there, and otherwise records why it
was skipped. The check modules (`insight.doctor.checks_*`) register on import, as the panels
do; the registry imports none of them.

Example:

>>> from insight.doctor import check_names, get_check
>>> "dead_units" in check_names()
True
>>> get_check("dead_units").needs
('activations',)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from insight.doctor.findings import CATEGORIES
from insight.errors import UsageError

__all__ = ["NEEDS", "STAGES", "STAGE_TITLES", "Check", "register", "check", "get_check",
           "check_names", "check_title", "all_checks"]

NEEDS = ("model", "compile", "data", "labels", "activations", "gradients", "predictions",
         "curves", "profile", "xla", "train_probe")


@dataclass(frozen=True)
class Check:
    """A registered check.

    Attributes:
        name: the registry key, also each finding's `check`.
        categories: the categories its findings can have.
        needs: the evidence it reads (see `NEEDS`).
        fn: `fn(evidence) -> list[Finding]`.
        description: one line for `insight doctor --help` and the page.
        cheap: whether `DoctorCallback` may run it during training (no pass over the data).
    """

    name: str
    categories: tuple[str, ...]
    needs: tuple[str, ...]
    fn: Callable[[Any], list]
    description: str = ""
    cheap: bool = False

    @property
    def stage(self) -> str:
        """What it looks at, in words (`STAGE_TITLES`), e.g. `"the data"`."""
        module = getattr(self.fn, "__module__", "").rpartition(".")[2]
        return STAGE_TITLES.get(module, "other")

    @property
    def active(self) -> bool:
        """Whether it trains a copy of the model (run only when asked)."""
        return "train_probe" in self.needs


_REGISTRY: dict[str, Check] = {}
_ORDERED: list[Check] = []  # all_checks(), sorted once
# The order checks run and are listed in: the setup first, the curves last, active ones after.
STAGES = ("checks_output", "checks_data", "checks_weights", "checks_probe", "checks_gradients",
          "checks_curves", "checks_compute", "active")
STAGE_TITLES = dict(zip(STAGES, ("the setup (output, loss, labels, learning rate)", "the data",
                                 "the initial state (weights, loss)",
                                 "activations and predictions", "gradients",
                                 "the training curves", "compute (profile, XLA)",
                                 "active (a copy trained)"),
                        strict=True))


def _stage(item: Check) -> int:
    module = getattr(item.fn, "__module__", "").rpartition(".")[2]
    return STAGES.index(module) if module in STAGES else len(STAGES)


def register(item: Check) -> Check:
    """Add a check to the registry (a name can be registered once).

    Raises:
        ValueError: an unknown category or need, or a name taken by another function.
    """
    bad = [c for c in item.categories if c not in CATEGORIES]
    if bad:
        raise ValueError(f"Unknown categories {bad!r}. Received: check={item.name!r}")
    bad = [n for n in item.needs if n not in NEEDS]
    if bad:
        raise ValueError(f"Unknown needs {bad!r}; they are {NEEDS}. Received: check={item.name!r}")
    if item.name in _REGISTRY and _REGISTRY[item.name].fn is not item.fn:
        raise ValueError(f"A check named {item.name!r} is already registered.")
    _REGISTRY[item.name] = item
    _ORDERED.clear()
    return item


def check(name: str, categories: str | tuple[str, ...], *, needs: tuple[str, ...],
          description: str = "", cheap: bool = False) -> Callable:
    """Decorator: register `fn(evidence) -> list[Finding]` as the check `name`."""
    cats = (categories,) if isinstance(categories, str) else tuple(categories)

    def wrap(fn: Callable) -> Callable:
        register(Check(name, cats, tuple(needs), fn, description or (fn.__doc__ or "").strip()
                       .split("\n")[0], cheap))
        return fn

    return wrap


_WORDS = {"lr": "LR", "nan": "NaN"}


def check_title(name: str) -> str:
    """A check's name as a heading: `"lr_range_test"` -> `"LR range test"`."""
    words = [_WORDS.get(w, w) for w in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def check_names() -> list[str]:
    """Names of all registered checks, in the order they run (`STAGES`, then registration)."""
    return [c.name for c in all_checks()]


def all_checks() -> list[Check]:
    """Every registered check, in the order they run (`STAGES`, then registration)."""
    if not _ORDERED:
        _ORDERED.extend(sorted(_REGISTRY.values(), key=_stage))
    return list(_ORDERED)


def get_check(name: str) -> Check:
    """The check called `name`.

    Raises:
        UsageError: no such check; the message lists them.
    """
    if name not in _REGISTRY:
        raise UsageError(f"No such check: {name!r}. Existing checks are: "
                         f"{', '.join(_REGISTRY)}.", "", f"check={name!r}")
    return _REGISTRY[name]
