"""``python -m omnivue.compliance audit|subject ...``: the compliance commands stand-alone."""

import sys

from .cli import main

sys.exit(main())
