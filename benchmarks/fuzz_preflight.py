"""The preflight fuzzed at length: the properties of `tests/hostile/test_fuzz_preflight.py` with
thousands of examples each and a fresh random seed (the test suite's pass is short and
derandomized).

Each property feeds `insight.preflight` hostile bytes — random files, mutated `.keras`
archives, random config JSON, random zip directories (names with `..`, absolute paths,
symlink modes), mutated SavedModel protobufs and `keras_metadata.pb`, mutated HDF5 files —
and fails on any exception other than insight's own errors, or on an example slower than the
deadline. Prints one row per property: examples run, time, result.

Usage: python benchmarks/fuzz_preflight.py [--examples 2000] [--deadline-ms 3000] [--seed N]
       [--only NAME]
"""

from __future__ import annotations

import sys
import warnings

from _fuzz import parser, run_properties

PROPERTIES = ["test_random_bytes", "test_mutated_archive", "test_random_config_json",
              "test_random_zip_directory", "test_random_savedmodel", "test_mutated_h5"]


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    warnings.filterwarnings("ignore", message="Duplicate name")  # zipfile, on mutated archives
    return 1 if run_properties("test_fuzz_preflight", PROPERTIES, args) else 0


if __name__ == "__main__":
    sys.exit(main())
