"""`insight export` and `insight snapshot`: panels to files, and screenshot regression tests.

```
insight export MODEL --panel NAME [--param k=v ...] [--data P] [--logdir D] --out FILE
insight export MODEL --all-panels --out DIR        # DIR/index.html gallery + .html/.png each
insight snapshot MODEL --baseline-dir DIR [--panels NAME|NAME?k=v ...] [--update]
```

MODEL is a model file or the name of a bundled sample (`digits_cnn`); a sample brings its data
and logdir unless `--data`/`--logdir` say otherwise. `.html` is self-contained (plotly.js
inlined), `.png`/`.svg` are drawn by the system Chromium (`INSIGHT_BROWSER`, `BROWSER_PATH`,
else `/usr/bin/chromium`) through kaleido; a missing kaleido or Chromium is reported before the
model loads. `snapshot` exits 1 when a panel differs from its baseline.

Example:

>>> main(["export", "digits_cnn", "--panel", "param_chart", "--out", "p.png"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from insight.cli.console import quiet_native_stderr
from insight.errors import UsageError

__all__ = ["add_export_parsers", "run_export", "run_snapshot"]


def _model_args(p: argparse.ArgumentParser) -> None:
    from insight.launch import add_model_args

    p.add_argument("model", metavar="MODEL", help="model file, or a bundled sample's name")
    add_model_args(p)
    p.add_argument("--browser", metavar="PATH",
                   help="Chromium to render images with (default: INSIGHT_BROWSER, "
                        "BROWSER_PATH, /usr/bin/chromium)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def add_export_parsers(sub) -> None:
    """Add the `export` and `snapshot` subcommands to the CLI's subparsers."""
    exp = sub.add_parser("export", help="write a panel to .html/.png/.svg, or all panels "
                                        "to a gallery folder")
    _model_args(exp)
    which = exp.add_mutually_exclusive_group(required=True)
    which.add_argument("--panel", metavar="NAME", help="the panel to export")
    which.add_argument("--all-panels", action="store_true",
                       help="every panel with default parameters into --out DIR, with "
                            "index.html")
    exp.add_argument("--param", action="append", default=[], metavar="K=V",
                     help="a panel parameter (repeatable), e.g. --param method=umap")
    exp.add_argument("--out", required=True, metavar="FILE|DIR",
                     help="FILE.html, FILE.png or FILE.svg; a folder with --all-panels")

    snap = sub.add_parser("snapshot", help="compare panels rendered to PNG with baselines "
                                           "(exit 1 on a difference)")
    _model_args(snap)
    snap.add_argument("--baseline-dir", required=True, metavar="DIR",
                      help="where NAME.png baselines live")
    snap.add_argument("--panels", nargs="+", metavar="SPEC",
                      help="panels to check: NAME or 'NAME?k=v&k=v' (default: all)")
    snap.add_argument("--update", action="store_true", help="rewrite the baselines")
    snap.add_argument("--failures-dir", metavar="DIR",
                      help="actual/expected/diff images of failures "
                           "(default: <baseline-dir>-failures)")
    snap.add_argument("--threshold", type=float, default=0.1,
                      help="per-pixel colour distance 0..1 (default: 0.1)")
    snap.add_argument("--max-diff", type=float, default=0.002,
                      help="share of pixels allowed to differ (default: 0.002)")


def _context(args: argparse.Namespace):
    from insight.cli.console import check_given
    from insight.model.loading import load_model
    from insight.model.samples import list_samples
    from insight.model.sandbox import LoadLimits
    from insight.panels.registry import PanelContext
    from insight.remote import is_remote

    path, data, logdir = args.model, args.data, args.logdir
    samples = {s.name: s for s in list_samples()}
    sample = samples.get(args.model)
    if sample is None and Path(args.model).exists():
        resolved = Path(args.model).resolve()
        sample = next((s for s in samples.values() if s.model.resolve() == resolved), None)
    if sample is not None:
        path = str(sample.model)
        data = data or (str(sample.data) if sample.data else None)
        logdir = logdir or (str(sample.logdir) if sample.logdir else None)
    elif not (is_remote(args.model) or Path(args.model).exists()):
        raise UsageError("MODEL is neither a file nor a bundled sample.",
                         f"Give a model path or one of: {', '.join(samples)}.",
                         f"MODEL={args.model!r}")
    # Local paths must exist; s3:// and gs:// ones are looked up in their storage now.
    data, logdir = check_given("--data", data), check_given("--logdir", logdir)
    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    custom = args.custom_objects or (str(sample.custom_objects) if sample and
                                     sample.custom_objects else None)
    with quiet_native_stderr(not args.debug):
        loaded = load_model(path, safe_mode=not args.unsafe, custom_objects=custom,
                            isolate=limits)  # first loaded in a child with limits
    def where(value: str | None) -> Path | str | None:  # a URL reaches the panels as text
        return value if not value or is_remote(value) else Path(value)

    return PanelContext(loaded, where(data), where(logdir))


def run_export(args: argparse.Namespace) -> int:
    """`insight export`; returns the exit status."""
    from insight.export.files import EXTENSIONS, export_all, export_panel, parse_params
    from insight.export.render import Renderer, check_rendering
    from insight.panels.registry import get_panel, validate_params

    params = parse_params(args.param)
    out = Path(args.out)
    if args.panel:  # every argument checked before the model loads
        validate_params(get_panel(args.panel), params)
        if out.suffix.lower() not in EXTENSIONS:
            raise UsageError(f"Exports are written as {', '.join(EXTENSIONS)} files.",
                             "Name the output file with one of those suffixes.",
                             f"--out {args.out!r}")
    elif params:
        raise UsageError("--param applies to one --panel, not to --all-panels.",
                         "Drop --param, or export that panel alone.", f"--param {args.param}")
    needs_browser = args.all_panels or out.suffix.lower() != ".html"
    if needs_browser:  # kaleido and Chromium, before the model loads
        check_rendering(args.browser)
    ctx = _context(args)
    if args.panel:
        renderer = Renderer(args.browser) if needs_browser else None
        try:
            with quiet_native_stderr(not args.debug):
                export_panel(ctx, args.panel, params, out, renderer=renderer)
        finally:
            if renderer is not None:
                renderer.close()
        print(f"wrote {out}")
        return 0
    with Renderer(args.browser) as renderer, quiet_native_stderr(not args.debug):
        items = export_all(ctx, out, renderer=renderer)
    for item in items:
        done = f"skipped: {item.skipped}" if item.skipped else ", ".join(item.files)
        print(f"{item.name:<24} {done}")
    print(f"wrote {out / 'index.html'} ({sum(not i.skipped for i in items)} panels)")
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    """`insight snapshot`; returns 0 when every panel matches (or was updated), else 1."""
    from insight.export.render import Renderer
    from insight.export.snapshot import check_snapshots, parse_spec, snapshot_panels
    from insight.panels.registry import get_panel, validate_params

    for spec in args.panels or []:
        name, raw = parse_spec(spec)
        validate_params(get_panel(name), raw)
    check_snapshots(args.browser, update=args.update)  # before the model loads
    ctx = _context(args)
    with Renderer(args.browser) as renderer, quiet_native_stderr(not args.debug):
        results = snapshot_panels(ctx, args.baseline_dir, args.panels, update=args.update,
                                  failures_dir=args.failures_dir, threshold=args.threshold,
                                  max_fraction=args.max_diff, renderer=renderer)
    bad = [r for r in results if r.status in ("failed", "missing")]
    for r in results:
        extra = f"  {r.message}" if r.message and r.status != "updated" else ""
        print(f"{r.status:<8} {r.name}{extra}")
    verb = "updated" if args.update else "matched"
    print(f"{len(results) - len(bad) - sum(r.status == 'skipped' for r in results)} {verb}, "
          f"{len(bad)} failed, {sum(r.status == 'skipped' for r in results)} skipped",
          file=sys.stderr if bad else sys.stdout)
    return 1 if bad else 0
