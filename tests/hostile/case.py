"""One hostile input and what insight must say about it.

Shared by the model corpus (``hostile.models``) and the data/log corpus (``hostile.data_logs``)
so that the tests and ``benchmarks/bench_hostile.py`` walk both the same way.

>>> from pathlib import Path
>>> case = Case("lambda_top", Path("/tmp/x.keras"), "model", ("Lambda",), Path("/tmp/MARKER"))
>>> case.expect
('Lambda',)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """A generated hostile file.

    ``name``: a short identifier (used as the pytest id); ``path``: the file or directory;
    ``kind``: "model", "data" or "log"; ``expect``: substrings the error message (or the
    partial result's note) must contain, all of them; ``marker``: a file the payload tries to
    write when its code runs: it must never exist (None when the input carries no code).
    """

    name: str
    path: Path
    kind: str
    expect: tuple[str, ...] = ()
    marker: Path | None = None
