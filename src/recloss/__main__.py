"""`python -m recloss` (and `torchrun -m recloss`): the command line."""

import sys

from recloss.cli import main

sys.exit(main())
