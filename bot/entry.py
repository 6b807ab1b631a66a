"""The bot process's entry point, in a module that imports nothing heavy.

Why a module of its own: the supervisor names this function when it starts the bot from the
forkserver (supervisor/forkserver.py pickles the entry by reference), so the supervisor imports
this module, and python-telegram-bot (about 8 MB of heap, mostly docstrings) must not come with
it: it is imported here, in the bot process only.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.config import Config


def bot_main(conn: Connection, config: Config) -> None:
    """Run the bot on the supervisor's pipe until it is told to stop."""
    from bot.process import run_bot

    run_bot(config, conn)
