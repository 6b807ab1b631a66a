"""Imported once, by the forkserver only (supervisor/forkserver.py): what every child shares.

Why these: the modules the shards, the futures and the arbitrage children all run (numpy, uvloop,
picows, the compiled core) are loaded once here and shared copy-on-write by every child forked
later. The bot's Telegram library is not: only the bot uses it, so loading it here would cost the
forkserver memory without sharing it with anyone. gc.freeze() at the end moves everything loaded
here out of the children's garbage collector, whose passes would otherwise write to (and so copy)
every shared page.
"""

import gc

import common.logs  # noqa: F401 - preloaded for the children
import shards.worker  # noqa: F401
import supervisor.arb  # noqa: F401
import supervisor.forkserver  # noqa: F401
import supervisor.futures  # noqa: F401

gc.freeze()
