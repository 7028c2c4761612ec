"""The `insight` command line: `main`, and one module per subcommand.

`python -m insight.cli` runs it too. Modules: `main` (the parser and dispatch), `console`
(what subcommands share on the terminal), `serve`, `summary`, `stats`, `profile`, `export`
(also `snapshot`) and `xla`.

Example:

>>> from insight.cli import main
>>> main(["--version"])  # doctest: +SKIP
insight 0.1.0
"""

from insight.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
