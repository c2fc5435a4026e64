"""``python -m alps``: the ``alps`` command."""
import sys

from .cli import main

sys.exit(main())
