"""The doctor against buggy/fixed pairs of small training setups, and its speed.

Scenarios (`_doctor_scenarios.py`): pairs of small training setups of our own making on
scikit-learn's bundled datasets, make_moons/make_circles, XOR and a sine; the buggy one of
each pair is labelled with the doctor category it should be diagnosed with, the fixed one is
the same setup done right. Each is trained once and cached under `.bench/doctor/` (model.keras,
data.npz, a TensorBoard logdir and history.csv), keyed by a hash of the scenario's
definition, so reruns only diagnose. A setup whose `fit` fails (labels a loss cannot take)
is saved untrained and diagnosed without logs, as a user would bring it.

Rows: per scenario, its category; detected (the buggy model gets a warning or an error);
right cause (a warning or an error of the intended category); the fixed twin's errors and
warnings; the seconds of `insight.load_model` + `diagnose` for each. Totals and targets:
- detection rate on the buggy models >= 90%;
- right-cause rate >= 80%;
- false alarms: no error-level finding and at most one warning on any fixed model.

Speed rows:
- `insight doctor sample_models/digits_cnn/model.keras` with its data and logdir, in a fresh
  process (cold: Python, TensorFlow, the model), against the 10 s target, beside
  `insight stats` on the same model and data (what a fresh process costs anyway);
- MobileNetV2 (96x96, weights=None, 512 random inputs): `insight doctor` vs `insight stats` on
  the same inputs, each in a fresh process, against the 1.5x target; and the same two calls
  alone (`diagnose` vs `insight.probe.report.layer_report`, given the loaded model and the
  data path), each in its own fresh process.

Usage: python benchmarks/bench_doctor.py [--only NAME ...] [--retrain] [--no-speed]
                                         [--repeat 2] [--json results.json]
The first run trains every setup (a few minutes on two cores); later runs take the diagnosis
and speed rows only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / ".bench" / "doctor"
sys.path.insert(0, str(HERE))

from _doctor_scenarios import SCENARIOS, SEED, Scenario, scenario_key  # noqa: E402

PROBLEMS = ("warning", "error")
TARGET_DETECTED, TARGET_RIGHT, TARGET_FIXED_WARNINGS = 0.90, 0.80, 1
TARGET_CLI_S, TARGET_RATIO = 10.0, 1.5
MOBILENET_ROWS = 512


def require_doctor():
    try:
        from insight.doctor import diagnose
    except ImportError as error:
        sys.exit(f"insight.doctor not available yet ({error}); nothing to benchmark.")
    return diagnose


# -- training (cached) -------------------------------------------------------------------------

def variant(fixed: bool) -> str:
    return "fixed" if fixed else "buggy"


def cached_folder(s: Scenario, fixed: bool) -> Path:
    return CACHE / s.name / f"{variant(fixed)}-{scenario_key(s)}"


def train(s: Scenario, fixed: bool, folder: Path) -> None:
    """Train one setup and save its model, data, logs and meta.json into `folder`."""
    import keras
    import numpy as np

    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    setup = s.build(fixed)
    setup.model.compile(optimizer=setup.optimizer, loss=setup.loss, metrics=setup.metrics)
    rows = np.arange(len(setup.y))
    train_rows = setup.train if setup.train is not None else np.setdiff1d(rows, setup.val)

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    callbacks = [keras.callbacks.TensorBoard(log_dir=str(tmp / "logs")),
                 keras.callbacks.CSVLogger(str(tmp / "history.csv"))]
    start, error, history = time.perf_counter(), None, {}
    try:
        fitted = setup.model.fit(setup.x[train_rows], setup.y[train_rows],
                                 validation_data=(setup.x[setup.val], setup.y[setup.val]),
                                 epochs=setup.epochs, batch_size=setup.batch_size, verbose=0,
                                 callbacks=callbacks)
        history = {k: [float(v) for v in vs] for k, vs in fitted.history.items()}
    except Exception as exc:  # the bug itself (labels the loss cannot take): keep the setup
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
        shutil.rmtree(tmp / "logs", ignore_errors=True)
        (tmp / "history.csv").unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    setup.model.save(tmp / "model.keras")
    arrays = {"x": setup.x, "y": setup.y}
    if setup.class_names:
        arrays["class_names"] = np.array(setup.class_names)
    np.savez_compressed(tmp / "data.npz", **arrays)
    meta = {"scenario": s.name, "variant": variant(fixed), "category": s.category,
            "bug": s.bug, "key": scenario_key(s), "train_seconds": round(seconds, 2),
            "fit_error": error, "history": history}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    for old in folder.parent.glob(f"{variant(fixed)}-*"):
        if old != tmp:
            shutil.rmtree(old, ignore_errors=True)
    tmp.rename(folder)


def ensure_trained(s: Scenario, fixed: bool, retrain: bool) -> tuple[Path, bool]:
    """The setup's cached folder, trained now when missing; and whether it was."""
    folder = cached_folder(s, fixed)
    if retrain or not (folder / "meta.json").is_file():
        train(s, fixed, folder)
        return folder, True
    return folder, False


# -- diagnosis ---------------------------------------------------------------------------------

def diagnose_folder(diagnose, folder: Path) -> tuple[list, float]:
    """Findings of `insight.load_model` + `diagnose` on one setup, and the seconds taken."""
    import insight

    logdir = folder / "logs"
    start = time.perf_counter()
    loaded = insight.load_model(folder / "model.keras")
    report = diagnose(loaded, data=folder / "data.npz",
                      logdir=logdir if logdir.is_dir() else None)
    return list(report.findings), time.perf_counter() - start


def problems(findings: list) -> list:
    return [f for f in findings if f.severity in PROBLEMS]


def short(findings: list) -> str:
    """The check of each warning and error (`(E)`), worst first."""
    return ", ".join(f"{f.check}{'(E)' if f.severity == 'error' else ''}"
                     for f in problems(findings)) or "-"


def evaluate(diagnose, names: list[str], retrain: bool) -> list[dict]:
    rows = []
    for name in names:
        s = SCENARIOS[name]
        row = {"scenario": name, "category": s.category, "bug": s.bug}
        for fixed in (False, True):
            folder, trained = ensure_trained(s, fixed, retrain)
            meta = json.loads((folder / "meta.json").read_text())
            findings, seconds = diagnose_folder(diagnose, folder)
            row[variant(fixed)] = {
                "folder": str(folder.relative_to(REPO)), "trained_now": trained,
                "fit_error": meta["fit_error"], "seconds": seconds,
                "findings": [f.to_dict() for f in findings],
                "errors": sum(f.severity == "error" for f in findings),
                "warnings": sum(f.severity == "warning" for f in findings),
                "short": short(findings)}
        buggy = row["buggy"]["findings"]
        row["detected"] = any(f["severity"] in PROBLEMS for f in buggy)
        row["right_cause"] = any(f["severity"] in PROBLEMS and f["category"] == s.category
                                 for f in buggy)
        row["right_cause_info"] = any(f["category"] == s.category for f in buggy)
        print(f"  {name}: detected={row['detected']} right={row['right_cause']} "
              f"fixed E/W={row['fixed']['errors']}/{row['fixed']['warnings']}", flush=True)
        rows.append(row)
    return rows


def yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def print_table(rows: list[dict]) -> dict:
    print()
    head = (f"{'scenario':<24} {'category':<25} {'detected':>8} {'right':>6} "
            f"{'fixed E/W':>9} {'s buggy':>8} {'s fixed':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        fixed = r["fixed"]
        right = yes(r["right_cause"]) if r["right_cause"] or not r["right_cause_info"] \
            else "info"
        print(f"{r['scenario']:<24} {r['category']:<25} {yes(r['detected']):>8} {right:>6} "
              f"{fixed['errors']:>4}/{fixed['warnings']:<4} {r['buggy']['seconds']:>8.2f} "
              f"{fixed['seconds']:>8.2f}")
    print()
    print("What the doctor said (warnings and errors; (E) = error):")
    for r in rows:
        crash = " [fit failed]" if r["buggy"]["fit_error"] else ""
        print(f"  {r['scenario']}{crash}: buggy: {r['buggy']['short']}")
        if r["fixed"]["errors"] or r["fixed"]["warnings"]:
            print(f"  {'':<{len(r['scenario'])}}  fixed: {r['fixed']['short']}")

    n = len(rows)
    detected = sum(r["detected"] for r in rows) / n
    right = sum(r["right_cause"] for r in rows) / n
    fixed_errors = sum(r["fixed"]["errors"] for r in rows)
    fixed_warnings = sum(r["fixed"]["warnings"] for r in rows)
    worst_fixed = max(r["fixed"]["warnings"] for r in rows)
    alarmed = sum(bool(r["fixed"]["errors"] or r["fixed"]["warnings"]) for r in rows)
    times = [r[v]["seconds"] for r in rows for v in ("buggy", "fixed")]
    fixed_ok = fixed_errors == 0 and worst_fixed <= TARGET_FIXED_WARNINGS
    print()
    print(f"scenarios: {n} pairs ({2 * n} models)")
    print(f"detected (warning or error on the buggy model): {detected:.0%} "
          f"(target >= {TARGET_DETECTED:.0%}: "
          f"{'met' if detected >= TARGET_DETECTED else 'MISSED'})")
    print(f"right cause (a warning/error of the intended category): {right:.0%} "
          f"(target >= {TARGET_RIGHT:.0%}: {'met' if right >= TARGET_RIGHT else 'MISSED'})")
    print(f"false alarms on the fixed models: {fixed_errors} errors, {fixed_warnings} warnings "
          f"on {alarmed} of {n} models, at most {worst_fixed} warnings on one (target: no error, "
          f"<= {TARGET_FIXED_WARNINGS} warning each: {'met' if fixed_ok else 'MISSED'})")
    print(f"time per model (load + diagnose): mean {statistics.mean(times):.2f} s, "
          f"max {max(times):.2f} s")
    return {"pairs": n, "detected": detected, "right_cause": right,
            "fixed_errors": fixed_errors, "fixed_warnings": fixed_warnings,
            "fixed_max_warnings": worst_fixed, "mean_seconds": statistics.mean(times)}


# -- speed -------------------------------------------------------------------------------------

def cli(*args: str, timeout: float = 600) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "insight.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
    return time.perf_counter() - start, proc


def cli_ok(proc: subprocess.CompletedProcess) -> bool:
    """`insight doctor` exits 1 when a finding reaches --fail-on: still a run."""
    return proc.returncode in (0, 1) and "Traceback" not in proc.stderr


def failure(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or proc.stdout).strip().splitlines()
    return f"exit {proc.returncode}: {text[-1] if text else ''}"


def speed_digits(repeat: int) -> dict:
    """`insight doctor` on digits_cnn in fresh processes, beside `insight stats` (what a fresh
    process with TensorFlow, the model and one pass over the data costs anyway)."""
    sample = REPO / "sample_models" / "digits_cnn"
    model, data = str(sample / "model.keras"), str(sample / "data.npz")
    runs = {"doctor": ("doctor", model, "--data", data, "--logdir", str(sample / "logs")),
            "stats": ("stats", model, "--data", data)}
    times: dict[str, list[float]] = {"doctor": [], "stats": []}
    for i in range(repeat):  # interleaved, order swapped every repeat
        for which in (("doctor", "stats") if i % 2 == 0 else ("stats", "doctor")):
            seconds, proc = cli(*runs[which])
            if not cli_ok(proc):
                print(f"insight {which} digits_cnn: failed ({failure(proc)})")
                return {"error": f"{which}: {failure(proc)}"}
            times[which].append(seconds)
    doctor, stats = times["doctor"], times["stats"]
    print(f"insight doctor digits_cnn (fresh process, data + logdir): first {doctor[0]:.1f} s, "
          f"best {min(doctor):.1f} s of {repeat} (target < {TARGET_CLI_S:.0f} s: "
          f"{'met' if min(doctor) < TARGET_CLI_S else 'MISSED'}); insight stats on the same "
          f"model and data: best {min(stats):.1f} s")
    return {"doctor_first": doctor[0], "doctor_best": min(doctor), "stats_best": min(stats)}


def mobilenet_files() -> tuple[Path, Path]:
    """MobileNetV2 (96x96, weights=None) and 512 random inputs, cached."""
    folder = CACHE / "mobilenetv2"
    model_path, data_path = folder / "model.keras", folder / "data.npz"
    if not (model_path.is_file() and data_path.is_file()):
        import keras
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(SEED)
        model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)
        model.save(model_path)
        x = np.random.default_rng(SEED).random((MOBILENET_ROWS, 96, 96, 3), dtype=np.float32)
        np.savez(data_path, x=x)
    return model_path, data_path


CALL_ONLY = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import insight
which, model, data = sys.argv[1:4]
loaded = insight.load_model(model)
start = time.perf_counter()
if which == "doctor":
    from insight.doctor import diagnose
    diagnose(loaded, data=data)
else:
    from insight.data import dataset_for
    from insight.probe.report import layer_report
    layer_report(loaded, dataset_for(loaded, data))
print(f"SECONDS {time.perf_counter() - start:.3f}")
"""


def call_only(which: str, model: Path, data: Path) -> float | str:
    proc = subprocess.run([sys.executable, "-c", CALL_ONLY, which, str(model), str(data)],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("SECONDS "):
            return float(line.split()[1])
    return failure(proc)


def speed_mobilenet(repeat: int) -> dict:
    model, data = mobilenet_files()
    out: dict = {}
    doctor_times, stats_times = [], []
    for i in range(repeat):  # interleaved, order swapped every repeat
        order = (("stats", stats_times), ("doctor", doctor_times))
        for which, times in order if i % 2 == 0 else order[::-1]:
            seconds, proc = cli(which, str(model), "--data", str(data), timeout=900)
            if not cli_ok(proc):
                print(f"insight {which} MobileNetV2: failed ({failure(proc)})")
                return {"error": f"{which}: {failure(proc)}"}
            times.append(seconds)
    doctor, stats = statistics.median(doctor_times), statistics.median(stats_times)
    ratio = doctor / stats
    print(f"MobileNetV2 96x96, {MOBILENET_ROWS} inputs, fresh processes: insight doctor "
          f"{doctor:.1f} s vs insight stats {stats:.1f} s = {ratio:.2f}x (median of {repeat}; "
          f"target <= {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'MISSED'})")
    out.update(cli_doctor=doctor, cli_stats=stats, cli_ratio=ratio)

    calls = {w: call_only(w, model, data) for w in ("stats", "doctor")}
    if all(isinstance(v, float) for v in calls.values()):
        ratio = calls["doctor"] / calls["stats"]
        print(f"MobileNetV2 calls alone (loaded model, data path; fresh process each): diagnose "
              f"{calls['doctor']:.1f} s vs layer_report {calls['stats']:.1f} s = {ratio:.2f}x "
              f"(target <= {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'MISSED'})")
        out.update(call_doctor=calls["doctor"], call_stats=calls["stats"], call_ratio=ratio)
    else:
        print(f"MobileNetV2 calls alone: failed {calls}")
    return out


# -- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), metavar="NAME",
                        help=f"scenarios to run (default: all {len(SCENARIOS)})")
    parser.add_argument("--retrain", action="store_true", help="ignore the training cache")
    parser.add_argument("--no-speed", action="store_true",
                        help="skip the digits_cnn CLI and MobileNetV2 timings")
    parser.add_argument("--repeat", type=int, default=2, help="runs per speed row (default: 2)")
    parser.add_argument("--json", metavar="PATH", help="also write every result as JSON")
    args = parser.parse_args(argv)

    diagnose = require_doctor()
    warnings.filterwarnings("ignore", category=UserWarning)  # Keras on the buggy setups
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    names = args.only or list(SCENARIOS)
    start = time.perf_counter()
    print(f"{len(names)} buggy/fixed pairs (training cache: {CACHE.relative_to(REPO)})")
    rows = evaluate(diagnose, names, args.retrain)
    totals = print_table(rows)
    print(f"scenarios took {time.perf_counter() - start:.0f} s "
          f"({sum(r[v]['trained_now'] for r in rows for v in ('buggy', 'fixed'))} trained now)")

    speed = {}
    if not args.no_speed:
        print()
        speed["digits_cnn"] = speed_digits(args.repeat)
        speed["mobilenetv2"] = speed_mobilenet(args.repeat)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "totals": totals, "speed": speed},
                                              indent=1, default=str) + "\n")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
