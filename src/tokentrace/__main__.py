"""``python -m tokentrace``: the ``tokentrace`` command."""

import sys

from tokentrace._cli import main

sys.exit(main())
