"""The doctor's findings during training, as `DoctorCallback` records them: one JSON line per
new finding in `<logdir>/doctor.jsonl` (`{"step", "epoch", "time", ...finding}`), which the
Doctor page reads back.

Example:

>>> write_findings("logs/doctor.jsonl", [finding], step=3, epoch=3)  # doctest: +SKIP
>>> [(step, f.check) for step, f in read_findings("logs/")]  # doctest: +SKIP
[(3, 'loss_nan')]
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from pathlib import Path

from insight.doctor.findings import Finding

__all__ = ["LOG_NAME", "write_findings", "read_findings", "finding_from_dict"]

LOG_NAME = "doctor.jsonl"


def write_findings(path: str | Path, findings: Iterable[Finding], *, step: int,
                   epoch: int | None = None) -> int:
    """Append one JSON line per finding to `path`; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": int(step), "epoch": epoch, "time": time.time(),
                         **f.to_dict()}) for f in findings]
    if lines:
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return len(lines)


def finding_from_dict(record: dict) -> Finding:
    """A `Finding` from its `to_dict()` (extra keys ignored; "nan"/"inf" strings back to
    floats)."""
    def number(v):
        if v in ("nan", "inf", "-inf"):
            return float(v)
        return v

    evidence = {k: number(v) for k, v in (record.get("evidence") or {}).items()}
    return Finding(record["check"], record["category"], record["severity"], record.get("layer"),
                   evidence, record.get("explanation", ""), record.get("suggestion", ""),
                   record.get("page", "doctor"), record.get("panel", ""))


def read_findings(logdir: str | Path | None) -> list[tuple[int, Finding]]:
    """`[(step, finding)]` from every `doctor.jsonl` under `logdir` (or that file itself), in
    the order they were written; lines that do not parse are skipped."""
    if logdir is None:
        return []
    root = Path(logdir)
    files = [root] if root.is_file() and root.name == LOG_NAME else \
        sorted(root.rglob(LOG_NAME)) if root.is_dir() else []
    out: list[tuple[float, int, Finding]] = []
    for file in files:
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                out.append((float(record.get("time") or 0.0), int(record["step"]),
                            finding_from_dict(record)))
            except (ValueError, KeyError, TypeError):
                continue
    out.sort(key=lambda r: r[0] if math.isfinite(r[0]) else 0.0)
    return [(step, f) for _, step, f in out]
