"""``python -m microroute`` is the ``microroute`` command."""

import sys

from microroute.cli import main

if __name__ == "__main__":
    sys.exit(main())
