"""Screenshot regression tests for panels: render to PNG, compare with a baseline.

`insight snapshot MODEL --baseline-dir DIR` and `insight.testing.assert_panel_matches` both
call `snapshot_panels`. Pixels are compared like pixelmatch (the tool Streamlit's own
snapshot tests use): a pixel differs when its colour distance exceeds `threshold` (0..1,
anti-aliasing ignored), and a panel fails when more than `max_fraction` of its pixels differ
or its size changed. For each failure `actual.png`, `expected.png` and `diff.png` (differing
pixels in red over a faded copy) are written under `failures_dir/NAME/`. A missing baseline
is a failure too (the rendered image is left as `actual.png`), unless `update=True`, which
(re)writes every baseline.

A panel is named alone (`projection`) or with parameters in link syntax
(`projection?method=umap&dims=3`), and its baseline is `DIR/<that name, made file-safe>.png`.

Example:

>>> results = snapshot_panels(ctx, "tests/snapshots", ["param_chart"])  # doctest: +SKIP
>>> [(r.name, r.status) for r in results]  # doctest: +SKIP
[('param_chart', 'passed')]
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from insight.errors import InsightError
from insight.export.render import Renderer, check_rendering, require_module
from insight.panels.registry import (
    PanelContext,
    build_panel,
    get_panel,
    panel_names,
    validate_params,
)

__all__ = ["THRESHOLD", "MAX_FRACTION", "Comparison", "SnapshotResult", "compare_png",
           "parse_spec", "baseline_name", "snapshot_panels", "check_snapshots"]

THRESHOLD = 0.1  # per-pixel colour distance (pixelmatch's default)
MAX_FRACTION = 0.002  # share of differing pixels allowed (Streamlit's snapshot tests: 0.2%)


@dataclass(frozen=True)
class Comparison:
    """How an image compares with its baseline."""

    ok: bool
    differing: int
    fraction: float
    reason: str = ""
    diff_png: bytes | None = None


@dataclass(frozen=True)
class SnapshotResult:
    """One panel's outcome: `status` is passed, failed, missing, updated or skipped."""

    name: str
    status: str
    message: str = ""
    fraction: float = 0.0
    files: tuple[Path, ...] = ()


def _require_pixelmatch() -> None:
    require_module("pixelmatch", "pixelmatch>=0.3", "Snapshots are compared with baselines")


def check_snapshots(browser: str | Path | None = None, *, update: bool = False) -> Path:
    """Check, before any model loads, that snapshots can run: kaleido and a Chromium to
    render with, and pixelmatch to compare (not needed to `update` baselines).

    Args:
        browser: a Chromium path that wins over the environment. Defaults to `None`.
        update: only baselines are written, nothing compared. Defaults to `False`.

    Returns:
        The browser that will render.

    Raises:
        UsageError: a missing package or no Chromium (the message names the fix).
    """
    found = check_rendering(browser)
    if not update:
        _require_pixelmatch()
    return found


def compare_png(actual: bytes, expected: bytes, *, threshold: float = THRESHOLD,
                max_fraction: float = MAX_FRACTION) -> Comparison:
    """Compare two PNGs pixelmatch-style (see the module docstring)."""
    from PIL import Image

    _require_pixelmatch()
    from pixelmatch.contrib.PIL import pixelmatch

    if actual == expected:
        return Comparison(True, 0, 0.0)
    a = Image.open(io.BytesIO(actual)).convert("RGBA")
    e = Image.open(io.BytesIO(expected)).convert("RGBA")
    if a.size != e.size:
        return Comparison(False, -1, 1.0, f"size {a.size[0]}x{a.size[1]} differs from the "
                                          f"baseline's {e.size[0]}x{e.size[1]}")
    diff = Image.new("RGBA", a.size)
    differing = pixelmatch(a, e, diff, threshold=threshold)
    fraction = differing / (a.size[0] * a.size[1])
    out = io.BytesIO()
    diff.save(out, format="PNG")
    ok = fraction <= max_fraction
    reason = "" if ok else (f"{differing:,} pixels ({fraction:.3%}) differ, more than the "
                            f"{max_fraction:.3%} allowed")
    return Comparison(ok, differing, fraction, reason, out.getvalue())


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`"projection?method=umap&dims=3"` -> `("projection", {"method": "umap", "dims": "3"})`."""
    name, _, query = spec.partition("?")
    return name.strip(), dict(parse_qsl(query, keep_blank_values=True))


def baseline_name(spec: str) -> str:
    """The file name of a panel spec's baseline (file-safe, stable)."""
    name, params = parse_spec(spec)
    suffix = "".join(f"--{k}={v}" for k, v in sorted(params.items()))
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", name + suffix) + ".png"


def _default_specs(ctx: PanelContext) -> list[str]:
    return [n for n in panel_names() if get_panel(n).deterministic
            and not ("logdir" in get_panel(n).uses and ctx.logdir is None)]


def snapshot_panels(ctx: PanelContext, baseline_dir: str | Path,
                    panels: Sequence[str] | None = None, *, update: bool = False,
                    failures_dir: str | Path | None = None, threshold: float = THRESHOLD,
                    max_fraction: float = MAX_FRACTION, renderer: Renderer | None = None
                    ) -> list[SnapshotResult]:
    """Render `panels` (default: every panel this context can feed) and compare or update.

    Args:
        ctx: the model, data and logdir.
        baseline_dir: where `NAME.png` baselines live.
        panels: panel specs (`name` or `name?k=v&...`). Defaults to every deterministic
            panel; panels that need a logdir are left out when there is none.
        update: write the rendered images as the new baselines. Defaults to `False`.
        failures_dir: where actual/expected/diff images of failures go. Defaults to
            `<baseline_dir>-failures` beside the baselines.
        threshold: per-pixel colour distance, 0..1. Defaults to `THRESHOLD`.
        max_fraction: share of pixels allowed to differ. Defaults to `MAX_FRACTION`.
        renderer: an open `Renderer`; `None` opens one for this call. Defaults to `None`.

    Raises:
        UsageError: an unknown panel or a bad parameter in `panels`, kaleido or pixelmatch
            missing, no Chromium (all before anything is built).
    """
    from insight.export.files import render_result

    base = Path(baseline_dir)
    fails = Path(failures_dir) if failures_dir else base.parent / f"{base.name}-failures"
    specs = list(panels) if panels else _default_specs(ctx)
    parsed = []
    for spec in specs:  # every spec checked before anything renders
        name, raw = parse_spec(spec)
        parsed.append((spec, name, validate_params(get_panel(name), raw)))
    if not update:
        _require_pixelmatch()
    own = renderer is None
    renderer = renderer or Renderer()
    results: list[SnapshotResult] = []
    try:
        for spec, name, params in parsed:
            try:
                result = build_panel(name, ctx, **params)
            except InsightError as exc:
                if panels:  # asked for by name: a failure
                    results.append(SnapshotResult(spec, "failed", str(exc)))
                else:
                    results.append(SnapshotResult(spec, "skipped", str(exc)))
                continue
            png = render_result(result, name, "png", renderer)
            results.append(_check(spec, png, base, fails, update, threshold, max_fraction))
    finally:
        if own:
            renderer.close()
    return results


def _check(spec: str, png: bytes, base: Path, fails: Path, update: bool, threshold: float,
           max_fraction: float) -> SnapshotResult:
    target = base / baseline_name(spec)
    if update:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
        return SnapshotResult(spec, "updated", f"wrote {target}", files=(target,))
    folder = fails / Path(baseline_name(spec)).stem
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "actual.png").write_bytes(png)
        return SnapshotResult(spec, "missing", f"no baseline {target} (rendered image: "
                              f"{folder / 'actual.png'}; --update writes baselines)",
                              1.0, (folder / "actual.png",))
    expected = target.read_bytes()
    cmp = compare_png(png, expected, threshold=threshold, max_fraction=max_fraction)
    if cmp.ok:
        return SnapshotResult(spec, "passed", fraction=cmp.fraction)
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "actual.png", folder / "expected.png"]
    files[0].write_bytes(png)
    files[1].write_bytes(expected)
    if cmp.diff_png is not None:
        files.append(folder / "diff.png")
        files[2].write_bytes(cmp.diff_png)
    return SnapshotResult(spec, "failed", f"{cmp.reason}; see {folder}", cmp.fraction,
                          tuple(files))
