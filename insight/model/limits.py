"""How long and how much memory the isolated first load of a model file may take.

`--load-timeout` / `--load-memory` (or `INSIGHT_LOAD_TIMEOUT` / `INSIGHT_LOAD_MEMORY`) become a
`LoadLimits`, which `insight.model.sandbox` enforces on its child.

Example:

>>> limits = LoadLimits.parse("30", "4G")
>>> limits.timeout_s, limits.memory_text
(30.0, '4 GB')
>>> parse_size("512M") == 512 * 2**20
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from insight.errors import UsageError

__all__ = ["LoadLimits", "parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class LoadLimits:
    """How long and how much memory the isolated first load of a file may take.

    Attributes:
        timeout_s: wall-clock seconds for the preflight, deserialization and first forward
            pass (not TensorFlow's start). Defaults to `60.0`.
        memory_bytes: the child's data memory limit. Defaults to 8 GiB: a ResNet50 load
            needs under 1 GB, the bombs of issue 14 over 10 GB.
    """

    timeout_s: float = 60.0
    memory_bytes: int = 8 * 2**30

    @classmethod
    def parse(cls, timeout: str | float | None = None, memory: str | int | None = None,
              env: Mapping[str, str] | None = None) -> LoadLimits:
        """Limits from `--load-timeout`/`--load-memory` text, else `INSIGHT_LOAD_TIMEOUT`/
        `INSIGHT_LOAD_MEMORY` in `env` (default: `os.environ`), else the defaults.

        Raises:
            UsageError: a timeout that is not a positive number, a size that is not like
                `8G`, `512M` or a byte count.
        """
        env = os.environ if env is None else env
        timeout = timeout if timeout not in (None, "") else env.get("INSIGHT_LOAD_TIMEOUT")
        memory = memory if memory not in (None, "") else env.get("INSIGHT_LOAD_MEMORY")
        out = cls()
        if timeout not in (None, ""):
            try:
                seconds = float(timeout)
            except ValueError:
                seconds = -1.0
            if not 0 < seconds < 1e7:
                raise UsageError("The load timeout must be a positive number of seconds.",
                                 "Pass e.g. --load-timeout 120.", f"--load-timeout={timeout!r}")
            out = cls(seconds, out.memory_bytes)
        if memory not in (None, ""):
            out = cls(out.timeout_s, parse_size(memory))
        return out

    @property
    def memory_text(self) -> str:
        """The memory limit as people write it (`"8 GB"`, `"512 MB"`)."""
        for unit, name in ((2**30, "GB"), (2**20, "MB")):
            if self.memory_bytes >= unit:
                return f"{self.memory_bytes / unit:.3g} {name}"
        return f"{self.memory_bytes} bytes"


def parse_size(text: str | int) -> int:
    """`"8G"`, `"512M"`, `"1.5GiB"` or a byte count, in bytes (powers of 1024).

    Raises:
        UsageError: anything else, or less than 64 MB (Python alone needs more).
    """
    match = _SIZE.match(str(text))
    size = int(float(match.group(1)) * _UNITS[match.group(2).upper()]) if match else 0
    if size < 64 * 2**20:
        raise UsageError("The load memory limit must be a size of at least 64M, like 8G or "
                         "512M.", "Pass e.g. --load-memory 8G.", f"--load-memory={text!r}")
    return size
