"""The sample models bundled with insight (`sample_models/` in a checkout).

Example:

>>> from insight.model.samples import list_samples
>>> [s.name for s in list_samples()][:1]  # doctest: +SKIP
['digits_cnn']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from insight.shipped import shipped_folder

__all__ = ["Sample", "sample_root", "list_samples", "get_sample", "is_bundled", "DEFAULT_SAMPLE"]

DEFAULT_SAMPLE = "digits_cnn"
_ORDER = ["digits_cnn", "digits_cnn_h5", "multi_io", "nested", "subclassed", "text_embedding"]


@dataclass(frozen=True)
class Sample:
    """A bundled sample: its model file and what ships beside it."""

    name: str
    model: Path
    description: str
    data: Path | None = None
    logdir: Path | None = None
    custom_objects: Path | None = None  # part of insight itself, so trusted


def sample_root() -> Path:
    """The folder holding the samples (`insight.shipped.shipped_folder`): the package
    `insight.sample_models` when installed, `sample_models/` in a source checkout."""
    return shipped_folder("sample_models")


def is_bundled(path: str | Path) -> bool:
    """Whether `path` is one of the samples shipped inside the package: part of insight,
    trusted like its code, so loaded without the isolated child (the app and the CLI agree).

    >>> is_bundled(sample_root() / "digits_cnn" / "model.keras")
    True
    >>> is_bundled("/tmp/model.keras")
    False
    """
    try:
        return Path(path).expanduser().resolve().is_relative_to(sample_root().resolve())
    except (OSError, ValueError):
        return False


def _sample(folder: Path) -> Sample | None:
    models = sorted(p for p in folder.iterdir() if p.name in ("model.keras", "model.h5"))
    if not models:
        return None
    readme = folder / "README.md"
    description = readme.read_text().strip().splitlines()[0].lstrip("# ") if readme.is_file() \
        else ""

    def opt(name: str) -> Path | None:
        p = folder / name
        return p if p.exists() else None

    return Sample(folder.name, models[0], description, opt("data.npz"), opt("logs"),
                  opt("custom_objects.py"))


def list_samples() -> list[Sample]:
    """Every bundled sample whose model file exists, the default first."""
    root = sample_root()
    found = [s for d in sorted(root.iterdir()) if d.is_dir() and (s := _sample(d))]
    return sorted(found, key=lambda s: (_ORDER.index(s.name) if s.name in _ORDER else 99, s.name))


def get_sample(name: str) -> Sample:
    """The sample called `name`.

    Raises:
        UsageError: no such sample; the message lists them.
    """
    from insight.errors import UsageError

    for s in list_samples():
        if s.name == name:
            return s
    raise UsageError(f"No such sample: {name!r}. Samples are: "
                     f"{', '.join(s.name for s in list_samples())}.", "", f"sample={name!r}")
