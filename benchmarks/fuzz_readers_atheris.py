"""Coverage-guided fuzzing of the file readers with atheris (libFuzzer for Python).

Hypothesis (`benchmarks/fuzz_readers.py`) mutates inputs at random; atheris watches which
branches of insight's readers an input reaches and keeps the inputs that reach new ones, so it
digs into the event-record decoder and the `.npy` header checks from a few seeds. The first
byte picks the reader (event file, `.npz`, `.npy`, `.csv` data, history JSON); the rest is the
file. Any exception other than an `InsightError` is a crash (atheris prints the input and
exits non-zero); `-timeout` catches hangs.

Usage: python benchmarks/fuzz_readers_atheris.py -runs=20000 -max_len=4096 [-timeout=10]
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np
import pandas  # noqa: F401  imported before instrumentation: only insight's code is traced
from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: F401

with atheris.instrument_imports(include=["insight"]):
    from insight.curves.files import read_history_json
    from insight.curves.tfevents import EventFileReader
    from insight.data import load_dataset
    from insight.errors import InsightError

SCRATCH = Path(tempfile.mkdtemp(prefix="insight_atheris_"))
KINDS = ["events.out.tfevents.x", "data.npz", "data.npy", "data.csv", "history.json"]


def one_input(data: bytes) -> None:
    if not data:
        return
    name = KINDS[data[0] % len(KINDS)]
    path = SCRATCH / name
    path.write_bytes(data[1:] or b"\0")
    try:
        if name.startswith("events"):
            reader = EventFileReader(path)
            reader.read()
            reader.scalars(), reader.histograms()
        elif name.endswith(".json"):
            read_history_json(path)
        else:
            load_dataset(path)
    except InsightError:
        pass


def _seeds(folder: Path) -> None:
    """One valid input per reader, for atheris to mutate."""
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(SCRATCH / "tbx")) as writer:
        for step in range(4):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_histogram("w", np.arange(8.0), 0)
    [events] = (SCRATCH / "tbx").glob("events.out.tfevents.*")
    buf = io.BytesIO()
    np.savez(buf, x=np.arange(6, dtype=np.float32).reshape(3, 2), y=np.arange(3))
    npy = io.BytesIO()
    np.save(npy, np.arange(6, dtype=np.float32).reshape(3, 2))
    seeds = [b"\0" + events.read_bytes(), b"\1" + buf.getvalue(), b"\2" + npy.getvalue(),
             b"\3a,b,label\n1,2,0\n3,4,1\n", b'\4{"loss": [1.0, 0.5], "epoch": [0, 1]}']
    for i, seed in enumerate(seeds):
        (folder / f"seed{i}").write_bytes(seed)


def main() -> None:
    corpus = SCRATCH / "corpus"
    corpus.mkdir()
    _seeds(corpus)
    atheris.Setup([*sys.argv, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
