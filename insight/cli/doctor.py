"""`insight doctor`: the doctor's diagnosis on the terminal, or as JSON for CI.

```
insight doctor MODEL [--data PATH] [--logdir DIR] [--train-probe] [--xla] [--profile]
                     [--json] [--fail-on warning|error]
insight doctor MODEL --data 'shards/*.tfrecord' --features SPEC.json [--max-examples N]
insight doctor MODEL --data-fn FILE.py [--max-examples N]
```

Streamed data (TFRecord shards, local or `s3://`, or a trusted `tf.data` builder) is read as
`insight stats` reads it, up to `STREAM_ROWS` examples (the most the doctor's statistics read
of any data), fewer with `--max-examples`.

MODEL is a model file, its `s3://`/`gs://` URL (fetched into insight's cache, then checked and
loaded as a local file) or a bundled sample's name (`digits_cnn`). The `data.npz` and the
`logs/` folder beside the model are used unless `--data` / `--logdir` say otherwise (as the
app does). The exit status is 1 when a finding reaches `--fail-on` (default `error`), so a CI
job can gate on it; 2 on bad input (one `error:` line).

Example:

>>> main(["doctor", "digits_cnn", "--fail-on", "warning"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from insight.cli.console import check_data, check_path, check_remote, quiet_native_stderr
from insight.errors import UsageError

__all__ = ["add_doctor_parser", "run_doctor", "resolve_model", "report_text"]

FAIL_ON = ("warning", "error")
STREAM_ROWS = 2048  # examples of a stream the doctor reads (insight.doctor.evidence.STATS_ROWS)
WIDTH = 100
_WORDS = {"error": "ERROR", "warning": "WARNING", "info": "NOTE"}
_PAGES = {"doctor": "Doctor", "overview": "Overview", "activations": "Activations",
          "gradients": "Gradients", "embeddings": "Embeddings", "training": "Training",
          "profiler": "Profiler", "compiler": "XLA compiler"}


def add_doctor_parser(sub) -> None:
    """Add `insight doctor` to the subcommands."""
    from insight.launch import add_model_args

    p = sub.add_parser("doctor", help="diagnose why a model does not learn or generalise "
                                      "(exit 1 when a finding reaches --fail-on)")
    p.add_argument("model", metavar="MODEL", help="model file, or a bundled sample's name")
    add_model_args(p, stream=True)
    p.add_argument("--train-probe", action="store_true",
                   help="also run the active checks: train a copy of the model on one batch "
                        "and sweep its learning rate")
    p.add_argument("--xla", action="store_true",
                   help="also time the forward pass with XLA against tf.function (compiles "
                        "the model)")
    p.add_argument("--profile", action="store_true", default=None,
                   help="read the logdir's newest profile even when it is large (slow to "
                        "convert); small ones are read anyway")
    p.add_argument("--json", action="store_true",
                   help='print {"findings": [...], "checked": [...], "skipped": [...]}')
    p.add_argument("--fail-on", choices=FAIL_ON, default="error",
                   help="exit 1 when a finding is this severe or worse (default: error)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def resolve_model(model: str, data: str | None, logdir: str | None, *,
                  bundled_data: bool = True
                  ) -> tuple[str, str | None, str | None, str | None]:
    """`(model path, data, logdir, custom objects)`: a sample's name becomes its files; a
    `logs/` folder beside a model file is its default logdir (its `data.npz` is found when
    the data is read).

    `bundled_data=False` leaves a sample's data out (`--data-fn` replaces it). TFRecord
    shards and URLs are checked when they are read (`insight.cli.console.check_data`).

    Raises:
        UsageError: MODEL is neither a path nor a sample, or `--data`/`--logdir` is missing.
        StorageError: a `--data`/`--logdir` URL with nothing behind it, or refused.
    """
    from insight.data.stream import is_stream_path
    from insight.model.samples import list_samples
    from insight.remote import is_remote

    samples = {s.name: s for s in list_samples()}
    sample = samples.get(model)
    custom = None
    if sample is not None:
        model = str(sample.model)
        if bundled_data:
            data = data or (str(sample.data) if sample.data else None)
        logdir = logdir or (str(sample.logdir) if sample.logdir else None)
        custom = str(sample.custom_objects) if sample.custom_objects else None
    elif not is_remote(model) and not Path(model).expanduser().exists():
        raise UsageError("MODEL is neither a file nor a bundled sample.",
                         f"Give a model path, an s3:// or gs:// URL, or one of: "
                         f"{', '.join(samples)}.", f"MODEL={model!r}")
    for flag, value in (("--data", data), ("--logdir", logdir)):
        if is_stream_path(value):  # shards are listed with their spec (check_data)
            continue
        # a URL is looked up in its storage now, before any model loads, as serve does: a
        # missing bucket or refused credentials are one line, not a finding after the load
        if is_remote(value):
            check_remote(value)
        else:
            check_path(flag, value)
    if logdir is None and not is_remote(model):
        path = Path(model).expanduser()
        beside = (path if path.is_dir() else path.parent) / "logs"
        logdir = str(beside) if beside.is_dir() else None
    return model, data, logdir, custom


def run_doctor(args: argparse.Namespace) -> int:
    """`insight doctor`; returns 1 when a finding reaches `--fail-on`, else 0."""
    from insight.data import dataset_for
    from insight.data.stream import is_stream_path
    from insight.doctor import Evidence, doctor_dataset, run_checks
    from insight.model.loading import load_model
    from insight.model.sandbox import LoadLimits

    streamed = bool(args.features or args.data_fn or is_stream_path(args.data))
    # a sample's bundled data is its default, not a second source beside --data-fn
    path, data, logdir, custom = resolve_model(args.model, args.data, args.logdir,
                                               bundled_data=not args.data_fn)
    if streamed:  # shards listed and their spec read now: one line before any model loads
        data, features, data_fn = check_data(data, args.features, args.data_fn)
    limits = LoadLimits.parse(args.load_timeout, args.load_memory)
    with quiet_native_stderr(not args.debug):
        loaded = load_model(path, safe_mode=not args.unsafe,  # a child checks it first
                            custom_objects=args.custom_objects or custom, isolate=limits)
        if streamed:
            cap = min(args.max_examples or STREAM_ROWS, STREAM_ROWS)
            dataset, why = dataset_for(loaded, data, features=features, data_fn=data_fn,
                                       max_examples=cap, head_rows=cap), None
        else:  # what insight.diagnose does, shown
            dataset, why = doctor_dataset(loaded, data)
        report = run_checks(Evidence(loaded, dataset, logdir, data_error=why, xla=args.xla,
                                     profile=args.profile),
                            train_probe=args.train_probe)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        shown = dataset.describe() if dataset is not None else f"none ({why})"
        print(report_text(report, loaded.name, path, shown, logdir))
    return 1 if report.at_least(args.fail_on) else 0


def _wrapped(text: str, indent: str = "  ") -> str:
    return textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def report_text(report, name: str, path: str, data: str, logdir: str | None) -> str:
    """The plain-text report: the model, its data (`data`: in words) and log, the verdict,
    each finding (explanation, fix, evidence, where it shows), what was checked and what
    could not be."""
    lines = [f"{name} ({path}), diagnosed in {report.seconds:.1f} s",
             _wrapped(f"data: {data}", ""), f"logdir: {logdir or 'none'}",
             "", report.verdict()]
    for f in report.findings:
        where = f"{_PAGES.get(f.page, f.page)} page (/{f.page}), panel {f.panel}"
        lines += ["", f"{_WORDS[f.severity]:<8}{f.check}" + (f" · {f.layer}" if f.layer else "")
                  + f"  [{f.category}]", _wrapped(f.explanation),
                  _wrapped(f"fix: {f.suggestion}"), _wrapped(f"evidence: {f.evidence_text()}"),
                  _wrapped(f"see: {where}")]
    lines += ["", _wrapped(f"checked ({len(report.checked)}): {', '.join(report.checked)}", "")]
    reasons: dict[str, list[str]] = {}
    for s in report.skipped:
        reasons.setdefault(s["reason"], []).append(s["check"])
    if reasons:
        lines.append(f"could not check ({len(report.skipped)}):")
        lines += [_wrapped(f"- {r}: {', '.join(n)}") for r, n in reasons.items()]
    return "\n".join(lines)
