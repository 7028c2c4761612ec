"""`insight compare A B`: two models compared layer by layer; `insight compare CHECKPOINT_DIR`:
one model across its checkpoints.

```
insight compare A.keras B.keras [--data X] [--examples N] [--json] [--out report.html]
insight compare CHECKPOINT_DIR [--data X] [--json] [--out report.html]
```

A, B and CHECKPOINT_DIR may be `s3://` or `gs://` URLs: they are fetched into insight's cache
(once per object version) and read there as local files.

Both models load as every command loads one (in a checked child first, safe mode unless
`--unsafe`). Text output: the summary, the layers that differ, the weight change per layer,
each layer of A's best match in B by CKA, the agreement and accuracies, dead units that
appeared or disappeared. `--out` writes one self-contained HTML report of every compare panel
(plotly.js inlined once: it opens offline).

Example:

>>> main(["compare", "a.keras", "b.keras", "--json"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from insight.cli.console import check_path, quiet_native_stderr
from insight.errors import InsightError, UsageError
from insight.launch import add_model_args

__all__ = ["add_compare_parser", "run_compare", "REPORT_PANELS", "report_html", "best_match"]

# The panels of the HTML report, in reading order.
REPORT_PANELS = ("compare_summary", "compare_architecture", "compare_graph", "compare_weights",
                 "compare_cka", "compare_confusion", "compare_accuracy",
                 "compare_disagreements", "compare_disagreement_table", "compare_activations")


def add_compare_parser(sub) -> None:
    """Add `insight compare` to the subcommands."""
    cmp = sub.add_parser("compare", help="compare two models layer by layer (or one model's "
                                         "checkpoints)")
    cmp.add_argument("model", metavar="A", help="the first model file, or a folder of "
                                                "checkpoints of one model")
    cmp.add_argument("other", metavar="B", nargs="?", help="the second model file")
    cmp.add_argument("--data", metavar="PATH", help="inputs both models run on (default: the "
                                                   "data.npz beside A, else synthetic)")
    cmp.add_argument("--examples", type=int, default=1024, metavar="N",
                     help="inputs used for CKA, predictions and statistics (default: 1024)")
    cmp.add_argument("--json", action="store_true", help="print JSON")
    cmp.add_argument("--out", metavar="FILE.html", help="write a self-contained HTML report")
    add_model_args(cmp, companions=False)
    cmp.add_argument("--debug", action="store_true", help="show tracebacks")


def run_compare(args: argparse.Namespace) -> int:
    """Compare `args.model` with `args.other` (or run a checkpoint timeline); exit status."""
    from insight.model.fetched import fetch_model
    from insight.panels.compare import is_checkpoint_folder
    from insight.remote import is_remote

    for flag, value in (("A", args.model), ("B", args.other), ("--data", args.data)):
        if not is_remote(value):  # a URL is checked when it is fetched
            check_path(flag, value)
    if args.out and Path(args.out).suffix.lower() != ".html":
        raise UsageError("The report is an HTML file.", "Name it with .html.",
                         f"--out {args.out!r}")
    if args.examples < 4:
        raise UsageError("CKA needs at least 4 inputs.", "Give --examples 4 or more.",
                         f"--examples {args.examples}")
    # A remote A or B is fetched into insight's cache first, then read as a local one.
    if is_checkpoint_folder(Path(fetch_model(args.model))):
        return _timeline(args)
    if not args.other:
        raise UsageError("Compare needs two models (or a folder of checkpoints as A).",
                         "Give B: insight compare A.keras B.keras.", f"A={args.model!r}")
    with quiet_native_stderr(not args.debug):
        ctx = _context(args)
        cmp = _comparison(ctx, args.examples)
        out = _tables(cmp)
        if args.out:
            Path(args.out).write_text(report_html(ctx, args.examples), encoding="utf-8")
    if args.json:
        print(json.dumps(out, indent=2, default=_plain))
    else:
        print_report(out)
    if args.out:
        print(f"report: {args.out}")
    return 0


def _context(args: argparse.Namespace):
    from insight.model.fetched import fetch_model
    from insight.model.loading import load_model
    from insight.model.sandbox import LoadLimits
    from insight.panels.registry import PanelContext

    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    kw = dict(safe_mode=not args.unsafe, custom_objects=args.custom_objects, isolate=limits)
    a = load_model(args.model, **kw)
    b = load_model(args.other, **kw)
    store: dict[str, Any] = {}

    def memo(key: str, compute: Any) -> Any:  # B is the one loaded here, not a reload
        if key.endswith("|compare_model"):
            return b
        if key not in store:
            store[key] = compute()
        return store[key]

    return PanelContext(a, Path(args.data) if args.data else None,
                        compare_path=Path(fetch_model(args.other)), memo=memo)


def _comparison(ctx: Any, examples: int):
    from insight.panels.compare import comparison

    return comparison(ctx, examples)


def _tables(cmp: Any) -> dict[str, Any]:
    """Everything `--json` prints, as plain values."""
    cka = cmp.cka()
    acc = cmp.per_class_accuracy()
    return {
        "summary": cmp.summary(),
        "architecture_diff": _records(cmp.architecture_diff()),
        "weight_changes": _records(cmp.weight_changes()),
        "cka": {"layers_a": list(cka.index), "layers_b": list(cka.columns),
                "values": np.round(cka.to_numpy(), 6).tolist()},
        "agreement": cmp.agreement,
        "confusion": cmp.confusion().to_numpy().tolist(),
        "per_class_accuracy": None if acc is None else _records(acc),
        "disagreements": _records(cmp.disagreements()),
        "activation_changes": _records(cmp.activation_changes()),
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def print_report(out: dict[str, Any]) -> None:
    """The comparison `out` (what `--json` prints) as text on stdout."""
    s = out["summary"]
    print(f"layers: {s['same']} same, {s['changed']} changed, {s['added']} added, "
          f"{s['removed']} removed; {s['compared_layers']} layers with weights compared")
    diff = pd.DataFrame(out["architecture_diff"])
    differing = diff[diff.status != "same"] if len(diff) else diff
    if len(differing):
        print("\narchitecture diff:")
        print(differing.to_string(index=False, max_rows=40))
    weights = pd.DataFrame(out["weight_changes"])
    if len(weights):
        print("\nweight change (||B-A|| / ||A||, cosine):")
        print(weights.to_string(index=False, max_rows=40, float_format="{:.4g}".format))
    cka = out["cka"]
    values = np.asarray(cka["values"], dtype=float)
    if values.size:
        print("\nCKA: each layer of A, its best match in B")
        for i, layer in enumerate(cka["layers_a"]):
            j = best_match(values[i], cka["layers_b"], layer)
            print(f"  {layer:<32} {cka['layers_b'][j]:<32} {values[i, j]:.3f}")
    print(f"\nagreement: {out['agreement']:.1%}")
    if out["per_class_accuracy"]:
        acc = pd.DataFrame(out["per_class_accuracy"])
        print(acc.to_string(index=False, float_format="{:.3f}".format))
    units = pd.DataFrame(out["activation_changes"])
    moved = units[(units.appeared > 0) | (units.disappeared > 0)] if len(units) else units
    print("\ndead units: no change" if not len(moved) else
          "\ndead units that appeared or disappeared:")
    if len(moved):
        print(moved[["layer_a", "dead_a", "dead_b", "appeared", "disappeared"]]
              .to_string(index=False))


def best_match(row: Any, names: list[str], name: str) -> int:
    """Index of the highest CKA in `row`; on a tie (a Flatten equals its input up to a
    reshape), the layer of the same name.

    >>> best_match(np.array([0.9, 0.9, 0.1]), ["conv", "flatten", "dense"], "flatten")
    1
    """
    row = np.where(np.isfinite(row), row, -1.0)
    top = row.max()
    ties = [j for j in range(len(row)) if row[j] >= top - 1e-9]
    return next((j for j in ties if names[j] == name), ties[0])


def report_html(ctx: Any, examples: int = 1024) -> str:
    """One self-contained HTML page of every compare panel (plotly.js inlined once).

    Panels that cannot be built (no labels for accuracies) say why in their place.
    """
    import plotly.io as pio

    from insight.panels.registry import build_panel, get_panel

    parts, first = [], True
    for name in REPORT_PANELS:
        spec = get_panel(name)
        params = {"examples": examples} if name == "compare_cka" else {}
        try:
            result = build_panel(name, ctx, **params)
        except InsightError as exc:
            parts.append(f"<h2>{html.escape(spec.title)}</h2><p class='skip'>"
                         f"{html.escape(str(exc))}</p>")
            continue
        if spec.kind == "figure":
            parts.append(pio.to_html(result, include_plotlyjs=first, full_html=False,
                                     config={"displaylogo": False}))
            first = False
            continue
        frame = result if isinstance(result, pd.DataFrame) else pd.DataFrame(
            {"": list(result), "value": [str(v) for v in result.values()]})
        parts.append(f"<h2>{html.escape(spec.title)}</h2>"
                     + frame.to_html(index=False, escape=True, border=0, na_rep=""))
    a = html.escape(ctx.loaded.name)
    b = html.escape(str(ctx.compare_path.name))
    style = ("body{font-family:Liberation Sans,Arial,sans-serif;margin:24px;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin-bottom:24px}"
             "td,th{border-bottom:1px solid #e5e5e5;padding:3px 8px;text-align:left}"
             "h2{font-size:16px}.skip{color:#888}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>insight compare: {a} vs "
            f"{b}</title><style>{style}</style></head><body><h1>{a} vs {b}</h1>"
            + "".join(parts) + "</body></html>")


def _timeline(args: argparse.Namespace) -> int:
    """A checkpoint folder as A: the checkpoint timeline's report."""
    from insight.model.fetched import fetched_from

    report_fn = None
    for module in ("insight.compare.checkpoints", "insight.compare.timeline"):
        try:
            report_fn = getattr(importlib.import_module(module), "timeline_report", None)
        except ImportError:
            continue
        if report_fn is not None:
            break
    if report_fn is None:
        raise UsageError("This insight cannot read a folder of checkpoints yet.",
                         "Compare two model files instead.", f"A={args.model!r}")
    if args.other:
        raise UsageError("A folder of checkpoints is compared with itself over epochs: give "
                         "no second model.", f"Run insight compare {args.model}.",
                         f"B={args.other!r}")
    with quiet_native_stderr(not args.debug):
        report = report_fn(args.model, args.data, safe_mode=not args.unsafe,
                           max_inputs=args.examples)
    if args.out:
        tables = [("Checkpoints", report.checkpoints), ("Per layer", report.summary())]
        body = "".join(f"<h2>{t}</h2>" + f.to_html(index=False, border=0, na_rep="")
                       for t, f in tables)
        Path(args.out).write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
                                  f"insight checkpoints</title></head><body>{body}</body></html>",
                                  encoding="utf-8")
    out = json.dumps(report.to_dict(), indent=2, default=_plain) if args.json else report.text()
    for local in (report.folder.folder, report.folder.model_file):
        if local is not None and fetched_from(local):  # remote: named by URL, not the cache
            out = out.replace(str(local), fetched_from(local))
    print(out)
    return 0
