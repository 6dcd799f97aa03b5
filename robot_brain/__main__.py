"""``python -m robot_brain``: the same command line as ``robot-brain``."""

import sys

from robot_brain.cli import main

if __name__ == "__main__":
    sys.exit(main())
