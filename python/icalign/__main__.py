"""``python -m icalign``: the ``icalign`` command."""
import sys

from .cli import main

sys.exit(main())
