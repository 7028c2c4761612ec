"""Folders that ship beside the code: `sample_models/` and `app_pages/`.

In a wheel they are the packages `insight.sample_models` and `insight.app_pages` (a
`package-dir` mapping in pyproject.toml). When `insight` is imported from a source checkout
(`python -m insight.cli` or `streamlit run app.py` from its root put the checkout first on
`sys.path`, ahead of any installed package), they are the folders beside `insight/`.

The pages are not in a folder named `pages/`: beside an entrypoint (`app.py`), Streamlit
takes such a folder for a legacy multipage app and runs the entrypoint inside its own
navigation on a process's first run, which breaks reruns of ours (`st.navigation`).

Example:

>>> shipped_folder("app_pages").name  # doctest: +SKIP
'app_pages'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_folder", "CHECKOUT"]

CHECKOUT = Path(__file__).resolve().parent.parent  # the folder holding insight/, in a checkout


def shipped_folder(name: str) -> Path:
    """The folder `name` (`"sample_models"` or `"app_pages"`), installed or in the checkout.

    Raises:
        ModuleNotFoundError: neither the package `insight.<name>` nor the folder exists.
    """
    try:
        installed = Path(str(resources.files(f"insight.{name}")))
    except ModuleNotFoundError:
        installed = None
    if installed is not None and installed.is_dir():
        return installed
    checkout = CHECKOUT / name
    if checkout.is_dir():
        return checkout
    raise ModuleNotFoundError(f"Neither the package insight.{name} nor {checkout} exists.")
