"""Finding the system Chromium for the browser tests: skip locally without one, fail in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_browser() -> Path:
    """The Chromium to use (`insight.export.render.find_browser`). Without one the test is skipped
    with the reason, except under `CI=true`, where a missing browser is a failure."""
    from insight.errors import InsightError
    from insight.export.render import find_browser

    try:
        return find_browser()
    except InsightError as exc:
        reason = f"no Chromium for browser tests ({exc})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI must install it (.ci/run: apt-get install chromium)")
        pytest.skip(reason)
