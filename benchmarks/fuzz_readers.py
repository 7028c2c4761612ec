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
       [--only NAME] [--atheris] [--atheris-runs 20000]
"""

from __future__ import annotations

import subprocess
import sys
import time

from _fuzz import ROOT, parser, run_properties

PROPERTIES = ["test_event_reader_random_bytes", "test_event_reader_mutated_files",
              "test_event_reader_appends_read_like_one_read", "test_data_random_bytes",
              "test_data_mutated_npz", "test_data_npy_headers_that_lie", "test_data_random_csv",
              "test_csv_log_random_rows", "test_history_json_random_structures",
              "test_projector_random_configs", "test_deep_link_random_queries",
              "test_panel_params_random_values"]


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--atheris", action="store_true", help="also run the atheris harness")
    ap.add_argument("--atheris-runs", type=int, default=20000)
    args = ap.parse_args(argv)
    failed = run_properties("test_fuzz_readers", PROPERTIES, args)
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
