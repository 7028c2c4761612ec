"""The preflight fuzzed at length: the properties of `tests/hostile/test_fuzz_preflight.py` with
thousands of examples each and a fresh random seed (the test suite's pass is short and
derandomized).

Each property feeds `insight.preflight` hostile bytes — random files, mutated `.keras`
archives, random config JSON, random zip directories (names with `..`, absolute paths,
symlink modes), mutated SavedModel protobufs and `keras_metadata.pb`, mutated HDF5 files —
and fails on any exception other than insight's own errors, or on an example slower than the
deadline. Prints one row per property: examples run, time, result.

Usage: python benchmarks/fuzz_preflight.py [--examples 2000] [--deadline-ms 3000] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PROPERTIES = ["test_random_bytes", "test_mutated_archive", "test_random_config_json",
              "test_random_zip_directory", "test_random_savedmodel", "test_mutated_h5"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--deadline-ms", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    import os
    import warnings

    os.environ.update(INSIGHT_FUZZ_EXAMPLES=str(args.examples), INSIGHT_FUZZ_RANDOM="1",
                      INSIGHT_FUZZ_DEADLINE_MS=str(args.deadline_ms))
    from hostile import test_fuzz_preflight as props  # reads the settings above
    from hypothesis import seed

    warnings.filterwarnings("ignore", message="Duplicate name")
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {run_seed}, {args.examples} examples per property, "
          f"deadline {args.deadline_ms} ms")
    print(f"{'property':<28} {'examples':>9} {'time s':>8}  result")
    failed = 0
    for name in PROPERTIES:
        start = time.perf_counter()
        try:
            seed(run_seed)(getattr(props, name))()
            result = "ok: only InsightError, none over the deadline"
        except Exception as exc:  # the finding to report, with its falsifying example
            failed += 1
            result = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        print(f"{name:<28} {args.examples:>9} {time.perf_counter() - start:>8.1f}  {result}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
