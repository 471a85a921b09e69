"""``python -m smlocal.runtime``: the runtime's commands on their own (smlocal's cli.py has them all)."""
import sys

from smlocal.runtime.commands import main

sys.exit(main())
