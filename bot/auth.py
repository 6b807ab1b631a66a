"""Who may talk to the bot.

Why silence for outsiders: a bot that answers strangers confirms it exists and leaks its command
set; so anyone not in telegram.allowed_ids gets no reply at all, and only their user id (never
their text, which may carry anything) is logged. An empty list refuses everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from telegram import Update

log = logging.getLogger("scanner.bot.auth")


def is_allowed(update: Update, allowed_ids: Collection[int]) -> bool:
    """True when the update's sender is an allowed user; refusals are logged by user id only."""
    user = update.effective_user
    if user is not None and user.id in allowed_ids:
        return True
    kind = "callback" if update.callback_query is not None else "message" if update.effective_message is not None else "other"
    log.warning("refused update from unauthorised user", extra={"user_id": user.id if user else None, "update_kind": kind})
    return False
