"""`python -m local_run` (what `make run` starts)."""

import sys

from local_run.app import main

sys.exit(main())
