"""`python -m supervisor [--config config.yaml]` runs the scanner (`--demo`: against the emulator)."""

import sys

from supervisor import early

if "--demo" not in sys.argv[1:]:
    early.install()  # before the heavy imports below

from supervisor.app import main  # noqa: E402

sys.exit(main())
