"""`python -m snapfind`."""

import sys

from snapfind.cli import main

sys.exit(main())
