"""``python -m alps.cli``: the ``alps`` command."""
import sys

from . import main

sys.exit(main())
