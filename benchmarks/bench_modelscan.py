"""insight's preflight side by side with ProtectAI's ModelScan on the same files.

The files: the hostile model corpus (`tests/hostile/models.py`) and clean ones (the bundled
digits_cnn, digits_cnn_h5, multi_io and nested samples, and a freshly exported SavedModel),
so that both sides' false alarms show too. ModelScan runs once over the whole folder
(`modelscan -p DIR -r json`), from its own virtual environment (`--modelscan`, default
/tmp/msvenv/bin/modelscan): it pins dependencies that do not belong in insight's. Make it with

    python3.11 -m venv /tmp/msvenv && /tmp/msvenv/bin/pip install 'modelscan[tensorflow,h5py]'

insight's verdict is what `insight.load_model` does in safe mode, stopped before Keras:
`preflight()` then `check_safety()` — refused (with the start of its message) or passed.

Prints one row per file and whether insight flags every file ModelScan flags (exit 1 if not).

Usage: python benchmarks/bench_modelscan.py [--modelscan PATH] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
CLEAN_SAMPLES = ["digits_cnn/model.keras", "digits_cnn_h5/model.h5", "multi_io/model.keras",
                 "nested/model.keras"]


def build(directory: Path) -> list[tuple[str, Path]]:
    """(name, path) of every file to scan: the hostile corpus, then clean ones."""
    from hostile.models import build_model_corpus

    files = [(c.name, c.path) for c in build_model_corpus(directory / "hostile")]
    clean = directory / "clean"
    clean.mkdir()
    for sample in CLEAN_SAMPLES:
        dst = clean / sample.replace("/", "_")
        shutil.copy(ROOT / "sample_models" / sample, dst)
        files.append((f"clean: {sample.split('/')[0]}", dst))
    import keras

    x = keras.Input((3,), name="x")
    keras.Model(x, keras.layers.Dense(2)(x)).export(str(clean / "exported"), verbose=False)
    files.append(("clean: exported SavedModel", clean / "exported"))
    shutil.rmtree(directory / "hostile" / "_base")  # scaffolding, not an input
    return files


def run_modelscan(exe: Path, directory: Path) -> tuple[dict, float]:
    """ModelScan's JSON report over `directory`, and its wall time."""
    report = directory.parent / "modelscan.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    subprocess.run([str(exe), "-p", str(directory), "-r", "json", "-o", str(report)],
                   capture_output=True, text=True, env=env, cwd=directory.parent, check=False,
                   timeout=1200)
    return json.loads(report.read_text()), time.perf_counter() - start


def modelscan_verdicts(report: dict, files: list[tuple[str, Path]], root: Path) -> dict:
    """{path: "flagged: ops" | "error: ..." | "clean"} from ModelScan's issues and errors."""
    def owner(source: str) -> Path | None:
        src = root / source.split(":")[0]
        return next((p for _, p in files if src == p or p in src.parents), None)

    out: dict[Path, str] = {}
    for issue in report.get("issues", []):
        path = owner(issue["source"])
        if path is not None:
            prev = out.get(path, "flagged:")
            out[path] = f"{prev} {issue['operator']} ({issue['severity']})"
    for error in report.get("errors", []):
        path = owner(error.get("source", ""))
        if path is not None and path not in out:
            out[path] = f"error: {error['description'][:50]}"
    return out


def insight_verdict(path: Path) -> str:
    from insight.errors import InsightError
    from insight.model.loading import check_safety
    from insight.model.preflight import preflight

    try:
        check_safety(preflight(path))
    except InsightError as exc:
        return f"refused: {str(exc)[:70]}"
    return "passed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modelscan", type=Path, default=Path("/tmp/msvenv/bin/modelscan"))
    parser.add_argument("--keep", type=Path, default=None, help="build the files here, keep them")
    args = parser.parse_args(argv)
    if not args.modelscan.exists():
        print(f"ModelScan not found at {args.modelscan}; make its venv as the docstring says.")
        return 2
    directory = args.keep or Path(tempfile.mkdtemp(prefix="insight_vs_modelscan_"))
    files = build(directory)
    report, ms_seconds = run_modelscan(args.modelscan, directory)
    version = report.get("summary", {}).get("modelscan_version", "?")
    ms = modelscan_verdicts(report, files, directory)
    start = time.perf_counter()
    ours = {path: insight_verdict(path) for _, path in files}
    ours_seconds = time.perf_counter() - start
    print(f"{'file':<30} {'modelscan ' + version:<34} insight")
    print("-" * 120)
    missed = []
    for name, path in files:
        theirs = ms.get(path, "clean")
        mine = ours[path]
        if theirs.startswith("flagged") and not mine.startswith("refused"):
            missed.append(name)
        print(f"{name:<30} {theirs[:34]:<34} {mine}")
    hostile = [p for n, p in files if not n.startswith("clean")]
    flagged_ms = sum(ms.get(p, "").startswith("flagged") for p in hostile)
    flagged_ours = sum(ours[p].startswith("refused") for p in hostile)
    print(f"\nhostile files flagged: modelscan {flagged_ms}/{len(hostile)}, "
          f"insight {flagged_ours}/{len(hostile)}; clean files refused by insight: "
          f"{sum(ours[p].startswith('refused') for n, p in files if n.startswith('clean'))}"
          f" (a SavedModel is refused in safe mode by policy)")
    print(f"time: modelscan {ms_seconds:.1f} s (one process, TensorFlow import included), "
          f"insight preflight {ours_seconds:.2f} s (in process, no TensorFlow)")
    print("insight flags everything modelscan flags: "
          + ("yes" if not missed else f"NO, missed {', '.join(missed)}"))
    if args.keep is None:
        shutil.rmtree(directory, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
