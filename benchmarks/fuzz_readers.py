"""The readers fuzzed at length: the properties of `tests/hostile/test_fuzz_readers.py` with
thousands of examples each and a fresh random seed (the test suite's pass is short and
derandomized).

The event reader (random bytes, mutated tf.summary and tensorboardX files, reads split at any
byte), the data loaders (`.npz`/`.npy`/`.csv`, lying headers), the training-log tables, the
projector config and the deep-link parser must return or raise insight's own errors, each
example within the deadline. Prints one row per property: examples run, time, result (the
falsifying example's first line when one fails). `--atheris` also runs
`benchmarks/fuzz_readers_atheris.py` (coverage-guided) for `--atheris-runs` inputs.

Usage: python benchmarks/fuzz_readers.py [--examples 2000] [--deadline-ms 3000] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PROPERTIES = ["test_event_reader_random_bytes", "test_event_reader_mutated_files",
              "test_event_reader_appends_read_like_one_read", "test_data_random_bytes",
              "test_data_mutated_npz", "test_data_npy_headers_that_lie", "test_data_random_csv",
              "test_csv_log_random_rows", "test_history_json_random_structures",
              "test_projector_random_configs", "test_deep_link_random_queries",
              "test_panel_params_random_values"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--deadline-ms", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--only", default="", help="run the properties whose name has this")
    parser.add_argument("--atheris", action="store_true", help="also run the atheris harness")
    parser.add_argument("--atheris-runs", type=int, default=20000)
    args = parser.parse_args(argv)

    os.environ.update(INSIGHT_FUZZ_EXAMPLES=str(args.examples), INSIGHT_FUZZ_RANDOM="1",
                      INSIGHT_FUZZ_DEADLINE_MS=str(args.deadline_ms))
    from hostile import test_fuzz_readers as props  # reads the settings above
    from hypothesis import seed

    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {run_seed}, {args.examples} examples per property, "
          f"deadline {args.deadline_ms} ms")
    print(f"{'property':<45} {'examples':>9} {'time s':>8}  result")
    failed = 0
    for name in PROPERTIES:
        if args.only not in name:
            continue
        start = time.perf_counter()
        try:
            seed(run_seed)(getattr(props, name))()
            result = "ok: only InsightError, none over the deadline"
        except Exception as exc:  # the finding to report, with its falsifying example
            failed += 1
            subs = getattr(exc, "exceptions", [exc])
            result = "FAILED: " + "; ".join(
                f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"
                + "".join(f" [{n.splitlines()[0][:200]}]" for n in getattr(e, "__notes__", [])[:2])
                for e in subs)
        print(f"{name:<45} {args.examples:>9} {time.perf_counter() - start:>8.1f}  {result}",
              flush=True)
    if args.atheris:
        harness = ROOT / "benchmarks" / "fuzz_readers_atheris.py"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(harness), f"-runs={args.atheris_runs}",
                               "-max_len=4096"], capture_output=True, text=True)
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        result = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        failed += proc.returncode != 0
        print(f"{'atheris: events, npz, npy, csv, history':<45} {args.atheris_runs:>9} "
              f"{time.perf_counter() - start:>8.1f}  {result}: {tail[:160]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
