"""`python -m insight.cli`: the same as the `insight` command."""

import sys

from insight.cli.main import main

sys.exit(main())
