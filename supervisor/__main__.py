"""`python -m supervisor [--config config.yaml]` runs the scanner."""

import sys

from supervisor.app import main

sys.exit(main())
