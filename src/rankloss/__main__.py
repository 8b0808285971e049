"""``python -m rankloss``: the same command line as ``rankloss``."""

import sys

from rankloss.cli import main

if __name__ == "__main__":
    sys.exit(main())
