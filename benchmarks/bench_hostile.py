"""The hostile corpus through the real command line: what each input costs and what it says.

Builds the model corpus (`tests/hostile/models.py`) and, when it exists, the data and log
corpus (`tests/hostile/data_logs.py`) into a scratch folder, then runs one `insight` process
per input, one after the other:

- model files: `insight summary FILE` (the default safe mode; the CLI first loads the file in
  its sandboxed child);
- data files: `insight stats SAMPLE --data FILE` (SAMPLE is the bundled digits_cnn);
- logs: `insight doctor SAMPLE --logdir FILE`;
- a case may carry its own `command` (a list of arguments with `{path}`), used as given.

One row per input: the outcome (exit code; "refused" when the process printed an `error:`
line), the first 100 characters of that line (or of the output), the peak resident memory of
the largest process of the run (`/usr/bin/time -v`, which counts the sandbox child too), the
wall time, and whether a payload's marker file appeared (it must not). Then the SavedModel with
`--unsafe`, whose report must still name its `WriteFile` op (with `--unsafe` the op may run:
the user said the program is trusted).

Usage: python benchmarks/bench_hostile.py [--only models|data] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SAMPLE = ROOT / "sample_models" / "digits_cnn" / "model.keras"
_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def _command(case) -> list[str]:
    own = getattr(case, "command", None)
    if own:
        return [str(a).replace("{path}", str(case.path)) for a in own]
    if case.kind == "model":
        return ["summary", str(case.path)]
    if case.kind == "data":
        return ["stats", str(SAMPLE), "--data", str(case.path)]
    return ["doctor", str(SAMPLE), "--logdir", str(case.path)]


def run_cli(args: list[str], timeout: float = 300) -> dict:
    """One `insight` process under `/usr/bin/time -v`: exit code, stdout, error line, memory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSIGHT_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "insight.cli", *args]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=tempfile.gettempdir(), check=False)
    except subprocess.TimeoutExpired:
        return {"code": "timeout", "message": f"no answer in {timeout:.0f} s", "rss_mb": None,
                "seconds": time.perf_counter() - start, "stdout": "", "all": ""}
    seconds = time.perf_counter() - start
    rss = _RSS.search(proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    message = errors[0] if errors else (lines[0] if lines else "")
    return {"code": proc.returncode, "refused": bool(errors), "message": message,
            "rss_mb": int(rss.group(1)) / 1024 if rss else None, "seconds": seconds,
            "stdout": proc.stdout, "all": proc.stdout + proc.stderr}


def build_cases(directory: Path, only: str | None) -> list:
    cases = []
    if only in (None, "models"):
        from hostile.models import build_model_corpus

        cases += build_model_corpus(directory / "models")
    if only in (None, "data"):
        try:
            from hostile.data_logs import build_data_log_corpus
        except ImportError:
            print("(tests/hostile/data_logs.py not found: models only)")
        else:
            cases += build_data_log_corpus(directory / "data_logs")
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["models", "data"], default=None)
    parser.add_argument("--keep", type=Path, default=None, help="build the corpus here, keep it")
    args = parser.parse_args(argv)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="insight_hostile_"))
    start = time.perf_counter()
    cases = build_cases(directory, args.only)
    print(f"{len(cases)} inputs built in {time.perf_counter() - start:.1f} s under {directory}")
    header = f"{'input':<30} {'kind':<6} {'outcome':<12} {'peak MB':>8} {'time s':>7}  message"
    print(header)
    print("-" * len(header))
    bad = 0
    for case in cases:
        row = run_cli(_command(case))
        outcome = "refused (2)" if row.get("refused") and row["code"] == 2 else str(row["code"])
        ran = case.marker is not None and case.marker.exists()
        # A model must be refused, its error line naming what was found; a data file or a log
        # may end in a clean partial result whose note (anywhere in the output) says it.
        said = row["message"] if case.kind == "model" else row.get("all", "")
        missing = [e for e in case.expect if e not in said]
        if ran or missing or (case.kind == "model" and outcome != "refused (2)"):
            bad += 1
            outcome += " !"
        rss = f"{row['rss_mb']:.0f}" if row["rss_mb"] else "?"
        print(f"{case.name:<30} {case.kind:<6} {outcome:<12} {rss:>8} {row['seconds']:>7.1f}  "
              f"{row['message'][:100]}" + ("  MARKER WRITTEN" if ran else ""))
    saved = [c for c in cases if c.name == "savedmodel_writefile"]
    if saved:
        row = run_cli(["summary", str(saved[0].path), "--unsafe"])
        named = "WriteFile" in row["stdout"]
        # --unsafe means "I trust this program": its first forward pass runs WriteFile (in the
        # sandboxed child). What must hold is that the report still names the op.
        print(f"\nsavedmodel_writefile --unsafe: exit {row['code']}, report names WriteFile: "
              f"{named}, marker written: {saved[0].marker.exists()} (the user trusted the "
              f"program), {row['seconds']:.1f} s, {row['rss_mb'] or 0:.0f} MB")
        bad += 0 if named else 1
    print(f"\n{bad} unexpected outcome(s) (marked !)" if bad else "\nevery input as expected")
    if args.keep is None:
        shutil.rmtree(directory, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
