"""Folders that ship beside the code: `sample_models/` and `pages/`.

In a wheel they are the packages `insight.sample_models` and `insight.pages` (a
`package-dir` mapping in pyproject.toml). When `insight` is imported from a source checkout
(`python -m insight.cli` or `streamlit run app.py` from its root put the checkout first on
`sys.path`, ahead of any installed package), they are the folders beside `insight/`.

Example:

>>> shipped_folder("pages").name  # doctest: +SKIP
'pages'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_folder", "CHECKOUT"]

CHECKOUT = Path(__file__).resolve().parent.parent  # the folder holding insight/, in a checkout


def shipped_folder(name: str) -> Path:
    """The folder `name` (`"sample_models"` or `"pages"`), installed or in the checkout.

    Raises:
        ModuleNotFoundError: neither the package `insight.<name>` nor the folder exists.
    """
    try:
        return Path(str(resources.files(f"insight.{name}")))
    except ModuleNotFoundError:
        checkout = CHECKOUT / name
        if checkout.is_dir():
            return checkout
        raise
