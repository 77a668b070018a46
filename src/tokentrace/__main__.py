"""``python -m tokentrace``: the ``tokentrace`` command."""

import sys

from tokentrace._cli.main import main

sys.exit(main())
