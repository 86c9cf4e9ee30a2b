"""`python -m chartsync` runs the command line."""

import sys

from chartsync.cli import main

sys.exit(main())
