"""``python -m edge.cli``: the ``edgerec`` command without the console script."""

import sys

from edge.cli import main

sys.exit(main())
