"""The panel registry: every chart or table insight shows is a named panel.

Capability modules (`insight.panels.model`, `...probe`, ...) call `register` when they are
imported; `insight.panels` imports them all, so the registry itself imports none of them.

A panel is a pure builder from a `PanelContext` (the loaded model, and later data and logs)
plus typed parameters to a result: a plotly `Figure`, a pandas `DataFrame`, a `dict` (a card)
or DOT text (a graph). Pages, exports, deep links and snapshot tests all call `build_panel`,
so one panel looks the same everywhere. Parameters arrive as strings from URLs and the CLI and
are validated against each panel's schema.

Example:

>>> from insight.panels import get_panel, panel_names  # the package registers every panel
>>> "layer_graph" in panel_names()
True
>>> get_panel("layer_table").kind
'table'
>>> get_panel("nope")
Traceback (most recent call last):
...
insight.errors.UsageError: No such panel: 'nope'. Existing panels are: ...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insight.errors import UsageError
from insight.model.loading import LoadedModel
from insight.model.preflight import Preflight

__all__ = ["Param", "Panel", "PanelContext", "register", "get_panel", "panel_names",
           "build_panel", "validate_params", "MAX_INT"]

KINDS = ("figure", "table", "card", "dot")
MAX_INT = 2**31 - 1  # the bound of an int parameter that declares no range


@dataclass(frozen=True)
class Param:
    """One parameter of a panel.

    Attributes:
        name: the parameter name (also its URL query key).
        type: `"str"`, `"int"`, `"float"` or `"bool"`.
        default: the value used when it is not given.
        choices: allowed values, when the set is fixed. Defaults to `None`.
        help: one line for the UI and `--help`.
        min_value: the smallest value accepted, and the smallest a UI widget offers.
            Defaults to `None` (no bound).
        max_value: the largest value accepted, and the largest a UI widget offers.
            Defaults to `None` (no bound).
        step: a UI widget's step. Defaults to `None` (the widget's own).
        presets: the values a UI offers when any value is allowed (a select slider's
            stops). Defaults to `None`.

    `parse` checks numbers whatever their source (a deep link from a stranger, the CLI, a
    widget): a float must be finite (`nan`, `inf` are refused), any number must lie within
    `[min_value, max_value]`, and an int without a declared range within `±MAX_INT` (no
    builder wants a 20-digit count, and numpy's seeds and indexes overflow past it).

    Example:

    >>> dist = Param("min_dist", "float", 0.1, min_value=0.0, max_value=1.0)
    >>> dist.parse("nan", "p")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    insight.errors.UsageError: Panel 'p' parameter 'min_dist' must be a finite number...
    """

    name: str
    type: str = "str"
    default: Any = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    min_value: Any = None
    max_value: Any = None
    step: Any = None
    presets: tuple[Any, ...] | None = None

    def parse(self, raw: Any, panel: str) -> Any:
        """Convert a raw (usually string) value and check it against the schema."""
        value = raw
        try:
            if self.type == "int":
                value = int(raw)
            elif self.type == "float":
                value = float(raw)
            elif self.type == "bool":
                value = _parse_bool(raw)
            else:
                value = str(raw)
        except (TypeError, ValueError, OverflowError):
            raise UsageError(
                f"Panel {panel!r} parameter {self.name!r} must be of type {self.type}.",
                self.help, f"{self.name}={raw!r}") from None
        if self.choices is not None and value not in self.choices:
            raise UsageError(
                f"Panel {panel!r} parameter {self.name!r} must be one of "
                f"{', '.join(map(str, self.choices))}.", "", f"{self.name}={raw!r}")
        if self.type in ("int", "float"):
            self._check_range(value, raw, panel)
        return value

    def _check_range(self, value: float, raw: Any, panel: str) -> None:
        """Refuse NaN, infinities and values outside the declared range (a deep link's
        `min_dist=nan` or `perplexity=-1` would otherwise fail deep inside UMAP or t-SNE)."""
        if not math.isfinite(value):
            raise UsageError(f"Panel {panel!r} parameter {self.name!r} must be a finite "
                             "number.", self._range_hint(), f"{self.name}={raw!r}")
        low, high = self.min_value, self.max_value
        if self.type == "int" and low is None and high is None:
            low, high = -MAX_INT, MAX_INT
        if (low is not None and value < low) or (high is not None and value > high):
            raise UsageError(f"Panel {panel!r} parameter {self.name!r} is out of range.",
                             self._range_hint(low, high), f"{self.name}={raw!r}")

    def _range_hint(self, low: Any = None, high: Any = None) -> str:
        low = self.min_value if low is None else low
        high = self.max_value if high is None else high
        if low is not None and high is not None:
            return f"Give a value from {low} to {high}."
        if low is not None:
            return f"Give a value of at least {low}."
        if high is not None:
            return f"Give a value of at most {high}."
        return f"Give a number, e.g. {self.default}."


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


@dataclass
class PanelContext:
    """What a panel builder may read: the model, and the paths of the data and logs.

    Attributes:
        loaded: the model, or `None` while it loads, when it was refused, or when a panel
            needs none.
        data_path: the `--data` path, if any (an `s3://`/`gs://` URL stays a `str`:
            `Path` would fold its `//`; so do `logdir`, `vectors_path`, `metadata_path`).
        logdir: the `--logdir` path, if any.
        preflight: the file's static report; taken from `loaded` when not given.
        vectors_path: a `.npy`/`.tsv` of vectors to project, if any.
        metadata_path: their metadata TSV, if any.
        compare_path: the second model (`--compare`): a model file, or a folder of
            checkpoints, if any.
        memo: `memo(key, compute)` returns a cached result for a plain-string key; the UI
            passes its cache, so expensive steps inside a builder (a UMAP) are not redone when
            only a cheap parameter (a colour) changes. `None`: compute every time.
        progress: `progress(fraction, message)` for long steps (a UMAP); the UI passes a
            progress bar. `None`: silent.
    """

    loaded: LoadedModel | None = None
    data_path: Path | str | None = None
    logdir: Path | str | None = None
    preflight: Preflight | None = None
    vectors_path: Path | str | None = None
    metadata_path: Path | str | None = None
    compare_path: Path | None = None
    memo: Callable[[str, Callable[[], Any]], Any] | None = None
    progress: Callable[[float, str], None] | None = None

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()`, memoised under `key` plus this context's identity when `memo` is set."""
        if self.memo is None:
            return compute()
        return self.memo(f"{self.identity()}|{key}", compute)

    def dataset(self):
        """The data for `loaded` (`insight.data.dataset_for`: `data_path`, else the data beside
        the model, else synthetic), memoised once for every panel that reads it."""
        from insight.data import dataset_for

        return self.cached("dataset", lambda: dataset_for(self.loaded, self.data_path))

    def identity(self) -> str:
        """Plain-string identity of the inputs: model file (and its mtime), data, logdir."""
        parts = []
        if self.loaded is not None:
            file = self.loaded.preflight.model_file
            stamp = file.stat().st_mtime_ns if file.exists() else 0
            parts.append(f"{file}@{stamp}:{self.loaded.safe_mode}")
        parts += [str(self.data_path), str(self.logdir), str(self.vectors_path),
                  str(self.metadata_path)]
        if self.compare_path is not None:
            parts.append(f"compare={_stamped(self.compare_path)}")
        return "|".join(parts)

    def __post_init__(self) -> None:
        if self.preflight is None and self.loaded is not None:
            self.preflight = self.loaded.preflight


def _stamped(path: Path) -> str:
    """A path and its modification time, so a file saved again is not served from a cache."""
    try:
        return f"{path}@{path.stat().st_mtime_ns}"
    except OSError:
        return str(path)


@dataclass(frozen=True)
class Panel:
    """A named, registered builder with its parameter schema.

    Attributes:
        name: the registry key (`"layer_graph"`).
        title: what the UI shows.
        kind: `"figure"`, `"table"`, `"card"` or `"dot"`.
        builder: `builder(ctx, **params) -> result`.
        params: the schema.
        needs_model: whether the builder reads `ctx.loaded` (else `ctx.preflight` is enough).
        description: one sentence for galleries and `--help`.
        uses: which context inputs the result depends on (`"model"`, `"data"`,
            `"logdir"`, `"compare"`); caches key on exactly these.
        deterministic: `False` for panels that draw measurements (timings), so the same
            inputs give different pixels; snapshot tests leave them out unless named.
    """

    name: str
    title: str
    kind: str
    builder: Callable[..., Any]
    params: tuple[Param, ...] = field(default_factory=tuple)
    needs_model: bool = True
    description: str = ""
    uses: tuple[str, ...] = ("model",)
    deterministic: bool = True


_REGISTRY: dict[str, Panel] = {}


def register(panel: Panel) -> Panel:
    """Add a panel to the registry (a name can be registered once)."""
    if panel.kind not in KINDS:
        raise ValueError(f"Panel kind must be one of {KINDS}. Received: kind={panel.kind!r}")
    if panel.name in _REGISTRY and _REGISTRY[panel.name].builder is not panel.builder:
        raise ValueError(f"A panel named {panel.name!r} is already registered.")
    _REGISTRY[panel.name] = panel
    return panel


def panel_names() -> list[str]:
    """Names of all registered panels, sorted."""
    return sorted(_REGISTRY)


def get_panel(name: str) -> Panel:
    """The panel called `name`.

    Raises:
        UsageError: no such panel; the message lists the existing ones.
    """
    if name not in _REGISTRY:
        raise UsageError(
            f"No such panel: {name!r}. Existing panels are: {', '.join(sorted(_REGISTRY))}.",
            "", f"panel={name!r}")
    return _REGISTRY[name]


def validate_params(panel: Panel, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed parameters for `panel` from raw values (e.g. URL strings), defaults filled in.

    Raises:
        UsageError: an unknown parameter (the valid ones are listed) or a bad value.
    """
    known = {p.name: p for p in panel.params}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        valid = ", ".join(known) or "none"
        raise UsageError(
            f"Panel {panel.name!r} has no parameter {unknown[0]!r}. Its parameters are: {valid}.",
            "", f"{unknown[0]}={raw[unknown[0]]!r}")
    return {name: p.parse(raw[name], panel.name) if name in raw else p.default
            for name, p in known.items()}


def build_panel(name: str, ctx: PanelContext, **params: Any) -> Any:
    """Validate `params` and run the panel's builder.

    Example:

    >>> fig = build_panel("param_chart", PanelContext(loaded))  # doctest: +SKIP
    """
    panel = get_panel(name)
    if "model" in panel.uses and ((ctx.loaded is None and panel.needs_model)
                                  or (ctx.loaded is None and ctx.preflight is None)):
        raise UsageError(f"Panel {name!r} needs a loaded model.", "Choose or pass a model first.",
                         "model=None")
    result = panel.builder(ctx, **validate_params(panel, params))
    _tag(result, name)
    return result


def _tag(result: Any, name: str) -> None:
    """Mark a figure with the panel that built it (`layout.meta.insight_panel`): the page
    tests check that every chart the app draws carries a registered name."""
    layout = getattr(result, "layout", None)
    if layout is None or not hasattr(layout, "meta"):
        return
    meta = layout.meta if isinstance(layout.meta, dict) else {}
    layout.meta = {**meta, "insight_panel": name}
