"""`python -m recloss` (and `torchrun -m recloss`): the command line."""

from recloss.cli import main
from recloss.cli.launch import end_process

end_process(main())
