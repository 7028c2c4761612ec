"""`python -m insight`: the same as the `insight` command (where the script is not on PATH)."""

import sys

from insight.cli.main import main

sys.exit(main())
