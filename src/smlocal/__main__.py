"""``python -m smlocal``: the same as the ``smlocal`` console script."""
import sys

from smlocal.cli import main

sys.exit(main())
