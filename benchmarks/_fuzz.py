"""The runner the long fuzzing scripts share (`fuzz_preflight.py`, `fuzz_readers.py`): the
suite's hypothesis properties (`tests/hostile/test_fuzz_*.py`), run with thousands of
examples each and a fresh random seed, one printed row per property.

The properties read their settings from the environment when their module is imported
(`INSIGHT_FUZZ_EXAMPLES`, `INSIGHT_FUZZ_RANDOM`, `INSIGHT_FUZZ_DEADLINE_MS`), so the runner sets
them first and imports the module after.

Example:

>>> args = parser(__doc__).parse_args(["--examples", "50"])  # doctest: +SKIP
>>> run_properties("test_fuzz_readers", ["test_data_random_csv"], args)  # doctest: +SKIP
seed 1234, 50 examples per property, deadline 3000 ms
...
0
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every fuzzing script takes: `--examples`, `--deadline-ms`, `--seed`,
    `--only` (the properties whose name has this text)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--deadline-ms", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", default="", help="run the properties whose name has this")
    return ap


def _failure(exc: BaseException) -> str:
    """The falsifying example's first lines: each exception of a group, with its notes."""
    return "; ".join(
        f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"
        + "".join(f" [{n.splitlines()[0][:200]}]" for n in getattr(e, "__notes__", [])[:2])
        for e in getattr(exc, "exceptions", [exc]))


def run_properties(module: str, properties: list[str], args: argparse.Namespace) -> int:
    """Run `tests/hostile/<module>.py`'s `properties` (those whose name has `args.only`) with
    `args.examples` random examples each and one seed (`args.seed`, else a random one);
    print a row per property. Returns how many failed."""
    os.environ.update(INSIGHT_FUZZ_EXAMPLES=str(args.examples), INSIGHT_FUZZ_RANDOM="1",
                      INSIGHT_FUZZ_DEADLINE_MS=str(args.deadline_ms))
    sys.path.insert(0, str(ROOT / "tests"))
    props = importlib.import_module(f"hostile.{module}")  # reads the settings above
    from hypothesis import seed

    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    width = max(len(name) for name in properties) + 1
    print(f"seed {run_seed}, {args.examples} examples per property, "
          f"deadline {args.deadline_ms} ms")
    print(f"{'property':<{width}} {'examples':>9} {'time s':>8}  result")
    failed = 0
    for name in properties:
        if args.only not in name:
            continue
        start = time.perf_counter()
        try:
            seed(run_seed)(getattr(props, name))()
            result = "ok: only InsightError, none over the deadline"
        except Exception as exc:  # the finding to report, with its falsifying example
            failed += 1
            result = f"FAILED: {_failure(exc)}"
        print(f"{name:<{width}} {args.examples:>9} {time.perf_counter() - start:>8.1f}  {result}",
              flush=True)
    return failed
