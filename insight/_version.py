"""The package version, read from the installed metadata."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("insight")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0.0.0+unknown"
